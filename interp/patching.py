"""Activation patching of the residual stream at (layer, position): replace or add a vector. Primitives only.

Two ways in, both through :func:`interp.hooks.add_hooks` (removed exactly, also on error):

- ``with patch(model, v, layer, positions): ...`` (context manager), or
- ``h = add_patch(model, v, layer, positions); ...; h.remove()`` (explicit handle).

Experiments built on these (best layer, λ and simplex sweeps) live in :mod:`interp.sweeps`.

Gotcha: positions are *batch* coordinates (after padding); the toolkit right-pads, so they equal the unpadded
positions of ``encode(tok, text)``. For BPE models, an answer whose first token merges with the prompt's last
token (counted in ``AnswerScores.n_merged``) is scored on a row whose last prompt token differs; the patch still
lands at that position.

>>> v = task_vector(model, "bias_add", "add1")                             # doctest: +SKIP
>>> with patch(model, v, layer=2, positions=[7, 7]):                        # doctest: +SKIP
...     logits = forward_logits(model, tokens)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch

from interp.hooks import HookHandle, add_hooks, check_hook, check_layer, hook_name, in_continuation_pass
from interp.models import model_info
from interp.vectors import TaskVector

MODES = ("replace", "add")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode: {mode!r} not supported; valid: {', '.join(MODES)}")
    return mode


def check_vector_for_model(model, vector: TaskVector, name: str = "vector") -> None:
    """``ValueError`` unless ``vector`` was captured from this model (id, weight processing, width)."""
    if not isinstance(vector, TaskVector):
        raise ValueError(f"{name}: expected a TaskVector, got {type(vector).__name__}")
    info = model_info(model)
    diffs = []
    if vector.model_id != info.model_id:
        diffs.append(f"model_id ({vector.model_id!r} vs model's {info.model_id!r})")
    if vector.processing_dict != asdict(info.processing):
        diffs.append(f"processing ({vector.processing_dict} vs model's {asdict(info.processing)})")
    if vector.d_model != model.cfg.d_model:
        diffs.append(f"d_model ({vector.d_model} vs model's {model.cfg.d_model})")
    if diffs:
        raise ValueError(f"{name}: task vector does not belong to this model; differs in " + "; ".join(diffs))


def _values(vector: TaskVector | torch.Tensor, layer: int, d_model: int) -> torch.Tensor:
    if isinstance(vector, TaskVector):
        return vector.at(layer)
    if not isinstance(vector, torch.Tensor):
        raise ValueError(f"vector_or_tensor: expected a TaskVector or a Tensor, got {type(vector).__name__}")
    if vector.ndim not in (1, 2) or vector.shape[-1] != d_model:
        raise ValueError(
            f"vector_or_tensor: expected shape (d_model={d_model},) or (batch, {d_model}), got {tuple(vector.shape)}"
        )
    return vector


def patch_hook(values: torch.Tensor, rows: torch.Tensor | None, cols: torch.Tensor | int, mode: str) -> Callable:
    """A hook function writing ``values`` (``[d]`` or ``[n, d]``) at ``act[rows, cols]`` (all rows when ``rows`` is
    None); ``mode`` ``"replace"`` or ``"add"``. Used by :func:`add_patch` and by the batched drivers of
    :mod:`interp.sweeps`, which patch different rows of one batch with different values."""

    def fn(act, hook):  # TransformerLens passes the HookPoint as ``hook``
        if in_continuation_pass():  # answer tokens run from the patched prompt's cache: nothing of theirs to patch
            return act
        b, n = act.shape[0], act.shape[1]
        r = torch.arange(b, device=act.device) if rows is None else rows.to(act.device)
        c = torch.as_tensor(cols, device=act.device)
        c = c.expand(r.shape[0]) if c.ndim == 0 else c
        if c.shape[0] != r.shape[0]:
            raise ValueError(f"positions: {c.shape[0]} positions for a batch of {r.shape[0]} sequences")
        if c.numel() and int(c.max()) >= n:
            raise ValueError(f"positions: {int(c.max())} lies beyond the sequence (length {n}) at {hook.name}")
        v = values.to(act.device, act.dtype)
        if v.ndim == 2 and v.shape[0] != r.shape[0]:
            raise ValueError(f"vector_or_tensor: {v.shape[0]} rows of values for a batch of {r.shape[0]} sequences")
        act = act.clone()  # out of place: the input of a resid_pre hook is the previous block's output
        act[r, c] = v if mode == "replace" else act[r, c] + v
        return act

    return fn


def _check_positions(positions: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
    pos = torch.as_tensor(positions, dtype=torch.long)
    if pos.ndim > 1:
        raise ValueError(f"positions: an int or one int per sequence, got shape {tuple(pos.shape)}")
    if (pos < 0).any():
        raise ValueError(f"positions: must be >= 0 (batch coordinates, 0 = BOS), got {pos.tolist()}")
    return pos


@dataclass
class PatchHandle:
    """An attached patch; :meth:`remove` detaches exactly its hook (idempotent)."""

    model: object
    layer: int
    hook: str
    mode: str
    _hooks: HookHandle | None = None

    @property
    def active(self) -> bool:
        return self._hooks is not None and self._hooks.active

    def remove(self) -> None:
        if self._hooks is not None:
            self._hooks.remove()


def add_patch(
    model,
    vector_or_tensor: TaskVector | torch.Tensor,
    layer: int,
    positions: int | Sequence[int] | torch.Tensor,
    *,
    mode: str = "replace",
    hook: str | None = None,
) -> PatchHandle:
    """Attach a patch and return its handle (call ``.remove()``; prefer :func:`patch` where a block fits).

    Args:
        vector_or_tensor: a :class:`TaskVector` (its mean at ``layer``; must come from this model) or a
            ``Float[Tensor, "d_model"]`` / ``Float[Tensor, "batch d_model"]`` (one row per sequence).
        layer: model layer; the hook point is ``blocks.{layer}.hook_{hook}``.
        positions: an int (every sequence) or ``Int[Tensor, "batch"]`` (one per sequence), batch coordinates.
        mode: ``"replace"`` (set the residual) or ``"add"`` (add to it).
        hook: ``"resid_pre" | "resid_mid" | "resid_post"``; default the vector's hook (``"resid_post"`` for tensors).

    Everything is validated before the hook is attached; a position beyond a sequence raises during the run.
    """
    check_mode(mode)
    layer = check_layer(model, layer)
    if isinstance(vector_or_tensor, TaskVector):
        check_vector_for_model(model, vector_or_tensor, "vector_or_tensor")
        hook = check_hook(hook or vector_or_tensor.hook)
        if hook != vector_or_tensor.hook:
            raise ValueError(f"hook: {hook!r} differs from the vector's hook point {vector_or_tensor.hook!r}")
    else:
        hook = check_hook(hook or "resid_post")
    values = _values(vector_or_tensor, layer, model.cfg.d_model)
    pos = _check_positions(positions)
    handle = add_hooks(model, [(hook_name(layer, hook), patch_hook(values, None, pos, mode))])
    return PatchHandle(model, layer, hook, mode, handle)


@contextmanager
def patch(
    model,
    vector_or_tensor: TaskVector | torch.Tensor,
    layer: int,
    positions: int | Sequence[int] | torch.Tensor,
    *,
    mode: str = "replace",
    hook: str | None = None,
) -> Iterator[PatchHandle]:
    """Context manager form of :func:`add_patch`: the hook is removed on exit, also on error."""
    handle = add_patch(model, vector_or_tensor, layer, positions, mode=mode, hook=hook)
    try:
        yield handle
    finally:
        handle.remove()
