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
the +1 correction, so never 0), where it is a mean over prompts a bootstrap 95% CI, its ``n`` and its power curve at
that ``n`` (:mod:`interp.power`: effects of known size planted in data simulated like the measured data; its
``mde`` is the minimum detectable effect, what a non-rejection can speak to; ``power_sims=0`` skips it). The three
statistics of per-prompt vectors take ``[prompt, d_model]`` tensors or one-layer sources streamed from an activation
store (:mod:`interp.store`: ``store.source(hook, layers=[layer], label=...)``); their null means are accumulated
block by block (:func:`interp.streaming.weighted_sums`), the same loop, and bits, for both. Every call that tests a
vector or a direction on prompts refuses prompts it was made from (:mod:`interp.heldout`). Every random choice takes
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
from interp.heldout import check_held_out
from interp.hooks import check_hook, check_layer
from interp.interventions import Intervention
from interp.metrics import bootstrap_ci, candidate_accuracy
from interp.patching import check_vector_for_model
from interp.power import N_SIM, effect_grid, gaussian_rows, monte_carlo_simulator, p_value, power_curve
from interp.prompts import Prompt, check_prompts
from interp.results import NullTest, PowerCurve
from interp.seeds import check_seed
from interp.streaming import InMemory, Source, moments, weighted_sums
from interp.sweeps import check_sweep_mode, score_cells, target_means, vector_cells
from interp.validate import (
    ArgumentError,
    ArgumentTypeError,
    check_choice,
    check_count,
    check_flag,
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


def _mean(x: Source) -> np.ndarray:
    return moments(x).mean[0].numpy()


def _in_memory(*sets: Source) -> list[np.ndarray] | None:
    """The rows of every set as float64 arrays when all are in memory (``None`` when any streams from a store)."""
    if not all(isinstance(x, InMemory) for x in sets):
        return None
    return [x.acts[0].detach().cpu().double().numpy() for x in sets]


def _check_paired(paired: bool | None, *sizes: int) -> bool:
    """Whether the sets are paired row by row (the same queries): ``None`` infers it from equal sizes."""
    if paired is None:
        return len(set(sizes)) == 1
    check_flag(paired, "paired")
    if paired and len(set(sizes)) != 1:
        raise ArgumentError("paired", f"rows can be paired only in sets of one size, got sizes {list(sizes)}")
    return bool(paired)


def _masks(rows: list[np.ndarray], n: int) -> np.ndarray:
    """``[k, n]`` membership masks (one per draw: a 1 for each row index in ``rows[i]``), packed as bits
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


def _projection_coefficient(m: np.ndarray, a: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Batched over leading dimensions of ``m`` and ``r`` (``a``, ``b``: ``[d]``)."""
    p = (a + b) / 2 - r
    return ((m - r) * p).sum(-1) / (p * p).sum(-1)


def _projection_null(
    m: Source, r: Source, va: np.ndarray, vb: np.ndarray, n: int, rng: np.random.Generator, paired: bool
) -> np.ndarray:
    """``n`` coefficients with the mixed and reference labels permuted (within rows when ``paired``), every permuted
    mean a weighted sum over the rows, streamed block by block."""
    n_m, n_r = len(m), len(r)
    mm, rm = _mean(m), _mean(r)
    if paired:  # swapping row i moves the mixed mean by (r_i − m_i)/n and the reference mean by the opposite
        swaps = _masks([np.flatnonzero(rng.random(n_m) < 0.5) for _ in range(n)], n_m)
        sign = (1.0, -1.0)
        shift = weighted_sums([r, m], lambda s, lo, hi: sign[s] * _mask_weights(swaps, lo, hi), n).numpy() / n_m
        pm, pr = mm + shift, rm - shift
    else:  # the first n_m of a permutation of the pooled rows are the "mixed" ones
        pooled = n_m + n_r
        members = _masks([rng.permutation(pooled)[:n_m] for _ in range(n)], pooled)
        offset = (0, n_m)
        sums = weighted_sums(
            [m, r], lambda s, lo, hi: _mask_weights(members, offset[s] + lo, offset[s] + hi), n
        ).numpy()
        pm, pr = sums / n_m, (mm * n_m + rm * n_r - sums) / n_r
    return _projection_coefficient(pm, va, vb, pr)


def _shifted_null_power(null: np.ndarray, scale: float, n: int, power_sims: int, unit: str) -> PowerCurve:
    """Power of a test against its null when the data stream from a store (no rows to simulate from): an effect ``c``
    is taken to shift the statistic's null distribution by ``c`` (a location shift; exact for a mean, approximate for
    a norm), so its rejection rate is the fraction of null samples that ``+ c`` puts beyond the level's cut."""
    effects = effect_grid(scale)
    rejection = np.array([np.mean([p_value(x + c, null) < 0.05 for x in null]) for c in effects])
    return PowerCurve(effects, rejection, n, 0.05, 0.8, len(null), unit + " (null shifted: streamed rows)")


def projection_null(
    mixed: torch.Tensor | Source,
    a: torch.Tensor | Source,
    b: torch.Tensor | Source,
    reference: torch.Tensor | Source,
    *,
    n_permutations: int = 1000,
    seed: int = 0,
    paired: bool | None = None,
    power_sims: int = N_SIM,
) -> NullTest:
    """Projection coefficient of the mixed mean onto the convex prediction ½(v_A + v_B), both measured from the mean
    of ``reference`` prompts (e.g. a third task's, or zero-shot queries: what "no A and no B" looks like). 1: the
    mixture sits at the prediction; 0: no nearer to it than the reference. Null: the labels of the mixed and reference
    prompts permuted, so that the mixed prompts are no different from the reference. When the two sets are paired
    (``paired``; ``None``: equal sizes, as the toolkit's groups drawn with one seed, hence the same queries, row by row)
    the permutation swaps within pairs, so that the queries' own variation stays out of the null. Inputs are per-prompt
    vectors ``Float[Tensor, "prompt d_model"]`` at one layer, or one-layer store sources.

    Power (``power_sims`` data sets per planted effect): rows drawn with each set's covariance
    (:func:`interp.power.gaussian_rows`, paired rows alike), the mixed rows at the reference's mean moved by ``c``
    times the prediction, so the true coefficient is ``c``; for streamed sources, the null shifted by ``c``.
    """
    seed = check_seed(seed)
    check_count(n_permutations, "n_permutations")
    check_count(power_sims, "power_sims", minimum=0)
    m = _check_rows("mixed", mixed)
    d = _width(mixed)
    a, b = _check_rows("a", a, d), _check_rows("b", b, d)
    r = _check_rows("reference", reference, d)
    paired = _check_paired(paired, len(m), len(r))
    va, vb, mm, rm = (_mean(x) for x in (a, b, m, r))
    prediction = (va + vb) / 2 - rm
    scale = max(float(np.linalg.norm(va)), float(np.linalg.norm(vb)), float(np.linalg.norm(rm)), 1e-300)
    if float(np.linalg.norm(prediction)) <= _resolution(mixed.dtype) * scale:
        raise ArgumentError(
            "reference",
            "its mean equals ½(v_A + v_B) within float resolution, so the projection onto their difference is 0/0; "
            "give a reference that differs from the convex prediction (a third task's prompts, or zero-shot queries)",
        )
    observed = float(_projection_coefficient(mm, va, vb, rm))
    null = _projection_null(m, r, va, vb, n_permutations, np.random.default_rng(seed), paired)
    how = "swapped within query-paired rows" if paired else "permuted"
    note = f"null: labels of the mixed and reference prompts {how}"
    power = None
    spread = float(np.quantile(null, 0.95) - np.mean(null))
    rows = _in_memory(m, r)
    if power_sims and rows is None:
        power = _shifted_null_power(null, spread, len(m), power_sims, "projection coefficient")
    elif power_sims:  # mixed rows with the reference's mean (no effect), then moved by the planted coefficient
        m_rows, r_rows = rows
        pool_r, pool_m = r_rows, m_rows - mm + rm
        n_perm = min(n_permutations, 100)

        def simulate(effect: float, n: int, rng: np.random.Generator) -> float:
            z = rng.standard_normal((n, len(pool_r))) if paired else None
            rows_r = gaussian_rows(pool_r, n, rng, z)
            rows_m = gaussian_rows(pool_m, n, rng, z) + effect * prediction
            obs = float(_projection_coefficient(rows_m.mean(0), va, vb, rows_r.mean(0)))
            sim_m, sim_r = InMemory(torch.from_numpy(rows_m)), InMemory(torch.from_numpy(rows_r))
            return p_value(obs, _projection_null(sim_m, sim_r, va, vb, n_perm, rng, paired))

        power = power_curve(
            simulate, effect_grid(spread), n=len(m), n_sim=power_sims, seed=seed, unit="projection coefficient"
        )
    name = "projection coefficient onto ½(v_A + v_B)"
    return NullTest(name, observed, null, p_value(observed, null), None, note, len(m), power)


def _out_of_span(x: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``x`` ``[..., d]`` minus its least-squares projection on the rows of ``basis`` ``[..., k, d]`` (and a constant:
    the intercept); batched over leading dimensions (QR: stable where the basis is nearly collinear)."""
    ones = np.ones((*basis.shape[:-2], 1, basis.shape[-1]))
    cols = np.swapaxes(np.concatenate([basis, ones], axis=-2), -1, -2)  # [..., d, k + 1]
    q, _ = np.linalg.qr(cols)
    return x - (q @ (np.swapaxes(q, -1, -2) @ x[..., None]))[..., 0]


def _split_null(m: Source, a: Source, b: Source, n: int, rng: np.random.Generator, paired: bool) -> np.ndarray:
    """``n`` split-half noise norms: half the difference of the out-of-span parts of two random halves (paired sets
    split alike); every half's mean a weighted sum over the rows, streamed block by block."""
    sets = (m, a, b)
    orders = []
    for x in (m,) if paired else sets:
        orders.append([rng.permutation(len(x)) for _ in range(n)])
    if paired:
        orders = orders * 3
    means = []
    for x, per_split in zip(sets, orders, strict=True):
        half = len(x) // 2
        rows = [o[:half] for o in per_split] + [o[half : 2 * half] for o in per_split]
        masks = _masks(rows, len(x))
        sums = weighted_sums([x], lambda s, lo, hi, masks=masks: _mask_weights(masks, lo, hi), 2 * n).numpy()
        means.append((sums[:n] / half, sums[n:] / half))
    (m1, m2), (a1, a2), (b1, b2) = means
    r1 = _out_of_span(m1, np.stack([a1, b1], axis=1))
    r2 = _out_of_span(m2, np.stack([a2, b2], axis=1))
    return np.linalg.norm((r1 - r2) / 2, axis=-1)


def residual_noise_floor(
    mixed: torch.Tensor | Source,
    a: torch.Tensor | Source,
    b: torch.Tensor | Source,
    *,
    n_splits: int = 200,
    seed: int = 0,
    paired: bool | None = None,
    power_sims: int = N_SIM,
) -> NullTest:
    """Norm of the mixed mean outside span{v_A, v_B, 1}, against a split-half noise floor: the prompts are split in
    two random halves, the out-of-span part computed on each half (mixed mean on the halves' v_A, v_B), and half their
    difference is the sampling noise of the whole estimate. When the three sets are paired row by row (``paired``;
    ``None``: equal sizes, the same queries), the halves split all three alike. p-value: the fraction of splits whose
    noise reaches the residual (a small p: the residual is more than noise; a large one is a non-rejection, to be read
    beside the power curve, never as "in the span"). A residual within the inputs' float resolution
    (:data:`RESOLUTION_EPS` machine epsilons of their dtype × the mixed mean's norm; 1.2e-5 relative in float32, the
    toolkit's tolerance between engines) is rounding, which does not average out like sampling noise: p is 1 then,
    and the note says so. Inputs: ``[prompt, d_model]`` tensors or one-layer store sources.

    Power (``power_sims`` data sets per planted effect): rows drawn with each set's mean and covariance
    (:func:`interp.power.gaussian_rows`), the mixed rows' mean moved into the span and then out of it by a planted
    norm along a random direction orthogonal to it; for streamed sources, the null shifted by the planted norm.
    """
    seed = check_seed(seed)
    check_count(n_splits, "n_splits")
    check_count(power_sims, "power_sims", minimum=0)
    m = _check_rows("mixed", mixed)
    d, dtype = _width(mixed), mixed.dtype
    a, b = _check_rows("a", a, d), _check_rows("b", b, d)
    paired = _check_paired(paired, len(m), len(a), len(b))
    mm, va, vb = (_mean(x) for x in (m, a, b))
    residual = _out_of_span(mm, np.stack([va, vb]))
    observed = float(np.linalg.norm(residual))
    resolution = _resolution(dtype) * float(np.linalg.norm(mm))
    null = _split_null(m, a, b, n_splits, np.random.default_rng(seed), paired)
    note = "null: half the difference of the out-of-span parts of two random halves" + (
        " (split alike across the query-paired sets)" if paired else ""
    )
    p = p_value(observed, null)
    if observed <= resolution:  # rounding of the forward passes, not sampling, sets both sides: no evidence either way
        note += f"; the residual is below the inputs' float resolution ({resolution:.2g}): p set to 1"
        p = 1.0
    power = None
    n = min(len(m), len(a), len(b))
    scale = max(float(np.quantile(null, 0.95)), resolution)
    rows = _in_memory(m, a, b)
    if power_sims and rows is None:
        power = _shifted_null_power(null, scale, n, power_sims, "out-of-span norm")
    elif power_sims:
        power = power_curve(
            _residual_simulator(*rows, residual, paired, min(n_splits, 100), seed, resolution),
            effect_grid(scale), n=n, n_sim=power_sims, seed=seed, unit="out-of-span norm",
        )  # fmt: skip
    name = "out-of-span residual of the mixed mean"
    return NullTest(name, observed, null, p, None, note, n, power)


def residual_simulator(
    mixed: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, paired: bool | None = None, seed: int = 0
):
    """The simulator of :func:`residual_noise_floor` (:mod:`interp.power`) from a pilot's per-prompt vectors
    ``Float[Tensor, "prompt d_model"]``: for :func:`interp.power.required_n`, the ``n`` at which a stated out-of-span
    norm is detected."""
    seed = check_seed(seed)
    sets = [_check_rows("mixed", mixed)]
    if not isinstance(sets[0], InMemory):
        raise ArgumentTypeError("mixed", "a pilot's rows in memory ([prompt, d_model] tensors), not a store source")
    d = _width(mixed)
    sets += [_check_rows("a", a, d), _check_rows("b", b, d)]
    if not all(isinstance(x, InMemory) for x in sets):
        raise ArgumentTypeError("a", "a pilot's rows in memory ([prompt, d_model] tensors), not a store source")
    m, a_rows, b_rows = _in_memory(*sets)
    paired = _check_paired(paired, len(m), len(a_rows), len(b_rows))
    residual = _out_of_span(m.mean(0), np.stack([a_rows.mean(0), b_rows.mean(0)]))
    resolution = _resolution(mixed.dtype) * float(np.linalg.norm(m.mean(0)))
    return _residual_simulator(m, a_rows, b_rows, residual, paired, 100, seed, resolution)


def _residual_simulator(m, a, b, residual, paired: bool, n_splits: int, seed: int, resolution: float):
    """Simulated data sets: rows with each set's covariance, the mixed mean in the span plus the planted norm along a
    random direction orthogonal to it. A mean shift cancels in the split halves, so the noise floor at each ``n`` is
    drawn once, from an effect-free data set of that size, and every data set of that size is tested against it; a
    residual within the float ``resolution`` is not rejected, as in the test."""
    pools = [m - residual, a, b]  # the mixed rows' mean moved into the span
    u = _out_of_span(np.random.default_rng([seed, 7]).standard_normal(m.shape[1]), np.stack([a.mean(0), b.mean(0)]))
    u = u / np.linalg.norm(u)
    floors: dict[int, np.ndarray] = {}

    def draw(n: int, rng: np.random.Generator) -> list[np.ndarray]:
        z = rng.standard_normal((n, len(pools[0]))) if paired else None
        return [gaussian_rows(pool, n, rng, z) for pool in pools]

    def simulate(effect: float, n: int, rng: np.random.Generator) -> float:
        if n not in floors:
            drawn = [InMemory(torch.from_numpy(x)) for x in draw(n, rng)]
            floors[n] = _split_null(*drawn, n_splits, rng, paired)
        sm, sa, sb = draw(n, rng)
        obs = float(np.linalg.norm(_out_of_span(sm.mean(0) + effect * u, np.stack([sa.mean(0), sb.mean(0)]))))
        return 1.0 if obs <= resolution else p_value(obs, floors[n])

    return simulate


def residual_direction(mixed_mean: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``Float[Tensor, "d_model"]``: the mixed mean's part outside span{v_A, v_B, 1} (what :func:`ablation_null`
    removes)."""
    d = check_vector(mixed_mean, "mixed_mean").shape[0]
    check_vector(a, "a", d)
    check_vector(b, "b", d)
    as_np = [x.detach().cpu().double().numpy() for x in (mixed_mean, a, b)]
    return torch.from_numpy(_out_of_span(as_np[0], np.stack(as_np[1:]))).float()


def _mean_abs_change(base: np.ndarray, patched: np.ndarray) -> np.ndarray:
    """Per prompt: Σ over candidates of |ΔP| (``[prompt, task]`` log-probs in, ``[prompt]`` out)."""
    return np.abs(np.exp(patched) - np.exp(base)).sum(axis=-1)


def _monte_carlo_power(per_prompt_null: np.ndarray, power_sims: int, seed: int, unit: str) -> PowerCurve | None:
    """Power of a mean-over-prompts statistic against random interventions on the same prompts."""
    if not power_sims or per_prompt_null.shape[0] < 2:
        return None
    means = per_prompt_null.mean(axis=1)
    return power_curve(
        monte_carlo_simulator(per_prompt_null), effect_grid(float(np.quantile(means, 0.95) - np.mean(means))),
        n=per_prompt_null.shape[1], n_sim=power_sims, seed=seed, unit=unit,
    )  # fmt: skip


def ablation_null(
    model,
    mixed_prompts: Sequence[Prompt],
    residual: torch.Tensor,
    layer: int,
    *,
    made_from: Sequence[Prompt],
    hook: str = "resid_post",
    n_random: int = 20,
    seed: int = 0,
    batch_size: int = 32,
    power_sims: int = N_SIM,
) -> NullTest:
    """Subtract ``residual`` (e.g. :func:`residual_direction`) from the mixed prompts' residual stream at ``layer``
    (last token) and measure the mean over prompts of Σ_k |ΔP(a_k)|; the null subtracts ``n_random`` random
    directions of the same norm. A small p: the model uses what lies outside the span.

    ``made_from``: the prompts the direction was computed from (``[]`` for a direction built by hand); the ablated
    prompts must share none of them (:func:`interp.heldout.check_held_out`), or the direction would be tested on the
    noise it was fitted to. Power: :func:`interp.power.monte_carlo_simulator` on the random directions' per-prompt
    effects (an effect is Σ|ΔP| beyond a random direction's).
    """
    check_model(model)
    mixed_prompts = check_prompts(mixed_prompts, "mixed_prompts")
    check_vector(residual, "residual", model.cfg.d_model)
    layer = check_layer(model, layer)
    check_hook(hook)
    seed = check_seed(seed)
    check_count(n_random, "n_random")
    check_count(power_sims, "power_sims", minimum=0)
    check_batch_size(batch_size)
    made_from = check_prompts(made_from, "made_from", allow_empty=True)
    check_held_out(made_from, mixed_prompts, "mixed_prompts", what="the residual direction")
    norm = float(residual.double().norm())
    if not norm > 0:
        raise ArgumentError("residual", "has zero norm; nothing to ablate")
    g = torch.Generator().manual_seed(seed)
    randoms = [torch.randn(residual.shape[0], generator=g, dtype=torch.float64) for _ in range(n_random)]
    cells = [Intervention(layer, "add", -residual.float(), hook=hook, label="−residual")]
    cells += [Intervention(layer, "add", (-norm * u / u.norm()).float(), hook=hook, label="−random") for u in randoms]
    nothing = Intervention(layer, "add", torch.zeros_like(residual).float(), hook=hook)  # the unpatched baseline
    base, *logp = score_cells(model, mixed_prompts, [nothing, *cells], batch_size=batch_size)
    effects = np.stack([_mean_abs_change(base, lp) for lp in logp])
    observed = float(effects[0].mean())
    null = effects[1:].mean(axis=1)
    note = f"null: {n_random} random directions of the same norm ({norm:.3g})"
    name = "Σ|ΔP| when the out-of-span residual is removed"
    power = _monte_carlo_power(effects[1:], power_sims, seed, "Σ|ΔP| beyond a random direction's")
    ci = bootstrap_ci(effects[0], seed=seed)
    return NullTest(name, observed, null, p_value(observed, null), ci, note, len(mixed_prompts), power)


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
    power_sims: int = N_SIM,
) -> NullTest:
    """Rise of mean P(``task``'s answer) over ``queries`` when ``vector`` goes in at ``layer`` in ``mode`` (as
    :func:`interp.sweeps.best_layer` puts it), against ``n_random`` random vectors of the same norm put in the same
    way (for ``shift``: the same norm as v − μ). Statistic and CI over queries; p one-sided. The queries must be held
    out from the prompts ``vector`` was made from. Power: :func:`interp.power.monte_carlo_simulator` on the random
    vectors' per-query rises (an effect is a rise beyond a random vector's).
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
    check_count(power_sims, "power_sims", minimum=0)
    check_batch_size(batch_size)
    check_held_out(vector, queries, "queries")
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
    rise = np.stack([np.exp(lp[:, k]) - np.exp(base[:, k]) for lp in logp])
    observed = float(rise[0].mean())
    null = rise[1:].mean(axis=1)
    accuracy = float(candidate_accuracy(logp[0], k))
    name = f"rise of P({task}) ({mode} at layer {layer}; patched candidate accuracy {accuracy:.3f})"
    note = f"null: {n_random} random vectors of the same norm, put in the same way"
    power = _monte_carlo_power(rise[1:], power_sims, seed, f"rise of P({task}) beyond a random vector's")
    ci = bootstrap_ci(rise[0], seed=seed)
    return NullTest(name, observed, null, p_value(observed, null), ci, note, len(queries), power)
