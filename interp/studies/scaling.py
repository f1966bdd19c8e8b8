"""Scale vs calibration (the paper's claim 4, docs/science.md §5): KL, tasks solved, accuracy and "other" vs size.

Per model: on prompts mixing the first K tasks of a family uniformly (K = 2…Kmax), KL(t ‖ p) (the paper's
definition, and renormalised over the K answers), the "other" mass and the number of tasks solved (the paper's
beam-search rule, as in :mod:`interp.studies.tasks_solved`); on single-task prompts, greedy accuracy
(:func:`interp.scoring.greedy_correct`); all with 95% bootstrap CIs over prompts. The x axis is the number of
parameters (log).

Default models: the size family shipped in ``interp/checkpoints/size_family/`` (four GPT-2-architecture models,
d_model 32/48/64/80 with 1/2/3/4 layers, trained with ``experiments/configs/size_family/*.json`` on the same four
bias-add tasks add1/add7/add4/add9, the same data and token budget) plus the model the study is run on (the
embedded model by default).

>>> ScalingConfig.quick().validate()
>>> ScalingConfig(ks=[1, 2]).validate()
Traceback (most recent call last):
...
ValueError: ks: K must be >= 2 (a mixture), got [1, 2]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from interp.defaults import tasks_for
from interp.generation import complete_outputs_batch
from interp.metrics import bootstrap_ci, count_solved, kl_divergence
from interp.models import embedded_model_dir, load_model, model_info
from interp.plots.scaling import scaling_figure, scaling_pairs_figure
from interp.prompts import build_prompts
from interp.results import ScalingPoint
from interp.scoring import greedy_correct, score_answers_alone_and_complete
from interp.studies.common import distribution, metadata, write_outputs, writes_one_set
from interp.studies.scaling_pairs import PairsConfig, measure, seed_replicas
from interp.tasks import get_family, resolve_tasks

STUDY = "scaling"
#: Where the size family's checkpoints ship, smallest first.
SIZE_FAMILY_DIR = embedded_model_dir().parent / "size_family"
SIZES = ("xs", "s", "m", "l")


def size_family(sizes: Sequence[str] = SIZES) -> list[str]:
    """Paths of the shipped size-family checkpoints among ``sizes`` (those present), smallest first."""
    return [str(SIZE_FAMILY_DIR / s) for s in sizes if (SIZE_FAMILY_DIR / s / "config.json").is_file()]


@dataclass
class ScalingConfig:
    """Models (specs; ``None``: the size family), the family and its tasks in the order K adds them, and sizes."""

    models: list[str] | None = None
    family: str = "bias_add"
    tasks: tuple[str, ...] = field(default_factory=lambda: tasks_for("bias_add", 4))
    ks: list[int] = field(default_factory=lambda: [2, 3, 4])
    n_prompts: int = 200
    n_examples: int = 16
    beam_width: int = 8
    max_new_tokens: int = 2  # single-character answers + newline; raise it for longer answers
    include_run_model: bool = True  # also measure the model the study is run on (the embedded one by default)
    seed: int = 0
    #: Seeds × pairs (:mod:`interp.studies.scaling_pairs`): every pair of ``pair_tasks`` on 50/50 prompts, for every
    #: shipped seed of every size (``None``: the sizes of ``models``' size family; ``[]``: skip).
    pair_sizes: list[str] | None = None
    pair_tasks: tuple[str, ...] = ("add1", "add7", "add4", "add9")
    pair_prompts: int = 100

    @classmethod
    def quick(cls) -> ScalingConfig:
        """The smallest shipped model plus the run's model, K = 2, 3, 6 prompts: a smoke run."""
        return cls(
            models=size_family(SIZES[:1]), tasks=tasks_for("bias_add", 3), ks=[2, 3], n_prompts=6, beam_width=4,
            pair_sizes=list(SIZES[:1]), pair_tasks=("add1", "add7", "add4"), pair_prompts=6,
        )  # fmt: skip

    def validate(self) -> None:
        """``ValueError`` naming the first bad field (no model needed)."""
        resolve_tasks(get_family(self.family), list(self.tasks))
        if not self.ks or min(self.ks) < 2:
            raise ValueError(f"ks: K must be >= 2 (a mixture), got {self.ks}")
        if max(self.ks) > len(self.tasks):
            raise ValueError(f"ks: K up to {max(self.ks)} needs that many tasks; tasks lists {len(self.tasks)}")
        if self.beam_width < max(self.ks):
            raise ValueError(f"beam_width: must be >= the largest K ({max(self.ks)}), got {self.beam_width}")
        for name in ("n_prompts", "n_examples", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.pair_sizes is not None and any(s not in SIZES for s in self.pair_sizes):
            raise ValueError(f"pair_sizes: {self.pair_sizes!r}; valid: None (all) or a list of {', '.join(SIZES)}")
        resolve_tasks(get_family(self.family), list(self.pair_tasks))
        PairsConfig(self.family, tuple(self.pair_tasks), self.pair_prompts, self.n_examples, self.seed).validate()


def n_parameters(model) -> int:
    """Parameters of the loaded model (embeddings and the unembedding included)."""
    return int(sum(p.numel() for p in model.parameters()))


def model_label(model) -> str:
    """Short name: ``size_family/s`` for a shipped size-family model, else the model id."""
    mid = model_info(model).model_id
    try:
        return str(Path(mid).resolve().relative_to(SIZE_FAMILY_DIR.parent))
    except ValueError:
        return mid


def mixture_values(model, k: int, config: ScalingConfig) -> dict[str, np.ndarray]:
    """Per-prompt KL, renormalised KL, other mass and tasks solved on uniform mixtures of the first ``k`` tasks."""
    t = np.full(k, 1.0 / k)
    prompts = build_prompts(
        config.family, list(config.tasks[:k]), proportions=t, n_examples=config.n_examples,
        n_prompts=config.n_prompts, seed=config.seed,
    )  # fmt: skip
    scores, with_newline = score_answers_alone_and_complete(model, prompts)
    outputs = complete_outputs_batch(
        model, [p.text for p in prompts], beam_width=config.beam_width, max_new_tokens=config.max_new_tokens
    )
    solved = count_solved(with_newline.log_probs, [[lp for _, lp in outs] for outs in outputs], k=k)
    return {
        "kl": kl_divergence(t, scores.probs),
        "kl_renormalized": kl_divergence(t, scores.probs, renormalize=True),
        "other": scores.other,
        "solved": solved.astype(float),
    }


def scaling_point(model, config: ScalingConfig) -> ScalingPoint:
    """Every metric of the study for one loaded model."""
    per_k = [mixture_values(model, k, config) for k in config.ks]
    correct = [
        greedy_correct(
            model, build_prompts(config.family, [task], n_examples=config.n_examples, n_prompts=config.n_prompts,
                                 seed=config.seed), task,
        ).astype(float)
        for task in config.tasks
    ]  # fmt: skip
    pooled = np.concatenate(correct)
    return ScalingPoint(
        model=model_label(model),
        n_params=n_parameters(model),
        family=config.family,
        tasks=tuple(config.tasks),
        n_examples=config.n_examples,
        n_prompts=config.n_prompts,
        k=tuple(config.ks),
        **{key: distribution([v[key] for v in per_k], config.seed) for key in per_k[0]},
        accuracy=distribution(correct, config.seed),
        mean_accuracy=float(pooled.mean()),
        mean_accuracy_ci95=tuple(bootstrap_ci(pooled, seed=config.seed)),
    )


def scaling_points(models: Sequence, config: ScalingConfig, *, progress: bool = True) -> list[ScalingPoint]:
    """:func:`scaling_point` for each model (a spec for :func:`~interp.models.load_model`, or a loaded model).

    Specs are loaded one at a time and dropped after use; results are sorted by parameter count.
    """
    config.validate()
    points = []
    for spec in tqdm(list(models), desc=STUDY, disable=not progress):
        model = load_model(spec) if isinstance(spec, str | Path) else spec
        points.append(scaling_point(model, config))
    return sorted(points, key=lambda p: p.n_params)


@writes_one_set
def run(model, config: ScalingConfig, out_dir: str | Path, *, progress: bool = True) -> dict:
    """Measure ``config.models`` (default: the size family) and ``model``; write ``scaling.{html,png,json}``."""
    config.validate()
    models: list = list(size_family() if config.models is None else config.models)
    if config.include_run_model and model is not None:
        models.append(model)
    if not models:
        raise ValueError("models: nothing to measure (no size family shipped and no model given)")
    points = scaling_points(models, config, progress=progress)
    meta = metadata(model, config, STUDY)
    title = (
        f"Scale vs calibration · {config.family}, K = {', '.join(map(str, config.ks))} uniform · "
        f"{config.n_prompts} prompts × {config.n_examples} examples per point"
    )
    pairs = seeds_and_pairs(model, config)
    numbers = {**meta, "points": [p.to_dict() for p in points], "seeds_and_pairs": pairs}
    paths = write_outputs(scaling_figure(points, title=title), numbers, out_dir, STUDY)
    if pairs is not None:
        pair_title = (
            f"Scale across training seeds and task pairs · {config.family} 50/50 pairs of "
            f"{', '.join(config.pair_tasks)} · {config.pair_prompts} prompts × {config.n_examples} examples"
        )
        for kind, path in write_outputs(scaling_pairs_figure(pairs, title=pair_title), pairs, out_dir,
                                        "scaling_pairs").items():  # fmt: skip
            paths[f"pairs_{kind}"] = path
    return {"results": points, "numbers": numbers, "paths": paths}


def seeds_and_pairs(model, config: ScalingConfig) -> dict | None:
    """:func:`interp.studies.scaling_pairs.measure` on every shipped seed of the chosen sizes, plus the run's model
    as one more size (one seed); ``None`` when ``pair_sizes == []`` or nothing is shipped."""
    sizes = list(SIZES) if config.pair_sizes is None else list(config.pair_sizes)
    models: dict = dict(seed_replicas(sizes)) if sizes else {}
    if not models:
        return None
    extra = []
    if config.include_run_model and model is not None:
        models[model_label(model)] = {0: model}
        extra.append(model_label(model))
    pairs = PairsConfig(config.family, tuple(config.pair_tasks), config.pair_prompts, config.n_examples, config.seed)
    return measure(models, pairs, extra=extra)
