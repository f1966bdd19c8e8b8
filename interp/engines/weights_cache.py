"""What engines derive from a model's weights (side-by-side Q/K/V, live heads, MLPs that write nothing, a zero output
bias), computed once per module and kept until a weight changes.

Kept as its own cache, not folded into the study-level ones (:mod:`interp.remember`), because its key is the weights'
identity and version, not the prompts: it must stay valid across studies and notebooks and vanish with the module
(a ``WeakKeyDictionary``), and an in-place edit of a weight (``W_O.zero_()``) must invalidate it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch


def cached_from_weights(module, what: str, tensors: tuple[torch.Tensor, ...], compute: Callable[[], object]):
    """``compute()``, kept per ``module`` and ``what`` until any of ``tensors`` changes (in place or replaced).
    Inference tensors (made under ``torch.inference_mode``) keep no version counter: computed every time."""
    if any(t.is_inference() for t in tensors):
        return compute()
    key = tuple((t.data_ptr(), t._version, tuple(t.shape), t.device) for t in tensors)
    kept = _DERIVED.setdefault(module, {})
    if what not in kept or kept[what][0] != key:
        with torch.inference_mode(False), torch.no_grad():  # usable inside and outside inference mode
            kept[what] = (key, compute())
    return kept[what][1]


_DERIVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
