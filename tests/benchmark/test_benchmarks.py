"""Benchmarks as tests: the committed measurements are complete and say what they compare; a quick run of the
benchmark script finds every fast route equal to its baseline (the speed targets themselves are read from the
committed ``benchmarks/results.json`` by a person, never asserted here: timings differ across machines).

Run alone with ``pytest tests/benchmark -m ""`` (the quick run is marked slow: about three minutes on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scripts import load_script
from time_limits import limit_s

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results.json"


def test_committed_results_hold_every_section_with_equality_checks_that_pass():
    data = json.loads(RESULTS.read_text())
    names = [r["name"] for r in data["rows"]]
    sections = (
        "score vs paper loop",
        "sweep vs per-cell",
        "capture mem",
        "beam search",
        "head CIE vs TransformerLens per-head loop",
        "interp figures",
    )
    for section in sections:
        assert any(n.startswith(section) for n in names), section
    equality = [r for r in data["rows"] if "equality" in r["name"]]
    assert equality and all(r["pass"] for r in equality), [r["name"] for r in equality if not r["pass"]]
    assert {"torch", "threads"} <= set(data["meta"]), data["meta"]


@pytest.mark.slow
def test_a_quick_benchmark_run_finds_every_route_equal_to_its_baseline(tmp_path):
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--only", "scoring", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=limit_s(900), cwd=ROOT)
    rows = json.loads(out.read_text())["rows"]
    equality = [r for r in rows if "equality" in r["name"]]
    assert equality and all(r["pass"] for r in equality), [(r["name"], r["ratio"]) for r in equality]


def _versions():
    """benchmarks/compare_versions.py, loaded by its path (a bare ``import`` would find tests/versions.py first)."""
    return load_script("benchmarks/compare_versions.py")


def test_version_comparison_flags_a_slower_row_a_new_failure_and_skips_rows_of_one_run():
    versions = _versions()
    old = {"meta": {"transformer_lens": "3.9.0"}, "rows": [
        {"name": "a", "ours_s": 1.0, "pass": True},
        {"name": "b", "ours_s": 1.0, "pass": True},
        {"name": "gone", "ours_s": 1.0, "pass": True},
        {"name": "equality", "ours_s": 0.0, "pass": True},
    ]}  # fmt: skip
    new = {"meta": {"transformer_lens": "4.3.0"}, "rows": [
        {"name": "a", "ours_s": 1.2, "pass": True},
        {"name": "b", "ours_s": 1.3, "pass": False},
        {"name": "new", "ours_s": 9.0, "pass": True},
        {"name": "equality", "ours_s": 0.0, "pass": True},
    ]}  # fmt: skip
    out = versions.compare(old, new, noise=1.25)
    assert [r["name"] for r in out["rows"]] == ["a", "b", "equality"]
    s = out["summary"]
    assert s["slower"] == ["b"] and s["newly_failing"] == ["b"] and s["timed"] == 2
    assert abs(s["median_new_over_old"] - 1.25) < 1e-12
    with pytest.raises(ValueError, match="^noise: must be >= 1"):
        versions.compare(old, new, noise=0.5)


def test_committed_version_comparison_is_what_the_two_committed_runs_give():
    committed = ROOT / "benchmarks" / "versions.json"
    old, new = (json.loads((ROOT / "benchmarks" / f).read_text()) for f in ("results_tl3.json", "results.json"))
    assert json.loads(committed.read_text()) == _versions().compare(
        old, new, json.loads(committed.read_text())["noise"]
    )
    assert old["meta"]["transformer_lens"].startswith("3.") and new["meta"]["transformer_lens"].startswith("4.")


def test_committed_nnsight_results_hold_every_comparison_with_equality_checks_that_pass():
    """``make bench-nnsight`` (issue 38): the engine against a per-prompt nnsight loop, a hand-batched trace and the
    fastest engine, on scoring, sweep and capture; capture memory; what each study sends."""
    data = json.loads((ROOT / "benchmarks" / "results_nnsight.json").read_text())
    names = [r["name"] for r in data["rows"]]
    for work in ("score", "sweep", "capture"):
        for against in ("per-prompt nnsight loop", "hand-batched trace", "fastest engine") if work != "capture" else (
            "per-prompt nnsight loop", "hand-batched trace", "mem vs slices"):  # fmt: skip
            assert any(n.startswith(f"nnsight {work} vs {against}") or n.startswith(f"nnsight {work} {against}")
                       for n in names), (work, against)  # fmt: skip
    equality = [r for r in data["rows"] if "equality" in r["name"]]
    assert len(equality) == 3 and all(r["pass"] for r in equality)
    studies = next(r for r in data["rows"] if r["name"].startswith("nnsight requests per study"))["info"]["studies"]
    assert set(studies) == {"mixture_sweep", "superposition_bars", "task_vectors", "heads"}
    assert all(s["traces"] >= s["requests"] >= 1 and s["request_bytes"] > 0 for s in studies.values())
