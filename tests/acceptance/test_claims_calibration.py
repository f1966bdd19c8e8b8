"""The claim rules on planted effects (issue 37): on the hand-built model a built task vector is called detected in
every prompt seed and a random direction of its size is not; the trend rule says "rises" for a planted trend and
mostly nothing for noise. The full run's rates are in figures/claims/calibration.json (docs/science.md §7)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from interp.claims import claim_from_null
from interp.construction import TASK_LAYER
from interp.heldout import held_out_seed
from interp.models import load_model
from interp.nulls import steering_null
from interp.prompts import zero_shot_prompts
from interp.studies import claims_calibration as cc
from interp.studies.task_vectors import null_summary
from interp.sweeps import target_means
from interp.vectors import task_vector

ROOT = Path(__file__).resolve().parents[2]


def test_planted_true_and_false_effects_get_the_right_verdict_words():
    model = load_model("constructed:retrieval:K=3", device="cpu")
    words = {}
    for name, dose in (("built", 1.0), ("random", None)):
        reps = []
        for s in (0, 1, 2):
            v = task_vector(model, "retrieval", "pos1", n_prompts=8, n_examples=12, seed=s, layers=[TASK_LAYER])
            queries = zero_shot_prompts("retrieval", ["pos1", "pos2", "pos3"], n_prompts=8, seed=held_out_seed(s))
            centre = target_means(model, queries, [TASK_LAYER], v.hook, 32)[0]
            planted = cc._dosed(v, centre, dose, torch.Generator().manual_seed(s))
            t = steering_null(model, queries, "pos1", planted, TASK_LAYER, mode="shift", n_random=20, seed=s)
            reps.append(null_summary(t, s))
        claim = claim_from_null(name, "rise of P(pos1)", {**reps[0], "replications": reps})
        words[name] = (claim.verdict, claim.words())
    verdict_words = {name: w.split(": ", 1)[1] for name, (_, w) in words.items()}
    assert words["built"][0] == "detected"
    assert verdict_words["built"].startswith("detected at n = 8 (p = 0.048, 0.048, 0.048 over 3 prompt seeds)")
    assert words["random"][0] in ("not detected", "not replicated")
    assert verdict_words["random"].startswith(("not detected at n = 8", "detected in 1 of 3", "detected in 2 of 3"))


def test_the_calibration_study_runs_and_counts_every_trial(tmp_path):
    config = dataclasses.replace(
        cc.CalibrationConfig.quick(), trials=1, n_prompts=6, doses=[1.0], power_sims=0, trend_trials=40
    )
    out = cc.run(config, tmp_path)
    numbers = json.loads((tmp_path / "calibration.json").read_text())
    assert numbers["study"] == "claims_calibration" and out["paths"]["json"] == str(tmp_path / "calibration.json")
    steering = numbers["steering"]
    assert set(steering) == {"random direction", "dose 1"}
    for arm in steering.values():
        assert sum(arm["verdicts"].values()) == config.trials
    assert steering["dose 1"]["detected_rate"] == 1.0 and steering["dose 1"]["mean_rise"] > 0.5
    assert steering["random direction"]["detected_rate"] == 0.0
    trend = numbers["trend"]
    assert trend["rise 1 per size step"]["rises_rate"] >= 0.8 and trend["no trend"]["rises_rate"] <= 0.25


def test_bad_config_is_refused_before_the_model_is_built(tmp_path, monkeypatch):
    monkeypatch.setattr(cc, "load_model", lambda *a, **k: pytest.fail("the model was built before the config check"))
    with pytest.raises(ValueError, match=r"^doses: need a non-empty list of numbers in \(0, 10\]"):
        cc.run(dataclasses.replace(cc.CalibrationConfig.quick(), doses=[]), tmp_path)
    with pytest.raises(ValueError, match="^trials: seed \\+ 100 × trials must stay below 10000"):
        cc.run(dataclasses.replace(cc.CalibrationConfig.quick(), trials=200), tmp_path)
    assert not any(tmp_path.iterdir())


def test_the_committed_calibration_reports_what_the_docs_state():
    numbers = json.loads((ROOT / "figures" / "claims" / "calibration.json").read_text())
    steering = numbers["steering"]
    assert numbers["config"]["replications"] >= 3
    assert steering["random direction"]["detected_rate"] <= 0.1  # the rule's false-positive rate, measured
    assert steering["dose 1"]["detected_rate"] >= 0.9  # the built task vector: detected in every prompt seed
    rates = [steering[f"dose {d:g}"]["detected_rate"] for d in numbers["config"]["doses"]]
    assert rates[-1] >= rates[0]  # more of the built vector, more often detected
