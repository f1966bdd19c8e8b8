"""Studies run together compute an identical result once; outside a run nothing is kept."""

import numpy as np

import interp.studies.mixture_sweep as mixture_sweep
from interp.remember import remembering as shared_results


def test_identical_mixture_curves_are_computed_once_inside_a_run(tiny_char_model, monkeypatch):
    calls = []
    original = mixture_sweep.score_answers

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(mixture_sweep, "score_answers", counting)
    args = dict(n_prompts=3, n_examples=4, seed=0)
    fresh = mixture_sweep.mixture_curve(tiny_char_model, "bias_add", "add1", "add2", [0.0, 1.0], **args)
    assert len(calls) == 2  # one scoring call per d, outside a run every time
    with shared_results():
        first = mixture_sweep.mixture_curve(tiny_char_model, "bias_add", "add1", "add2", [0.0, 1.0], **args)
        again = mixture_sweep.mixture_curve(tiny_char_model, "bias_add", "add1", "add2", [0.0, 1.0], **args)
        assert len(calls) == 4 and again is first
        mixture_sweep.mixture_curve(tiny_char_model, "bias_add", "add1", "add2", [0.0, 1.0], **args | {"seed": 1})
        assert len(calls) == 6  # other arguments: computed
    mixture_sweep.mixture_curve(tiny_char_model, "bias_add", "add1", "add2", [0.0, 1.0], **args)
    assert len(calls) == 8  # the block ended: nothing kept
    np.testing.assert_array_equal(first.a.mean, fresh.a.mean)
