"""Patching experiments: cells and their summaries (docs/science.md §4).

A *cell* is an :class:`~interp.interventions.Intervention` (layer, hook point, mode, vector) applied at each query's
last token. :func:`score_cells` scores every prompt once per cell through :func:`interp.engines.score` (the
shared-prefix engine where answers are one token right after the patched token, else the prompts replicated per
cell); every route equals :mod:`interp.reference`, the method as plain loops
(``tests/equivalence/test_equivalence.py``). The experiments build cells and summarise:

- :func:`patched_scores`: one vector (or intervention) at one layer;
- :func:`best_layer`: one task vector at every layer, with zero-shot and in-context references;
- :func:`lambda_sweep`: v(λ) = λ·v_A + (1 − λ)·v_B at every (λ, layer), with the real mixed-prompt curve
  (λ is the weight of task A, the same meaning as the fraction of task-A examples everywhere);
- :func:`simplex_sweep`: Σ_k w_k v_k on a barycentric grid;
- :func:`proportion_sweep`: decomposition of mixed-prompt vectors vs the fraction of task A (no patching).

Results are :mod:`interp.results` values.

>>> sweep = lambda_sweep(model, "bias_add", "add1", "add7", va, vb, layers=[1, 2])   # doctest: +SKIP
>>> sweep.probs.shape                                                              # doctest: +SKIP
(31, 2, 3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from interp.capture import capture_resid, token_ids
from interp.decomposition import METHODS, decompose
from interp.engines import Cell, score
from interp.engines.plan import check_batch_size, resolve_positions
from interp.heldout import check_held_out, held_out_seed
from interp.hooks import check_hook, check_layers
from interp.interventions import Intervention
from interp.metrics import candidate_accuracy, mean_and_sem
from interp.patching import as_intervention, check_vector_for_model
from interp.prompts import Prompt, build_prompts, check_prompts, check_simplex, random_answer_prompts, zero_shot_prompts
from interp.results import BestLayer, MixtureSweep, ProportionSweep
from interp.scoring import AnswerScores, family_candidates, score_answers, warn_untrained
from interp.seeds import check_seed
from interp.tasks import get_family, resolve_tasks
from interp.validate import (
    ArgumentError,
    ArgumentTypeError,
    check_choice,
    check_count,
    check_examples_fit,
    check_flag,
    check_model,
    check_numbers,
    check_probability,
    check_sequence,
)
from interp.vectors import (
    Provenance,
    TaskVector,
    check_compatible,
    convex,
    from_activations,
    task_vector,
    warn_if_other_task,
)

#: 31 evenly spaced λ in [0, 1] (docs/science.md §4).
DEFAULT_LAMBDAS: tuple[float, ...] = tuple(float(x) for x in np.linspace(0, 1, 31))


def check_lambdas(lambdas: Sequence[float] | np.ndarray) -> np.ndarray:
    """λ values: a non-empty 1-D sequence of finite numbers in [0, 1]."""
    return check_numbers(lambdas, "lambdas", minimum=0.0, maximum=1.0)


def _sweep_layers(model, layers: Sequence[int] | None, vectors: Sequence[TaskVector]) -> tuple[int, ...]:
    out = check_layers(model, vectors[0].layers if layers is None else layers)
    for v in vectors:
        missing = [la for la in out if la not in v.layers]
        if missing:
            raise ArgumentError("layers", f"{missing} not captured in vector {v.describe()!r}; it has {list(v.layers)}")
    return out


def _check_prompt_counts(model, n_prompts: int, n_examples: int, *, in_context: bool) -> None:
    """``n_prompts >= 1``; ``n_examples >= 1`` where in-context prompts are built (``>= 0`` otherwise), small enough
    to fit the model's context (checked before any prompt is built)."""
    check_count(n_prompts, "n_prompts")
    check_count(n_examples, "n_examples", minimum=1 if in_context else 0)
    if in_context:
        check_examples_fit(model, n_examples)


def last_positions(model, prompts: Sequence[Prompt], positions: Sequence[int] | None = None) -> list[int]:
    """Per prompt, the patch position in token coordinates (default the last token), validated."""
    return resolve_positions([len(x) for x in token_ids(model, prompts)], positions)


def score_cells(
    model,
    prompts: Sequence[Prompt],
    interventions: Sequence[Cell],
    *,
    positions: Sequence[int] | None = None,
    batch_size: int = 32,
    include_newline: bool = False,
) -> np.ndarray:
    """log-probs ``Float[ndarray, "cell prompt task"]``: every prompt scored once per cell (an intervention, or a
    tuple of them applied together: e.g. :func:`injected_together` puts one vector in at several layers at once).

    An intervention with ``position=None`` acts at ``positions[i]`` of prompt ``i`` (default: its last token).
    :func:`interp.engines.score` picks the route (the shared-prefix engine where answers are one token right after
    the patched last token, else the prompts replicated per cell); both equal :mod:`interp.reference`.
    """
    prompts = check_prompts(prompts)
    check_flag(include_newline, "include_newline")
    if not interventions:
        return np.zeros((0, len(prompts), len(prompts[0].tasks)))
    end = "\n" if include_newline else ""
    texts, answers = [p.text for p in prompts], [[a + end for a in p.answers] for p in prompts]
    scored = score(model, texts, answers, interventions, positions=positions, batch_size=batch_size)
    warn_untrained(model, prompts)
    return scored.log_probs


def patched_scores(
    model,
    prompts: Sequence[Prompt],
    vector: TaskVector | Intervention | Sequence[Intervention],
    layer: int | None = None,
    *,
    mode: str = "replace",
    positions: Sequence[int] | None = None,
    batch_size: int = 32,
    include_newline: bool = False,
) -> AnswerScores:
    """Answer scores with ``vector`` patched at ``layer`` at each prompt's last token (or ``positions``); or with
    an :class:`~interp.interventions.Intervention` (its own layer, mode and hook), or a list of them applied together.

    ``prompts`` are normally zero-shot queries (:func:`interp.prompts.zero_shot_prompts`). Refuses a vector
    from another model or weight processing; everything is validated before any forward pass.
    """
    check_model(model)
    prompts = check_prompts(prompts)
    check_flag(include_newline, "include_newline")
    check_batch_size(batch_size)
    for v in vector if isinstance(vector, list | tuple) else [vector]:
        if isinstance(v, TaskVector):  # a vector is tested on prompts it was not made from (interp.heldout)
            check_held_out(v, prompts, "prompts")
    if isinstance(vector, list | tuple):  # several interventions applied together (one cell)
        if not vector:
            raise ArgumentError(
                "vector", "an empty list; give an Intervention, a TaskVector, or a list of Interventions"
            )
        iv = tuple(as_intervention(model, v, None, name=f"vector[{i}]") for i, v in enumerate(vector))
    else:
        iv = as_intervention(model, vector, layer, mode=mode, name="vector")
    logp = score_cells(
        model, prompts, [iv], positions=positions, batch_size=batch_size, include_newline=include_newline
    )[0]
    return AnswerScores(logp, tuple(prompts[0].tasks), include_newline)


#: How a sweep puts a vector v into the residual x at the query: ``replace`` x ← v (Hendel et al.); ``add`` x ← x + v;
#: ``shift`` x ← x − μ + v, μ the mean residual of the prompts patched (at that layer), so each prompt keeps its own
#: deviation from the mean, where in this prompt format the query's content lives (docs/science.md §4).
SWEEP_MODES = ("replace", "add", "shift")
#: Default largest drop of candidate accuracy the self-patch control allows (absolute).
CONTROL_TOLERANCE = 0.05


#: Which prompts the vectors go into: ``zero_shot`` (``\n`` + the query alone) or ``neutral`` (the query after
#: ``n_examples`` examples whose answers are random, so the query sits where in-context prompts put it, and every
#: prompt is distinct even where a family has few distinct queries, e.g. bias_add's ten digits).
QUERY_KINDS = ("zero_shot", "neutral")


def query_prompts(
    family, tasks: Sequence[str], kind: str, *, n_prompts: int, n_examples: int, seed: int
) -> list[Prompt]:
    """The prompts a sweep patches (:data:`QUERY_KINDS`); same queries for both kinds with the same seed."""
    check_choice(kind, "queries", QUERY_KINDS)
    if kind == "zero_shot":
        return zero_shot_prompts(family, tasks, n_prompts=n_prompts, seed=seed)
    one = [1.0] + [0.0] * (len(tasks) - 1)  # the examples' answers are random whatever their task: any plan serves
    return random_answer_prompts(family, tasks, proportions=one, n_examples=n_examples, n_prompts=n_prompts, seed=seed)


def distinct_queries(prompts: Sequence[Prompt]) -> int:
    """How many different queries ``prompts`` ask (the effective sample size of a zero-shot mean)."""
    return len({p.query for p in prompts})


def check_sweep_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`SWEEP_MODES`, else an :class:`~interp.validate.ArgumentError` naming the
    allowed values."""
    return check_choice(mode, "mode", SWEEP_MODES)


def target_means(model, prompts: Sequence[Prompt], layers: Sequence[int], hook: str, batch_size: int) -> torch.Tensor:
    """``Float[Tensor, "layer d_model"]``: the mean residual at the prompts' last token (μ of mode ``shift``)."""
    return capture_resid(model, prompts, layers=list(layers), hook=hook, batch_size=batch_size).double().mean(dim=1)


def vector_cells(
    model, vector: TaskVector, layers: Sequence[int], mode: str, means: torch.Tensor | None = None
) -> list[Intervention]:
    """One intervention per layer putting ``vector`` into the residual in ``mode`` (``means``: μ per layer, needed
    by ``shift``)."""
    if mode != "shift":
        return [as_intervention(model, vector, la, mode=mode) for la in layers]
    return [
        Intervention(
            la,
            "steer",
            (vector.at(la).double() - means[i]).float(),
            hook=vector.hook,
            label=f"{vector.describe()} − mean(patched prompts)",
        )
        for i, la in enumerate(layers)
    ]


def injected_together(
    model, vector: TaskVector, layers: Sequence[int], mode: str, means: torch.Tensor | None = None
) -> tuple[Intervention, ...]:
    """One cell that puts ``vector`` in at every layer of ``layers`` in the same pass (multi-layer injection; ``means``
    as in :func:`vector_cells`)."""
    return tuple(vector_cells(model, vector, layers, mode, means))


def _mean_p_and_accuracy(logp: np.ndarray, k: int) -> tuple[float, float]:
    """Mean P(candidate ``k``) and candidate accuracy of ``k`` over prompts (``logp``: ``[prompt, task]``)."""
    return float(np.exp(logp[..., k]).mean()), float(candidate_accuracy(logp, k))


def other_task(family, task: str) -> str:
    """The task whose vector makes the negative form of ``task``'s self-patch control: the family's next task
    (cyclically), so that the choice is fixed and seeded by nothing."""
    names = get_family(family).task_names
    return names[(names.index(task) + 1) % len(names)]


def negative_vector(model, vector: TaskVector, task: str, batch_size: int = 32) -> TaskVector | None:
    """Another task's vector made as ``vector`` was (same family, examples, prompt identities, hook and layers): the
    vector of the control's negative form. ``None`` when ``vector`` is not one captured single-task vector."""
    own = vector.single_task()
    if own is None:
        return None
    (_, prov) = vector.terms[0]
    fam = get_family(prov.family)
    other = other_task(fam, task)
    ids = set(prov.prompt_ids) or {(prov.seed, i) for i in range(prov.n_prompts)}
    prompts = []
    for s in sorted({s for s, _ in ids}):
        n = 1 + max(i for s2, i in ids if s2 == s)
        made = build_prompts(fam, [other], n_examples=prov.n_examples, n_prompts=n, seed=s)
        prompts += [p for p in made if (s, p.index) in ids]
    acts = capture_resid(model, prompts, layers=list(vector.layers), hook=vector.hook, batch_size=batch_size)
    ids = tuple(sorted({(int(p.seed), int(p.index)) for p in prompts}))
    prov_other = Provenance(fam.name, (other,), (1.0,), len(prompts), prov.n_examples, prompts[0].seed, "", ids)
    return from_activations(acts, model=model, hook=vector.hook, layers=vector.layers, provenance=prov_other)


def best_layer(
    model,
    family: str,
    task: str,
    vector: TaskVector,
    *,
    n_prompts: int = 100,
    seed: int = 0,
    layers: Sequence[int] | None = None,
    n_examples: int = 20,
    mode: str = "replace",
    batch_size: int = 32,
    control: bool = True,
    control_tolerance: float = CONTROL_TOLERANCE,
    queries: str = "zero_shot",
    other_vector: TaskVector | None = None,
) -> BestLayer:
    """Patch ``vector`` into zero-shot queries at each layer (``mode``: :data:`SWEEP_MODES`); best layer = argmax of
    mean P(correct) over the layers where the self-patch control does not fail.

    Candidates are all tasks of ``family``; accuracy is *candidate accuracy* (:func:`interp.metrics.candidate_accuracy`:
    the correct answer is the most probable of the candidates' answers), reported beside its chance level
    ``1 / n_candidates``. The zero-shot baseline and the in-context reference (``n_examples`` examples of ``task``)
    use the same queries, drawn with ``seed``: they must be held out from the prompts ``vector`` was made from
    (:func:`interp.heldout.check_held_out`; ``ValueError`` naming ``seed`` otherwise).

    The *self-patch control* (``control``) has two forms (docs/science.md §4). Positive: the same intervention with
    the task's own vector, applied to its own in-context prompts at the position it was read from, must keep their
    candidate accuracy within ``control_tolerance``; where it does not, the intervention destroys what that position
    holds (in ``x>`` prompts, the query): the control *fails*, ``BestLayer.best`` skips the layer and
    ``BestLayer.check_claim`` refuses it. Negative: another task's vector (``other_vector``; by default
    :func:`negative_vector`, the family's next task made from the same prompt identities) put in the same way must
    move that accuracy by more than the tolerance; where it does not, keeping the accuracy says nothing about the
    intervention and the control is *uninformative* there, never *passes* (``BestLayer.control_status``).

    ``queries``: :data:`QUERY_KINDS`; the result records how many distinct queries were asked
    (``BestLayer.n_distinct_queries``: a family with few, like bias_add's ten, gives few independent samples).
    """
    check_model(model)
    fam = get_family(family)
    tasks = fam.task_names
    resolve_tasks(fam, [task], name="task")
    check_sweep_mode(mode)
    check_flag(control, "control")
    check_probability(control_tolerance, "control_tolerance")
    check_choice(queries, "queries", QUERY_KINDS)
    _check_prompt_counts(model, n_prompts, n_examples, in_context=True)
    seed = check_seed(seed)
    check_batch_size(batch_size)
    check_vector_for_model(model, vector)
    warn_if_other_task(vector, fam.name, task)
    layers = _sweep_layers(model, layers, [vector])
    if other_vector is not None:
        check_vector_for_model(model, other_vector, "other_vector")
        _sweep_layers(model, layers, [other_vector])
    k = tasks.index(task)
    zs = query_prompts(fam, tasks, queries, n_prompts=n_prompts, n_examples=n_examples, seed=seed)
    icl = build_prompts(
        fam, tasks, counts=[n_examples if t == task else 0 for t in tasks], n_prompts=n_prompts, seed=seed
    )
    check_held_out(vector, [*zs, *icl], "seed")
    if other_vector is not None:
        check_held_out(other_vector, icl, "seed", what="other_vector")
    with family_candidates(model, zs, task):  # every task of the family is a candidate by design
        means = target_means(model, zs, layers, vector.hook, batch_size) if mode == "shift" else None
        logp = score_cells(model, zs, vector_cells(model, vector, layers, mode, means), batch_size=batch_size)
        zs_p, zs_acc = _mean_p_and_accuracy(score_answers(model, zs, batch_size=batch_size).log_probs, k)
        icl_p, icl_acc = _mean_p_and_accuracy(score_answers(model, icl, batch_size=batch_size).log_probs, k)
        control_acc = negative_acc = negative_p = None
        negative = None
        if control:  # the task's own vector into its own in-context prompts, as the queries get it
            own = target_means(model, icl, layers, vector.hook, batch_size) if mode == "shift" else None
            own_logp = score_cells(model, icl, vector_cells(model, vector, layers, mode, own), batch_size=batch_size)
            control_acc = np.array([_mean_p_and_accuracy(own_logp[i], k)[1] for i in range(len(layers))])
            negative = other_vector if other_vector is not None else negative_vector(model, vector, task, batch_size)
            if negative is not None:
                check_held_out(negative, icl, "seed", what="the negative form's vector")
                neg_task = negative.single_task()
                j = tasks.index(neg_task[1]) if neg_task is not None and neg_task[1] in tasks else None
                neg_logp = score_cells(
                    model, icl, vector_cells(model, negative, layers, mode, own), batch_size=batch_size
                )
                negative_acc = np.array([_mean_p_and_accuracy(neg_logp[i], k)[1] for i in range(len(layers))])
                if j is not None:
                    negative_p = np.array([float(np.exp(neg_logp[i][:, j]).mean()) for i in range(len(layers))])
    per_layer = [_mean_p_and_accuracy(logp[i], k) for i in range(len(layers))]
    neg_name = None if negative is None else (negative.single_task() or (None, negative.describe()))[1]
    return BestLayer(
        fam.name,
        task,
        layers,
        np.array([p for p, _ in per_layer]),
        np.array([a for _, a in per_layer]),
        zs_p,
        zs_acc,
        icl_p,
        icl_acc,
        n_prompts,
        seed,
        n_candidates=len(tasks),
        p_correct_sem=np.exp(logp[..., k]).std(axis=-1, ddof=1) / math.sqrt(n_prompts) if n_prompts > 1 else None,
        mode=mode,
        control_accuracy=control_acc,
        control_tolerance=float(control_tolerance) if control else None,
        queries=queries,
        n_distinct_queries=distinct_queries(zs),
        negative_task=neg_name,
        negative_accuracy=negative_acc,
        negative_p_other=negative_p,
    )


def _mixture_sweep(
    model,
    family: str,
    tasks: Sequence[str],
    vectors: Sequence[TaskVector],
    weights: np.ndarray,
    layers: Sequence[int] | None,
    n_prompts: int,
    n_examples: int,
    seed: int,
    mode: str,
    mixed_reference: bool,
    batch_size: int,
    queries: str = "zero_shot",
) -> MixtureSweep:
    check_model(model)
    fam = get_family(family)
    tasks = resolve_tasks(fam, tasks)
    vectors = check_sequence(vectors, "vectors", what="TaskVectors")
    if len(vectors) != len(tasks):
        raise ArgumentError("vectors", f"need one TaskVector per task ({len(tasks)}), got {len(vectors)}")
    check_sweep_mode(mode)
    check_flag(mixed_reference, "mixed_reference")
    check_choice(queries, "queries", QUERY_KINDS)
    _check_prompt_counts(model, n_prompts, n_examples, in_context=mixed_reference or queries == "neutral")
    seed = check_seed(seed)
    check_batch_size(batch_size)
    for i, v in enumerate(vectors):
        check_vector_for_model(model, v, f"vectors[{i}]")
        check_compatible(vectors[0], v)
        warn_if_other_task(v, fam.name, tasks[i], f"vectors[{i}]")
    layers = _sweep_layers(model, layers, vectors)
    for w in weights:
        check_simplex(w, len(tasks), "weights")
    zs = query_prompts(fam, tasks, queries, n_prompts=n_prompts, n_examples=n_examples, seed=seed)
    for i, v in enumerate(vectors):
        check_held_out(v, zs, "seed", what=f"vectors[{i}]")
    mixed_prompts: list[Prompt] = []
    if mixed_reference:
        for w in weights:
            mixed_prompts += build_prompts(
                fam, tasks, proportions=w, n_examples=n_examples, n_prompts=n_prompts, seed=seed
            )
    # ---- every argument checked: forward passes from here on
    means = target_means(model, zs, layers, vectors[0].hook, batch_size) if mode == "shift" else None
    cells = []
    for w in weights:
        cells += vector_cells(model, convex(list(w), vectors), layers, mode, means)
    logp = score_cells(model, zs, cells, batch_size=batch_size)
    probs, sem = mean_and_sem(logp.reshape(len(weights), len(layers), n_prompts, len(tasks)))
    real_probs = real_sem = fractions = None
    if mixed_reference:
        rl = score_answers(model, mixed_prompts, batch_size=batch_size).log_probs
        real_probs, real_sem = mean_and_sem(rl.reshape(len(weights), n_prompts, len(tasks)))
        fractions = np.array([p.fractions() for p in mixed_prompts]).reshape(len(weights), n_prompts, -1).mean(1)
    return MixtureSweep(
        fam.name,
        tuple(tasks),
        weights,
        layers,
        probs,
        sem,
        real_probs,
        real_sem,
        fractions,
        n_prompts,
        n_examples,
        seed,
        mode,
        queries=queries,
        n_distinct_queries=distinct_queries(zs),
    )


def lambda_sweep(
    model,
    family: str,
    task_a: str,
    task_b: str,
    va: TaskVector,
    vb: TaskVector,
    *,
    lambdas: Sequence[float] | np.ndarray = DEFAULT_LAMBDAS,
    layers: Sequence[int] | None = None,
    n_prompts: int = 100,
    n_examples: int = 20,
    seed: int = 0,
    mode: str = "replace",
    mixed_reference: bool = True,
    batch_size: int = 32,
    queries: str = "zero_shot",
) -> MixtureSweep:
    """Patch v(λ) = λ·v_A + (1 − λ)·v_B at each query's last token (``queries``: :data:`QUERY_KINDS`), for every
    (λ, layer); ``mode``: :data:`SWEEP_MODES`.

    λ is the weight of task A (the paper's α·v_1 + (1 − α)·v_2). Returns P(a_A), P(a_B), P(other) per cell
    (``probs[λ, layer]``) and, with ``mixed_reference``, the real mixed-prompt curve: ``n_examples`` in-context
    examples, a fraction λ of them task A, same queries (same ``seed``).

    >>> sweep = lambda_sweep(model, "bias_add", "add1", "add7", va, vb, layers=[1, 2])   # doctest: +SKIP
    >>> sweep.probs.shape                                                                     # doctest: +SKIP
    (31, 2, 3)
    """
    check_model(model)
    fam = get_family(family)
    resolve_tasks(fam, [task_a], name="task_a")
    resolve_tasks(fam, [task_b], name="task_b")
    lam = check_lambdas(lambdas)
    weights = np.stack([lam, 1.0 - lam], axis=1)
    for name, v in (("va", va), ("vb", vb)):
        check_vector_for_model(model, v, name)
    return _mixture_sweep(
        model,
        family,
        [task_a, task_b],
        [va, vb],
        weights,
        layers,
        n_prompts,
        n_examples,
        seed,
        mode,
        mixed_reference,
        batch_size,
        queries,
    )


def simplex_grid(k: int, resolution: int) -> np.ndarray:
    """Barycentric grid ``Float[ndarray, "point k"]``: all weights ``i/resolution`` summing to 1.

    >>> simplex_grid(3, 2).tolist()
    [[0.0, 0.0, 1.0], [0.0, 0.5, 0.5], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k: need an integer >= 1, got {k!r}")
    if not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution: need an integer >= 1, got {resolution!r}")

    def parts(n: int, m: int) -> list[list[int]]:
        if m == 1:
            return [[n]]
        return [[i, *rest] for i in range(n + 1) for rest in parts(n - i, m - 1)]

    return np.array(parts(resolution, k), dtype=float) / resolution


def simplex_sweep(
    model,
    family: str,
    tasks: Sequence[str],
    vectors: Sequence[TaskVector],
    *,
    resolution: int = 4,
    weights: np.ndarray | None = None,
    layers: Sequence[int] | None = None,
    n_prompts: int = 100,
    n_examples: int = 20,
    seed: int = 0,
    mode: str = "replace",
    mixed_reference: bool = True,
    batch_size: int = 32,
    queries: str = "zero_shot",
) -> MixtureSweep:
    """Patch Σ_k w_k v_k for barycentric weights on :func:`simplex_grid` (K ≥ 3 tasks; or given ``weights``).

    ``probs[point, layer]`` holds P(a_1), …, P(a_K), P(other); ``real_probs`` the mixed-prompt reference.
    """
    check_model(model)
    tasks = resolve_tasks(get_family(family), tasks)
    if len(tasks) < 2:
        raise ArgumentError("tasks", f"need at least 2 tasks for a simplex sweep, got {list(tasks)}")
    if weights is None:
        w = simplex_grid(len(tasks), check_count(resolution, "resolution"))
    else:
        try:
            w = np.asarray(weights, dtype=float)
        except (TypeError, ValueError):
            raise ArgumentTypeError("weights", f"need a (point, {len(tasks)}) array of numbers") from None
    if w.ndim != 2 or w.shape[1] != len(tasks) or not len(w):
        raise ArgumentError("weights", f"expected shape (point >= 1, {len(tasks)}), got {w.shape}")
    return _mixture_sweep(
        model,
        family,
        tasks,
        vectors,
        w,
        layers,
        n_prompts,
        n_examples,
        seed,
        mode,
        mixed_reference,
        batch_size,
        queries,
    )


def proportion_sweep(
    model,
    family: str,
    task_a: str,
    task_b: str,
    *,
    proportions: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    va: TaskVector | None = None,
    vb: TaskVector | None = None,
    n_prompts: int = 100,
    n_examples: int = 20,
    seed: int = 0,
    method: str = "lstsq",
    intercept: bool = True,
    hook: str = "resid_post",
    layers: Sequence[int] | None = None,
    batch_size: int = 32,
) -> ProportionSweep:
    """Decompose mixed-prompt vectors (fraction ``q`` of task-A examples, drawn with ``seed``) on v_A, v_B for each
    ``q``.

    ``va``/``vb`` default to single-task vectors with the same settings from held-out prompts
    (:func:`interp.heldout.held_out_seed` of ``seed``); given ones must not share prompts with the mixed ones.
    """
    check_model(model)
    check_choice(method, "method", METHODS)
    q = check_numbers(proportions, "proportions", minimum=0.0, maximum=1.0)
    fam = get_family(family)
    resolve_tasks(fam, [task_a], name="task_a")
    resolve_tasks(fam, [task_b], name="task_b")
    check_flag(intercept, "intercept")
    check_hook(hook)
    layers = check_layers(model, layers)
    _check_prompt_counts(model, n_prompts, n_examples, in_context=True)
    seed = check_seed(seed)
    check_batch_size(batch_size)
    for name, v in (("va", va), ("vb", vb)):
        if v is not None:
            check_vector_for_model(model, v, name)
        if v is not None and (v.hook != hook or any(la not in v.layers for la in layers)):
            raise ArgumentError(
                name, f"needs hook {hook!r} and layers {list(layers)}; has {v.hook!r}, {list(v.layers)}"
            )
    made = [
        build_prompts(
            fam, [task_a, task_b], proportions=[qi, 1 - qi], n_examples=n_examples, n_prompts=n_prompts, seed=seed
        )
        for qi in q
    ]
    for name, v in (("va", va), ("vb", vb)):
        if v is not None:
            check_held_out(v, made[0], "seed", what=name)
    kw = dict(n_prompts=n_prompts, n_examples=n_examples, hook=hook, layers=layers, batch_size=batch_size)
    fit = held_out_seed(seed)
    basis = [
        va or task_vector(model, fam.name, task_a, seed=fit, **kw),
        vb or task_vector(model, fam.name, task_b, seed=fit, **kw),
    ]
    basis_means = [torch.stack([v.at(la) for la in layers]) for v in basis]
    fracs, coefs, icpt, resid = [], [], [], []
    for prompts in made:
        acts = capture_resid(model, prompts, layers=layers, hook=hook, batch_size=batch_size)
        d = decompose(acts.mean(dim=1), basis_means, method=method, intercept=intercept, layers=layers)
        fracs.append(np.mean([p.fractions()[0] for p in prompts]))
        coefs.append(d.coefs)
        icpt.append(d.intercept)
        resid.append(d.residual_norm)
    return ProportionSweep(
        q, np.array(fracs), np.array(coefs), np.array(icpt), np.array(resid), layers, method, intercept
    )
