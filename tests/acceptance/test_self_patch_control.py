"""The self-patch control tells an absent mechanism from a broken intervention (issue 27).

Ground truth on the hand-built model: its layer-3 heads read each task's answer from the query, and the task
direction is written at layer 2. Replacing the query's residual by a task vector therefore keeps the task at layers
0-2 and destroys the query's own lookups at layers 3-4; the control must say exactly that. On the embedded model,
whose query lives at the last position (``x>``), replacement fails at every layer and the shift (x - mu + v) passes.
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


def test_bad_mode_and_tolerance_are_refused(built):
    model, v = built
    with pytest.raises(ValueError, match="^mode: 'swap' not supported; valid: replace, add, shift"):
        best_layer(model, "retrieval", "pos1", v, n_prompts=2, mode="swap")
    with pytest.raises(ValueError, match=r"^control_tolerance: must be a number in \[0, 1\]"):
        best_layer(model, "retrieval", "pos1", v, n_prompts=2, control_tolerance=-0.1)
