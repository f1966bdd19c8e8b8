"""Heads study (issue 28): which attention heads carry each task when two run at once.

For the model the study runs on (the embedded one by default) and each model of the size family (seed 0), for a
pair of tasks A, B (:mod:`interp.heads`):

1. causal indirect effect (CIE) of every head for A and for B (clean: in-context prompts of the task; corrupted: the
   same queries after random-answer examples), with 95% CIs over prompts;
2. the function vector of each task (Σ of its top-``top_k`` CIE heads' mean outputs) added to zero-shot queries at
   each layer, with its self-patch control (added to the task's own in-context prompts, their accuracy must stay);
3. mean-ablation of every head on 50/50 prompts: the change of P(a_A) and P(a_B);
4. direct logit attribution of the top heads to A's and B's answers as the fraction d of A's examples varies;
5. previous-token, duplicate-token and induction scores of every head, and how many of each task's top CIE heads are
   among the top induction heads;
6. head roles (:mod:`interp.head_roles`, issue 37) for A, B and ``role_tasks``, over prompt ``seeds``: sufficiency
   (CIE), necessity (mean-ablation on single-task prompts), a label per head and task with how many seeds give it,
   and Yin & Steinhardt's set ablations (function-vector heads without induction heads, induction heads, random);
7. attribution patching of every head beside the exact CIE for A and B (:mod:`interp.attribution`, issue 40): the
   estimate, the heads its checks flag, and the agreement (Spearman, top-k overlap, heads off by more than the
   tolerance and whether flagged), with the seconds of each; the one-off weight gathering is timed apart.

Figures (run model): ``heads`` (heatmaps of 1, 3 and 5), ``heads_dla`` (4). Every model's numbers are in
``heads.json``.

>>> HeadsConfig.quick().validate()
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from interp.attribution import agreement, attribution_patching
from interp.engines.block_weights import gather_weights
from interp.engines.nn_model import is_nnsight
from interp.export import write_json
from interp.head_roles import LABELS, HeadRoles, head_roles, mean_ci
from interp.heads import (
    attention_scores,
    causal_indirect_effects,
    direct_logit_attribution,
    function_vector,
    mean_ablation_effects,
)
from interp.interventions import Intervention
from interp.metrics import bootstrap_ci, candidate_accuracy
from interp.models import load_model
from interp.plots.heads import dla_vs_fraction_figure, head_heatmaps_figure
from interp.prompts import build_prompts, zero_shot_prompts
from interp.results import HeadMap
from interp.seeds import check_seed
from interp.studies.common import metadata, write_outputs, writes_one_set
from interp.studies.scaling import model_label, size_family
from interp.sweeps import CONTROL_TOLERANCE, score_cells
from interp.tasks import get_family, resolve_tasks

STUDY = "heads"


@dataclass
class HeadsConfig:
    """Settings of the heads study (saved with every result)."""

    family: str = "bias_add"
    tasks: tuple[str, str] = ("add1", "add7")
    models: list[str] | None = None  # extra models (specs); None: the size family (seed 0)
    n_prompts: int = 50
    n_examples: int = 10
    fractions: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5, 0.7, 0.9])
    top_k: int = 3
    control_tolerance: float = CONTROL_TOLERANCE
    seq_len: int = 20
    n_seqs: int = 20
    seed: int = 0
    batch_size: int = 32
    role_tasks: tuple[str, ...] = ("add4",)
    seeds: tuple[int, ...] = (0, 1, 2)
    role_prompts: int = 30
    attribution: bool = True
    #: Shipped models of other families whose head roles are measured too (``[spec, family, tasks, n_examples]``):
    #: every shipped model gets labels (issue 37), beside the bias-add ones measured in full.
    role_models: list[list] = field(
        default_factory=lambda: [
            ["two_digit", "two_digit_shift", ["shift1", "shift7", "shift4"], 16],
            ["constructed:retrieval:K=4", "retrieval", ["pos1", "pos2", "pos3"], 12],
        ]
    )

    @classmethod
    def quick(cls) -> HeadsConfig:
        """Few prompts and the smallest size-family model: a smoke run."""
        return cls(models=size_family(("xs",)), n_prompts=6, n_examples=8, fractions=[0.2, 0.8], n_seqs=4,
                   seeds=(0,), role_prompts=6, role_models=[])  # fmt: skip

    def validate(self) -> None:
        """``ValueError`` naming the first bad field (no model needed)."""
        resolve_tasks(get_family(self.family), list(self.tasks))
        if len(self.tasks) != 2 or self.tasks[0] == self.tasks[1]:
            raise ValueError(f"tasks: need two distinct tasks (A, B), got {self.tasks!r}")
        for name, low in (("n_prompts", 2), ("n_examples", 2), ("top_k", 1), ("seq_len", 2), ("n_seqs", 1),
                          ("batch_size", 1)):  # fmt: skip
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name}: must be an integer >= {low}, got {v!r}")
        if not self.fractions or any(not 0 < f < 1 for f in self.fractions):
            raise ValueError(f"fractions: need values strictly between 0 and 1, got {self.fractions!r}")
        if not 0 <= self.control_tolerance <= 1:
            raise ValueError(f"control_tolerance: must be in [0, 1], got {self.control_tolerance!r}")
        check_seed(self.seed)
        resolve_tasks(get_family(self.family), list(self.role_tasks))
        if set(self.role_tasks) & set(self.tasks):
            raise ValueError(f"role_tasks: must not repeat tasks {self.tasks!r}, got {self.role_tasks!r}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: need distinct prompt seeds (three for a claim), got {self.seeds!r}")
        for s in self.seeds:
            check_seed(s)
        if isinstance(self.role_prompts, bool) or not isinstance(self.role_prompts, int) or self.role_prompts < 2:
            raise ValueError(f"role_prompts: must be an integer >= 2, got {self.role_prompts!r}")
        for entry in self.role_models:
            if not isinstance(entry, list | tuple) or len(entry) != 4:
                raise ValueError(f"role_models: each entry is [spec, family, tasks, n_examples], got {entry!r}")
            resolve_tasks(get_family(entry[1]), list(entry[2]))


def function_vector_steering(model, config: HeadsConfig, task: str, fv: torch.Tensor) -> dict[str, Any]:
    """The function vector added at each layer's ``resid_post`` of zero-shot queries: mean P(task) and candidate
    accuracy per layer, beside its self-patch control (added to the task's own in-context prompts)."""
    fam = get_family(config.family)
    tasks = fam.task_names
    k = tasks.index(task)
    layers = list(range(model.cfg.n_layers))
    cells = [Intervention(la, "add", fv, label=f"function vector of {task}") for la in layers]
    zs = zero_shot_prompts(fam, tasks, n_prompts=config.n_prompts, seed=config.seed)
    one = [float(t == task) for t in tasks]
    icl = build_prompts(fam, tasks, proportions=one, n_examples=config.n_examples, n_prompts=config.n_prompts,
                        seed=config.seed)  # fmt: skip
    kw = dict(batch_size=config.batch_size)
    patched, controlled = score_cells(model, zs, cells, **kw), score_cells(model, icl, cells, **kw)
    icl_acc = float(candidate_accuracy(score_cells(model, icl, [Intervention(0, "add", 0 * fv)], **kw)[0], k))
    control = [float(candidate_accuracy(c, k)) for c in controlled]
    passes = [c >= icl_acc - config.control_tolerance - 1e-9 for c in control]
    zs_p = np.exp(score_cells(model, zs, [Intervention(0, "add", 0 * fv)], **kw)[0][:, k])
    p = [float(np.exp(lp[:, k]).mean()) for lp in patched]
    rise = [np.exp(lp[:, k]) - zs_p for lp in patched]
    return {
        "layers": layers,
        "p_correct": p,
        "rise": [float(r.mean()) for r in rise],
        "rise_ci95": [list(bootstrap_ci(r, seed=config.seed)) for r in rise],
        "candidate_accuracy": [float(candidate_accuracy(lp, k)) for lp in patched],
        "zero_shot_p": float(zs_p.mean()),
        "icl_accuracy": icl_acc,
        "control_accuracy": control,
        "passes": passes,
        "norm": float(fv.double().norm()),
    }


def roles_summary(roles: HeadRoles) -> dict[str, Any]:
    """JSON-ready: per task, every head whose modal label is not ``none`` (label, seeds agreeing, sufficiency,
    necessity and ablated accuracy as mean with a 95% t-interval over seeds, whether an induction head), the
    unablated accuracy, the label counts and the set ablations' mean drops over seeds."""
    n_layers, n_heads = roles.induction.shape
    out: dict[str, Any] = {"seeds": list(roles.seeds), "tasks": list(roles.tasks), "n_prompts": roles.n_prompts,
                           "threshold": roles.threshold, "per_task": {}}  # fmt: skip
    for ti, t in enumerate(roles.tasks):
        heads = []
        for la in range(n_layers):
            for h in range(n_heads):
                label = roles.modal_label(t, la, h)
                if label == "none":
                    continue
                heads.append({
                    "head": [la, h],
                    "label": label,
                    "agree": roles.agreement(t, la, h),
                    "sufficiency": list(roles.over_seeds("sufficiency", t, la, h)),
                    "necessity": list(roles.over_seeds("necessity", t, la, h)),
                    "ablated_accuracy": list(roles.over_seeds("ablated_accuracy", t, la, h)),
                    "induction": bool(roles.induction[la, h]),
                })  # fmt: skip
        counts = {lab: len(roles.heads_labelled(lab, t)) for lab in LABELS}
        sets: dict[str, list[float]] = {}
        for per_seed in roles.set_ablation:
            for name, entry in per_seed[t].items():
                sets.setdefault(name, []).append(float(np.mean(entry["drop"])))
        out["per_task"][t] = {
            "heads": heads,
            "counts": counts,
            "accuracy": float(np.mean(roles.accuracy[:, ti])),
            "set_ablation": {name: list(map(float, mean_ci(v))) for name, v in sets.items()},
        }
    return out


def measure_model(model, config: HeadsConfig) -> dict[str, Any]:
    """Every measurement of the study on one model (JSON-ready) and its HeadMaps (``"maps"``)."""
    a, b = config.tasks
    gathered_s = gather_weights(model)  # once per model, timed apart from the measurements below
    kw = dict(n_prompts=config.n_prompts, n_examples=config.n_examples, seed=config.seed, batch_size=config.batch_size)
    timings: dict[str, float] = {"weights_gathered_s": gathered_s}
    start = time.perf_counter()
    cie = {t: causal_indirect_effects(model, config.family, t, **kw) for t in (a, b)}
    timings["exact_cie_s"] = time.perf_counter() - start
    fvs = {
        t: function_vector(
            model,
            config.family,
            t,
            cie[t],
            top_k=config.top_k,
            n_prompts=config.n_prompts,
            n_examples=config.n_examples,
            seed=config.seed,
        )  # fmt: skip
        for t in (a, b)
    }
    steering = {t: function_vector_steering(model, config, t, fvs[t]) for t in (a, b)}
    mixed = build_prompts(config.family, [a, b], proportions=[0.5, 0.5], n_examples=config.n_examples,
                          n_prompts=config.n_prompts, seed=config.seed)  # fmt: skip
    ablation = mean_ablation_effects(model, mixed, batch_size=config.batch_size)  # [layer, head, prompt, task]
    ablation_maps = {
        t: HeadMap(
            f"ΔP({t}) when the head is mean-ablated on 50/50 prompts",
            config.family,
            t,
            tuple(range(model.cfg.n_layers)),
            ablation[..., j].mean(axis=2),
            np.array(
                [
                    [bootstrap_ci(ablation[la, h, :, j], seed=config.seed) for h in range(model.cfg.n_heads)]
                    for la in range(model.cfg.n_layers)
                ]
            ),
            config.n_prompts,
            config.seed,
        )  # fmt: skip
        for j, t in enumerate((a, b))
    }
    top_heads = sorted({h for t in (a, b) for h in cie[t].top(config.top_k)})
    dla = {"fractions": list(config.fractions), "heads": [list(h) for h in top_heads], "mean": [], "ci95": []}
    for d in config.fractions:
        ps = build_prompts(config.family, [a, b], proportions=[d, 1 - d], n_examples=config.n_examples,
                           n_prompts=config.n_prompts, seed=config.seed)  # fmt: skip
        values = direct_logit_attribution(model, ps, batch_size=config.batch_size)  # [prompt, layer, head, task]
        picked = np.stack([values[:, la, h] for la, h in top_heads], axis=1)  # [prompt, head, task]
        dla["mean"].append(picked.mean(axis=0).tolist())
        dla["ci95"].append([[list(bootstrap_ci(picked[:, i, j], seed=config.seed)) for j in range(2)]
                            for i in range(len(top_heads))])  # fmt: skip
    attribution: dict[str, Any] = {}
    if config.attribution and is_nnsight(model):  # its gradients would need traces of their own: said, not faked
        attribution["skipped"] = (
            "attribution patching takes its gradients through TransformerLens hooks; not run on the nnsight engine "
            "(the exact CIE above is)"
        )
    elif config.attribution:
        start = time.perf_counter()
        atp = {t: attribution_patching(model, config.family, t, **kw) for t in (a, b)}
        timings["attribution_s"] = time.perf_counter() - start
        for t in (a, b):
            attribution[t] = {
                "estimate": atp[t].estimate.mean.tolist(),
                "unreliable": atp[t].unreliable.tolist(),
                "why": [list(row) for row in atp[t].why],
                "layer_exact": atp[t].layer_exact.tolist(),
                "agreement": agreement(cie[t], atp[t], top_k=config.top_k, tolerance=atp[t].tolerance),
            }
    roles = head_roles(model, config.family, [a, b, *config.role_tasks], seeds=config.seeds,
                       n_prompts=config.role_prompts, n_examples=config.n_examples, induction_top=config.top_k,
                       batch_size=config.batch_size)  # fmt: skip
    scores = attention_scores(model, seq_len=config.seq_len, n_seqs=config.n_seqs, seed=config.seed)
    induction_top = {tuple(h) for h in _top(scores["induction"], config.top_k)}
    overlap = {t: len(induction_top & set(cie[t].top(config.top_k))) for t in (a, b)}
    numbers = {
        "model": model_label(model),
        "n_layers": model.cfg.n_layers,
        "n_heads": model.cfg.n_heads,
        "cie": {t: cie[t].to_dict() | {"top": [list(h) for h in cie[t].top(config.top_k)]} for t in (a, b)},
        "function_vector_steering": steering,
        "ablation": {t: m.to_dict() for t, m in ablation_maps.items()},
        "dla": dla,
        "attention_scores": {k: v.tolist() for k, v in scores.items()},
        "induction_top": [list(h) for h in sorted(induction_top)],
        "fv_heads_among_induction_heads": overlap,
        "roles": roles_summary(roles),
        "attribution": attribution,
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }
    return {"numbers": numbers, "maps": {"cie": cie, "ablation": ablation_maps, "scores": scores}}


def _top(values: np.ndarray, k: int) -> list[tuple[int, int]]:
    flat = np.argsort(-values.ravel(), kind="stable")[:k]
    return [(int(i) // values.shape[1], int(i) % values.shape[1]) for i in flat]


@writes_one_set
def run(model, config: HeadsConfig, out_dir: str | Path, *, progress: bool = True) -> dict:
    """Measure ``model`` and the size family; write ``heads.{html,png,json}``, ``heads_dla.{html,png,json}`` and
    ``heads_all.json`` (every model) into ``out_dir``."""
    config.validate()
    start = time.perf_counter()
    a, b = config.tasks
    main = measure_model(model, config)
    others = []
    specs = size_family() if config.models is None else config.models
    for spec in tqdm(specs, desc=STUDY, disable=not progress):
        others.append(measure_model(load_model(spec), config)["numbers"])
    meta = metadata(model, config, STUDY)
    maps, n = main["maps"], main["numbers"]
    layers = list(range(model.cfg.n_layers))
    panels = [
        (f"CIE for {a} (patched mean z into corrupted prompts)", maps["cie"][a].mean, layers),
        (f"CIE for {b}", maps["cie"][b].mean, layers),
        ("induction score", maps["scores"]["induction"], layers),
        (f"ΔP({a}) when mean-ablated (50/50 prompts)", maps["ablation"][a].mean, layers),
        (f"ΔP({b}) when mean-ablated", maps["ablation"][b].mean, layers),
        ("previous-token score", maps["scores"]["previous_token"], layers),
    ]
    title = (
        f"Heads · model {n['model']} · {config.family} {a}/{b} · {config.n_prompts} prompts × {config.n_examples} "
        "examples"
    )
    paths = write_outputs(head_heatmaps_figure(panels, title=title), {**meta, **n}, out_dir, STUDY)
    series = []
    dla = n["dla"]
    for i, (la, h) in enumerate(dla["heads"]):
        for j, (t, role) in enumerate(((a, "A"), (b, "B"))):
            mean = np.array([dla["mean"][p][i][j] for p in range(len(dla["fractions"]))])
            ci = np.array([dla["ci95"][p][i][j] for p in range(len(dla["fractions"]))])
            series.append((f"L{la}H{h}", t, role, mean, ci))
    dla_title = f"Direct logit attribution of the top CIE heads vs d · model {n['model']}"
    fig = dla_vs_fraction_figure(dla["fractions"], series, family=config.family, title=dla_title)
    for kind, path in write_outputs(fig, {**meta, "dla": dla}, out_dir, "heads_dla").items():
        paths[f"dla_{kind}"] = path
    roles_only = []
    for spec, family, tasks, n_examples in config.role_models:
        other = load_model(spec)
        roles = head_roles(other, family, list(tasks), seeds=config.seeds, n_prompts=config.role_prompts,
                           n_examples=n_examples, induction_top=config.top_k, batch_size=config.batch_size)  # fmt: skip
        roles_only.append({"model": model_label(other), "family": family, "roles": roles_summary(roles)})
    summary = {**meta, "runtime_s": round(time.perf_counter() - start, 2), "models": [n, *others],
               "roles_only": roles_only}  # fmt: skip
    paths["all_json"] = str(write_json(Path(out_dir) / "heads_all.json", summary))
    return {"results": main["maps"], "numbers": summary, "paths": paths}


__all__ = ["HeadsConfig", "function_vector_steering", "measure_model", "roles_summary", "run"]
