"""Trends as trends (interp.trends): Page's L with seeds as blocks, both directions, monotone counts, power."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from interp.trends import Trend, page_trend, trend_words


def test_a_positive_spearman_in_every_seed_is_not_a_trend():
    """The old rule ("rises in every seed" when each seed's Spearman ρ with size is > 0) said yes to this table;
    Page's test does not reject, and the words say "no trend detected" with the power behind it."""
    table = np.array([[3.0, 1.0, 2.0, 4.0], [2.0, 3.0, 1.0, 4.0], [1.0, 4.0, 3.0, 2.0]])  # ρ = 0.4, 0.4, 0.2
    assert all(spearmanr(range(4), row)[0] > 0 for row in table)
    t = page_trend(table, metric="kl", sizes=["xs", "s", "m", "l"], power_sims=40)
    assert t.direction == "none" and t.p_rises > 0.05 and t.monotone_rising == 0
    words = trend_words(t)
    assert words.startswith("no trend detected (Page's L p = ") and "n = 3 seeds × 4 sizes" in words
    assert "detectable ≥ " in words and "per size step" in words


def test_planted_trends_are_found_in_their_direction_and_noise_mostly_is_not():
    rng = np.random.default_rng(0)
    steps = np.arange(4)
    rises = [page_trend(rng.normal(size=(3, 4)) * 0.2 + steps, power_sims=0).direction for _ in range(20)]
    falls = [page_trend(rng.normal(size=(3, 4)) * 0.2 - steps, power_sims=0).direction for _ in range(20)]
    noise = [page_trend(rng.normal(size=(3, 4)), power_sims=0).direction for _ in range(200)]
    assert rises.count("rises") == 20 and falls.count("falls") == 20
    false_positive_rate = 1 - noise.count("none") / len(noise)
    assert false_positive_rate <= 0.15  # two one-sided tests at 0.05 each: about 0.1


def test_the_power_curve_says_which_trend_three_seeds_can_see():
    rng = np.random.default_rng(1)
    t = page_trend(rng.normal(size=(3, 4)), metric="kl", power_sims=40, seed=0)
    assert t.power.unit == "kl per size step" and t.power.n == 3
    assert t.power.false_positive_rate <= 0.15 and t.power.mde is not None
    again = Trend.from_dict(t.to_dict())
    assert again == t and again.direction == t.direction


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match=r"^values: need a finite \[block >= 2, size >= 3\] table"):
        page_trend(np.ones((1, 4)))
    with pytest.raises(ValueError, match="^values:"):
        page_trend([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match="^sizes: need 3 labels"):
        page_trend(np.ones((2, 3)), sizes=["a", "b"])
    with pytest.raises(ValueError, match="^power_sims:"):
        page_trend(np.ones((2, 3)), power_sims=-1)
