"""Claims as records (interp.claims): the verdict and its words follow from the fields by rule; JSON round trip."""

from __future__ import annotations

import json

import pytest

from interp.claims import Claim, claim_from_null


def claim(p_values, **kw) -> Claim:
    return Claim("k", "effect", 0.1, "test", 30, tuple(p_values), **kw)


@pytest.mark.parametrize(
    ("p_values", "verdict", "phrase"),
    [
        ((0.001, 0.01, 0.02), "detected", "detected at n = 30 (p = 0.001, 0.01, 0.02 over 3 prompt seeds)"),
        ((0.02, 0.3, 0.5), "not replicated", "detected in 1 of 3 prompt seeds at n = 30"),
        ((0.29, 0.5, 0.07), "not detected", "not detected at n = 30 (p = 0.29, 0.5, 0.07 over 3 prompt seeds)"),
        ((0.02,), "unreplicated", "fewer than 3 replications"),
    ],
)
def test_the_verdict_and_its_words_follow_the_p_values(p_values, verdict, phrase):
    c = claim(p_values, mde=0.2)
    assert c.verdict == verdict and phrase in c.words()
    if verdict == "not detected":
        assert c.words().endswith("detectable ≥ 0.2 with power 0.8")  # never "absent", never "in the span"
        assert "span" not in c.words() and "absent" not in c.words()


def test_a_non_rejection_says_what_the_test_could_not_see():
    assert (
        claim((0.5, 0.6, 0.7), mde=None, mde_max=0.4)
        .words()
        .endswith("not detectable with power 0.8 at any effect up to 0.4")
    )
    assert claim((0.5, 0.6, 0.7)).words().endswith("power not simulated")


def test_a_claim_round_trips_json_and_refuses_what_it_cannot_hold():
    c = claim((0.01, 0.02, 0.03), seeds=(0, 1, 2), ci95=(0.05, 0.15), null_q95=0.04, mde=0.03, unit="ΔP")
    back = Claim.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back == c and back.verdict == "detected" and c.to_dict()["verdict"] == "detected"
    with pytest.raises(ValueError, match=r"^p_values: need at least one p-value in \[0, 1\]"):
        claim(())
    with pytest.raises(ValueError, match="^seeds: one per p-value"):
        claim((0.1, 0.2), seeds=(0,))
    with pytest.raises(ValueError, match="^d: unknown keys"):
        Claim.from_dict({**c.to_dict(), "colour": "red"})


def test_a_claim_from_a_null_summary_reads_every_replication():
    reps = [{"p_value": p, "seed": s} for s, p in enumerate((0.004, 0.2, 0.01))]
    summary = {"statistic": 0.006, "p_value": 0.004, "ci95": [0.002, 0.012], "null_q95": 0.005, "n": 300,
               "mde": 0.004, "note": "null: random directions", "replications": reps,
               "power": {"effects": [0.0, 0.01], "alpha": 0.05, "power": 0.8, "unit": "Σ|ΔP|"}}  # fmt: skip
    c = claim_from_null("ablation", "Σ|ΔP|", summary)
    assert c.p_values == (0.004, 0.2, 0.01) and c.seeds == (0, 1, 2) and c.n == 300 and c.unit == "Σ|ΔP|"
    assert c.verdict == "not replicated" and "detected in 2 of 3 prompt seeds" in c.words()
