"""Gradients of the answer's log-probability with respect to every head's output at the last token, in one backward
pass: the engine of attribution patching (:func:`interp.attribution.attribution_patching`).

A head's output ``z`` at a prompt's last token changes nothing before that token, so on the fused forward
(:func:`interp.engines.exact.fused_forward_exact`) the tokens before it run once without autograd into a key-value
cache, and only the last token runs again with autograd through every block (its keys and values read from that
cache, :func:`interp.engines.fused.fused_continue`): the backward pass has one token per prompt to go through. Every
other model runs the whole prompt with autograd, ``hook_z`` hooks adding a zero tensor to each head's output at the
last token, whose gradient is the one wanted. Both give ``∂ log P(target) / ∂ z`` for all heads at once (tested
equal, and against finite differences).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from interp.engines.block_weights import constant_weights
from interp.engines.exact import fused_forward_exact
from interp.engines.fused import fused_continue, fused_resid
from interp.engines.plan import pad_rows
from interp.engines.readout import logits_at
from interp.hooks import forward_logits, hooked
from interp.models import tokenizer_of
from interp.tokenization import pad_id


@dataclass(frozen=True)
class HeadGradients:
    """At each prompt's last token: ``z`` ``Float[Tensor, "prompt layer head d_head"]`` (every head's output at the
    point the gradient is taken), ``grad`` (same shape) ``∂ log P(target) / ∂ z``, and ``log_p``
    ``Float[Tensor, "prompt"]`` the log-probability of each prompt's target token there."""

    z: torch.Tensor
    grad: torch.Tensor
    log_p: torch.Tensor


@dataclass(frozen=True)
class Variant:
    """Where a gradient of :func:`head_gradients` is taken: ``replace_z`` (``{layer: Float[Tensor, "head d_head"]}``)
    replaces the outputs of every head of those layers at the last token first; ``drop_grad_at``: that block's
    output enters the residual stream detached, so the backward pass goes around it (GradDrop, Kramár et al. 2024)."""

    replace_z: dict[int, torch.Tensor] = field(default_factory=dict)
    drop_grad_at: int | None = None


def head_gradients(
    model,
    ids: Sequence[Sequence[int]],
    targets: Sequence[int],
    variants: Sequence[Variant] = (Variant(),),
    *,
    batch_size: int = 32,
) -> list[HeadGradients]:
    """One :class:`HeadGradients` per :class:`Variant`, for token rows ``ids`` (BOS first), ``targets[i]`` the token
    read after row ``i``. On the fused forward the tokens before the last run once per batch for all variants."""
    if len(ids) != len(targets):
        raise ValueError(f"targets: need one per row, got {len(targets)} for {len(ids)} rows")
    if any(len(r) < 2 for r in ids):
        raise ValueError("ids: every row needs BOS and at least one token")
    cfg = model.cfg
    for i, v in enumerate(variants):
        for la, z in v.replace_z.items():
            if not 0 <= la < cfg.n_layers or tuple(z.shape) != (cfg.n_heads, cfg.d_head):
                raise ValueError(
                    f"variants[{i}].replace_z: layer {la!r} needs a layer 0..{cfg.n_layers - 1} and values "
                    f"[head, d_head] = {[cfg.n_heads, cfg.d_head]}, got {list(z.shape)}"
                )
        if v.drop_grad_at is not None and not 0 <= v.drop_grad_at < cfg.n_layers:
            raise ValueError(f"variants[{i}].drop_grad_at: a layer 0..{cfg.n_layers - 1}, got {v.drop_grad_at!r}")
    run = _fused if fused_forward_exact(model) else _hooked
    parts = [run(model, ids[lo : lo + batch_size], targets[lo : lo + batch_size], variants)
             for lo in range(0, len(ids), batch_size)]  # fmt: skip
    return [HeadGradients(*(torch.cat([p[i][j] for p in parts]) for j in range(3))) for i in range(len(variants))]


def _target_log_p(model, resid: torch.Tensor, targets: Sequence[int]) -> torch.Tensor:
    """log P(target) ``[row]`` from final residuals ``[row, 1, d_model]`` at their only position."""
    rows = torch.arange(resid.shape[0])
    logp = torch.log_softmax(logits_at(model, resid, rows, torch.zeros_like(rows)), dim=-1)
    return logp[rows.to(logp.device), torch.tensor(list(targets), device=logp.device)]


def _shifts(model, b: int) -> list[torch.Tensor]:
    """Zero tensors ``[row, head, 1, d_head]`` per layer whose gradients are the ones wanted."""
    cfg = model.cfg
    return [torch.zeros(b, cfg.n_heads, 1, cfg.d_head, device=cfg.device, dtype=cfg.dtype, requires_grad=True)
            for _ in range(cfg.n_layers)]  # fmt: skip


def _fused(model, ids, targets, variants):
    n_layers = model.cfg.n_layers
    b = len(ids)
    with torch.no_grad():  # not inference mode: the cached keys and values are read by the graphs below
        keys_values: list = []
        x, _ = pad_rows([r[:-1] for r in ids], pad_id(tokenizer_of(model)))
        fused_resid(model, x, keys_values=keys_values, through="keys_values")
    last = torch.tensor([[r[-1]] for r in ids])
    prompt_len = torch.tensor([len(r) - 1 for r in ids])
    out = []
    for v in variants:
        deltas = _shifts(model, b)
        seen: list = [None] * n_layers

        def editor(layer: int, v=v, deltas=deltas, seen=seen):
            def edit(z: torch.Tensor) -> torch.Tensor:  # [row, head, 1, d_head]
                if layer in v.replace_z:
                    z = v.replace_z[layer].to(z.device, z.dtype)[None, :, None].expand_as(z)
                seen[layer] = z.detach()
                return z + deltas[layer]

            return edit

        with torch.enable_grad(), constant_weights():
            resid = fused_continue(model, keys_values, prompt_len, torch.arange(b), last,
                                   edit_z={la: editor(la) for la in range(n_layers)},
                                   drop_grad_at=v.drop_grad_at)  # fmt: skip
            log_p = _target_log_p(model, resid, targets)
            grads = torch.autograd.grad(log_p.sum(), deltas, allow_unused=True)
        out.append((_stack(seen), _grads(grads, deltas), log_p.detach().double().cpu()))
    return out


def _stack(values: list[torch.Tensor]) -> torch.Tensor:
    """Per-layer ``[row, head, 1, d_head]`` tensors as one ``[row, layer, head, d_head]`` (float64, CPU)."""
    return torch.stack([v[:, :, 0] for v in values], dim=1).double().cpu()


def _grads(grads, deltas) -> torch.Tensor:
    """The gradients of the zero shifts (zeros for a layer no path reaches), stacked as :func:`_stack`."""
    return _stack([torch.zeros_like(d) if g is None else g for g, d in zip(grads, deltas, strict=True)])


def _hooked(model, ids, targets, variants):
    return [_hooked_one(model, ids, targets, v) for v in variants]


def _hooked_one(model, ids, targets, v: Variant):
    cfg = model.cfg
    b = len(ids)
    x, _ = pad_rows(ids, pad_id(tokenizer_of(model)))
    last = torch.tensor([len(r) - 1 for r in ids], device=cfg.device)
    rows = torch.arange(b, device=cfg.device)
    deltas = _shifts(model, b)
    seen: list = [None] * cfg.n_layers

    def at_z(layer: int):
        def fn(act, hook):  # [batch, pos, head, d_head]
            act = act.clone()
            if layer in v.replace_z:
                act[rows, last] = v.replace_z[layer].to(act.device, act.dtype)[None].expand(b, -1, -1)
            seen[layer] = act[rows, last].detach()[:, :, None]
            shift = torch.zeros_like(act)
            shift[rows, last] = deltas[layer][:, :, 0].to(act.dtype)
            return act + shift

        return fn

    def detached(act, hook):
        return act.detach()

    hooks = [(f"blocks.{la}.attn.hook_z", at_z(la)) for la in range(cfg.n_layers)]
    if v.drop_grad_at is not None:
        hooks += [(f"blocks.{v.drop_grad_at}.{p}", detached) for p in ("hook_attn_out", "hook_mlp_out")]
    with torch.enable_grad(), hooked(model, hooks):
        logits = forward_logits(model, x)[rows, last]  # [b, vocab]
        picked = torch.tensor(list(targets), device=logits.device)
        log_p = torch.log_softmax(at_least_float32(logits), dim=-1)[rows, picked]
        grads = torch.autograd.grad(log_p.sum(), deltas, allow_unused=True)
    return _stack(seen), _grads(grads, deltas), log_p.detach().double().cpu()


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x``, raised to float32 when in half precision (a log-softmax never runs below float32)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
