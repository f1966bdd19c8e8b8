"""Running a model and attaching hooks: the hook-name vocabulary and the one way hooks go in.

Hook names use TransformerLens's vocabulary (``blocks.{l}.hook_resid_post``). Every forward pass and every
hook of the toolkit goes through this module: :func:`forward_logits` runs a model; :func:`add_hooks` attaches
hooks and returns a :class:`HookHandle` whose ``remove()`` detaches exactly what it added; :func:`hooks` is the
context-manager form (removed in ``finally``, also when an exception is raised).

>>> hook_name(3, "resid_pre")
'blocks.3.hook_resid_pre'
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from interp.bridge import is_bridge
from interp.validate import (
    ArgumentError,
    ArgumentTypeError,
    check_choice,
    check_int,
    check_model,
    check_sequence,
)

HOOK_POINTS = ("resid_pre", "resid_mid", "resid_post")
HookPoint = Literal["resid_pre", "resid_mid", "resid_post"]
HookFn = Callable[..., Any]


def check_hook(hook: str) -> str:
    """Validate a residual hook point name (``"resid_pre"``, ``"resid_mid"`` or ``"resid_post"``)."""
    return check_choice(hook, "hook", HOOK_POINTS, "is not a residual hook point")


def hook_name(layer: int, hook: str = "resid_post") -> str:
    """TransformerLens name of a residual hook point.

    >>> hook_name(0)
    'blocks.0.hook_resid_post'
    """
    return f"blocks.{check_int(layer, 'layer', minimum=0)}.hook_{check_hook(hook)}"


def n_layers(model) -> int:
    """Number of transformer blocks."""
    return int(model.cfg.n_layers)


def context_length(model) -> int:
    """Longest sequence the model accepts (``n_ctx``)."""
    return int(model.cfg.n_ctx)


def check_layer(model, layer: int, name: str = "layer") -> int:
    """Validate one layer index against the model (``0 <= layer < n_layers``)."""
    n = n_layers(model)
    try:
        value = operator.index(layer)
    except TypeError:
        value = None
    if value is None or isinstance(layer, bool):
        raise ArgumentTypeError(name, f"{layer!r} is not a layer; valid: integers 0..{n - 1}")
    if not 0 <= value < n:
        raise ArgumentError(name, f"{layer!r} out of range; valid: integers 0..{n - 1}")
    return int(value)


def check_layers(model, layers: Sequence[int] | None, name: str = "layers") -> tuple[int, ...]:
    """Validate layer indices (``None`` = all layers); returns them as a tuple, duplicates refused."""
    if layers is None:
        return tuple(range(n_layers(model)))
    out = tuple(check_layer(model, la, name) for la in check_sequence(layers, name, what="layers", allow_empty=True))
    if not out:
        raise ArgumentError(name, "need at least one layer")
    if len(set(out)) != len(out):
        raise ArgumentError(name, f"duplicate layers in {list(out)}")
    return out


def forward_logits(model, tokens, attention_mask=None):
    """Logits ``Float[Tensor, "batch pos vocab"]`` for ``tokens`` ``Int[Tensor, "batch pos"]``.

    Right-padded batches need no mask (attention is causal); pass ``attention_mask`` for left padding.
    """
    tokens = tokens.to(model.cfg.device)
    if attention_mask is not None:
        return model(tokens, attention_mask=attention_mask.to(model.cfg.device))
    return model(tokens)


def final_resid(model, tokens, attention_mask=None, past_kv_cache=None):
    """Residual ``Float[Tensor, "batch pos d_model"]`` after the last block (before ``ln_final``) for ``tokens``
    ``Int[Tensor, "batch pos"]``, with the caller's hooks in force.

    ``HookedTransformer`` (TransformerLens 3.x) stops there itself (``stop_at_layer=n_layers``; ``past_kv_cache``
    appends to a TransformerLens key-value cache). A ``TransformerBridge`` (4.x) returns logits at
    ``stop_at_layer=n_layers``, so the residual is read at the last ``hook_resid_post`` of a full forward; it takes
    no TransformerLens cache (``ValueError``)."""

    device = model.cfg.device
    kwargs = {} if attention_mask is None else {"attention_mask": attention_mask.to(device)}
    if not is_bridge(model):
        if past_kv_cache is not None:
            kwargs["past_kv_cache"] = past_kv_cache
        return model(tokens.to(device), stop_at_layer=model.cfg.n_layers, **kwargs)
    if past_kv_cache is not None:
        raise ValueError("past_kv_cache: a TransformerBridge takes no TransformerLens key-value cache")
    kept: list = []

    def keep(resid, hook):
        kept.append(resid)
        return resid

    with hooked(model, [(hook_name(n_layers(model) - 1), keep)]):
        model(tokens.to(device), return_type=None, **kwargs)
    return kept[-1]


@dataclass
class HookHandle:
    """Hooks attached by :func:`add_hooks`; :meth:`remove` detaches exactly those (idempotent)."""

    model: Any
    names: tuple[str, ...]
    _added: list = field(default_factory=list, repr=False)

    @property
    def active(self) -> bool:
        return bool(self._added)

    def remove(self) -> None:
        added, self._added = self._added, []
        for point, handle in reversed(added):
            handle.hook.remove()
            point.fwd_hooks = [h for h in point.fwd_hooks if h is not handle]


def add_hooks(model, fwd_hooks: Sequence[tuple[str, HookFn]]) -> HookHandle:
    """Attach forward hooks ``(hook_name, fn)`` and return their handle; prefer :func:`hooks` where a block fits.

    Unknown names raise ``ValueError`` before anything is attached; a failure half-way removes what was added.
    On a ``TransformerBridge``, ``blocks.L.hook_resid_mid`` is attached by :func:`_bridge_resid_mid` (the bridge's
    own alias is the input of the MLP's norm only, so a patch there would not reach the residual stream).
    """
    if getattr(model, "engine", None) == "nnsight" and fwd_hooks:
        raise ValueError(
            "model: runs on the nnsight engine, which attaches no TransformerLens hooks; pass the interventions as "
            "cells instead (interp.sweeps.score_cells, patched_scores)"
        )
    points = check_model(model).hook_dict
    bridge = is_bridge(model)
    pairs = check_sequence(fwd_hooks, "fwd_hooks", what="(hook name, function) pairs", allow_empty=True)
    bad = next((p for p in pairs if not (isinstance(p, tuple | list) and len(p) == 2 and callable(p[1]))), None)
    if bad is not None:
        raise ArgumentTypeError("fwd_hooks", f"each entry must be a (hook name, function) pair, got {bad!r}")
    placed: list[tuple[str, HookFn, bool]] = []  # (point name, fn, prepend)
    for name, fn in pairs:
        resid_mid = bridge and re.fullmatch(r"blocks\.(\d+)\.hook_resid_mid", name)
        if resid_mid and int(resid_mid.group(1)) < n_layers(model):
            placed += _bridge_resid_mid(model, int(resid_mid.group(1)), fn)
        elif name in points:
            placed.append((name, fn, False))
        else:
            raise ArgumentError("fwd_hooks", f"unknown hook point {name!r}; e.g. 'blocks.0.hook_resid_post'")
    handle = HookHandle(model, tuple(name for name, _ in pairs))
    try:
        for name, fn, prepend in placed:
            point = points[name]
            point.add_hook(fn, dir="fwd", prepend=prepend)
            handle._added.append((point, point.fwd_hooks[0] if prepend else point.fwd_hooks[-1]))
    except BaseException:
        handle.remove()
        raise
    return handle


def _bridge_resid_mid(model, layer: int, fn: HookFn) -> list[tuple[str, HookFn, bool]]:
    """``fn`` at the residual stream between a bridge block's attention and MLP.

    The bridge's ``blocks.L.hook_resid_mid`` aliases the MLP side's input (``ln2.hook_in``; ``mlp.hook_in`` where
    the block has no norm before the MLP, OLMo 2): it reads the residual there, but what a hook returns only feeds
    the MLP, while the block adds the MLP's output to the residual it held before. So ``fn`` runs at that point
    and the change it made (new − old) is added to the block's output (``hook_resid_post``, ahead of any other hook
    there): the residual after the block is then what it would have been had the stream itself held the new value.
    Blocks whose MLP reads the block's input (parallel attention and MLP, GPT-NeoX / Pythia) have no point between
    the two: ``ValueError``.
    """
    target = getattr(model.blocks[layer], "hook_aliases", {}).get("hook_resid_mid")
    target = target[0] if isinstance(target, list | tuple) else target
    if not isinstance(target, str) or f"blocks.{layer}.{target}" not in model.hook_dict:
        raise ValueError(
            "hook: resid_mid does not exist in this model's blocks (attention and MLP read the same input in "
            "parallel, as in GPT-NeoX / Pythia); valid here: resid_pre, resid_post"
        )
    change: dict = {}  # this forward's change, handed from the first hook to the second

    def at_mlp_input(act, hook):
        before = act.clone()
        out = fn(act, hook)
        change["delta"] = (act if out is None else out) - before
        return out

    def at_block_output(act, hook):
        delta = change.pop("delta", None)
        return None if delta is None else act + delta

    return [
        (f"blocks.{layer}.{target}", at_mlp_input, False),
        (hook_name(layer, "resid_post"), at_block_output, True),
    ]


@contextmanager
def hooked(model, fwd_hooks: Sequence[tuple[str, HookFn]]) -> Iterator[HookHandle]:
    """Attach forward hooks for the duration of the block; removed in ``finally``, also on error.

    (Named ``hooked``, not ``hooks``: ``interp.hooks`` is this module, and a package attribute of that name would
    become the module as soon as anything imports it.)

    >>> with hooked(model, [("blocks.0.hook_resid_post", lambda act, hook: act)]):   # doctest: +SKIP
    ...     logits = model(tokens)
    """
    handle = add_hooks(model, fwd_hooks)
    try:
        yield handle
    finally:
        handle.remove()


def attached_hooks(model) -> int:
    """Number of forward/backward hooks attached to any hook point of ``model`` (0 when clean)."""
    points = {id(hp): hp for hp in model.hook_dict.values()}  # a bridge lists a point under its aliases too
    return sum(len(hp.fwd_hooks) + len(hp.bwd_hooks) for hp in points.values())
