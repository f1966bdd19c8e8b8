"""Captures that outgrow memory: a sharded, resumable activation store on disk.

A store is a folder: ``manifest.json`` (what was captured, compared field by field when the store is reopened, and
the finished shards with their SHA-256) and ``shard-NNNNNN.safetensors`` files of at most ``shard_size`` prompts.

- :func:`capture_to` (:mod:`interp.store.writer`; the command line: ``interp capture``) writes it, resumable after a
  kill at any moment, from any engine;
- :class:`ActivationStore` (:mod:`interp.store.reader`) opens it, checks every shard and reads it back memory-mapped,
  chunk by chunk, for the statistics of :mod:`interp.streaming` (task vectors, covariances, projections, nulls);
- :func:`export_hf` (:mod:`interp.store.hf`) writes it as a Hugging Face ``datasets`` folder (Arrow).

>>> from interp.store import capture_to, ActivationStore                      # doctest: +SKIP
>>> store = capture_to("runs/add2", model, prompts, layers=[1, 2], shard_size=500)   # doctest: +SKIP
>>> ActivationStore.open("runs/add2").task_vector() == task_vector(model, ...)  # doctest: +SKIP
True
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "capture_to": "interp.store.writer",
    "HookCapture": "interp.store.writer",
    "DiskFullError": "interp.store.writer",
    "ActivationStore": "interp.store.reader",
    "StoreError": "interp.store.manifest",
    "export_hf": "interp.store.hf",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'interp.store' has no attribute {name!r}; public names: {', '.join(__all__)}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
