"""Time limits inside tests are safety nets against a hang, never speed checks: speed is measured side by side in
``benchmarks/`` (``make bench``), and "fails before the model loads" is tested by what ran, not by seconds.

Every limit here is generous on an idle machine and grows with how busy the machine is when the test starts (issue
36: on a machine busy with four other jobs, a 1 s CLI bound, the device dry run's 60 s budget and a notebook cell's
120 s limit failed): :func:`factor` is the larger of ``INTERP_TEST_TIME_FACTOR`` (default 1) and the processes
waiting for a core per core (``/proc/loadavg``: the one-minute load, and the runnable processes right now).
``tests/busy.sh`` runs any command with every core kept busy by other processes.
"""

from __future__ import annotations

import os

FACTOR_ENV = "INTERP_TEST_TIME_FACTOR"


def factor() -> float:
    """How much longer than on an idle machine a limit allows now (at least 1)."""
    try:
        given = float(os.environ.get(FACTOR_ENV) or 1)
    except ValueError:
        raise ValueError(f"{FACTOR_ENV}={os.environ[FACTOR_ENV]!r}: expected a number >= 1") from None
    cores = os.cpu_count() or 1
    try:
        fields = open("/proc/loadavg").read().split()  # noqa: SIM115 - one short read
        busy = max(float(fields[0]), float(fields[3].split("/")[0]) - 1)  # minus this process itself
    except (OSError, IndexError, ValueError):
        busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1.0, given, busy / cores)


def limit_s(seconds: float) -> float:
    """``seconds`` (the limit on an idle machine) scaled by :func:`factor`."""
    return seconds * factor()
