"""Result values: one-line repr, JSON round trip from their own fields, tidy frames; plots draw them (no model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from interp import plots
from interp.models import embedded_model_dir
from interp.results import (
    RESULT_TYPES,
    BestLayer,
    CheckpointRecord,
    Decomposition,
    MixtureCurve,
    MixtureSweep,
    Result,
    TrainingCurve,
)

ROOT = Path(__file__).resolve().parents[2]


def sweep(n_points=3, n_layers=2):
    rng = np.random.default_rng(0)
    lam = np.linspace(0, 1, n_points)
    probs = rng.dirichlet(np.ones(3), size=(n_points, n_layers))
    return MixtureSweep(
        "bias_add",
        ("add1", "add7"),
        np.stack([lam, 1 - lam], 1),
        tuple(range(n_layers)),
        probs,
        probs / 10,
        probs[:, 0],
        probs[:, 0] / 10,
        np.stack([lam, 1 - lam], 1),
        8,
        20,
        0,
        "replace",
    )


def test_repr_is_one_short_line_without_arrays():
    s = sweep(31, 12)
    text = repr(s)
    assert "\n" not in text and len(text) < 400 and "probs[31×12×3]" in text
    assert "0." not in text.split("weights")[1][:20]  # no array values printed


def test_json_round_trip_and_save_load(tmp_path):
    s = sweep()
    again = MixtureSweep.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again == s and again is not s
    path = s.save(tmp_path / "sweep.json")
    assert Result.load(path) == s
    with pytest.raises(ValueError, match="unknown keys"):
        MixtureSweep.from_dict({**s.to_dict(), "bogus": 1})
    (tmp_path / "other.json").write_text('{"type": "Nope"}')
    with pytest.raises(ValueError, match="no interp result"):
        Result.load(tmp_path / "other.json")


def test_frames_are_tidy():
    s = sweep(3, 2)
    frame = s.to_frame()
    probs = frame.dropna(subset=["probs"])
    assert len(probs) == 3 * 2 * 3 and {"point", "layers", "outcome", "probs", "sem"} <= set(frame.columns)
    row = probs[(probs.point == 1) & (probs.layers == 1) & (probs.outcome == "add7")]
    assert float(row.probs.iloc[0]) == s.probs[1, 1, 1]
    d = Decomposition(np.ones((2, 2)), np.zeros(2), np.ones(2), np.ones(2), (0, 1), ("a", "b"), "lstsq", True, True)
    assert set(d.to_frame().names.dropna()) == {"a", "b"}


def test_every_result_type_is_registered():
    assert {
        "BestLayer",
        "MixtureSweep",
        "Decomposition",
        "MixtureCurve",
        "UniformMixture",
        "TasksSolvedCurve",
        "CheckpointRecord",
        "TrainingCurve",
        "CosineMatrix",
        "Projection",
        "ProportionSweep",
    } <= set(RESULT_TYPES)


def test_committed_numbers_load_as_results_and_plot():
    """The committed figures' and card's JSON are results: they load, round-trip and draw."""
    mixture = json.loads((ROOT / "figures" / "mixture_sweep" / "mixture_sweep.json").read_text())
    curves = [MixtureCurve.from_dict(c) for c in mixture["curves"]]
    assert [c.to_dict() for c in curves] == mixture["curves"]
    assert len(plots.mixture_sweep_figure(curves, title="t").data) > 0
    card = json.loads((embedded_model_dir() / "eval.json").read_text())
    history = [CheckpointRecord.from_dict(h) for h in card["history"]]
    assert [h.to_dict() for h in history] == card["history"]
    assert len(plots.across_training_figure(history, title="t").data) > 0
    assert len(plots.loss_curve_figure(TrainingCurve(np.arange(3), np.ones(3)), title="t").data) == 1
    best = BestLayer(
        "bias_add",
        "add1",
        (0, 1),
        np.array([0.2, 0.6]),
        np.array([0.1, 0.7]),
        0.1,
        0.0,
        0.9,
        1.0,
        4,
        0,
        n_candidates=10,
    )
    assert best.chance == 0.1 and len(plots.best_layer_figure([[best]], title="t").data) > 0


def test_answer_scores_print_in_one_line_and_convert():
    from interp.results import AnswerScores

    s = AnswerScores(np.log([[0.5, 0.25], [0.25, 0.5]]), ("add1", "add7"), False)
    assert repr(s) == (
        "AnswerScores(2 prompts; mean P: add1=0.375, add7=0.375, other=0.250; include_newline=False, n_merged=0)"
    )
    assert AnswerScores.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    frame = s.to_frame()
    assert len(frame) == 4 and set(frame.tasks) == {"add1", "add7"}


@pytest.mark.parametrize(("text", "words"), [("", "is empty"), ('{"type": "MixtureCurve", "fam', "is not valid JSON")])
def test_loading_a_cut_short_file_names_it(tmp_path, text, words):
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"^path: {path} {words}"):
        Result.load(path)


def test_loading_names_a_missing_or_unreadable_field(tmp_path):
    """Issue 36: a result file with a field missing raised a TypeError listing constructor arguments, one with a bad
    value numpy's "could not convert string to float"; both now name the file and the field."""
    from interp.results import Result

    path = tmp_path / "r.json"
    path.write_text(json.dumps({"type": "AnswerScores", "log_probs": [[0.0]], "tasks": ["a"]}))
    with pytest.raises(ValueError, match=r"^path: .*r\.json: data: missing fields \['include_newline'\] of AnswerS"):
        Result.load(path)
    path.write_text(json.dumps({"type": "AnswerScores", "log_probs": "abc", "tasks": ["a"], "include_newline": False}))
    with pytest.raises(ValueError, match=r"^path: .*r\.json: data\['log_probs'\]: cannot be read as ndarray"):
        Result.load(path)
