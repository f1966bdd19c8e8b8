"""A hook-free forward pass of GPT-2-style blocks with PyTorch's fused attention (``scaled_dot_product_attention``).

TransformerLens computes attention as explicit tensors — scores, a masked copy, the softmax, a NaN clean-up — each
``[batch, head, query, key]``, so that hooks can read them. Where no hook is attached and none is asked for (plain
scoring), the same weights run through ``torch.nn.functional.scaled_dot_product_attention`` instead: one fused
kernel, no ``[query, key]`` tensors kept, about twice as fast on CPU for the embedded model's 230-token prompts.
Every other piece (embeddings, layer norms, MLPs) is TransformerLens's own module, called directly.

Used only where :func:`fused_ok` holds: learned absolute positions, causal global attention with one key/value head
per query head and no score modifiers, one device, no hook attached. ``tests/test_fused.py`` checks it against
``model(tokens, stop_at_layer=n_layers)`` on every model kind the toolkit ships.

>>> resid = fused_resid(model, tokens)            # doctest: +SKIP
>>> resid.shape                                   # doctest: +SKIP
torch.Size([8, 90, 128])
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from interp.hooks import attached_hooks


def learned_positions_global_causal(model) -> bool:
    """Learned absolute positions (a position table) and causal attention over the whole context: a token's
    computation depends only on the tokens it attends to and its position index (what :mod:`interp.packing` needs)."""
    cfg = model.cfg
    return (
        cfg.positional_embedding_type == "standard"
        and cfg.attention_dir == "causal"
        and not getattr(cfg, "use_local_attn", False)
    )


def fused_ok(model) -> bool:
    """Whether :func:`fused_resid` computes exactly what ``model``'s own forward computes (up to float rounding)."""
    cfg = model.cfg
    plain_attention = (
        learned_positions_global_causal(model)
        and getattr(cfg, "attn_types", None) is None
        and getattr(cfg, "n_key_value_heads", None) in (None, cfg.n_heads)
        and not getattr(cfg, "use_qk_norm", False)
        and (getattr(cfg, "attn_scores_soft_cap", -1.0) or -1.0) <= 0
        and not getattr(cfg, "use_attention_sinks", False)
        and getattr(cfg, "clip_qkv", None) is None
        and not getattr(cfg, "use_logn_attn", False)
        and not getattr(cfg, "load_in_4bit", False)
    )
    return (
        plain_attention
        and not cfg.attn_only
        and not cfg.parallel_attn_mlp
        and cfg.n_devices == 1
        and all(type(b.attn).__name__ == "Attention" for b in model.blocks)
        and attached_hooks(model) == 0
    )


def _heads(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[batch, pos, d_model] × [head, d_model, d_head] → [batch, head, pos, d_head]`` (+ bias)."""
    return (torch.einsum("bpd,hde->bphe", x, w) + b).transpose(1, 2)


#: ``tap(layer, point, resid)``: called with each residual stream ``Float[Tensor, "batch pos d_model"]`` as it is
#: formed, ``point`` one of ``"resid_pre"``, ``"resid_mid"``, ``"resid_post"`` (read it; do not modify it).
Tap = Callable[[int, str, torch.Tensor], None]


def fused_resid(
    model,
    tokens: torch.Tensor,
    *,
    positions: torch.Tensor | None = None,
    visible: torch.Tensor | None = None,
    tap: Tap | None = None,
    stop_at_layer: int | None = None,
    causal_prefix: int | None = None,
) -> torch.Tensor:
    """Residual ``Float[Tensor, "batch pos d_model"]`` after block ``stop_at_layer - 1`` (default: the final one, before
    ``ln_final``), as ``model(tokens, stop_at_layer=...)`` for right-padded ``Int[Tensor, "batch pos"]`` tokens.

    ``positions`` (``Int[Tensor, "batch pos"]``, default ``0 … pos-1``) index the position table; ``visible``
    (``Bool[Tensor, "batch query key"]``) further restricts causal attention (see :mod:`interp.packing`); with
    ``causal_prefix = P`` the queries of columns ``< P`` use plain causal attention over columns ``< P`` (``visible``
    applies to the later queries only: the split layout of :func:`interp.packing.layout`); ``tap`` sees every
    residual stream on the way (see :data:`Tap`).
    """
    device = model.cfg.device
    tokens = tokens.to(device)
    n = tokens.shape[1]
    w_pos = model.pos_embed.W_pos
    h = model.embed(tokens) + (w_pos[:n] if positions is None else w_pos[positions.to(device)])
    mask = None
    split = causal_prefix if visible is not None and causal_prefix else 0
    if visible is not None:
        causal = torch.ones(n, n, dtype=torch.bool, device=device).tril()
        mask = (visible.to(device) & causal)[:, None, split:]  # [batch, 1, query (from split), key]
    sdpa = torch.nn.functional.scaled_dot_product_attention
    tap = tap or (lambda layer, point, resid: None)
    for layer, block in enumerate(model.blocks[: model.cfg.n_layers if stop_at_layer is None else stop_at_layer]):
        tap(layer, "resid_pre", h)
        attn = block.attn
        x = block.ln1(h)
        q, k, v = (_heads(x, w, b) for w, b in ((attn.W_Q, attn.b_Q), (attn.W_K, attn.b_K), (attn.W_V, attn.b_V)))
        scale = 1.0 / float(attn.attn_scale)
        if mask is None:
            z = sdpa(q, k, v, is_causal=True, scale=scale)  # [batch, head, pos, d_head]
        elif split:  # the prefix block causally; the later queries against every key through the mask
            head = sdpa(q[:, :, :split], k[:, :, :split], v[:, :, :split], is_causal=True, scale=scale)
            z = torch.cat([head, sdpa(q[:, :, split:], k, v, attn_mask=mask, scale=scale)], dim=2)
        else:
            z = sdpa(q, k, v, attn_mask=mask, scale=scale)
        z = z.transpose(1, 2).reshape(z.shape[0], n, -1)
        h = h + torch.nn.functional.linear(z, attn.W_O.reshape(-1, attn.W_O.shape[-1]).T, attn.b_O)
        tap(layer, "resid_mid", h)
        h = h + block.mlp(block.ln2(h))
        tap(layer, "resid_post", h)
    return h
