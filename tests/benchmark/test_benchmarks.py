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
        "head effects",
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
    subprocess.run(cmd, check=True, capture_output=True, timeout=900, cwd=ROOT)
    rows = json.loads(out.read_text())["rows"]
    equality = [r for r in rows if "equality" in r["name"]]
    assert equality and all(r["pass"] for r in equality), [(r["name"], r["ratio"]) for r in equality]
