"""Compare regenerated result JSON with committed JSON: structure and strings exactly, numbers within a tolerance.

Golden numbers are compared with a stated tolerance, never bit for bit: another CPU (AVX-512 vs AVX2, another thread
count) changes float sums in the last bits.
"""

from __future__ import annotations

import math
from typing import Any

#: Absolute tolerance for probabilities and other O(1) numbers regenerated on another machine.
GOLDEN_ATOL = 1e-5


def assert_close_tree(fresh: Any, committed: Any, *, atol: float = GOLDEN_ATOL, path: str = "$") -> None:
    """Raise ``AssertionError`` naming the first path where ``fresh`` and ``committed`` differ beyond ``atol``."""
    if isinstance(committed, dict):
        assert isinstance(fresh, dict), f"{path}: expected an object, got {type(fresh).__name__}"
        assert sorted(fresh) == sorted(committed), f"{path}: keys {sorted(fresh)} != {sorted(committed)}"
        for k in committed:
            assert_close_tree(fresh[k], committed[k], atol=atol, path=f"{path}.{k}")
    elif isinstance(committed, list):
        assert isinstance(fresh, list) and len(fresh) == len(committed), f"{path}: lengths differ"
        for i, (a, b) in enumerate(zip(fresh, committed, strict=True)):
            assert_close_tree(a, b, atol=atol, path=f"{path}[{i}]")
    elif isinstance(committed, bool) or committed is None or isinstance(committed, str):
        assert fresh == committed, f"{path}: {fresh!r} != {committed!r}"
    elif isinstance(committed, int | float):
        assert isinstance(fresh, int | float) and not isinstance(fresh, bool), f"{path}: {fresh!r} is not a number"
        if math.isnan(committed):
            assert math.isnan(fresh), f"{path}: {fresh} != NaN"
        else:
            assert abs(fresh - committed) <= atol, f"{path}: {fresh} differs from {committed} by more than {atol}"
    else:  # pragma: no cover - JSON has no other types
        assert fresh == committed, path
