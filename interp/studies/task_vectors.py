"""Task vectors study (docs/science.md §4): best layer, convex-combination patching, decomposition, 2-D views.

Per pair (family, task A, task B, third task), with the same seed (hence the same queries) throughout:

1. vectors: single-task v_A, v_B, the third task's, the true 50/50 mixture's and the controls' (mixed prompts
   with random answers, random strings), all from :func:`interp.vectors.null_vectors`;
2. best layer of A and B (:func:`interp.sweeps.best_layer`; candidates: every task of the family);
3. λ × layer sweep of v(λ) = λ·v_A + (1−λ)·v_B patched into zero-shot queries (λ: the weight of task A), with the
   real mixed-prompt curve (:func:`interp.sweeps.lambda_sweep`; candidates: A and B);
4. decomposition of the mixture and of each control on (v_A, v_B)
   (:func:`interp.decomposition.control_decompositions`);
5. LDA (or PCA) of per-prompt vectors of A, B, third, their pairwise 50/50 mixtures and the uniform mixture;
6. cosine matrices between the six vectors per layer.

Acceptance quantities (reported, never tuned), per pair:

- ``best_layer``: per task, argmax of mean P(correct) over the layers that pass the self-patch control (per mode);
  ``best_layer_margin`` its lead over the runner-up passing layer and ``best_layer_clear`` whether that lead exceeds
  the 95% interval of the difference (1.96 × the root of the summed squared s.e.m.s); a best layer that is not clear
  is a coin toss between layers;
- ``recovery``: per task, patched candidate accuracy at its best layer ÷ ICL candidate accuracy (``None`` when the
  ICL accuracy is 0), reported beside ``chance`` (1 / number of candidate tasks);
- at the *pair layer* (argmax of the mean of the two tasks' P(correct) curves over the layers where both pass the
  control; none when there is no such layer):
  ``spearman_rho``/``spearman_p`` of patched P(a_B) (mean over queries) against λ (negative when P(a_B) falls as
  the weight λ of task A rises), and ``crosses_half`` (P(a_B) − 0.5 changes sign between consecutive grid points,
  i.e. crosses 0.5 at some λ in (0, 1));
- ``residual``: decomposition residual norm of the true mixture and of each control at the pair layer, and
  ``mixed_below_every_control``.

>>> TaskVectorsConfig.quick().validate()
>>> TaskVectorsConfig(n_prompts=1).validate()
Traceback (most recent call last):
...
ValueError: n_prompts: must be an integer >= 2, got 1
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from tqdm.auto import tqdm

from interp.capture import capture_resid
from interp.claims import Claim, claim_from_null
from interp.decomposition import PROJECTIONS, centred_cosines, control_decompositions, project_2d, task_cosines
from interp.defaults import tasks_for
from interp.export import write_json
from interp.heldout import held_out_seed
from interp.hooks import check_layers
from interp.nulls import (
    ablation_null,
    projection_null,
    residual_direction,
    residual_noise_floor,
    residual_simulator,
    steering_null,
)
from interp.plots.composition import (
    best_layer_figure,
    cosine_figure,
    decomposition_figure,
    lambda_heatmap_figure,
    lambda_stacked_figure,
    projection_figure,
)
from interp.plots.style import family_task_color
from interp.power import required_n
from interp.prompts import build_prompts, mixture_groups
from interp.results import BestLayer, CosineMatrix, MixtureSweep, NullTest
from interp.studies.common import metadata, write_outputs, writes_one_set
from interp.sweeps import (
    CONTROL_TOLERANCE,
    QUERY_KINDS,
    SWEEP_MODES,
    best_layer,
    check_lambdas,
    check_sweep_mode,
    lambda_sweep,
    query_prompts,
)
from interp.tasks import get_family, resolve_tasks
from interp.vectors import capture_groups, null_vectors, task_vector

STUDY = "task_vectors"
#: (family, task A, task B, third task used as a control) per trained family.
DEFAULT_PAIRS = tuple((fam, *tasks_for(fam, 3)) for fam in ("bias_add", "retrieval"))
CONTROLS = ("random_answers", "random_strings", "third_task")
#: Labels of the six vectors of the cosine matrices, in order.
COSINE_KEYS = ("a", "b", "third_task", "mixed", "random_answers", "random_strings")
FIGURES = ("best_layer", "lambda_heatmap", "lambda_stacked", "decomposition", "projection", "cosines")
#: How the study puts vectors into the residual (:data:`interp.sweeps.SWEEP_MODES`): Hendel et al.'s replacement,
#: and the shift that keeps each query's own deviation from the mean (the query lives there in ``x>`` prompts).
DEFAULT_MODES = ("replace", "shift")


@dataclass
class TaskVectorsConfig:
    """Settings of the task-vector study (saved with every result).

    ``pairs``: (family, task A, task B, third task). ``layers``: model layers to capture, patch and sweep
    (``None`` = all). ``lambdas``: strictly increasing λ grid in [0, 1] (≥ 3 points). ``projection_prompts``:
    prompts per group of the 2-D view. ``projection``: ``"lda"`` or ``"pca"``.
    """

    pairs: list[tuple[str, str, str, str]] = field(default_factory=lambda: [tuple(p) for p in DEFAULT_PAIRS])
    n_prompts: int = 50
    n_examples: int = 20
    lambdas: list[float] = field(default_factory=lambda: [round(float(x), 6) for x in np.linspace(0, 1, 31)])
    layers: list[int] | None = None
    projection: str = "lda"
    projection_prompts: int = 30
    seed: int = 0
    batch_size: int = 32
    modes: list[str] = field(default_factory=lambda: list(DEFAULT_MODES))
    control_tolerance: float = CONTROL_TOLERANCE
    n_null: int = 100
    queries: str = "zero_shot"
    #: Prompt seeds of every null (``seed``, ``seed + 1``, …): each p-value is replicated this many times.
    replications: int = 3
    #: The decomposition nulls' n is chosen before they run: the smallest of ``null_sizes`` at which an out-of-span
    #: residual of norm ``residual_effect`` is detected with power ``power`` (simulated from ``null_pilot`` prompts
    #: per group of held-out pilot prompts; the largest size when none reaches it).
    residual_effect: float = 0.1
    power: float = 0.8
    null_pilot: int = 50
    null_sizes: list[int] = field(default_factory=lambda: [50, 100, 200, 300, 400])
    power_sims: int = 40

    @classmethod
    def quick(cls) -> TaskVectorsConfig:
        """One pair, few prompts and λ points: a smoke run of every stage (≈ 30 s on a laptop CPU)."""
        return cls(
            pairs=[tuple(DEFAULT_PAIRS[0])], n_prompts=8, lambdas=[0.0, 0.25, 0.5, 0.75, 1.0], projection_prompts=6,
            replications=1, null_pilot=8, null_sizes=[8, 12], power_sims=5, n_null=10,
        )  # fmt: skip

    def validate(self) -> None:
        """``ValueError`` naming the first bad field and what is allowed (no model needed)."""
        if not isinstance(self.pairs, list | tuple) or not self.pairs:
            raise ValueError(
                f"pairs: need a non-empty list of (family, task_a, task_b, third_task), got {self.pairs!r}"
            )
        for p in self.pairs:
            if not isinstance(p, list | tuple) or len(p) != 4:
                raise ValueError(f"pairs: each entry must be (family, task_a, task_b, third_task), got {p!r}")
            fam, a, b, c = p
            try:
                resolve_tasks(get_family(fam), [a, b, c])
            except ValueError as err:
                raise ValueError(f"pairs: {p!r}: {err}") from None
            if len({a, b, c}) != 3:
                raise ValueError(f"pairs: tasks A, B and the third task must be distinct, got {p!r}")
        for name, minimum in (
            ("n_prompts", 2), ("n_examples", 2), ("projection_prompts", 2), ("batch_size", 1), ("n_null", 1),
            ("replications", 1), ("null_pilot", 4), ("power_sims", 0),
        ):  # fmt: skip
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < minimum:
                raise ValueError(f"{name}: must be an integer >= {minimum}, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise ValueError(f"seed: must be an integer >= 0, got {self.seed!r}")
        lam = check_lambdas(self.lambdas)
        if lam.size < 3 or np.any(np.diff(lam) <= 0):
            raise ValueError(f"lambdas: need >= 3 strictly increasing values in [0, 1], got {list(self.lambdas)}")
        if not isinstance(self.modes, list | tuple) or not self.modes or len(set(self.modes)) != len(self.modes):
            raise ValueError(
                f"modes: need a non-empty list of distinct modes from {list(SWEEP_MODES)}, got {self.modes!r}"
            )
        for m in self.modes:
            check_sweep_mode(m)
        if self.queries not in QUERY_KINDS:
            raise ValueError(f"queries: {self.queries!r} not supported; valid: {', '.join(QUERY_KINDS)}")
        sizes = self.null_sizes
        if (
            not isinstance(sizes, list | tuple)
            or not sizes
            or any(isinstance(x, bool) or not isinstance(x, int | np.integer) or x < 4 for x in sizes)
            or list(sizes) != sorted(set(sizes))
        ):
            raise ValueError(f"null_sizes: need a non-empty increasing list of integers >= 4, got {sizes!r}")
        for name in ("residual_effect", "power"):
            v = getattr(self, name)
            upper = 1 if name == "power" else float("inf")
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < upper:
                raise ValueError(f"{name}: must be a number in (0, {upper:g}), got {v!r}")
        tol = self.control_tolerance
        if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 <= tol <= 1:
            raise ValueError(f"control_tolerance: must be a number in [0, 1], got {tol!r}")
        if self.projection not in PROJECTIONS:
            raise ValueError(f"projection: {self.projection!r} not supported; valid: {', '.join(PROJECTIONS)}")
        if self.layers is not None and (
            not isinstance(self.layers, list | tuple)
            or not self.layers
            or any(isinstance(x, bool) or not isinstance(x, int | np.integer) or x < 0 for x in self.layers)
        ):
            raise ValueError(f"layers: need None (all) or a non-empty list of layer indices >= 0, got {self.layers!r}")


# ---------------------------------------------------------------------------------------------
# Acceptance quantities (pure functions of the measured numbers)


def _finite(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def pair_layer(results: list[BestLayer]) -> int | None:
    """The layer maximising the mean over tasks of mean P(correct) among the layers where every task passes the
    self-patch control (ties: the earliest); ``None`` when no layer passes for all of them."""
    mean = np.mean([r.p_correct for r in results], axis=0)
    ok = np.all([r.passes for r in results], axis=0)
    if not ok.any():
        return None
    return results[0].layers[int(np.argmax(np.where(ok, mean, -np.inf)))]


def half_crossings(lambdas: np.ndarray, p_b: np.ndarray) -> list[float]:
    """λ values (linear interpolation) where ``p_b`` crosses 0.5 between consecutive grid points.

    >>> half_crossings(np.array([0.0, 0.5, 1.0]), np.array([0.1, 0.4, 0.9]))
    [0.6]
    """
    d = np.asarray(p_b, dtype=float) - 0.5
    out = []
    for i in range(len(d) - 1):
        if (d[i] < 0) != (d[i + 1] < 0) and d[i] != d[i + 1]:
            t = -d[i] / (d[i + 1] - d[i])
            out.append(round(float(lambdas[i] + t * (lambdas[i + 1] - lambdas[i])), 6))
    return out


def best_layer_margin(r: BestLayer) -> tuple[float | None, bool]:
    """Lead of the best layer's mean P(correct) over the runner-up, and whether it exceeds the 95% interval of the
    difference (1.96 × sqrt(sem_best² + sem_second²)). One layer: ``(None, True)``.

    >>> import numpy as np
    >>> r = BestLayer("f", "t", (0, 1), np.array([0.5, 0.6]), np.zeros(2), 0, 0, 1, 1, 10, 0,
    ...               p_correct_sem=np.array([0.01, 0.01]))
    >>> m, clear = best_layer_margin(r); round(m, 3), clear
    (0.1, True)
    >>> failing = BestLayer("f", "t", (0, 1), np.array([0.5, 0.9]), np.zeros(2), 0, 0, 1, 1, 10, 0,
    ...                     control_accuracy=np.array([1.0, 0.0]), control_tolerance=0.05)
    >>> failing.best, best_layer_margin(failing)  # layer 1 fails the control: no runner-up among passing layers
    (0, (None, True))
    """
    ok = np.flatnonzero(r.passes)  # ranked among the layers that pass the self-patch control, as BestLayer.best
    if len(ok) < 2:
        return (None, True) if len(ok) == 1 else (None, False)
    order = ok[np.argsort(-r.p_correct[ok], kind="stable")]
    best, second = int(order[0]), int(order[1])
    margin = float(r.p_correct[best] - r.p_correct[second])
    if r.p_correct_sem is None:
        return margin, False
    half_width = 1.96 * math.sqrt(float(r.p_correct_sem[best]) ** 2 + float(r.p_correct_sem[second]) ** 2)
    return margin, bool(margin > half_width)


def acceptance(bests: list[BestLayer], sweep: MixtureSweep, decomps: dict, layer: int | None) -> dict[str, Any]:
    """The acceptance quantities of one pair and mode (see the module docstring) from its measured results.

    ``layer`` is the pair layer among the layers that pass the self-patch control; with ``None`` (none passes) the
    quantities that need a layer are ``None`` and ``steering_claim`` says why none is made.
    """
    out: dict[str, Any] = {
        "mode": bests[0].mode,
        "queries": bests[0].queries,
        "n_distinct_queries": bests[0].n_distinct_queries,
        "pair_layer": layer,
        "control": {},
        "best_layer": {},
        "best_layer_margin": {},
        "best_layer_clear": {},
        "recovery": {},
        "patched_accuracy": {},
        "zero_shot_accuracy": {},
        "zero_shot_p": {},
        "icl_accuracy": {},
        "chance": {},
    }
    for r in bests:
        out["control"][r.task] = {
            "accuracy": None if r.control_accuracy is None else [float(x) for x in r.control_accuracy],
            "passes": [bool(x) for x in r.passes],
            "tolerance": r.control_tolerance,
            "negative_task": r.negative_task,
            "negative_accuracy": None if r.negative_accuracy is None else [float(x) for x in r.negative_accuracy],
            "negative_p_other": None if r.negative_p_other is None else [float(x) for x in r.negative_p_other],
            "status": list(r.control_status),
        }
        out["icl_accuracy"][r.task] = r.icl_candidate_accuracy
        out["zero_shot_accuracy"][r.task] = r.zero_shot_candidate_accuracy
        out["zero_shot_p"][r.task] = r.zero_shot_p
        out["chance"][r.task] = r.chance
        out["best_layer"][r.task] = r.best
        if r.best is None:
            out["best_layer_margin"][r.task], out["best_layer_clear"][r.task] = None, False
            out["patched_accuracy"][r.task] = out["recovery"][r.task] = None
            continue
        k = r.layers.index(r.best)
        acc = float(r.candidate_accuracy[k])
        margin, clear = best_layer_margin(r)
        out["best_layer_margin"][r.task] = margin
        out["best_layer_clear"][r.task] = clear
        out["patched_accuracy"][r.task] = acc
        out["recovery"][r.task] = acc / r.icl_candidate_accuracy if r.icl_candidate_accuracy > 0 else None
    out["steering_claim"] = (
        None
        if layer is not None
        else "none: at every layer, patching a task's own vector into its own in-context prompts in this mode drops "
        "their accuracy beyond the tolerance (the intervention erases what the position holds)"
    )
    if layer is None:
        out.update(
            spearman_rho=None, spearman_p=None, p_b_at_layer=None, p_b_range=None, crosses_half=None,
            crossing_lambdas=[], residual=None, mixed_below_every_control=None,
        )  # fmt: skip
        return out
    li = sweep.layers.index(layer)
    p_b = sweep.probs[:, li, 1]
    lam = sweep.lambdas
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: rho is nan (reported as null)
        rho, pval = spearmanr(lam, p_b)
    crossings = [x for x in half_crossings(lam, p_b) if 0.0 < x < 1.0]
    out.update(
        spearman_rho=_finite(rho),
        spearman_p=_finite(pval),
        p_b_at_layer=p_b.tolist(),
        p_b_range=float(p_b.max() - p_b.min()),
        crosses_half=bool(crossings),
        crossing_lambdas=crossings,
    )
    di = decomps["mixed"].layers.index(layer)
    resid = {name: float(d.residual_norm[di]) for name, d in decomps.items()}
    out["residual"] = resid
    out["mixed_below_every_control"] = bool(all(resid["mixed"] < resid[c] for c in CONTROLS if c in resid))
    return out


# ---------------------------------------------------------------------------------------------
# The study


def run_pair(
    model, config: TaskVectorsConfig, family: str, task_a: str, task_b: str, third: str, layers: tuple[int, ...]
) -> dict[str, Any]:
    """Every measurement of one pair, as result objects (``"objects"``) and JSON-ready numbers (``"numbers"``).

    Held out by construction (:mod:`interp.heldout`): v_A, v_B come from prompts of ``config.seed``; the prompts they
    are tested on (best layer and its control, λ sweep, steering null) and the vectors decomposed on them (the
    mixture, the controls) from :func:`~interp.heldout.held_out_seed` of it. Each task's self-patch control runs its
    negative form with the other task's vector.

    Long on purpose: the method reads as one story (vectors → best layers → λ sweep → decomposition → projection →
    cosines → nulls → numbers), with statistics in :func:`acceptance` and figures in :func:`_figures`.
    """
    fit = config.seed
    test = held_out_seed(fit)
    kw = dict(n_prompts=config.n_prompts, n_examples=config.n_examples, batch_size=config.batch_size)
    vectors = null_vectors(model, family, task_a, task_b, third, layers=layers, seed=fit, **kw)
    per_mode = {}
    for mode in config.modes:
        bests = [
            best_layer(
                model, family, t, vectors[k], layers=layers, mode=mode, control_tolerance=config.control_tolerance,
                queries=config.queries, other_vector=vectors[other], seed=test, **kw,
            )
            for t, k, other in ((task_a, "a", "b"), (task_b, "b", "a"))
        ]  # fmt: skip
        sweep = lambda_sweep(
            model,
            family,
            task_a,
            task_b,
            vectors["a"],
            vectors["b"],
            lambdas=config.lambdas,
            layers=layers,
            mode=mode,
            mixed_reference=True,
            queries=config.queries,
            seed=test,
            **kw,
        )
        per_mode[mode] = {"bests": bests, "sweep": sweep}
    decomps = control_decompositions(vectors)
    groups = mixture_groups(
        family,
        [task_a, task_b, third],
        n_prompts=config.projection_prompts,
        n_examples=config.n_examples,
        seed=config.seed,
    )
    acts, labels = capture_groups(model, groups, layers=layers, batch_size=config.batch_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LDA: "variables are collinear" with few prompts in many dimensions
        proj = project_2d(acts, labels, method=config.projection, layers=layers)
    names = {
        "a": task_a,
        "b": task_b,
        "third_task": third,
        "mixed": f"{task_a}+{task_b} 50/50",
        "random_answers": "random answers",
        "random_strings": "random strings",
    }
    six = [vectors[k] for k in COSINE_KEYS]
    labels6 = tuple(names[k] for k in COSINE_KEYS)
    cos = CosineMatrix(task_cosines(six), labels6, tuple(layers), centred=False)
    cos_centred = CosineMatrix(centred_cosines(six), labels6, tuple(layers), centred=True)
    fam = get_family(family)
    for m in per_mode.values():
        m["layer"] = pair_layer(m["bests"])
    null_layer = next((m["layer"] for m in per_mode.values() if m["layer"] is not None), None)
    nulls = decomposition_nulls(model, config, family, (task_a, task_b, third), layers, null_layer)
    modes = {}
    for mode, m in per_mode.items():
        accept = acceptance(m["bests"], m["sweep"], decomps, m["layer"])
        accept["steering_null"] = {
            r.task: None
            if m["layer"] is None
            else steering_replications(model, config, family, r.task, m["layer"], mode)
            for r in m["bests"]
        }
        modes[mode] = {
            "best_layer": {r.task: r.to_dict() | {"best": r.best} for r in m["bests"]},
            "lambda_sweep": m["sweep"].to_dict()
            | {"lambdas": m["sweep"].lambdas.tolist(), "outcome": list(m["sweep"].outcome)},
            "acceptance": accept,
        }
    numbers = {
        "family": fam.name,
        "tasks": [task_a, task_b],
        "third_task": third,
        "task_index": {t: fam.task_names.index(t) for t in (task_a, task_b, third)},
        "layers": list(layers),
        "seeds": {"vectors": fit, "tested_on": test},
        "modes": modes,
        "nulls": nulls,
        "decomposition": {name: d.to_dict() for name, d in decomps.items()},
        "projection": proj.to_dict() | {"n_prompts_per_group": config.projection_prompts},
        "cosines": {"keys": list(COSINE_KEYS), "raw": cos.to_dict(), "centred": cos_centred.to_dict()},
        "vector_norms": {k: vectors[k].mean.double().norm(dim=1).tolist() for k in COSINE_KEYS},
    }
    objects = {
        "vectors": vectors,
        "modes": per_mode,
        "decomps": decomps,
        "projection": proj,
        "cosines": cos,
        "cosines_centred": cos_centred,
    }
    return {"objects": objects, "numbers": numbers}


def null_summary(t: NullTest, seed: int | None = None) -> dict[str, Any]:
    """A null test in a few numbers (its samples stay out of the JSON: the mean and 95th percentile describe them),
    with its n and its power curve (planted effects, simulated)."""
    curve = t.power
    return {
        "name": t.name,
        "statistic": t.statistic,
        "p_value": t.p_value,
        "null_mean": t.null_mean,
        "null_q95": t.null_q95,
        "n_null": len(t.null),
        "ci95": None if t.ci95 is None else list(t.ci95),
        "note": t.note,
        "n": t.n,
        "seed": seed,
        "mde": t.mde,
        "power": None
        if curve is None
        else {
            "effects": curve.effects.tolist(),
            "rejection": curve.rejection.tolist(),
            "alpha": curve.alpha,
            "power": curve.power,
            "n_sim": curve.n_sim,
            "unit": curve.unit,
            "false_positive_rate": curve.false_positive_rate,
        },
    }


def replication_seeds(config: TaskVectorsConfig) -> list[int]:
    """The prompt seeds of the nulls' replications: ``seed``, ``seed + 1``, …"""
    return [config.seed + r for r in range(config.replications)]


def steering_replications(
    model, config: TaskVectorsConfig, family: str, task: str, layer: int, mode: str
) -> dict[str, Any]:
    """The steering null of ``task`` at ``layer`` (chosen on ``config.seed``), once per replication seed: the vector
    from prompts of that seed, the queries from its held-out seed."""
    reps = []
    for s in replication_seeds(config):
        v = task_vector(
            model, family, task, n_prompts=config.n_prompts, n_examples=config.n_examples, seed=s, layers=[layer],
            batch_size=config.batch_size,
        )  # fmt: skip
        queries = query_prompts(
            family, get_family(family).task_names, config.queries, n_prompts=config.n_prompts,
            n_examples=config.n_examples, seed=held_out_seed(s),
        )  # fmt: skip
        t = steering_null(
            model, queries, task, v, layer, mode=mode, n_random=config.n_null, seed=s, batch_size=config.batch_size,
            power_sims=config.power_sims,
        )  # fmt: skip
        reps.append(null_summary(t, s))
    return {**reps[0], "replications": reps}


def _single(family: str, tasks: tuple[str, ...], weights, n: int, n_examples: int, seed: int):
    return build_prompts(family, list(tasks), proportions=weights, n_examples=n_examples, n_prompts=n, seed=seed)


def null_groups(family: str, tasks: tuple[str, str, str], n: int, n_examples: int, seed: int) -> dict[str, list]:
    """Prompts of the decomposition nulls. The basis (single-task A and B), the mixture and the third task come from
    ``seed``: paired row by row (the same queries and example inputs, each set with its own answers), so that the
    residual and projection tests compare means without the queries' own variation (a paired design; no vector is
    tested on prompts it was made from there). The prompts the residual direction is ablated in (50/50) come from
    ``held_out_seed(seed)``: the direction is fitted on the first groups and tested on prompts it never saw.
    Candidates: the three tasks."""
    one = lambda k: [float(i == k) for i in range(3)]  # noqa: E731
    return {
        "a": _single(family, tasks, one(0), n, n_examples, seed),
        "b": _single(family, tasks, one(1), n, n_examples, seed),
        "mixed": _single(family, tasks, [0.5, 0.5, 0.0], n, n_examples, seed),
        "third": _single(family, tasks, one(2), n, n_examples, seed),
        "ablate": _single(family, tasks, [0.5, 0.5, 0.0], n, n_examples, held_out_seed(seed)),
    }


def choose_null_size(model, config: TaskVectorsConfig, family: str, tasks, layer: int) -> dict[str, Any]:
    """The decomposition nulls' n, chosen before they run: the smallest of ``config.null_sizes`` at which the
    residual test detects ``config.residual_effect`` with power ``config.power``, simulated from a pilot of
    ``config.null_pilot`` prompts per group drawn from seeds of their own (:func:`interp.power.required_n`)."""
    pilot = null_groups(family, tasks, config.null_pilot, config.n_examples, held_out_seed(config.seed, 3))
    acts = {
        k: capture_resid(model, pilot[k], layers=[layer], batch_size=config.batch_size)[0] for k in ("mixed", "a", "b")
    }
    sim = residual_simulator(acts["mixed"], acts["a"], acts["b"], paired=True, seed=config.seed)
    n, tried = required_n(
        sim, config.residual_effect, config.null_sizes, n_sim=max(config.power_sims, 1), power=config.power,
        seed=config.seed,
    )  # fmt: skip
    return {
        "pilot_prompts": config.null_pilot,
        "pilot_seed": held_out_seed(config.seed, 3),
        "effect": config.residual_effect,
        "power": config.power,
        "power_at": {str(k): v for k, v in tried.items()},
        "required": n,
        "chosen": n if n is not None else max(config.null_sizes),
    }


def decomposition_nulls(
    model, config: TaskVectorsConfig, family: str, tasks: tuple[str, str, str], layers, layer: int | None
) -> dict[str, Any] | None:
    """The decomposition's nulls at ``layer`` (``None``: no layer passes the self-patch control in any mode, so none
    is reported), once per replication seed, at an n chosen for power (:func:`choose_null_size`), on the groups of
    :func:`null_groups`: the projection coefficient of the 50/50 vector onto ½(v_A + v_B) measured from the third
    task's vector, the out-of-span residual against split-half noise (both paired by query), and the causal ablation
    of that residual, in prompts held out from those it was computed from, against random directions of the same norm
    (:mod:`interp.nulls`)."""
    if layer is None:
        return None
    size = choose_null_size(model, config, family, tasks, layer)
    n = size["chosen"]
    out: dict[str, list] = {"projection": [], "residual": [], "ablation": []}
    for s in replication_seeds(config):
        groups = null_groups(family, tasks, n, config.n_examples, s)
        x = {
            k: capture_resid(model, groups[k], layers=[layer], batch_size=config.batch_size)[0]
            for k in ("a", "b", "mixed", "third")
        }
        kw = dict(seed=s, power_sims=config.power_sims)
        proj = projection_null(x["mixed"], x["a"], x["b"], x["third"], paired=True, **kw)
        resid = residual_noise_floor(x["mixed"], x["a"], x["b"], paired=True, **kw)
        direction = residual_direction(x["mixed"].mean(0), x["a"].mean(0), x["b"].mean(0))
        ablation = ablation_null(
            model, groups["ablate"], direction, layer, made_from=groups["a"] + groups["b"] + groups["mixed"],
            n_random=config.n_null, batch_size=config.batch_size, **kw,
        )  # fmt: skip
        for key, t in (("projection", proj), ("residual", resid), ("ablation", ablation)):
            out[key].append(null_summary(t, s))
    return {"layer": layer, "n": n, "sample_size": size} | {k: {**v[0], "replications": v} for k, v in out.items()}


NULL_SUBJECTS = {
    "projection": "the 50/50 vector's projection coefficient onto ½(v_{a} + v_{b}), measured from the third task's",
    "residual": "its out-of-span residual",
    "ablation": "Σ|ΔP| when that residual is removed",
}


def pair_claims(pair: dict[str, Any]) -> list[Claim]:
    """The claims of one pair's numbers (:mod:`interp.claims`): each decomposition null and each steering null, with
    every replication; keys ``task_vectors/<family>:<a>+<b>/<test>`` and ``…/steering/<mode>/<task>``."""
    a, b = pair["tasks"]
    root = f"{STUDY}/{pair['family']}:{a}+{b}"
    out = []
    nulls = pair.get("nulls")
    if nulls is not None:
        for key, subject in NULL_SUBJECTS.items():
            out.append(claim_from_null(f"{root}/{key}", subject.format(a=a, b=b), nulls[key]))
    for mode, block in pair["modes"].items():
        acc = block["acceptance"]
        for t, n in (acc.get("steering_null") or {}).items():
            if n is not None:
                subject = f"rise of P({t}) ({mode} at layer {acc['pair_layer']})"
                out.append(claim_from_null(f"{root}/steering/{mode}/{t}", subject, n))
    return out


def control_words(layers, status) -> str:
    """``"control fails at layers [3, 4]; uninformative at [0, 1]; passes at [2]"`` (only the statuses that occur)."""
    parts = []
    for word in ("fails", "uninformative", "unchecked", "passes"):
        at = [la for la, st in zip(layers, status, strict=True) if st == word]
        if at:
            parts.append(f"{word} at layers {at}")
    return "control " + "; ".join(parts)


def acceptance_lines(numbers: dict[str, Any]) -> list[str]:
    """Human-readable acceptance quantities from ``run(...)["numbers"]`` (one block per pair and mode)."""
    lines = []
    for p in numbers["pairs"]:
        for mode, block in p["modes"].items():
            a = block["acceptance"]
            lines.append(f"{p['family']}: {p['tasks'][0]} vs {p['tasks'][1]} (third: {p['third_task']}) · mode {mode}")
            for t in p["tasks"]:
                c = a["control"][t]
                ctrl = "control not run" if c["accuracy"] is None else control_words(p["layers"], c["status"])
                if a["best_layer"][t] is None:
                    lines.append(f"  {t:<12} no passing layer ({ctrl}); ICL acc {a['icl_accuracy'][t]:.3f}")
                    continue
                rec = a["recovery"][t]
                clear = "" if a["best_layer_clear"][t] else " (not clear: margin inside the 95% interval)"
                lines.append(
                    f"  {t:<12} best layer {a['best_layer'][t]}{clear}  patched acc {a['patched_accuracy'][t]:.3f}  "
                    f"zero-shot acc {a['zero_shot_accuracy'][t]:.3f}  ICL acc {a['icl_accuracy'][t]:.3f}  chance "
                    f"{a['chance'][t]:.3f}  recovery "
                    + ("n/a (ICL acc 0)" if rec is None else f"{rec:.3f}")
                    + f"  ({ctrl})"
                )
            if a["pair_layer"] is None:
                lines.append(f"  steering claim: {a['steering_claim']}")
                continue
            rho = a["spearman_rho"]
            lines.append(
                f"  pair layer {a['pair_layer']}: Spearman(P(a_B), λ) = "
                + ("n/a (constant)" if rho is None else f"{rho:+.3f} (p={a['spearman_p']:.2g})")
                + f", range of P(a_B) over λ {a['p_b_range']:.2g}"
                + f"; P(a_B) crosses 0.5 in (0,1): {a['crosses_half']} {a['crossing_lambdas']}"
            )
            res = ", ".join(f"{k}={v:.3f}" for k, v in a["residual"].items())
            lines.append(
                f"  residual norms at layer {a['pair_layer']}: {res}; mixture below every control: "
                f"{a['mixed_below_every_control']}"
            )
            for t, n in a["steering_null"].items():
                lines.append(f"  steering null, {t}: {_null_line(n)}")
        nulls = p.get("nulls")
        if nulls is None:
            lines.append("  decomposition nulls: none (no layer passes the self-patch control in any mode)")
            continue
        for key in ("projection", "residual", "ablation"):
            lines.append(f"  decomposition null at layer {nulls['layer']}, {key}: {_null_line(nulls[key])}")
    return lines


def _null_line(n: dict[str, Any]) -> str:
    ci = "" if n["ci95"] is None else f" [{n['ci95'][0]:.3g}, {n['ci95'][1]:.3g}]"
    reps = n.get("replications") or [n]
    ps = ", ".join(f"{r['p_value']:.3g}" for r in reps)
    mde = "" if n.get("mde") is None else f", detectable ≥ {n['mde']:.3g} at n = {n['n']}"
    return (
        f"{n['statistic']:.3g}{ci} vs null mean {n['null_mean']:.3g} (95th percentile {n['null_q95']:.3g}, "
        f"{n['n_null']} samples), p = {ps} over {len(reps)} prompt seed(s){mde}"
    )


@writes_one_set
def run(model, config: TaskVectorsConfig, out_dir: str | Path, *, progress: bool = True) -> dict:
    """Run the study and write its figures (HTML, PNG, JSON each) and ``task_vectors.json`` into ``out_dir``.

    Returns ``{"numbers": summary, "paths": {"<figure>_<html|png|json>": path, "summary_json": path}}``.
    The config and the layers are checked before any forward pass.
    """
    config.validate()
    layers = check_layers(model, config.layers)
    start = time.perf_counter()
    pairs = [run_pair(model, config, *p, layers=layers) for p in tqdm(config.pairs, desc=STUDY, disable=not progress)]
    meta = metadata(model, config, STUDY)
    objs = [p["objects"] for p in pairs]
    nums = [p["numbers"] for p in pairs]
    paths = _write_figures(_figures(objs, nums, config, meta["model"]["model_id"]), nums, meta, out_dir)
    summary = {
        **meta,
        "runtime_s": round(time.perf_counter() - start, 2),
        "pairs": nums,
        "acceptance": [
            {"family": n["family"], "tasks": n["tasks"], **m["acceptance"]} for n in nums for m in n["modes"].values()
        ],
        "claims": [c.to_dict() for n in nums for c in pair_claims(n)],
        "files": {k: v for k, v in paths.items() if v},
    }
    paths["summary_json"] = str(write_json(Path(out_dir) / f"{STUDY}.json", summary))
    return {"results": objs, "numbers": summary, "paths": paths}


def _figures(objs: list[dict], nums: list[dict], config: TaskVectorsConfig, model_id: str) -> dict[str, tuple]:
    """Every figure of the study, with the keys of the pair numbers each one draws.

    Long on purpose: one call per figure, each with its title, listed in the order the figures are written. The
    best-layer and λ figures have one panel per (pair, mode); a λ panel whose mode has no layer passing the
    self-patch control marks none and, in the stacked view, shows the layer of highest mean P(correct) with
    "control fails" in its title.
    """
    pair_titles = [f"{n['family']}: {n['tasks'][0]} vs {n['tasks'][1]}" for n in nums]
    panels = [(o, n, mode) for o, n in zip(objs, nums, strict=True) for mode in config.modes]
    marked = [o["modes"][mode]["layer"] for o, _, mode in panels]
    raw_best = [
        o["modes"][mode]["bests"][0].layers[
            int(np.argmax(np.mean([b.p_correct for b in o["modes"][mode]["bests"]], 0)))
        ]
        for o, _, mode in panels
    ]
    first_marked = next((m for m in marked if m is not None), raw_best[0])
    decomposition_layers = [
        next((o["modes"][m]["layer"] for m in config.modes if o["modes"][m]["layer"] is not None), None) for o in objs
    ]
    size = f"{config.n_prompts} prompts × {config.n_examples} examples"
    sweeps = [o["modes"][mode]["sweep"] for o, _, mode in panels]
    figures = {
        "best_layer": (
            best_layer_figure(
                [o["modes"][mode]["bests"] for o, _, mode in panels],
                title=f"Best layer: task vector patched into zero-shot queries, with the self-patch control · model "
                f"{model_id} · {size}",
            ),
            ["modes"],
        ),
        "lambda_heatmap": (
            lambda_heatmap_figure(
                sweeps,
                marked_layers=marked,
                title=f"Convex combination v(λ) patched, λ × layer, per mode · model {model_id} · {config.n_prompts} "
                f"queries, {len(config.lambdas)} λ points",
            ),
            ["modes"],
        ),
        "lambda_stacked": (
            lambda_stacked_figure(
                sweeps,
                [m if m is not None else r for m, r in zip(marked, raw_best, strict=True)],
                title=f"P(a_A), P(a_B), P(other) vs λ at the pair's best passing layer, per mode · model {model_id} · "
                f"{size}",
                notes=[
                    f"{mode}" + ("" if m is not None else ", control fails")
                    for (_, _, mode), m in zip(panels, marked, strict=True)
                ],
            ),
            ["modes"],
        ),
        "decomposition": (
            decomposition_figure(
                [o["decomps"] for o in objs],
                panel_titles=pair_titles,
                marked_layers=decomposition_layers,
                colors=[{"third_task": family_task_color(n["family"], n["third_task"])} for n in nums],
                title=f"Least-squares decomposition on (v_A, v_B): residual vs layer · model {model_id} · {size}",
            ),
            ["decomposition"],
        ),
        "projection": (
            projection_figure(
                [o["projection"] for o in objs],
                families=[n["family"] for n in nums],
                panel_titles=[f"{n['family']}: {n['tasks'][0]}, {n['tasks'][1]}, {n['third_task']}" for n in nums],
                initial_layer=first_marked,
                title=f"{config.projection.upper()} of per-prompt vectors (single tasks, 50/50 pairs, uniform) · model "
                f"{model_id} · {config.projection_prompts} prompts per group",
            ),
            ["projection"],
        ),
        "cosines": (
            cosine_figure(
                [m for o in objs for m in (o["cosines"], o["cosines_centred"])],
                panel_titles=[f"{t} {kind}" for t in pair_titles for kind in ("(raw)", "(centred)")],
                title=f"Cosine similarity between task vectors per layer (raw; centred on their mean) · "
                f"model {model_id} · {size}",
            ),
            ["cosines"],
        ),
    }
    return figures


def _write_figures(figures: dict[str, tuple], nums: list[dict], meta: dict, out_dir: str | Path) -> dict:
    """Write each figure (HTML, PNG) with the numbers it draws (JSON); returns ``{"<figure>_<kind>": path}``."""
    paths: dict[str, str | None] = {}
    for name, (fig, keys) in figures.items():
        fig_numbers = {
            **meta,
            "figure": name,
            "pairs": [
                {
                    "family": n["family"],
                    "tasks": n["tasks"],
                    "third_task": n["third_task"],
                    "pair_layer": {mode: m["acceptance"]["pair_layer"] for mode, m in n["modes"].items()},
                    **{k: n[k] for k in keys},
                }
                for n in nums
            ],
        }
        for kind, path in write_outputs(fig, fig_numbers, out_dir, name).items():
            paths[f"{name}_{kind}"] = path
    return paths


__all__ = ["TaskVectorsConfig", "run", "run_pair", "acceptance", "acceptance_lines", "half_crossings", "pair_layer"]
