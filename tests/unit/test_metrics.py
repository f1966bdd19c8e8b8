import numpy as np
import pytest

from interp.metrics import (
    bootstrap_ci,
    bootstrap_cis,
    count_solved,
    kl_divergence,
    rank_view,
    summarize,
    total_variation,
)


def test_kl_hand_computed():
    p = np.array([[0.6, 0.2, 0.1], [0.3, 0.3, 0.3]])
    t = [0.5, 0.5, 0.0]
    expected0 = 0.5 * np.log(0.5 / 0.6) + 0.5 * np.log(0.5 / 0.2)
    expected1 = 0.5 * np.log(0.5 / 0.3) * 2
    np.testing.assert_allclose(kl_divergence(t, p), [expected0, expected1])
    # renormalised variant divides p by its row sum first
    q = p / p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        kl_divergence(t, p, renormalize=True)[0], 0.5 * np.log(0.5 / q[0, 0]) + 0.5 * np.log(0.5 / q[0, 1])
    )


def test_kl_zero_iff_calibrated_and_finite_at_zero_probability():
    assert kl_divergence([0.25, 0.75], [[0.25, 0.75]])[0] == pytest.approx(0.0)
    assert np.isfinite(kl_divergence([0.5, 0.5], [[1.0, 0.0]])[0])


def test_total_variation_counts_other_mass():
    p = np.array([[0.5, 0.5], [0.2, 0.3]])
    np.testing.assert_allclose(total_variation([0.5, 0.5], p), [0.0, 0.5 * (0.3 + 0.2 + 0.5)])


def test_rank_view_sorts_per_prompt_before_averaging():
    p = np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 0.7]])
    np.testing.assert_allclose(rank_view(p), [0.8, 0.15, 0.0])


def test_bootstrap_ci_covers_true_mean_of_bernoulli():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(100):
        x = rng.random(200) < 0.3
        lo, hi = bootstrap_ci(x, seed=trial, n_resamples=500)
        covered += lo <= 0.3 <= hi
    assert 88 <= covered <= 100  # nominal 95%


def test_bootstrap_ci_is_seeded():
    x = np.random.default_rng(1).random(50)
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)


def test_bootstrap_cis_is_bootstrap_ci_of_every_row():
    """One resampling for all rows gives each row the interval of its own seeded call (constant rows: their value),
    at each confidence; another seed gives other intervals; a ragged or empty array is refused by name."""
    rng = np.random.default_rng(4)
    v = rng.normal(size=(30, 17))
    v[3] = 0.25  # constant
    v[5] = rng.random(17) < 0.5  # Bernoulli
    for confidence, seed in ((0.95, 0), (0.8, 7)):
        got = bootstrap_cis(v, confidence=confidence, seed=seed, n_resamples=500)
        want = np.array([bootstrap_ci(r, confidence=confidence, seed=seed, n_resamples=500) for r in v])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert tuple(bootstrap_cis(v, seed=0)[3]) == (0.25, 0.25)
    assert not np.allclose(bootstrap_cis(v, seed=1), bootstrap_cis(v, seed=0))
    np.testing.assert_array_equal(bootstrap_cis(v[:, :1], seed=0), np.repeat(v[:, :1], 2, axis=1))
    for bad in (v[0], np.zeros((2, 0))):
        with pytest.raises(ValueError, match=r"values: need a \[row, n\] array"):
            bootstrap_cis(bad)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_cis(v, confidence=1.0)


def test_summarize_structure():
    p = np.array([[0.6, 0.3], [0.2, 0.7]])
    s = summarize(p, [0.5, 0.5], tasks=["a", "b"])
    assert s["tasks"]["a"]["mean"] == pytest.approx(0.4) and s["tasks"]["a"]["var"] == pytest.approx(0.04)
    assert s["other"]["mean"] == pytest.approx(0.1)
    assert set(s) >= {"kl", "kl_renormalized", "tv", "rank_view"}


def test_count_solved_against_kth_best_output():
    answers = np.log(np.array([[0.5, 0.2, 0.01], [0.3, 0.3, 0.3]]))
    comps = [np.log([0.5, 0.2, 0.1, 0.05]).tolist(), np.log([0.3, 0.3]).tolist()]
    np.testing.assert_array_equal(count_solved(answers, comps), [2, 3])


def test_count_solved_treats_route_rounding_as_the_same_number():
    """An answer that is the K-th output itself, scored by another route (float32: off by ~1e-5 nats at log-probs
    near -15), counts; one genuinely below it does not."""
    kth = -15.0
    comps = [[-1.0, kth, -20.0]]
    assert count_solved(np.array([[-1.0, kth - 1.3e-5]]), comps, k=2).tolist() == [2]
    assert count_solved(np.array([[-1.0, kth - 1e-3]]), comps, k=2).tolist() == [1]


@pytest.mark.parametrize(
    ("targets", "probs", "match"),
    [([0.5, 0.6], [[0.1, 0.1]], "targets"), ([0.5, 0.5], [[0.9, 0.9]], "probs"), ([1.0], [0.5], "probs")],
)
def test_bad_input(targets, probs, match):
    with pytest.raises(ValueError, match=match):
        kl_divergence(targets, probs)


def test_summarize_refuses_names_that_do_not_match_the_columns_and_bad_seeds():
    """Issue 24: 2 columns named by 3 tasks gave a raw IndexError."""
    probs = np.full((3, 2), 0.3)
    with pytest.raises(ValueError, match=r"^tasks: 3 names \['a', 'b', 'c'\] for probs with 2 columns"):
        summarize(probs, tasks=["a", "b", "c"])
    for seed in (-1, 1.5, True, "0"):
        with pytest.raises(ValueError, match="^seed: must be an integer >= 0"):
            summarize(probs, seed=seed)
