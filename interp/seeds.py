"""Seeds: every random choice in the toolkit takes one, checked here once.

A seed is a non-negative integer (numpy's ``SeedSequence`` accepts nothing else); a bool, a float, a negative
number or a string is refused with an error naming the argument, before any work.

>>> check_seed(3)
3
>>> check_seed(-1)
Traceback (most recent call last):
...
interp.validate.ArgumentError: seed: must be an integer >= 0, got -1
"""

from __future__ import annotations

from interp.validate import check_int


def check_seed(seed: object, name: str = "seed") -> int:
    """``seed`` as an ``int`` if it is a non-negative integer (numpy integers too); an
    :class:`~interp.validate.ArgumentError` (a ``ValueError``) naming ``name`` otherwise."""
    return check_int(seed, name, minimum=0)
