"""The self-patch control tells an absent mechanism from a broken intervention (issue 27), and says when it cannot
tell (issue 37).

Ground truth on the hand-built model: its layer-3 heads read each task's answer from the query, and the task
direction is written at layer 2. Replacing the query's residual by a task vector therefore keeps the task at layers
0-2 and destroys the query's own lookups at layers 3-4; the control's positive form (own vector, own prompts) must say
exactly that. Its negative form (another task's vector, put in the same way) must move the task where the
intervention carries one; where it does not (layers 0-1, before the task is written), keeping the accuracy says
nothing and the control is uninformative. On the embedded model, whose query lives at the last position (``x>``),
replacement fails at every layer, and the shift (x - mu + v) keeps the query but is uninformative: another task's
vector shifted in keeps the accuracy too. Every vector is tested on prompts held out from those it was made from.
"""

from __future__ import annotations

import numpy as np
import pytest

from interp.construction import TASK_LAYER
from interp.models import load_model
from interp.sweeps import best_layer
from interp.vectors import task_vector


@pytest.fixture(scope="module")
def built():
    model = load_model("constructed:retrieval:K=3", device="cpu")
    return model, task_vector(model, "retrieval", "pos1", n_prompts=16, n_examples=12, seed=5)


def test_on_the_hand_built_model_replacement_passes_up_to_the_task_layer_and_fails_above(built):
    model, v = built
    r = best_layer(model, "retrieval", "pos1", v, n_prompts=16, n_examples=12, mode="replace")
    assert r.passes.tolist() == [la <= TASK_LAYER for la in r.layers]
    assert r.best == TASK_LAYER and r.p_correct[TASK_LAYER] > 0.99  # steering works where it is built
    r.check_claim(TASK_LAYER)
    with pytest.raises(ValueError, match=r"^layer: no steering claim at layer 3 \(mode replace\).*passing layers"):
        r.check_claim(3)
    uncontrolled = best_layer(model, "retrieval", "pos1", v, n_prompts=16, n_examples=12, control=False)
    assert uncontrolled.control_accuracy is None and uncontrolled.passes.all()


def test_on_the_embedded_model_replacement_erases_the_query_and_the_shift_keeps_it(embedded_model):
    v = task_vector(embedded_model, "bias_add", "add5", n_prompts=20, seed=1)
    replaced = best_layer(embedded_model, "bias_add", "add5", v, n_prompts=20, mode="replace")
    assert replaced.icl_candidate_accuracy == 1.0
    assert not replaced.passes.any() and replaced.best is None
    assert np.max(replaced.control_accuracy) <= 0.2  # own vector, own prompts: the task is gone
    shifted = best_layer(embedded_model, "bias_add", "add5", v, n_prompts=20, mode="shift")
    assert shifted.passes.all() and shifted.best is not None
    np.testing.assert_allclose(shifted.control_accuracy, 1.0)
    # the negative form: add6's vector shifted into add5's prompts keeps add5's accuracy too - the control cannot fail
    assert shifted.negative_task == "add6" and shifted.control_status == ("uninformative",) * 4
    assert shifted.negative_accuracy.min() >= 0.95 and shifted.negative_p_other.max() < 0.05
    with pytest.raises(ValueError, match=r"^layer: no steering claim at layer 1 \(mode shift\): .* uninformative"):
        shifted.check_claim(1)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # valid where the task is written (2); destroys the query's lookups above it (3, 4); carries nothing below
        ("replace", ("uninformative", "uninformative", "passes", "fails", "fails")),
        # the shift keeps the query everywhere; it carries the task where F (2) and its log h (3) are read downstream
        ("shift", ("uninformative", "uninformative", "passes", "passes", "uninformative")),
        # adding a second copy of the fractions moves the task only through the log's input at layer 3
        ("add", ("uninformative", "uninformative", "uninformative", "passes", "uninformative")),
    ],
)
def test_the_negative_form_tells_a_valid_intervention_from_one_that_shows_nothing(built, mode, expected):
    """For each way in, one layer where it is valid (passes) and one where it is not (fails, or uninformative): the
    control's verdicts equal what the hand-built model's weights say."""
    model, v = built
    r = best_layer(model, "retrieval", "pos1", v, n_prompts=16, n_examples=12, mode=mode)
    assert r.negative_task == "pos2" and r.control_status == expected
    passing = expected.index("passes")
    r.check_claim(r.layers[passing])
    silent = r.layers[expected.index("uninformative")]
    with pytest.raises(ValueError, match=rf"^layer: no steering claim at layer {silent} .* uninformative there"):
        r.check_claim(silent)
    assert r.negative_accuracy[passing] <= 0.5 and r.negative_accuracy[expected.index("uninformative")] >= 0.95


def test_a_vector_is_controlled_and_steered_only_on_prompts_it_was_not_made_from(built):
    """The self-patch control on the vector's own prompts is x - mean + v = x exactly: it could not fail. The overlap
    is planted here and refused before any forward pass, naming the seed to draw instead."""
    model, v = built  # made from seed 5, prompts 0..15
    with pytest.raises(ValueError, match=r"^seed: .* share \(seed, index\) .* seed=held_out_seed\(5\) = 10005"):
        best_layer(model, "retrieval", "pos1", v, n_prompts=4, n_examples=12, seed=5, mode="shift")
    with pytest.raises(ValueError, match=r"^seed: .* other_vector was made from"):
        best_layer(model, "retrieval", "pos1", v, n_prompts=4, n_examples=12, seed=0, other_vector=task_vector(
            model, "retrieval", "pos2", n_prompts=4, n_examples=12, seed=0))  # fmt: skip
    uncontrolled = best_layer(model, "retrieval", "pos1", v, n_prompts=4, n_examples=12, control=False)
    assert uncontrolled.control_status == ("not run",) * 5


def test_bad_mode_and_tolerance_are_refused(built):
    model, v = built
    with pytest.raises(ValueError, match="^mode: 'swap' not supported; valid: replace, add, shift"):
        best_layer(model, "retrieval", "pos1", v, n_prompts=2, mode="swap")
    with pytest.raises(ValueError, match=r"^control_tolerance: must be a finite number in \[0, 1\]"):
        best_layer(model, "retrieval", "pos1", v, n_prompts=2, control_tolerance=-0.1)


@pytest.fixture(scope="module")
def query_last():
    """The second construction: the query's letters are copied into its last position in layer 1, so that replacing
    that residual erases them (the failure mode of ``x>`` prompts), while the task direction stays at layer 2."""
    model = load_model("constructed:retrieval:K=2:query=last", device="cpu")
    vectors = {t: task_vector(model, "retrieval", t, n_prompts=16, n_examples=12, seed=5) for t in ("pos1", "pos2")}
    return model, vectors


def test_the_control_flags_replacement_where_the_second_construction_holds_the_query(query_last):
    model, vectors = query_last
    r = best_layer(model, "retrieval", "pos1", vectors["pos1"], n_prompts=16, n_examples=12, mode="replace")
    assert r.passes.tolist() == [True, False, False, False, False]  # from layer 1 on, the query lives at the patch
    assert r.p_correct[TASK_LAYER] < 0.01  # the uncontrolled reading: "no task vector at the task layer" - wrong
    with pytest.raises(ValueError, match="no steering claim at layer 2"):
        r.check_claim(TASK_LAYER)
    shifted = best_layer(model, "retrieval", "pos1", vectors["pos1"], n_prompts=16, n_examples=12, mode="shift")
    assert shifted.passes.all() and shifted.best == TASK_LAYER and shifted.p_correct[TASK_LAYER] > 0.99


def test_subspace_and_shift_interventions_steer_exactly_as_built(query_last):
    from interp.construction import task_directions
    from interp.interventions import replace_in_subspace
    from interp.prompts import zero_shot_prompts
    from interp.sweeps import lambda_sweep, patched_scores

    model, vectors = query_last
    va, vb = vectors["pos1"], vectors["pos2"]
    queries = zero_shot_prompts("retrieval", ["pos1", "pos2"], n_prompts=16, seed=3)
    for lam in (0.0, 0.3, 0.7, 1.0):
        mix = lam * va + (1 - lam) * vb
        iv = replace_in_subspace(mix, TASK_LAYER, task_directions(model))  # only the task fractions change
        p = patched_scores(model, queries, iv).probs.mean(axis=0)
        np.testing.assert_allclose(p, [lam, 1 - lam], atol=5e-3)
    sweep = lambda_sweep(model, "retrieval", "pos1", "pos2", va, vb, lambdas=[0.0, 0.5, 1.0], layers=[TASK_LAYER],
                         n_prompts=16, mode="shift", mixed_reference=False)  # fmt: skip
    # the shift also moves the lookups by the difference between the vectors' queries and these (other seeds): a
    # little, so P(a_A) follows λ within 0.03 (the subspace replacement above touches only the task fractions)
    np.testing.assert_allclose(sweep.at_layer(TASK_LAYER)[:, 0], [0.0, 0.5, 1.0], atol=0.03)
    replaced = lambda_sweep(model, "retrieval", "pos1", "pos2", va, vb, lambdas=[0.0, 1.0], layers=[TASK_LAYER],
                            n_prompts=16, mode="replace", mixed_reference=False)  # fmt: skip
    assert replaced.at_layer(TASK_LAYER)[:, :2].max() < 0.01  # the query is gone: no answer gets any mass


def test_the_steering_null_accepts_the_built_direction_and_rejects_a_random_one(query_last):
    import dataclasses

    import torch

    from interp.nulls import steering_null
    from interp.prompts import zero_shot_prompts

    model, vectors = query_last
    queries = zero_shot_prompts("retrieval", ["pos1", "pos2"], n_prompts=16, seed=3)
    real = steering_null(model, queries, "pos1", vectors["pos1"], TASK_LAYER, mode="shift", n_random=10, seed=0)
    assert real.statistic > 0.4 and real.p_value <= 1 / 11 + 1e-9
    g = torch.Generator().manual_seed(2)
    noise = dataclasses.replace(
        vectors["pos1"], mean=vectors["pos1"].mean + 5 * torch.randn(vectors["pos1"].mean.shape, generator=g)
    )
    fake = steering_null(model, queries, "pos1", noise, TASK_LAYER, mode="shift", n_random=10, seed=0)
    assert fake.p_value > 0.05


def test_neutral_context_queries_are_distinct_prompts_and_report_how_many_queries(embedded_model):
    """bias_add has ten distinct queries: a zero-shot mean rests on ten samples however many prompts are drawn; the
    neutral context (random-answer examples) makes every prompt distinct and says how many queries there are."""
    from interp.sweeps import query_prompts

    zs = query_prompts("bias_add", ["add1", "add7"], "zero_shot", n_prompts=60, n_examples=8, seed=0)
    neutral = query_prompts("bias_add", ["add1", "add7"], "neutral", n_prompts=60, n_examples=8, seed=0)
    assert len({p.text for p in zs}) == 10 and len({p.text for p in neutral}) == 60
    assert [p.query for p in zs] == [p.query for p in neutral] and all(p.n_examples == 8 for p in neutral)
    v = task_vector(embedded_model, "bias_add", "add5", n_prompts=10, seed=1)
    r = best_layer(embedded_model, "bias_add", "add5", v, n_prompts=30, mode="shift", queries="neutral", n_examples=8)
    assert r.queries == "neutral" and r.n_distinct_queries == 10 and r.passes.all()
    with pytest.raises(ValueError, match="^queries: 'some' not supported; valid: zero_shot, neutral"):
        best_layer(embedded_model, "bias_add", "add5", v, n_prompts=2, queries="some")
