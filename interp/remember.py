"""Work remembered inside a block: prompts built, answers scored and results computed before are looked up
instead of redone. The one cache of the toolkit's results (the engines keep a second, of what they derive from a
model's weights: :mod:`interp.engines.weights_cache`, for the reason given there).

Inside :func:`remembering`:

- :func:`interp.prompts.build_prompts` returns the same prompt object for the same (family, tasks, mixture,
  examples, sampling, seed, index): prompts are frozen, and generating them is pure.
- :func:`interp.scoring.score_answers` (and its variants) reuse the log-prob of a (prompt text, answer text) pair
  that the same model — same weights, same tokenizer, no hook attached, no per-prompt hooks passed — scored before.
  A weight edited in place, a model moved to another device or dtype, or a hook attached bypasses what was kept.

- :func:`remembered` returns the value an equal key got before (whole results a study shares with another: the
  construction study's trained-model curves are the mixture sweep's retrieval curves).

``interp figures`` runs its studies inside this block: the
task-vector study's mixture curve and the superposition bars score many prompts the mixture sweep already scored,
and the scaling study builds the same prompts for each model. Outside the block nothing is kept. Importing this
module imports no torch.

>>> with remembering():                                # doctest: +SKIP
...     first = score_answers(model, prompts)
...     again = score_answers(model, prompts)           # no forward pass: read back
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

#: (prompt text, answer text as scored) -> (log-prob, whether the answer's first token merged with the prompt's)
ScoresMemo = dict[tuple[str, str], tuple[float, bool]]


@dataclass
class _Memory:
    prompts: dict[tuple, Any] = field(default_factory=dict)
    results: dict[tuple, Any] = field(default_factory=dict)
    scores: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary)  # model -> (state, memo)


_KEPT: contextvars.ContextVar[_Memory | None] = contextvars.ContextVar("interp_remembering", default=None)


@contextmanager
def remembering() -> Iterator[None]:
    """Inside this block, prompts and answer scores computed before are reused (see the module's docstring)."""
    token = _KEPT.set(_Memory())
    try:
        yield
    finally:
        _KEPT.reset(token)


def remembered(key: tuple, compute: Callable[[], T]) -> T:
    """``compute()``, or inside :func:`remembering` the value an equal ``key`` got before.

    >>> with remembering():
    ...     remembered(("x",), lambda: [1]) is remembered(("x",), lambda: [2])
    True
    """
    kept = _KEPT.get()
    if kept is None:
        return compute()
    if key not in kept.results:
        kept.results[key] = compute()
    return kept.results[key]


def prompts_memo() -> dict[tuple, Any] | None:
    """Prompts built earlier in the block by their generation arguments (``None`` outside the block)."""
    kept = _KEPT.get()
    return None if kept is None else kept.prompts


def scores_memo(model) -> ScoresMemo | None:
    """What ``model`` in its current state scored earlier in the block (``None``: outside the block, or a weight is
    an inference tensor, whose in-place changes cannot be seen). The caller asks only when no hook is attached."""
    kept = _KEPT.get()
    if kept is None:
        return None
    state = _state(model)
    if state is None:
        return None
    entry = kept.scores.get(model)
    if entry is None or entry[0] != state:
        entry = kept.scores[model] = (state, {})
    return entry[1]


def _state(model) -> tuple | None:
    """Where every weight and buffer lives and how often it was written (``None`` if that cannot be told)."""
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.is_inference() for t in tensors):  # no version counter: an in-place edit would go unseen
        return None
    return (id(getattr(model, "tokenizer", None)), *((t.data_ptr(), t._version, t.dtype) for t in tensors))
