"""The live explorer, driven as a person drives it: set a control, read the figure it drew.

On the hand-built retrieval model the answers are known: prompts whose examples are all task A answer task A, a 50/50
mixture answers both, and moving a weight slider moves the bars. Bad settings show a message in the panel's status
line (no exception escapes a callback); the pure measurements (:class:`interp.explorer.Explorer`) reject bad
arguments by name before any work; without ipywidgets ``explore`` says what to install.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scripts import load_script

from interp.explorer import Explorer
from interp.models import load_model
from interp.results import AnswerDistribution

pytest.importorskip("ipywidgets")

from interp.panel import NONE, explore  # noqa: E402


@pytest.fixture(scope="module")
def built():
    return load_model("constructed:retrieval:K=3")


@pytest.fixture(scope="module")
def panel(built):
    return explore(built, n_prompts=8)


def bars(fig) -> dict[str, float]:
    """Label → height of the first (measured) trace of an explorer figure."""
    return dict(zip(fig.data[0].x, fig.data[0].y, strict=True))


def test_panel_starts_with_both_figures_drawn(panel):
    assert panel.status.value == ""
    assert panel.family.options == ("retrieval",) and panel.tasks == ("pos1", "pos2")
    assert list(panel.mixture_figure.data[0].x) == ["pos1", "pos2", "other"]
    assert list(panel.patch_figure.data[1].x) == ["pos1", "pos2", "other"]  # the unpatched reference beside it
    assert len(panel.timings) >= 2


def test_weight_sliders_move_the_mixture_bars(panel):
    panel.weights[1].value = 0.0
    panel.weights[0].value = 1.0
    only_a = bars(panel.mixture_figure)
    assert only_a["pos1"] > 0.9 and only_a["pos2"] < 0.1
    panel.weights[1].value = 1.0  # 50/50 once normalised
    half = bars(panel.mixture_figure)
    assert panel.proportions == (0.5, 0.5)
    assert 0.2 < half["pos1"] < 0.8 and 0.2 < half["pos2"] < 0.8
    panel.weights[0].value = 0.0
    only_b = bars(panel.mixture_figure)
    assert only_b["pos2"] > 0.9 and only_b["pos1"] < 0.1
    fig = panel.mixture_figure  # the CI whiskers bracket each bar
    assert all(np.asarray(fig.data[0].error_y.array) >= 0) and all(np.asarray(fig.data[0].error_y.arrayminus) >= 0)
    panel.weights[0].value = 0.5


def test_a_third_task_adds_a_bar(panel):
    panel.task_c.value = "pos3"
    panel.weights[2].value = 0.5
    assert list(panel.mixture_figure.data[0].x) == ["pos1", "pos2", "pos3", "other"]
    assert bars(panel.mixture_figure)["pos3"] > 0.1
    panel.task_c.value = NONE
    assert list(panel.mixture_figure.data[0].x) == ["pos1", "pos2", "other"]


def test_bad_settings_show_in_the_status_line_not_as_a_traceback(panel):
    before = panel.mixture_figure
    panel.task_b.value = "pos1"  # the same task twice
    assert "tasks" in panel.status.value and "each task once" in panel.status.value
    assert panel.mixture_figure is before  # the last good figure stays
    panel.task_b.value = "pos2"
    assert panel.status.value == ""
    panel.weights[0].value = 0.0
    panel.weights[1].value = 0.0
    assert "weights" in panel.status.value
    panel.weights[0].value = panel.weights[1].value = 0.5


def test_intervention_controls_steer_where_the_hand_built_model_keeps_its_task(panel, built):
    """Ground truth: the hand-built model holds the task fractions in layer 2's residual at the query, so v(λ)
    patched there answers pos1 with P = λ and pos2 with 1 − λ; patched at layer 0, before the tasks are read,
    the queries stay at chance (the null beside the effect)."""
    from interp.construction import TASK_LAYER

    panel.mode.value = "replace"
    panel.layer.value = TASK_LAYER
    for lam in (1.0, 0.5, 0.0):
        panel.lam.value = lam
        got = bars(panel.patch_figure)
        assert got["pos1"] == pytest.approx(lam, abs=0.02) and got["pos2"] == pytest.approx(1 - lam, abs=0.02)
    reference = dict(zip(panel.patch_figure.data[1].x, panel.patch_figure.data[1].y, strict=True))
    assert reference["pos1"] == pytest.approx(1 / 3, abs=0.02)  # zero-shot queries, nothing patched: chance
    panel.layer.value = 0
    assert bars(panel.patch_figure)["pos2"] == pytest.approx(1 / 3, abs=0.02)
    panel.mode.value = "add"
    assert "(add)" in panel.patch_figure.layout.title.text and "at layer 0" in panel.patch_figure.layout.title.text
    panel.mode.value = "replace"
    panel.layer.value = built.cfg.n_layers // 2


def test_snapshot_draws_both_charts_with_the_settings_and_leaves_the_panel_as_it_was(panel):
    from interp.construction import TASK_LAYER

    panel.layer.value, panel.lam.value = TASK_LAYER, 0.75
    panel.weights[0].value, panel.weights[1].value = 0.75, 0.25
    fig = panel.snapshot()
    left = [t for t in fig.data if t.xaxis == "x"]
    right = [t for t in fig.data if t.xaxis == "x2"]
    assert len(left) == 1 and len(right) == 2  # the mixture; patched beside unpatched
    assert list(left[0].y) == list(panel.mixture_figure.data[0].y)
    assert list(right[0].y) == list(panel.patch_figure.data[0].y)
    assert right[0].y[0] == pytest.approx(0.75, abs=0.02)  # what the setting says, at the task layer
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["mixed prompts: pos1 0.75, pos2 0.25", f"replace v(λ=0.75) of (pos1, pos2) at layer {TASK_LAYER}"]
    assert panel.settings() == {
        "family": "retrieval",
        "tasks": ["pos1", "pos2"],
        "proportions": [0.75, 0.25],
        "layer": TASK_LAYER,
        "lam": 0.75,
        "mode": "replace",
    }
    assert panel.mixture_figure.data[0].showlegend is None  # copies were restyled, not the panel's figures
    panel.task_b.value = "pos1"  # an error in the status line: the charts no longer match the controls
    with pytest.raises(RuntimeError, match="status line"):
        panel.snapshot()
    panel.task_b.value = "pos2"
    panel.weights[0].value = panel.weights[1].value = 0.5
    panel.layer.value, panel.lam.value = 2, 0.5


def test_repeated_setting_comes_from_the_cache(built):
    ex = Explorer(built, n_prompts=8)
    first = ex.mixture("retrieval", ("pos1", "pos2"), (0.3, 0.7))
    assert ex.mixture("retrieval", ("pos1", "pos2"), (0.3, 0.7)) is first
    assert ex.patched("retrieval", ("pos1", "pos2"), 1, 0.5) is ex.patched("retrieval", ("pos1", "pos2"), 1, 0.5)


def test_distribution_intervals_bracket_the_mean():
    probs = np.array([[0.9, 0.1], [0.7, 0.2], [0.8, 0.0]])
    d = AnswerDistribution.from_probs(probs, "retrieval", ("pos1", "pos2"), "t")
    assert d.labels == ("pos1", "pos2", "other") and d.n_prompts == 3
    np.testing.assert_allclose(d.mean, [0.8, 0.1, 0.1])
    half = 1.959963984540054 * np.array([0.1, 0.1, 0.1]) / np.sqrt(3)  # sample SDs are all 0.1 here
    np.testing.assert_allclose(d.high - d.mean, half) and np.testing.assert_allclose(d.mean - d.low, half)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ex: ex.mixture("bias_add", ("add1",), (1.0,)), "family: 'bias_add' not known"),
        (lambda ex: ex.mixture("retrieval", ("pos9",), (1.0,)), "tasks: 'pos9'"),
        (lambda ex: ex.mixture("retrieval", ("pos1", "pos2"), (0.5, 0.6)), "proportions"),
        (lambda ex: ex.patched("retrieval", ("pos1",), 0, 0.5), "tasks: exactly 2"),
        (lambda ex: ex.patched("retrieval", ("pos1", "pos2"), 99, 0.5), "layer: 99 is out of range"),
        (lambda ex: ex.patched("retrieval", ("pos1", "pos2"), 0, 1.5), "lam: must be a finite number in [0, 1]"),
        (lambda ex: ex.patched("retrieval", ("pos1", "pos2"), 0, 0.5, "swap"), "mode: 'swap' not supported"),
    ],
)
def test_explorer_rejects_bad_arguments_by_name(built, call, message):
    with pytest.raises(ValueError, match=None) as err:
        call(Explorer(built, n_prompts=4))
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n_prompts": 1}, "n_prompts"), ({"n_examples": 0}, "n_examples"), ({"queries": "x"}, "queries: 'x'")],
)
def test_explorer_rejects_bad_settings(built, kwargs, message):
    with pytest.raises(ValueError) as err:
        Explorer(built, **kwargs)
    assert message in str(err.value)


def test_explore_without_ipywidgets_says_what_to_install(built, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ImportError, match="pip install ipywidgets"):
        explore(built)


def test_explore_on_the_embedded_model(embedded_model):
    panel = explore(embedded_model, n_prompts=12)
    assert panel.family.value in panel.family.options and "bias_add" in panel.family.options
    panel.family.value = "bias_add"
    panel.task_a.value, panel.task_b.value = "add2", "add5"
    panel.weights[0].value, panel.weights[1].value = 1.0, 0.0
    assert bars(panel.mixture_figure)["add2"] > 0.9  # bias_add was learned in context
    panel.weights[1].value = 1.0
    half = bars(panel.mixture_figure)
    assert half["add2"] > 0.2 and half["add5"] > 0.2  # superposition, live
    assert panel.status.value == ""


@pytest.mark.parametrize("name", ["explore_embedded", "explore_constructed"])
def test_committed_explore_snapshots_regenerate(tmp_path, name):
    """figures/explore/ (the README's picture of the panel) is what experiments/explore_snapshot.py draws now: the
    same settings and, within GOLDEN_ATOL, the same bars."""
    import json
    from pathlib import Path

    from golden import assert_close_tree

    root = Path(__file__).resolve().parents[2]
    script = load_script("experiments/explore_snapshot.py")
    paths = script.snapshot(name, str(tmp_path))
    assert paths["png"] is None  # the suite runs with INTERP_PNG=0
    fresh = json.loads(Path(paths["json"]).read_text())
    committed = json.loads((root / "figures" / "explore" / f"{name}.json").read_text())
    assert fresh["settings"] == committed["settings"]
    keys = ("mixture", "patched", "unpatched")
    assert_close_tree({k: fresh[k] for k in keys}, {k: committed[k] for k in keys})
