"""Power behind every non-rejection: planted effects of known size, simulated, and the n a stated effect needs.

A test that does not reject says "not detected at n = …", and that sentence means something only beside the effect
the test could have detected at that n (docs/science.md §4). Here a test is a *simulator*: ``simulate(effect, n,
rng) -> p-value`` draws a data set of ``n`` prompts like the measured one, plants an effect of known size, and runs
the test on it. From it:

- :func:`power_curve`: the rejection rate at level ``alpha`` over a grid of planted effects
  (:class:`~interp.results.PowerCurve`, whose ``mde`` is the minimum detectable effect at power ``power``, and
  whose rate at effect 0 is the test's measured false-positive rate);
- :func:`required_n`: the smallest ``n`` of a grid at which a stated effect is detected with power ``power``: how a
  study chooses its ``n`` before it runs the test (the simulator draws from a pilot).

Simulators of the toolkit's tests live beside the tests (:mod:`interp.nulls`); :func:`monte_carlo_simulator` serves
every test whose statistic is a mean over prompts compared with random interventions on the same prompts, and
:func:`gaussian_rows` draws new per-prompt vectors with a pool's mean and covariance. Every random choice takes a seed.

>>> rng = np.random.default_rng(0)
>>> null = rng.normal(size=(40, 30))            # 40 random interventions × 30 prompts, no effect
>>> curve = power_curve(monte_carlo_simulator(null), effect_grid(0.5), n=30, n_sim=100, seed=0, unit="ΔP")
>>> curve.false_positive_rate <= 0.15, 0.2 < curve.mde < 1.5
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from interp.results import PowerCurve
from interp.seeds import check_seed
from interp.validate import ArgumentError

#: Level of every test and the power a study asks of it, unless it says otherwise.
ALPHA = 0.05
POWER = 0.8
#: Simulated data sets per planted effect (the rejection rate's s.e. is at most 0.5 / √N_SIM ≈ 0.08).
N_SIM = 40

Simulator = Callable[[float, int, np.random.Generator], float]


def p_value(observed: float, null: np.ndarray) -> float:
    """One-sided P(null >= observed), with the +1 correction of a permutation or Monte-Carlo test."""
    return float((1 + np.sum(np.asarray(null) >= observed)) / (1 + len(null)))


def _check_level(name: str, x: object) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float) or not 0 < x < 1:
        raise ArgumentError(name, f"must be a number in (0, 1), got {x!r}")
    return float(x)


def _check_count(name: str, n: object, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < minimum:
        raise ArgumentError(name, f"must be an integer >= {minimum}, got {n!r}")
    return int(n)


def effect_grid(scale: float, points: int = 13, top: float = 4.0) -> np.ndarray:
    """``points`` effects from 0 to ``top × scale`` (``scale``: the null's spread in the statistic's units).

    >>> effect_grid(0.1, points=5).round(3).tolist()
    [0.0, 0.1, 0.2, 0.3, 0.4]
    """
    if not np.isfinite(scale) or scale <= 0:
        scale = 1e-12
    return float(scale) * np.linspace(0.0, top, _check_count("points", points, 2))


def rejection_rate(
    simulate: Simulator, effect: float, n: int, *, n_sim: int, alpha: float, rng: np.random.Generator
) -> float:
    """Fraction of ``n_sim`` simulated data sets (``effect`` planted, ``n`` prompts) the test rejects at ``alpha``."""
    return float(np.mean([simulate(float(effect), n, rng) < alpha for _ in range(n_sim)]))


def power_curve(
    simulate: Simulator,
    effects: Sequence[float] | np.ndarray,
    *,
    n: int,
    n_sim: int = N_SIM,
    alpha: float = ALPHA,
    power: float = POWER,
    seed: int = 0,
    unit: str = "",
) -> PowerCurve:
    """Rejection rate of ``simulate``'s test at each planted effect of ``effects``, ``n`` prompts each."""
    n, n_sim = _check_count("n", n), _check_count("n_sim", n_sim)
    alpha, power = _check_level("alpha", alpha), _check_level("power", power)
    rng = np.random.default_rng(check_seed(seed))
    eff = np.asarray(effects, dtype=float)
    if eff.ndim != 1 or not len(eff) or np.any(np.diff(eff) < 0):
        raise ArgumentError("effects", f"need a non-empty increasing 1-D grid, got {eff.tolist()}")
    rej = np.array([rejection_rate(simulate, e, n, n_sim=n_sim, alpha=alpha, rng=rng) for e in eff])
    return PowerCurve(eff, rej, n, alpha, power, n_sim, unit)


def required_n(
    simulate: Simulator,
    effect: float,
    ns: Sequence[int],
    *,
    n_sim: int = N_SIM,
    alpha: float = ALPHA,
    power: float = POWER,
    seed: int = 0,
) -> tuple[int | None, dict[int, float]]:
    """The smallest ``n`` of ``ns`` (increasing) whose simulated power at ``effect`` reaches ``power``, and the power
    at every ``n`` tried (``None``: not reached within ``ns``; the search stops at the first ``n`` that reaches it)."""
    alpha, power = _check_level("alpha", alpha), _check_level("power", power)
    rng = np.random.default_rng(check_seed(seed))
    tried: dict[int, float] = {}
    for n in sorted(_check_count("ns", x) for x in ns):
        tried[n] = rejection_rate(simulate, effect, n, n_sim=_check_count("n_sim", n_sim), alpha=alpha, rng=rng)
        if tried[n] >= power:
            return n, tried
    return None, tried


def monte_carlo_simulator(per_prompt_null: np.ndarray) -> Simulator:
    """Simulator of a Monte-Carlo test whose statistic is a mean over prompts compared with the means of random
    interventions on the same prompts (``per_prompt_null``: ``Float[ndarray, "draw prompt"]``, one row per random
    intervention). One simulated data set: ``n`` prompts drawn with replacement; one row stands in for the real
    intervention, ``effect`` added to each of its prompts; the other rows on the same prompts are the null (its
    count rescaled to all ``draw`` rows, as the real test has them)."""
    x = np.asarray(per_prompt_null, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ArgumentError("per_prompt_null", f"need [draw >= 2, prompt >= 1] values, got shape {x.shape}")

    def simulate(effect: float, n: int, rng: np.random.Generator) -> float:
        j = int(rng.integers(x.shape[0]))
        idx = rng.integers(x.shape[1], size=n)
        sample = x[:, idx].mean(axis=1)
        null = np.delete(sample, j)
        # the real test has one null draw more than is left here: count on its scale, so that the smallest p is the
        # real test's 1 / (draws + 1)
        k = np.sum(null >= sample[j] + effect) * x.shape[0] / len(null)
        return float((1 + k) / (1 + x.shape[0]))

    return simulate


def gaussian_rows(pool: np.ndarray, n: int, rng: np.random.Generator, z: np.ndarray | None = None) -> np.ndarray:
    """``n`` new rows with ``pool``'s mean and covariance (``pool``: ``Float[ndarray, "row d"]``): each is the mean
    plus a Gaussian combination of the centred rows, so rows are independent (a resample with replacement would
    repeat rows, and split-half noise of repeated rows is too small). ``z``: the ``[n, row]`` normal draws, to pair
    the rows of several pools (the same queries)."""
    pool = np.asarray(pool, dtype=float)
    if z is None:
        z = rng.standard_normal((n, len(pool)))
    centred = pool - pool.mean(axis=0)
    return pool.mean(axis=0) + z @ centred / np.sqrt(max(len(pool) - 1, 1))


__all__ = [
    "ALPHA",
    "N_SIM",
    "POWER",
    "effect_grid",
    "gaussian_rows",
    "monte_carlo_simulator",
    "p_value",
    "power_curve",
    "rejection_rate",
    "required_n",
]
