"""Hendel et al.'s table (interp.studies.hendel_table): on the hand-built model, whose task vector is built in, the
vector chosen on dev queries recovers the task on held-out test queries exactly; the committed table covers every
shipped model with CIs over prompt seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from interp.models import load_model
from interp.studies import hendel_table as ht

ROOT = Path(__file__).resolve().parents[2]


def test_the_built_task_vector_recovers_the_task_and_its_answer_distribution():
    model = load_model("constructed:retrieval:K=2", device="cpu")
    config = ht.HendelConfig(n_vector=4, n_dev=4, n_test=6, seeds=[0], modes=["replace", "shift"])
    row = ht.measure_task(model, "retrieval", "pos1", 8, config, seed=0)
    assert row["icl"] == 1.0 and row["kl_zero_shot"] == pytest.approx(np.log(2), abs=1e-3)  # zero-shot: 50/50
    for mode in ("replace", "shift"):
        assert row[mode]["layer"] == 2 and row[mode]["task_vector"] == 1.0  # chosen on dev, reported on test
        assert row[mode]["kl"] < 1e-6  # the patched next-token distribution is the in-context one


def test_bad_config_is_refused_before_any_model_is_loaded(monkeypatch, tmp_path):
    monkeypatch.setattr(ht, "load_model", lambda *a, **k: pytest.fail("a model was loaded before the config check"))
    with pytest.raises(ValueError, match="^seeds: need a non-empty list of distinct seeds"):
        ht.run(ht.HendelConfig(seeds=[0, 0]), tmp_path)
    with pytest.raises(ValueError, match="^mode: 'swap' not supported"):
        ht.run(ht.HendelConfig(modes=["swap"]), tmp_path)
    with pytest.raises(ValueError, match="^models: each entry is"):
        ht.run(ht.HendelConfig(models=[["embedded", "bias_add"]]), tmp_path)
    assert not any(tmp_path.iterdir())


def test_the_committed_table_covers_every_shipped_model_with_intervals_over_seeds():
    numbers = json.loads((ROOT / "figures" / "hendel" / "hendel_table.json").read_text())
    assert len(numbers["config"]["seeds"]) >= 3 and numbers["hendel_means"] == ht.HENDEL_MEANS
    by_spec = {m["spec"]: m for m in numbers["models"]}
    assert "embedded" in by_spec and "two_digit" in by_spec and "constructed:retrieval:K=4" in by_spec
    assert sum("size_family" in spec for spec in by_spec) == 4
    built = by_spec["constructed:retrieval:K=4"]["mean_over_tasks"]
    assert built["shift"]["task_vector"]["mean"] == 1.0 and built["icl"]["mean"] == 1.0  # the positive control
    for m in numbers["models"]:
        for row in m["tasks"].values():
            assert len(row["icl"]["per_seed"]) == len(numbers["config"]["seeds"]) and row["icl"]["ci95"] is not None
    assert by_spec["embedded"]["tasks"]["add5"]["bijection"] is True  # Dong et al.'s negative control is marked
