"""Tests assert behaviour, not speed (issue 36): no test compares a clock reading, and every time limit (a hang's
safety net) grows with the machine's load (tests/time_limits.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import time_limits

TESTS = Path(__file__).resolve().parents[1]
CLOCKS = {"perf_counter", "monotonic", "time", "process_time"}


def _clock_reads(node: ast.AST) -> list[ast.Call]:
    return [
        n
        for n in ast.walk(node)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in CLOCKS
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "time"
    ]


def test_no_test_asserts_a_duration_and_every_limit_scales():
    bad = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text())
        clocked, scaled = set(), set()  # names assigned from a clock reading; from a scaled limit (a deadline)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                targets = {t.id for t in node.targets if isinstance(t, ast.Name)}
                calls = [
                    n.func.id for n in ast.walk(node.value) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                ]
                scaled |= targets if "limit_s" in calls else set()
                clocked |= targets if _clock_reads(node.value) and "limit_s" not in calls else set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                names = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
                timed = _clock_reads(node.test) or names & (clocked | {"seconds", "elapsed"})
                if timed and not names & scaled:  # a wait that gives up at a scaled deadline is a safety net
                    bad.append(f"{path.relative_to(TESTS)}:{node.lineno} asserts a duration")
            if isinstance(node, ast.keyword) and node.arg in ("timeout", "timeout_s", "within_s"):
                if isinstance(node.value, ast.Constant) and not isinstance(node.value.value, bool | str):
                    bad.append(f"{path.relative_to(TESTS)}:{node.value.lineno} has a fixed {node.arg}")
    allowed = {"acceptance/test_notebook_screenshot.py"}  # a helper's default, photographing with a real browser
    assert [b for b in bad if b.split(":")[0] not in allowed] == []


def test_limits_grow_with_the_factor_and_the_load(monkeypatch):
    monkeypatch.setenv(time_limits.FACTOR_ENV, "3")
    assert time_limits.limit_s(10) >= 30
    monkeypatch.setenv(time_limits.FACTOR_ENV, "soon")
    with pytest.raises(ValueError, match="INTERP_TEST_TIME_FACTOR='soon'"):
        time_limits.factor()
    monkeypatch.delenv(time_limits.FACTOR_ENV)
    assert time_limits.factor() >= 1


@pytest.mark.skipif(not Path("/proc/loadavg").is_file(), reason="reads the load from /proc/loadavg (Linux)")
def test_busy_processes_raise_the_factor():
    """With twice as many busy loops as cores running, limits grow at once (no wait for the load average)."""
    import os

    cores = os.cpu_count() or 1
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * cores)]
    try:
        factors = [time_limits.factor() for _ in range(20)]
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()
    assert max(factors) >= 1.5, factors
