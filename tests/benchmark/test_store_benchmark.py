"""The store's benchmark (``benchmarks/run.py --only store``): the committed measurements hold every row, at 10⁵
prompts, with the streamed task vector equal to the in-memory one; one measurement script runs as the section runs
it (slow: it loads the embedded model in fresh processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results_store.json"


def test_committed_store_results_hold_every_row_at_ten_to_the_fifth_prompts():
    data = json.loads(RESULTS.read_text())
    names = [r["name"] for r in data["rows"]]
    for prefix in ("store capture vs in-memory", "store peak RSS", "store bytes on disk per prompt", "store equality"):
        assert sum(n.startswith(prefix) for n in names) == 1, prefix
    info = data["rows"][0]["info"]
    assert info["prompts"] == [1_000, 10_000, 100_000] and not data["meta"]["quick"]
    assert set(info["peak_rss_mb"]) == {"1000", "10000", "100000"} and info["in_memory_peak_rss_mb"] > 0
    equality = next(r for r in data["rows"] if r["name"].startswith("store equality"))
    assert equality["pass"] and equality["ratio"] == 0.0
    assert {"threads", "torch", "cpu_count"} <= set(data["meta"])


@pytest.mark.slow
def test_the_measurement_script_reports_what_the_section_reads(tmp_path):
    def run(*args: str) -> dict:
        cmd = [sys.executable, str(ROOT / "benchmarks" / "store_run.py"), *args]
        return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout)

    store = run("store", "30", str(tmp_path / "s"), "float32")
    assert store["prompts"] == 30 and store["bytes"] > 30 * store["layers"] * store["d_model"] * 4
    memory = run("memory", "30", str(tmp_path / "memory_mean.pt"))
    read = run("read", str(tmp_path / "s"))
    assert read["prompts"] == 30 and memory["peak_rss_mb"] > 0
    import torch

    assert torch.equal(torch.load(tmp_path / "store_mean.pt"), torch.load(tmp_path / "memory_mean.pt"))
