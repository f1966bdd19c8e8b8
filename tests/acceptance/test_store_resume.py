"""A capture killed with SIGKILL at random (seeded) moments and rerun each time ends with a store equal, bit for bit,
to one captured without interruption: no row lost or duplicated, no half-written file listed, nothing left behind.

The child is a real process: ``tests/capture_child.py`` (a synthetic engine; the child starts in the time torch takes
to import) by default, and ``interp capture`` on the embedded model in the slow variant. Each kill waits for the
child's ``capturing`` line, then a random delay drawn from ``[0, T / kills]`` (T: the uninterrupted capture's time),
so that the kills spread over the run and land while it writes (the deterministic twin, a failure injected at each
write step, is in tests/unit/test_store.py).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from time_limits import limit_s

from interp.store import ActivationStore

ROOT = Path(__file__).resolve().parents[2]
CHILD = [sys.executable, str(ROOT / "tests" / "capture_child.py")]


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def run_until_done(cmd: list[str]) -> float:
    """Run ``cmd`` to its end; seconds from its ``capturing`` line to its exit."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    for line in proc.stdout:
        if line.startswith("capturing"):
            break
    start = time.perf_counter()
    _, err = proc.communicate(timeout=limit_s(600))
    assert proc.returncode == 0, err[-2000:]
    return time.perf_counter() - start


def kill_at_random_moments(cmd: list[str], n_kills: int, window_s: float, seed: int) -> int:
    """Start ``cmd`` and SIGKILL it ``n_kills`` times, each a random delay in ``[0, window_s]`` after its
    ``capturing`` line; returns how many kills hit a running capture (the others found it finished)."""
    rng = random.Random(seed)
    hits = 0
    for _ in range(n_kills):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        line = proc.stdout.readline()
        assert line.startswith("capturing"), line
        time.sleep(rng.uniform(0, window_s))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            hits += 1
        proc.wait(timeout=limit_s(600))
        proc.stdout.close()
    return hits


def check_kills_then_resume(cmd_for, tmp_path: Path, n_kills: int, seed: int) -> None:
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    capture_s = run_until_done(cmd_for(reference))
    hits = kill_at_random_moments(cmd_for(killed), n_kills, capture_s / n_kills, seed)
    assert hits >= n_kills // 2, f"only {hits} of {n_kills} kills found the capture running"
    run_until_done(cmd_for(killed))
    assert files(killed) == files(reference)  # every shard and the manifest, bit for bit
    store = ActivationStore.open(killed)
    assert torch.equal(store.prompt_indices(), torch.arange(store.n_prompts))  # no row lost or duplicated


@pytest.mark.parametrize("n_kills", [3, pytest.param(20, marks=pytest.mark.slow)])
def test_sigkill_at_random_moments_then_rerun_equals_an_uninterrupted_capture(n_kills, tmp_path):
    check_kills_then_resume(lambda folder: [*CHILD, str(folder), "8000", "500"], tmp_path, n_kills, seed=n_kills)


@pytest.mark.slow
def test_interp_capture_killed_8_times_on_the_embedded_model_resumes_bit_for_bit(tmp_path):
    """The command line with the real engine (every start loads the model: 16 min for 20 kills under load here)."""

    def cmd(folder: Path) -> list[str]:
        return [sys.executable, "-m", "interp", "capture", "--family", "bias_add", "--tasks", "add2,add7",
                "--n-prompts", "600", "--n-examples", "8", "--shard-size", "40", "--hooks", "resid_mid,resid_post",
                "--store-dtype", "bfloat16", "--out", str(folder)]  # fmt: skip

    check_kills_then_resume(cmd, tmp_path, 8, seed=0)
