"""Activation patching: :class:`~interp.interventions.Intervention` values applied to the residual stream by one hook
factory. Primitives only.

Two ways in, both through :func:`interp.hooks.add_hooks` (removed exactly, also on error):

- ``with patch(model, what, layer, positions): ...`` (context manager), or
- ``h = add_patch(model, what, layer, positions); ...; h.remove()`` (explicit handle),

where ``what`` is an :class:`~interp.interventions.Intervention` (its layer, mode and hook), or a
:class:`~interp.vectors.TaskVector` / ``[d_model]`` tensor with ``layer`` and ``mode`` (``"replace"`` or ``"add"``).
Every engine of the toolkit patches through :func:`interp.interventions.intervention_hook`, so a patch means one
thing everywhere.
Experiments built on these (best layer, λ and simplex sweeps) live in :mod:`interp.sweeps`.

Gotcha: positions are *batch* coordinates (after padding); the toolkit right-pads, so they equal the unpadded
positions of ``encode(tok, text)``. A hook attached here acts on every forward pass of the model while attached,
so the toolkit's scoring and generation run full sequences (no key-value cache) when they find hooks attached.

>>> v = task_vector(model, "bias_add", "add1")                             # doctest: +SKIP
>>> with patch(model, v, layer=2, positions=[7, 7]):                        # doctest: +SKIP
...     logits = forward_logits(model, tokens)
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch

from interp.hooks import HookHandle, add_hooks, check_hook, check_layer
from interp.interventions import Intervention, check_intervention, check_mode, intervention_hook
from interp.models import model_info
from interp.validate import (
    ArgumentError,
    ArgumentTypeError,
    check_int,
    check_model,
    check_sequence,
    check_vector,
    is_tensor,
)
from interp.vectors import TaskVector

__all__ = [
    "PatchHandle",
    "add_patch",
    "as_intervention",
    "check_intervention",
    "check_mode",
    "check_vector_for_model",
    "intervention_hook",
    "patch",
]


def check_vector_for_model(model, vector: TaskVector, name: str = "vector") -> None:
    """:class:`~interp.validate.ArgumentError` (a ``ValueError``) unless ``vector`` is a TaskVector captured from this
    model (id, weight processing, width)."""
    if not isinstance(vector, TaskVector):
        hint = " (a tensor is one layer's values; a TaskVector comes from interp.task_vector)"
        raise ArgumentTypeError(name, f"expected a TaskVector, got {type(vector).__name__}" + hint * is_tensor(vector))
    info = model_info(model)
    diffs = []
    if vector.model_id != info.model_id:
        diffs.append(f"model_id ({vector.model_id!r} vs model's {info.model_id!r})")
    if vector.processing_dict != asdict(info.processing):
        diffs.append(f"processing ({vector.processing_dict} vs model's {asdict(info.processing)})")
    if vector.d_model != model.cfg.d_model:
        diffs.append(f"d_model ({vector.d_model} vs model's {model.cfg.d_model})")
    if diffs:
        raise ArgumentError(name, "task vector does not belong to this model; differs in " + "; ".join(diffs))


def _check_positions(positions: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
    """``positions`` (an int, or one int per sequence) as a long tensor of integers >= 0."""
    if isinstance(positions, torch.Tensor):
        if positions.is_floating_point() or positions.is_complex():
            raise ArgumentTypeError("positions", f"need integers, got a {positions.dtype} tensor")
    elif isinstance(positions, numbers.Integral) and not isinstance(positions, bool):
        positions = int(positions)
    else:
        positions = [check_int(p, "positions") for p in check_sequence(positions, "positions", what="positions")]
    pos = torch.as_tensor(positions, dtype=torch.long)
    if pos.ndim > 1:
        raise ArgumentError("positions", f"an int or one int per sequence, got shape {tuple(pos.shape)}")
    if (pos < 0).any():
        raise ArgumentError("positions", f"must be >= 0 (batch coordinates, 0 = BOS), got {pos.tolist()}")
    return pos


def as_intervention(
    model, what, layer: int | None, *, mode: str = "replace", hook: str | None = None, name: str = "what"
) -> Intervention:
    """``what`` (an Intervention, a TaskVector of this model or a ``[d_model]`` tensor) as an Intervention."""
    check_model(model)
    if isinstance(what, Intervention):
        if layer is not None and layer != what.layer:
            raise ArgumentError("layer", f"{layer} differs from the intervention's layer {what.layer}")
        return check_intervention(model, what, name)
    check_mode(mode)
    if hook is not None:
        check_hook(hook)
    if layer is None:
        raise ArgumentError("layer", "needed unless `what` is an Intervention")
    layer = check_layer(model, layer)
    if isinstance(what, TaskVector):
        check_vector_for_model(model, what, name)
        hook = hook or what.hook
        if hook != what.hook:
            raise ArgumentError("hook", f"{hook!r} differs from the vector's hook point {what.hook!r}")
        if layer not in what.layers:
            raise ArgumentError("layer", f"{layer} not captured in the vector; valid: {list(what.layers)}")
        return Intervention(layer, mode, what.at(layer).float(), hook=hook, label=what.describe())
    if not isinstance(what, torch.Tensor):
        raise ArgumentTypeError(name, f"expected an Intervention, a TaskVector or a Tensor, got {type(what).__name__}")
    if what.ndim != 1 or what.shape[0] != model.cfg.d_model:
        raise ArgumentError(name, f"expected shape (d_model={model.cfg.d_model},), got {tuple(what.shape)}")
    return Intervention(layer, mode, check_vector(what, name).detach().float(), hook=hook or "resid_post")


@dataclass
class PatchHandle:
    """An attached patch; :meth:`remove` detaches exactly its hook (idempotent)."""

    model: object
    intervention: Intervention
    _hooks: HookHandle | None = None

    @property
    def active(self) -> bool:
        return self._hooks is not None and self._hooks.active

    def remove(self) -> None:
        if self._hooks is not None:
            self._hooks.remove()


def add_patch(
    model,
    what: Intervention | TaskVector | torch.Tensor,
    layer: int | None = None,
    positions: int | Sequence[int] | torch.Tensor | None = None,
    *,
    mode: str = "replace",
    hook: str | None = None,
) -> PatchHandle:
    """Attach a patch and return its handle (call ``.remove()``; prefer :func:`patch` where a block fits).

    Args:
        what: an :class:`~interp.interventions.Intervention` (e.g. ``interventions.add(v, 2, alpha=4)``), or a
            :class:`TaskVector` (its mean at ``layer``; must come from this model) or ``Float[Tensor, "d_model"]``.
        layer: model layer (taken from ``what`` when it is an Intervention).
        positions: an int (every sequence) or ``Int[Tensor, "batch"]`` (one per sequence), batch coordinates;
            default the intervention's own ``position``.
        mode: ``"replace"`` or ``"add"`` (or any of :data:`interp.interventions.MODES` through an Intervention).
        hook: ``"resid_pre" | "resid_mid" | "resid_post"``; default the vector's hook (``"resid_post"`` for tensors).

    Everything is validated before the hook is attached; a position beyond a sequence raises during the run.
    """
    iv = as_intervention(model, what, layer, mode=mode, hook=hook)
    if positions is None:
        if iv.position is None:
            raise ArgumentError(
                "positions", "needed (the intervention acts at 'each prompt's last token', unknown here)"
            )
        positions = iv.position
    pos = _check_positions(positions)
    handle = add_hooks(model, [(iv.hook_name, intervention_hook([iv], None, None, pos))])
    return PatchHandle(model, iv, handle)


@contextmanager
def patch(
    model,
    what: Intervention | TaskVector | torch.Tensor,
    layer: int | None = None,
    positions: int | Sequence[int] | torch.Tensor | None = None,
    *,
    mode: str = "replace",
    hook: str | None = None,
) -> Iterator[PatchHandle]:
    """Context manager form of :func:`add_patch`: the hook is removed on exit, also on error."""
    handle = add_patch(model, what, layer, positions, mode=mode, hook=hook)
    try:
        yield handle
    finally:
        handle.remove()
