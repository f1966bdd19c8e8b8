"""Studies run together compute an identical result once; outside a run nothing is kept."""

from pathlib import Path

import numpy as np

import interp.studies.mixture_sweep as mixture_sweep
from interp.studies.common import shared_results


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


def test_studies_in_two_processes_give_the_same_numbers(tmp_path, embedded_model):
    """``jobs=2`` runs one group here and one in a spawned worker (its own model copy, half the threads): every
    study's numbers equal a one-process run's (up to float rounding: one thread sums in another order); the return
    value keeps the order asked for."""
    import json

    import torch
    from golden import assert_close_tree

    from interp.studies import run_studies

    names = ["generation_collapse", "superposition_bars"]
    threads = torch.get_num_threads()
    two = run_studies(names, model=embedded_model, quick=True, out=tmp_path / "two", progress=False, jobs=2)
    assert torch.get_num_threads() == threads  # the thread share is given back
    one = run_studies(names, model=embedded_model, quick=True, out=tmp_path / "one", progress=False, jobs=1)
    assert list(two) == names
    for name in names:
        numbers = [json.loads(Path(r[name]["paths"]["json"]).read_text()) for r in (one, two)]
        for n in numbers:
            n.pop("runtime_s", None)
        assert_close_tree(numbers[0], numbers[1], atol=1e-6)


def test_study_groups_and_job_errors(tiny_char_model):
    import pytest

    from interp.studies import STUDIES, auto_jobs, run_studies, study_groups

    groups = study_groups(list(STUDIES), 2)
    assert sorted(sum(groups, [])) == sorted(STUDIES)
    assert any({"mixture_sweep", "construction"} <= set(g) for g in groups)  # construction reuses the sweep's curves
    assert study_groups(["construction"], 3) == [["construction"]]
    assert auto_jobs(tiny_char_model, list(STUDIES), quick=False) == 1  # not from load_model: cannot be reloaded
    with pytest.raises(ValueError, match="jobs: must be an integer >= 1"):
        run_studies(["mixture_sweep"], model=tiny_char_model, jobs=0)
    with pytest.raises(ValueError, match="jobs: running studies in parallel needs a model"):
        run_studies(["mixture_sweep"], model=tiny_char_model, jobs=2)
