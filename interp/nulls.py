"""Nulls beside every effect: is a decomposition or a steering effect larger than chance, noise or any direction?

After Shastry, *Beyond first-order task vector superposition* (2025), for the vectors of mixed prompts:

- :func:`projection_null`: the projection coefficient of the mixed vector onto the convex prediction
  ½(v_A + v_B), both measured from a reference (a third task, or zero-shot queries), against a permutation null
  (the labels of mixed and reference prompts shuffled, sizes kept);
- :func:`residual_noise_floor`: the part of the mixed vector outside span{v_A, v_B} (least squares with an
  intercept) against a split-half noise floor (the same projection of half the difference of two random halves of
  the mixed prompts, which is the sampling noise of their mean);
- :func:`ablation_null`: removing that out-of-span residual from the mixed prompts' residual stream, against removing
  a random direction of the same norm: does the residual carry anything the model uses?

and for steering, :func:`steering_null`: the rise of P(correct) when a task vector goes into zero-shot queries,
against random vectors of the same norm put in the same way.

Every test returns a :class:`~interp.results.NullTest`: the statistic, its null samples, a one-sided p-value (with
the +1 correction, so never 0) and, where it is a mean over prompts, a bootstrap 95% CI. Every random choice takes
``seed``.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> a, b = torch.randn(40, 8, generator=g) + 3, torch.randn(40, 8, generator=g) - 1
>>> mixed, ref = (a[:20] + b[:20]) / 2, torch.randn(20, 8, generator=g)
>>> t = projection_null(mixed, a, b, ref, n_permutations=200, seed=0)
>>> 0.8 < t.statistic < 1.2, t.p_value < 0.01
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from interp.engines.plan import check_batch_size
from interp.hooks import check_hook, check_layer
from interp.interventions import Intervention
from interp.metrics import bootstrap_ci, candidate_accuracy
from interp.patching import check_vector_for_model
from interp.prompts import Prompt, check_prompts
from interp.results import NullTest
from interp.seeds import check_seed
from interp.streaming import InMemory, Source, moments, weighted_sums
from interp.sweeps import check_sweep_mode, score_cells, target_means, vector_cells
from interp.validate import (
    ArgumentError,
    check_choice,
    check_count,
    check_model,
    check_tensor,
    check_vector,
)
from interp.vectors import TaskVector

#: A residual below this many machine epsilons (of the activations' dtype) times the mixed mean's norm is rounding.
RESOLUTION_EPS = 100


def _resolution(dtype: torch.dtype) -> float:
    """:data:`RESOLUTION_EPS` machine epsilons of ``dtype`` (relative float resolution of the inputs)."""
    return RESOLUTION_EPS * (torch.finfo(dtype).eps if dtype.is_floating_point else 0.0)


def _p_value(observed: float, null: np.ndarray) -> float:
    """One-sided P(null >= observed), with the +1 correction of a permutation or Monte-Carlo test."""
    return float((1 + np.sum(null >= observed)) / (1 + len(null)))


def _check_rows(name: str, x, d: int | None = None) -> Source:
    """``x`` (a ``[prompt, d_model]`` tensor, or a one-layer source such as ``store.source(hook, layers=[L])``) as a
    source of at least 2 rows of width ``d``; a tensor is checked as every tensor argument is (finite values)."""
    if not (hasattr(x, "d_model") and hasattr(x, "__iter__") and hasattr(x, "__len__")):  # not a source
        hint = f"[prompt >= 2, d_model{'=' + str(d) if d else ''}] (or a one-layer store source)"
        return InMemory(check_tensor(x, name, ndim=2, width=d, min_rows=2, shape_hint=hint))
    width = x.d_model
    if len(x) < 2 or len(getattr(x, "layers", (0,))) != 1 or (d is not None and width != d):
        raise ArgumentError(name, f"need a one-layer source of >= 2 rows of width {d or width}, got {len(x)} rows")
    return x


def _width(x) -> int:
    return int(x.shape[1]) if isinstance(x, torch.Tensor) else int(x.d_model)


def _mean(x: Source) -> torch.Tensor:
    return moments(x).mean[0]


def _masks(rows: list[np.ndarray], n: int) -> np.ndarray:
    """``[k, n]`` membership masks (one per permutation: a 1 for each row index in ``rows[i]``), packed as bits
    (1,000 permutations of 10⁵ rows take 12.5 MB)."""
    out = np.zeros((len(rows), n), dtype=bool)
    for i, r in enumerate(rows):
        out[i, r] = True
    return np.packbits(out, axis=1)


def _mask_weights(packed: np.ndarray, lo: int, hi: int) -> torch.Tensor:
    """Columns ``lo .. hi − 1`` of packed masks as float64 weights ``[k, hi − lo]``."""
    bits = np.unpackbits(packed[:, lo // 8 : (hi + 7) // 8], axis=1)
    # copied into torch's own (aligned) memory: a BLAS product can round differently on a differently aligned input
    return torch.tensor(bits[:, lo % 8 : lo % 8 + hi - lo], dtype=torch.float64)


def _projection_coefficient(m: torch.Tensor, a: torch.Tensor, b: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Per row of ``m`` and ``r`` (``[k, d]`` or ``[d]``): the projection of m − r onto ½(a + b) − r."""
    p = (a + b) / 2 - r
    return ((m - r) * p).sum(-1) / (p * p).sum(-1)


def projection_null(
    mixed: torch.Tensor | Source,
    a: torch.Tensor | Source,
    b: torch.Tensor | Source,
    reference: torch.Tensor | Source,
    *,
    n_permutations: int = 1000,
    seed: int = 0,
) -> NullTest:
    """Projection coefficient of the mixed mean onto the convex prediction ½(v_A + v_B), both measured from the mean
    of ``reference`` prompts (e.g. a third task's, or zero-shot queries: what "no A and no B" looks like). 1: the
    mixture sits at the prediction; 0: no nearer to it than the reference. Null: the labels of the mixed and reference
    prompts permuted, so that the mixed prompts are no different from the reference. When the two sets are paired
    (equal sizes: the toolkit builds groups with the same seed, hence the same queries, row by row) the permutation
    swaps within pairs, so that the queries' own variation stays out of the null. Inputs are per-prompt vectors
    ``Float[Tensor, "prompt d_model"]`` at one layer, or one-layer sources streamed from a store
    (``store.source(hook, layers=[layer], label=...)``): every permuted mean is a weighted sum accumulated block by
    block (:func:`interp.streaming.weighted_sums`), the same loop, and bits, for both.
    """
    seed = check_seed(seed)
    check_count(n_permutations, "n_permutations")
    m = _check_rows("mixed", mixed)
    d = _width(mixed)
    a, b = _check_rows("a", a, d), _check_rows("b", b, d)
    r = _check_rows("reference", reference, d)
    n_m, n_r = len(m), len(r)
    va, vb, mm, rm = (_mean(x) for x in (a, b, m, r))
    prediction = (va + vb) / 2 - rm
    scale = max(float(va.norm()), float(vb.norm()), float(rm.norm()), 1e-300)
    if float(prediction.norm()) <= _resolution(mixed.dtype) * scale:
        raise ArgumentError(
            "reference",
            "its mean equals ½(v_A + v_B) within float resolution, so the projection onto their difference is 0/0; "
            "give a reference that differs from the convex prediction (a third task's prompts, or zero-shot queries)",
        )
    observed = float(_projection_coefficient(mm, va, vb, rm))
    rng = np.random.default_rng(seed)
    paired = n_m == n_r
    if paired:  # swap row i of mixed and reference in permutation k: pm_k = mm + Σ_i s_ki (r_i − m_i) / n
        swaps = _masks([np.flatnonzero(rng.random(n_m) < 0.5) for _ in range(n_permutations)], n_m)
        sign = (1.0, -1.0)
        shift = weighted_sums([r, m], lambda s, lo, hi: sign[s] * _mask_weights(swaps, lo, hi), n_permutations) / n_m
        pm, pr = mm + shift, rm - shift
    else:  # the first n_m of a permutation of the pooled rows are the "mixed" ones
        pooled = n_m + n_r
        members = _masks([rng.permutation(pooled)[:n_m] for _ in range(n_permutations)], pooled)
        offset = (0, n_m)
        sums = weighted_sums([m, r], lambda s, lo, hi: _mask_weights(members, offset[s] + lo, offset[s] + hi),
                             n_permutations)  # fmt: skip
        pm, pr = sums / n_m, (mm * n_m + rm * n_r - sums) / n_r
    null = _projection_coefficient(pm, va, vb, pr).numpy()
    how = "swapped within query-paired rows" if paired else "permuted"
    note = f"null: labels of the mixed and reference prompts {how}"
    return NullTest("projection coefficient onto ½(v_A + v_B)", observed, null, _p_value(observed, null), None, note)


def _out_of_span(x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``x`` minus its least-squares projection on the rows of ``basis`` (and a constant: the intercept)."""
    cols = torch.cat([basis, torch.ones(1, basis.shape[1], dtype=basis.dtype)]).T
    # gelsd (SVD): LAPACK's gelsy, torch's CPU default, gives other last bits from one call to the next (seen here)
    coef = torch.linalg.lstsq(cols, x[:, None], driver="gelsd").solution
    return x - (cols @ coef)[:, 0]


def residual_noise_floor(
    mixed: torch.Tensor | Source, a: torch.Tensor | Source, b: torch.Tensor | Source, *, n_splits: int = 200,
    seed: int = 0,
) -> NullTest:  # fmt: skip
    """Norm of the mixed mean outside span{v_A, v_B, 1}, against a split-half noise floor: the prompts are split in
    two random halves, the out-of-span part computed on each half (mixed mean on the halves' v_A, v_B), and half their
    difference is the sampling noise of the whole estimate. When the three sets are paired row by row (equal sizes:
    the same queries), the halves split all three alike. p-value: the fraction of splits whose noise reaches the
    residual (a small p: the residual is more than noise). A residual within the inputs' float resolution
    (:data:`RESOLUTION_EPS` machine epsilons of their dtype × the mixed mean's norm; 1.2e-5 relative in float32, the
    toolkit's tolerance between engines) is rounding, which does not average out like sampling noise: p is 1 then,
    and the note says so. Inputs: ``[prompt, d_model]`` tensors or one-layer store sources, as
    :func:`projection_null` takes them (the halves' means stream as weighted sums).
    """
    seed = check_seed(seed)
    check_count(n_splits, "n_splits")
    m = _check_rows("mixed", mixed)
    d, dtype = _width(mixed), mixed.dtype
    a, b = _check_rows("a", a, d), _check_rows("b", b, d)
    sets = (m, a, b)
    mm, va, vb = (_mean(x) for x in sets)
    observed = float(_out_of_span(mm, torch.stack([va, vb])).norm())
    resolution = _resolution(dtype) * float(mm.norm())
    rng = np.random.default_rng(seed)
    paired = len(m) == len(a) == len(b)
    halves: list[list[np.ndarray]] = [[], [], []]  # per set: first halves of every split, then second halves
    seconds: list[list[np.ndarray]] = [[], [], []]
    for _ in range(n_splits):
        orders = [rng.permutation(len(x)) for x in sets]
        if paired:
            orders = [orders[0]] * 3
        for k, (x, order) in enumerate(zip(sets, orders, strict=True)):
            half = len(x) // 2
            halves[k].append(order[:half])
            seconds[k].append(order[half : 2 * half])
    means = []
    for k, x in enumerate(sets):
        masks = _masks(halves[k] + seconds[k], len(x))
        means.append(weighted_sums([x], lambda s, lo, hi, masks=masks: _mask_weights(masks, lo, hi), 2 * n_splits)
                     / (len(x) // 2))  # fmt: skip
    null = np.empty(n_splits)
    for i in range(n_splits):
        (m1, m2), (a1, a2), (b1, b2) = ((x[i], x[n_splits + i]) for x in means)
        r1 = _out_of_span(m1, torch.stack([a1, b1]))
        r2 = _out_of_span(m2, torch.stack([a2, b2]))
        null[i] = float(((r1 - r2) / 2).norm())
    note = "null: half the difference of the out-of-span parts of two random halves" + (
        " (split alike across the query-paired sets)" if paired else ""
    )
    p_value = _p_value(observed, null)
    if observed <= resolution:  # rounding of the forward passes, not sampling, sets both sides: no evidence either way
        note += f"; the residual is below the inputs' float resolution ({resolution:.2g}): in the span, p set to 1"
        p_value = 1.0
    return NullTest("out-of-span residual of the mixed mean", observed, null, p_value, None, note)


def residual_direction(mixed_mean: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``Float[Tensor, "d_model"]``: the mixed mean's part outside span{v_A, v_B, 1} (what :func:`ablation_null`
    removes)."""
    d = check_vector(mixed_mean, "mixed_mean").shape[0]
    check_vector(a, "a", d)
    check_vector(b, "b", d)
    return _out_of_span(mixed_mean.double(), torch.stack([a.double(), b.double()])).float()


def _mean_abs_change(base: np.ndarray, patched: np.ndarray) -> np.ndarray:
    """Per prompt: Σ over candidates of |ΔP| (``[prompt, task]`` log-probs in, ``[prompt]`` out)."""
    return np.abs(np.exp(patched) - np.exp(base)).sum(axis=-1)


def ablation_null(
    model,
    mixed_prompts: Sequence[Prompt],
    residual: torch.Tensor,
    layer: int,
    *,
    hook: str = "resid_post",
    n_random: int = 20,
    seed: int = 0,
    batch_size: int = 32,
) -> NullTest:
    """Subtract ``residual`` (e.g. :func:`residual_direction`) from the mixed prompts' residual stream at ``layer``
    (last token) and measure the mean over prompts of Σ_k |ΔP(a_k)|; the null subtracts ``n_random`` random
    directions of the same norm. A small p: the model uses what lies outside the span.
    """
    check_model(model)
    check_prompts(mixed_prompts, "mixed_prompts")
    check_vector(residual, "residual", model.cfg.d_model)
    layer = check_layer(model, layer)
    check_hook(hook)
    seed = check_seed(seed)
    check_count(n_random, "n_random")
    check_batch_size(batch_size)
    norm = float(residual.double().norm())
    if not norm > 0:
        raise ArgumentError("residual", "has zero norm; nothing to ablate")
    g = torch.Generator().manual_seed(seed)
    randoms = [torch.randn(residual.shape[0], generator=g, dtype=torch.float64) for _ in range(n_random)]
    cells = [Intervention(layer, "add", -residual.float(), hook=hook, label="−residual")]
    cells += [Intervention(layer, "add", (-norm * u / u.norm()).float(), hook=hook, label="−random") for u in randoms]
    nothing = Intervention(layer, "add", torch.zeros_like(residual).float(), hook=hook)  # the unpatched baseline
    base, *logp = score_cells(model, mixed_prompts, [nothing, *cells], batch_size=batch_size)
    effects = [_mean_abs_change(base, lp) for lp in logp]
    observed = float(effects[0].mean())
    null = np.array([float(e.mean()) for e in effects[1:]])
    note = f"null: {n_random} random directions of the same norm ({norm:.3g})"
    name = "Σ|ΔP| when the out-of-span residual is removed"
    return NullTest(name, observed, null, _p_value(observed, null), bootstrap_ci(effects[0], seed=seed), note)


def steering_null(
    model,
    queries: Sequence[Prompt],
    task: str,
    vector: TaskVector,
    layer: int,
    *,
    mode: str = "shift",
    n_random: int = 20,
    seed: int = 0,
    batch_size: int = 32,
) -> NullTest:
    """Rise of mean P(``task``'s answer) over ``queries`` when ``vector`` goes in at ``layer`` in ``mode`` (as
    :func:`interp.sweeps.best_layer` puts it), against ``n_random`` random vectors of the same norm put in the same
    way (for ``shift``: the same norm as v − μ). Statistic and CI over queries; p one-sided.
    """
    check_model(model)
    queries = check_prompts(queries, "queries")
    check_choice(task, "task", queries[0].tasks, "is not a candidate of these queries")
    check_vector_for_model(model, vector)
    layer = check_layer(model, layer)
    if layer not in vector.layers:
        raise ArgumentError("layer", f"{layer} not captured in the vector; valid: {list(vector.layers)}")
    check_sweep_mode(mode)
    seed = check_seed(seed)
    check_count(n_random, "n_random")
    check_batch_size(batch_size)
    k = queries[0].tasks.index(task)
    centre = target_means(model, queries, [layer], vector.hook, batch_size)[0]  # μ of the queries at that layer
    (real,) = vector_cells(model, vector, [layer], mode, centre[None] if mode == "shift" else None)
    norm = float(real.vector.double().norm())
    g = torch.Generator().manual_seed(seed)
    randoms = []
    for _ in range(n_random):
        u = torch.randn(real.vector.shape[0], generator=g, dtype=torch.float64)
        if real.mode == "replace":  # a random residual at the same distance from the queries' mean
            v = centre + (real.vector.double() - centre).norm() * u / u.norm()
        else:
            v = norm * u / u.norm()
        randoms.append(Intervention(layer, real.mode, v.float(), hook=real.hook, label="random"))
    nothing = Intervention(layer, "add", torch.zeros_like(real.vector), hook=real.hook)  # the unpatched baseline
    base, *logp = score_cells(model, queries, [nothing, real, *randoms], batch_size=batch_size)
    rise = [np.exp(lp[:, k]) - np.exp(base[:, k]) for lp in logp]
    observed = float(rise[0].mean())
    null = np.array([float(r.mean()) for r in rise[1:]])
    accuracy = float(candidate_accuracy(logp[0], k))
    name = f"rise of P({task}) ({mode} at layer {layer}; patched candidate accuracy {accuracy:.3f})"
    note = f"null: {n_random} random vectors of the same norm, put in the same way"
    return NullTest(name, observed, null, _p_value(observed, null), bootstrap_ci(rise[0], seed=seed), note)
