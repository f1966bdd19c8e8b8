"""Residual-stream capture at (layer, position): only the requested slices are kept.

One hook per requested layer copies ``act[row, position]`` for each sequence of a batch into a preallocated
``Float[Tensor, "layer prompt d_model"]`` on the CPU; nothing else of the forward pass is retained (no
``run_with_cache``). The forward pass stops right after the last requested hook point. Hooks go in through
:func:`interp.hooks.hooks` and are removed after every batch, also on error. Where no hook is needed at all
(right padding, :func:`interp.engines.exact.fused_forward_exact`), the fused-attention forward runs instead and the same
slices are read from it as it goes: no ``[query, key]`` attention tensors, about half the time on long prompts.

Positions are given in *unpadded* coordinates of ``encode(tok, text)`` (index 0 is BOS); the default is
each prompt's last real token (the separator of the query), correct under either padding side.

Gotcha: with ``padding_side="left"`` an attention mask is passed so that positional embeddings and attention
ignore the pads; the result equals the unpadded capture up to float round-off.

>>> acts = capture_resid(model, prompts, layers=[0, 2], hook="resid_post")   # doctest: +SKIP
>>> acts.shape                                                               # doctest: +SKIP
torch.Size([2, 100, 128])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interp.engines import nn_traces
from interp.engines.exact import fused_forward_exact
from interp.engines.fused import fused_resid
from interp.engines.nn_model import is_nnsight
from interp.engines.plan import check_batch_size, check_fits, resolve_positions, token_batches
from interp.hooks import HOOK_POINTS, check_hook, check_layers, forward_logits, hook_name, hooked
from interp.models import tokenizer_of
from interp.prompts import Prompt
from interp.tokenization import check_known, encode_batch, pad_id
from interp.validate import ArgumentError, ArgumentTypeError, check_choice, check_count, check_model, check_sequence

PADDING_SIDES = ("right", "left")
#: The default position rule: each prompt's last real token (the query's separator).
POSITION_RULE = "last_token"


class _StopForward(Exception):
    """Raised by the last capture hook: the rest of the forward pass is not needed."""


def texts_of(prompts: Sequence[Prompt | str]) -> list[str]:
    """Prompt texts (a :class:`Prompt` gives its ``text``, a string passes through)."""
    return [p.text if isinstance(p, Prompt) else str(p) for p in prompts]


def token_ids(model, prompts: Sequence[Prompt | str]) -> list[list[int]]:
    """``encode(tok, text)`` (BOS convention) for every prompt."""
    return encode_batch(tokenizer_of(model), texts_of(prompts))


def _store(out: torch.Tensor, slot: int, dest, act: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> None:
    """``out[slot, dest] = act[rows, cols]`` on the CPU in ``out``'s dtype (the one copy both capture routes make)."""
    out[slot, dest] = act[rows.to(act.device), cols.to(act.device)].detach().to("cpu", out.dtype)


def _copy_hook(out: torch.Tensor, slot: int, dest: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, *, stop: bool):
    """Hook copying ``act[rows, cols]`` into ``out[slot, dest]``; raises :class:`_StopForward` when ``stop``."""

    def fn(act, hook):  # TransformerLens passes the HookPoint as ``hook``
        _store(out, slot, dest, act, rows, cols)
        if stop:
            raise _StopForward
        return act

    return fn


def _copy_tap(out: torch.Tensor, slots: dict[tuple[int, str], int], dest, rows, cols):
    """:data:`interp.engines.fused.Tap` copying ``resid[rows, cols]`` at each ``(layer, hook)`` of ``slots`` into
    ``out[slot]``."""

    def tap(layer: int, point: str, resid: torch.Tensor) -> None:
        slot = slots.get((layer, point))
        if slot is not None:
            _store(out, slot, dest, resid, rows, cols)

    return tap


def capture_resid(
    model,
    prompts: Sequence[Prompt | str],
    *,
    layers: Sequence[int] | None = None,
    hook: str = "resid_post",
    positions: Sequence[int] | None = None,
    batch_size: int = 32,
    padding_side: str = "right",
    max_tokens: int | None = 8192,
) -> torch.Tensor:
    """Residual stream ``Float[Tensor, "layer prompt d_model"]`` at one position of each prompt (CPU).

    Args:
        model: a ``HookedTransformer`` from :func:`interp.models.load_model`.
        prompts: :class:`~interp.prompts.Prompt` objects or texts (tokenised with the BOS convention).
        layers: layers to capture (default all); output row ``i`` is ``layers[i]``.
        hook: ``"resid_pre"``, ``"resid_mid"`` or ``"resid_post"`` (``blocks.{l}.hook_{hook}``).
        positions: one position per prompt in unpadded token coordinates (0 = BOS, negatives from the end);
            default each prompt's last token.
        batch_size: at most this many sequences per forward pass.
        max_tokens: at most this many (padded) tokens per forward pass (at least one sequence), so a batch's
            activation and attention memory stops growing with the prompts' length; ``None`` = no cap.
        padding_side: ``"right"`` (no mask needed: attention is causal) or ``"left"`` (mask passed).

    Every argument is validated before any forward pass. The dtype is the model's.
    """
    check_model(model)
    prompts = check_sequence(prompts, "prompts", what="prompts (Prompt values or strings)")
    bad = next((i for i, p in enumerate(prompts) if not isinstance(p, Prompt | str)), None)
    if bad is not None:
        raise ArgumentTypeError("prompts", f"item {bad} is a {type(prompts[bad]).__name__}, not a Prompt or a string")
    check_hook(hook)
    kw = dict(positions=positions, batch_size=batch_size, padding_side=padding_side, max_tokens=max_tokens)
    return capture_hooks(model, prompts, layers=layers, hooks=(hook,), **kw)[hook]


@torch.inference_mode()
def capture_hooks(
    model,
    prompts: Sequence[Prompt | str],
    *,
    layers: Sequence[int] | None = None,
    hooks: Sequence[str] = ("resid_post",),
    positions: Sequence[int] | None = None,
    batch_size: int = 32,
    padding_side: str = "right",
    max_tokens: int | None = 8192,
) -> dict[str, torch.Tensor]:
    """:func:`capture_resid` at several hook points in one forward pass: ``{hook: Float[Tensor, "layer prompt
    d_model"]}`` (each hook's tensor as :func:`capture_resid` would give it alone, bit for bit).

    >>> acts = capture_hooks(model, prompts, hooks=["resid_mid", "resid_post"])   # doctest: +SKIP
    >>> sorted(acts), acts["resid_mid"].shape                                      # doctest: +SKIP
    (['resid_mid', 'resid_post'], torch.Size([4, 100, 128]))
    """
    hooks = tuple(hooks) if not isinstance(hooks, str) else (hooks,)
    if not hooks:
        raise ArgumentError("hooks", f"need at least one hook point; valid: {', '.join(HOOK_POINTS)}")
    for h in hooks:
        check_hook(h)
    if len(set(hooks)) != len(hooks):
        raise ArgumentError("hooks", f"duplicate hook points in {list(hooks)}")
    layers = check_layers(model, layers)
    check_choice(padding_side, "padding_side", PADDING_SIDES)
    check_batch_size(batch_size)
    check_count(max_tokens, "max_tokens", optional=True)
    ids = token_ids(model, prompts)
    check_known(tokenizer_of(model), texts_of(prompts), ids, "prompts")
    lengths = [len(x) for x in ids]
    pos = resolve_positions(lengths, positions)
    check_fits(model, lengths)

    pad = pad_id(tokenizer_of(model))
    if is_nnsight(model):  # its traces save the same slices (right-padded: equal under either padding side)
        kw = dict(pad=pad, batch_size=batch_size, max_tokens=max_tokens)
        return {h: nn_traces.capture(model, ids, layers, h, pos, **kw) for h in hooks}
    points = [(la, h) for h in hooks for la in layers]  # out[slot] = (layer, hook); hooks[k]'s rows are a block
    slots = {point: s for s, point in enumerate(points)}
    out = torch.empty(len(points), len(ids), model.cfg.d_model, dtype=model.cfg.dtype)
    order = sorted(range(len(ids)), key=lambda i: lengths[i])
    last = max(points, key=lambda p: (p[0], HOOK_POINTS.index(p[1])))  # the forward's last hook point read
    for chunk in token_batches(order, lengths, batch_size, max_tokens):
        width = max(lengths[i] for i in chunk)
        x = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long) if padding_side == "left" else None
        cols = []
        for r, i in enumerate(chunk):
            shift = width - lengths[i] if padding_side == "left" else 0
            x[r, shift : shift + lengths[i]] = torch.tensor(ids[i])
            if mask is not None:
                mask[r, shift : shift + lengths[i]] = 1
            cols.append(pos[i] + shift)
        rows_t = torch.arange(len(chunk))
        cols_t = torch.tensor(cols)
        dest = torch.tensor(chunk)
        if mask is None and fused_forward_exact(
            model
        ):  # no hook needed: read the streams as the fused forward forms them
            fused_resid(model, x, tap=_copy_tap(out, slots, dest, rows_t, cols_t), stop_at_layer=last[0] + 1)
            continue
        fwd = [
            (hook_name(la, h), _copy_hook(out, s, dest, rows_t, cols_t, stop=(la, h) == last))
            for (la, h), s in slots.items()
        ]
        try:
            with hooked(model, fwd):
                forward_logits(model, x, attention_mask=mask)
        except _StopForward:
            pass
    return {h: out[k * len(layers) : (k + 1) * len(layers)] for k, h in enumerate(hooks)}
