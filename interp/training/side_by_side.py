"""Training runs side by side in subprocesses: wait for them up to a deadline, then stop what is left."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO


def wait_then_stop(
    procs: Mapping[str, subprocess.Popen],
    logs: Sequence[IO],
    *,
    expired: Callable[[], bool],
    poll_s: float = 1.0,
) -> dict[str, int]:
    """Poll ``procs`` until all have ended or ``expired()``; terminate the rest, wait for all, close ``logs``.

    Everything is stopped and closed also when an exception (e.g. Ctrl-C) interrupts the wait. Returns each run's
    exit status.
    """
    try:
        while any(p.poll() is None for p in procs.values()) and not expired():
            time.sleep(poll_s)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            p.wait()
        for f in logs:
            f.close()
    return {name: p.returncode for name, p in procs.items()}
