"""The one timer of the benchmark scripts (``run.py``, ``nnsight_bench.py``): wall-clock seconds of a call, best of
``repeats``, with the last call's result.

>>> seconds, value = best_of(lambda: sum(range(10)), 2)
>>> value, seconds >= 0
(45, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """``(fewest seconds over repeats calls of fn, the last call's result)``."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result
