"""Nulls (interp.nulls) accept what was built and reject what was not: on the hand-built model, whose task direction
at layer 2 is known and whose mixtures lie exactly in the span of the single-task vectors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from interp.capture import capture_resid
from interp.construction import TASK_LAYER
from interp.models import load_model
from interp.nulls import ablation_null, projection_null, residual_direction, residual_noise_floor, steering_null
from interp.prompts import build_prompts, zero_shot_prompts
from interp.vectors import task_vector

FAMILY, A, B, C = "retrieval", "pos1", "pos2", "pos3"
KW = dict(n_examples=12, seed=4)


@pytest.fixture(scope="module")
def built():
    model = load_model("constructed:retrieval:K=3", device="cpu")
    groups = {
        "a": build_prompts(FAMILY, [A, B, C], counts=(12, 0, 0), n_prompts=24, seed=1),
        "b": build_prompts(FAMILY, [A, B, C], counts=(0, 12, 0), n_prompts=24, seed=2),
        "c": build_prompts(FAMILY, [A, B, C], counts=(0, 0, 12), n_prompts=24, seed=3),
        "mixed": build_prompts(FAMILY, [A, B, C], counts=(6, 6, 0), n_prompts=24, seed=5),
        "c_again": build_prompts(FAMILY, [A, B, C], counts=(0, 0, 12), n_prompts=24, seed=6),
    }
    acts = {k: capture_resid(model, ps, layers=[TASK_LAYER])[0] for k, ps in groups.items()}
    return model, groups, acts


def test_the_projection_null_accepts_the_built_mixture_and_rejects_a_third_task(built):
    _, _, acts = built
    real = projection_null(acts["mixed"], acts["a"], acts["b"], acts["c"], n_permutations=300, seed=0)
    assert abs(real.statistic - 1) < 0.05 and real.p_value < 0.01
    wrong = projection_null(acts["c_again"], acts["a"], acts["b"], acts["c"], n_permutations=300, seed=0)
    assert abs(wrong.statistic) < 0.05 and wrong.p_value > 0.05


def test_the_residual_is_noise_for_the_built_mixture_and_real_for_a_third_task(built):
    _, _, acts = built
    in_span = residual_noise_floor(acts["mixed"], acts["a"], acts["b"], n_splits=200, seed=0)
    assert in_span.p_value > 0.05  # no more than the sampling noise of the mixed mean
    out_of_span = residual_noise_floor(acts["c"], acts["a"], acts["b"], n_splits=200, seed=0)
    assert out_of_span.p_value < 0.01 and out_of_span.statistic > 10 * out_of_span.null_q95


def test_the_ablation_null_finds_a_used_direction_and_ignores_an_unused_one(built):
    model, groups, acts = built
    mixed = [dataclasses.replace(p, tasks=(A, B), answers=p.answers[:2]) for p in groups["mixed"][:12]]
    task_direction = acts["a"].mean(0) - acts["b"].mean(0)  # what layer 3 reads: removing it moves the answers
    made_from = groups["a"] + groups["b"]  # the direction comes from prompts of seeds 1 and 2; the ablated are seed 5
    used = ablation_null(model, mixed, task_direction, TASK_LAYER, made_from=made_from, n_random=10, seed=0)
    assert used.p_value <= 1 / 11 + 1e-9 and used.statistic > 0.2
    tiny = residual_direction(acts["mixed"][12:].mean(0), acts["a"].mean(0), acts["b"].mean(0))  # held-out half
    unused = ablation_null(model, mixed, tiny, TASK_LAYER, made_from=groups["mixed"][12:] + made_from, n_random=10)
    assert unused.statistic < 0.01


def test_the_steering_null_accepts_the_task_vector_and_rejects_a_random_one(built):
    model, _, _ = built
    queries = zero_shot_prompts(FAMILY, [A, B, C], n_prompts=16, seed=7)
    v = task_vector(model, FAMILY, A, n_prompts=16, **KW)
    real = steering_null(model, queries, A, v, TASK_LAYER, mode="replace", n_random=10, seed=0)
    assert real.statistic > 0.5 and real.p_value <= 1 / 11 + 1e-9 and real.ci95[0] > real.null_q95
    g = torch.Generator().manual_seed(1)
    noise = dataclasses.replace(v, mean=v.mean + 50 * torch.randn(v.mean.shape, generator=g))
    fake = steering_null(model, queries, A, noise, TASK_LAYER, mode="replace", n_random=10, seed=0)
    assert fake.statistic < real.statistic and fake.p_value > 0.05


def test_a_residual_at_float_resolution_is_no_evidence_and_a_small_real_one_still_is():
    """Mixed rows exactly in span{a, b} but for one offset common to all rows, as rounding in a forward pass leaves:
    splits cancel it, so the split-half null alone would call a 1e-7 relative offset significant."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(24, 64, generator=g) + 3, torch.randn(24, 64, generator=g) - 1
    mixed = 0.5 * a + 0.5 * b
    off = torch.randn(64, generator=g)
    off = off / off.norm() * float(mixed.mean(0).norm())
    rounding = residual_noise_floor(mixed + 1e-7 * off, a, b, n_splits=200, seed=0)
    assert rounding.p_value == 1.0 and "float resolution" in rounding.note
    assert rounding.statistic > rounding.null_q95  # what the split-half null alone would have rejected
    real = residual_noise_floor(mixed + 1e-3 * off, a, b, n_splits=200, seed=0)
    assert real.p_value < 0.01 and "float resolution" not in real.note


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"^mixed: need a \[prompt >= 2"):
        projection_null(torch.zeros(1, 4), torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"^b: need a \[prompt >= 2, d_model=4\]"):
        residual_noise_floor(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"^seed: must be an integer >= 0"):
        projection_null(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(3, 4), seed=-1)
    args = (torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4))
    assert np.isfinite(projection_null(*args).statistic)


def test_undefined_statistics_and_nan_inputs_are_refused_by_name():
    """Issue 36: a = b = reference gave statistic NaN with p = 0.09; NaN activations hit an MKL internal assert in
    residual_noise_floor."""
    x = torch.randn(6, 4)
    with pytest.raises(ValueError, match=r"^reference: its mean equals ½\(v_A \+ v_B\)"):
        projection_null(torch.randn(6, 4), x, x, x)
    with pytest.raises(ValueError, match=r"^reference: its mean equals"):  # the prediction at the reference
        projection_null(torch.randn(6, 4), x + 1, x - 1, x)
    nan = torch.full((6, 4), float("nan"))
    with pytest.raises(ValueError, match="^mixed: holds NaN or infinite values"):
        residual_noise_floor(nan, x, x + 1)
    with pytest.raises(ValueError, match="^b: holds NaN or infinite values"):
        projection_null(x, x + 1, nan, x - 1)


def test_a_direction_or_vector_tested_on_the_prompts_it_was_made_from_is_refused(built):
    """Held out by construction: the overlap is planted, and every test that puts a vector or direction into prompts
    refuses it before any forward pass, naming the argument and the seed to draw instead."""
    model, groups, acts = built
    mixed = [dataclasses.replace(p, tasks=(A, B), answers=p.answers[:2]) for p in groups["mixed"]]
    fitted = residual_direction(acts["mixed"].mean(0), acts["a"].mean(0), acts["b"].mean(0))
    with pytest.raises(ValueError, match=r"^mixed_prompts: 12 of 12 prompts share \(seed, index\).*held_out_seed\(1\)"):
        ablation_null(model, mixed[:12], fitted, TASK_LAYER, made_from=groups["a"] + groups["mixed"])
    v = task_vector(model, FAMILY, A, n_prompts=8, **KW)
    queries = zero_shot_prompts(FAMILY, [A, B, C], n_prompts=10, seed=KW["seed"])  # indices 0..7 shared
    with pytest.raises(ValueError, match=r"^queries: 8 of 10 prompts share \(seed, index\).*seed=held_out_seed\(4\)"):
        steering_null(model, queries, A, v, TASK_LAYER)


def test_every_null_reports_what_it_could_detect_at_its_n(built):
    """Power behind a non-rejection. Rows of a mixture in span{a, b} plus noise, with an out-of-span component of
    known norm planted: the simulated power curve's rate with nothing planted is the test's size, the minimum
    detectable effect shrinks with n, and real data sets with twice that effect planted are rejected (the power the
    curve promised), while data sets with nothing planted mostly are not. On the hand-built model, whose mixtures lie
    exactly in the span, the detectable effect is bounded below by the float resolution (nothing smaller is
    evidence)."""
    g = torch.Generator().manual_seed(0)
    d = 32
    u = torch.zeros(d)
    u[-1] = 1.0
    a_mean, b_mean = torch.randn(d, generator=g), torch.randn(d, generator=g)
    a_mean[-1] = b_mean[-1] = 0.0

    def data(n: int, effect: float, seed: int):
        gen = torch.Generator().manual_seed(seed)
        noise = lambda: torch.randn(n, d, generator=gen) * 0.5  # noqa: E731
        a, b = a_mean + noise(), b_mean + noise()
        return (a_mean + b_mean) / 2 + noise() + effect * u, a, b

    small = residual_noise_floor(*data(12, 0.0, 1), seed=0, power_sims=60)
    large = residual_noise_floor(*data(48, 0.0, 1), seed=0, power_sims=60)
    assert small.n == 12 and large.n == 48 and small.power.n == 12 and large.power.unit == "out-of-span norm"
    assert large.mde < small.mde  # more prompts: smaller effects detectable
    assert small.power.false_positive_rate <= 0.15 and large.power.false_positive_rate <= 0.15
    planted = [residual_noise_floor(*data(48, 2 * large.mde, s), seed=s, power_sims=0).p_value for s in range(20)]
    nothing = [residual_noise_floor(*data(48, 0.0, s), seed=s, power_sims=0).p_value for s in range(20)]
    assert np.mean(np.array(planted) < 0.05) >= 0.8 and np.mean(np.array(nothing) < 0.05) <= 0.2
    _, _, acts = built
    exact = residual_noise_floor(acts["mixed"], acts["a"], acts["b"], seed=0, power_sims=20)
    assert exact.p_value == 1.0 and exact.mde >= 0.01  # the resolution (0.017 here) bounds what could be seen
    proj = projection_null(acts["mixed"], acts["a"], acts["b"], acts["c"], n_permutations=300, seed=0, power_sims=60)
    assert proj.power.unit == "projection coefficient" and 0 < proj.mde < 1  # the built coefficient 1 is detectable
    skipped = residual_noise_floor(*data(48, 0.0, 1), seed=0, power_sims=0)
    assert skipped.power is None and skipped.mde is None and skipped.p_value == large.p_value
