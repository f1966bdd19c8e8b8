"""Trends as trends: does a measure rise (or fall) with model size, with training seeds as blocks?

A sign of Spearman's ρ per seed over four sizes says little (ρ = 0.4 is far from significant at n = 4, and a
non-monotone seed can still have ρ > 0). Here the ordered alternative is tested as such: Page's L test
(:func:`scipy.stats.page_trend_test`; Page 1963) on a ``[block, size]`` table (blocks: the training seeds, each
with every size; sizes in increasing order), once for "rises with size" and once for "falls", with its exact
p-value, beside the count of blocks whose values are strictly monotone in that direction. Its power comes from
planted trends (:mod:`interp.power`): each block's values with their order across sizes shuffled (no trend left),
plus ``δ × size rank``; the minimum detectable ``δ`` per size step is what a non-rejection can speak to.

:func:`trend_words` turns a :class:`Trend` into the README's words by rule: "rises with size" only when the test
rejects in that direction.

>>> import numpy as np
>>> t = page_trend(np.array([[1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 2.9, 4.2], [0.9, 2.2, 3.1, 3.9]]), power_sims=0)
>>> t.direction, t.monotone_rising, f"{t.p_rises:.1e}"
('rises', 3, '7.2e-05')
>>> print(trend_words(t))
rises with size (Page's L = 90, p = 7.2e-05; strictly rising in 3 of 3 seeds)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from scipy.stats import page_trend_test

from interp.power import ALPHA, N_SIM, effect_grid, power_curve
from interp.results import PowerCurve, Result, result
from interp.seeds import check_seed
from interp.validate import ArgumentError, ArgumentTypeError, check_count, check_number, check_sequence


@result
class Trend(Result):
    """Page's L test of an ordered trend across sizes, both directions (``values``: ``Float[ndarray, "block size"]``,
    sizes in increasing order). ``direction``: ``"rises"``, ``"falls"`` or ``"none"`` (neither test rejects at
    ``alpha``); ``power``: the rising test's power curve over planted trends per size step (``None``: not simulated).
    """

    metric: str
    sizes: tuple[str, ...]
    blocks: tuple[str, ...]
    values: np.ndarray
    l_rises: float
    p_rises: float
    l_falls: float
    p_falls: float
    monotone_rising: int
    monotone_falling: int
    alpha: float = ALPHA
    power: PowerCurve | None = None

    _dims: ClassVar = {"values": ("blocks", "sizes")}
    _summary: ClassVar = ("direction",)

    @property
    def direction(self) -> str:
        if self.p_rises < self.alpha:
            return "rises"
        if self.p_falls < self.alpha:
            return "falls"
        return "none"

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)


def _page(values: np.ndarray) -> tuple[float, float]:
    res = page_trend_test(values, method="exact" if values.shape[1] <= 8 else "asymptotic")
    return float(res.statistic), float(res.pvalue)


def _monotone(values: np.ndarray, sign: int) -> int:
    return int(np.sum(np.all(sign * np.diff(values, axis=1) > 0, axis=1)))


def page_trend(
    values: np.ndarray | Sequence[Sequence[float]],
    *,
    metric: str = "",
    sizes: Sequence[str] | None = None,
    blocks: Sequence[str] | None = None,
    alpha: float = ALPHA,
    power_sims: int = N_SIM,
    seed: int = 0,
) -> Trend:
    """Page's L test that ``values`` (``[block, size]``, sizes smallest first) rise, and that they fall, with size.

    Needs at least 2 blocks and 3 sizes. Power (``power_sims`` data sets per planted effect, 0 to skip): each
    block's values shuffled across sizes, plus ``δ × (size index)``; the effect unit is the metric per size step.
    """
    if isinstance(values, str | bytes) or values is None:
        raise ArgumentTypeError("values", f"need a [block, size] table of numbers, got {type(values).__name__}")
    try:
        x = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentTypeError("values", "need a [block, size] table of numbers") from None
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 3 or not np.isfinite(x).all():
        raise ArgumentError("values", f"need a finite [block >= 2, size >= 3] table, got shape {x.shape}")
    if not isinstance(metric, str):
        raise ArgumentTypeError("metric", f"need a string (the metric's name), got {type(metric).__name__}")
    alpha = check_number(alpha, "alpha", minimum=0.0, maximum=1.0)
    if not 0 < alpha < 1:
        raise ArgumentError("alpha", f"must lie in (0, 1), got {alpha!r}")
    check_count(power_sims, "power_sims", minimum=0)
    seed = check_seed(seed)
    names = {}
    for name, given, k in (("sizes", sizes, x.shape[1]), ("blocks", blocks, x.shape[0])):
        if given is None:
            names[name] = tuple(str(i) for i in range(k))
            continue
        got = check_sequence(given, name, what="labels")
        if len(got) != k:
            raise ArgumentError(
                name, f"need {k} labels (one per {'column' if name == 'sizes' else 'row'}), got {len(got)}"
            )
        names[name] = tuple(str(g) for g in got)
    sizes, blocks = names["sizes"], names["blocks"]
    l_up, p_up = _page(x)
    l_down, p_down = _page(x[:, ::-1])
    power = None
    if power_sims:
        centred = x - x.mean(axis=1, keepdims=True)
        steps = np.arange(x.shape[1], dtype=float)

        def simulate(effect: float, n: int, rng: np.random.Generator) -> float:
            rows = centred[rng.integers(len(centred), size=n)]
            shuffled = np.array([rng.permutation(r) for r in rows])
            return _page(shuffled + effect * steps)[1]

        scale = float(np.std(centred)) if np.std(centred) > 0 else 1.0
        power = power_curve(
            simulate, effect_grid(scale / 2), n=x.shape[0], n_sim=power_sims, alpha=alpha, seed=seed,
            unit=f"{metric or 'value'} per size step",
        )  # fmt: skip
    return Trend(
        metric, sizes, blocks, x, l_up, p_up, l_down, p_down, _monotone(x, 1), _monotone(x, -1), float(alpha), power
    )


def trend_words(t: Trend, block_word: str = "seeds") -> str:
    """The sentence a trend earns, by rule: a direction only when Page's test rejects in it; otherwise "no trend
    detected", with both p-values, the n and (when simulated) the smallest trend the test could detect."""
    if t.direction == "rises":
        return (
            f"rises with size (Page's L = {t.l_rises:.0f}, p = {t.p_rises:.2g}; strictly rising in "
            f"{t.monotone_rising} of {t.n_blocks} {block_word})"
        )
    if t.direction == "falls":
        return (
            f"falls with size (Page's L = {t.l_falls:.0f}, p = {t.p_falls:.2g}; strictly falling in "
            f"{t.monotone_falling} of {t.n_blocks} {block_word})"
        )
    power = "" if t.power is None else f", detectable ≥ {t.power.detectable().removeprefix('≥ ')} per size step"
    return (
        f"no trend detected (Page's L p = {t.p_rises:.2g} rising, {t.p_falls:.2g} falling; n = {t.n_blocks} "
        f"{block_word} × {len(t.sizes)} sizes{power}; strictly monotone in {max(t.monotone_rising, t.monotone_falling)}"
        f" of {t.n_blocks})"
    )


__all__ = ["Trend", "page_trend", "trend_words"]
