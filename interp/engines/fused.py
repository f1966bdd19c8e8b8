"""A hook-free forward pass of GPT-2-style blocks with PyTorch's fused attention (``scaled_dot_product_attention``).

TransformerLens computes attention as explicit tensors — scores, a masked copy, the softmax, a NaN clean-up — each
``[batch, head, query, key]``, so that hooks can read them. Where no hook is attached and none is asked for (plain
scoring), the same weights run through ``torch.nn.functional.scaled_dot_product_attention`` instead: one fused
kernel, no ``[query, key]`` tensors kept, about twice as fast on CPU for the embedded model's 230-token prompts.
The embeddings are the model's own modules; layer norms run through torch's kernel and plain two-layer MLPs through
an in-place path (only the neurons that write, small MLPs a slice of tokens at a time) on the model's own weights,
read once per weight version (:mod:`interp.engines.block_weights`); anything else runs its own module.

Used only where :func:`interp.engines.exact.fused_forward_exact` holds: learned absolute positions, causal global
attention with one key/value head per query head and no score modifiers, one device, no hook attached.
``tests/equivalence/test_fused.py`` checks it against ``model(tokens, stop_at_layer=n_layers)`` on every model kind
the toolkit ships.

>>> resid = fused_resid(model, tokens)            # doctest: +SKIP
>>> resid.shape                                   # doctest: +SKIP
torch.Size([8, 90, 128])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from interp.engines.block_weights import (
    AttentionWeights,
    attention_weights,
    mlp_weights,
    output_weights,
    plain_mlp_activation,
    weights_in_graph,
)


def _qkv(w: AttentionWeights, x: torch.Tensor) -> torch.Tensor:
    """Queries, keys and values ``Float[Tensor, "3 batch head pos d_head"]`` of the writing heads for normalised
    ``x`` (``[batch, pos, d_model]``), from one matrix product."""
    return (x @ w.w_qkv + w.b_qkv).view(*x.shape[:2], 3, w.n_live, w.d_head).permute(2, 0, 3, 1, 4)


def _layer_norm(ln, x: torch.Tensor) -> torch.Tensor:
    """``ln(x)``, through PyTorch's fused kernel for TransformerLens's ``LayerNorm``/``LayerNormPre`` and for a
    bridge's wrapped ``torch.nn.LayerNorm`` (same maths; the bridge's own module recomputes it step by step so that
    its hooks can read the parts)."""
    kind = type(ln).__name__
    if kind == "LayerNorm":
        return torch.nn.functional.layer_norm(x, x.shape[-1:], ln.w, ln.b, ln.eps)
    if kind == "LayerNormPre":
        return torch.nn.functional.layer_norm(x, x.shape[-1:], None, None, ln.eps)
    inner = getattr(ln, "original_component", None)
    if (
        isinstance(inner, torch.nn.LayerNorm)
        and not getattr(ln, "uses_rms_norm", True)
        and not getattr(ln, "uses_weight_offset", True)
        and x.dtype in (torch.float32, torch.float64)  # the bridge upcasts half precision: let it
    ):
        eps = getattr(ln.config, "eps", inner.eps)  # what the bridge's module uses
        return torch.nn.functional.layer_norm(x, inner.normalized_shape, inner.weight, inner.bias, eps)
    return ln(x)


#: On CPU, an MLP whose weights take at most :data:`MLP_SLICE_MAX_WEIGHT_BYTES` runs a slice of tokens at a time,
#: about this many bytes of its hidden layer per slice, so that the slice stays in cache between its product,
#: activation and output product (the embedded model's 230-token retrieval prompts: ~13% faster scoring). Larger
#: weights would be read from memory again for every slice: those MLPs run all tokens at once.
MLP_SLICE_BYTES = 2**21
MLP_SLICE_MAX_WEIGHT_BYTES = 2**22


def _add_mlp_out(mlp, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``h + mlp(x)``. Without autograd, for a plain MLP (:func:`plain_mlp_activation`): only the neurons that
    write, small MLPs a slice of tokens at a time (:data:`MLP_SLICE_BYTES`), each output product accumulated into
    ``h`` in place (no ``[tokens, d_model]`` temporary, no separate add). With autograd on and the weights constant
    (:func:`interp.engines.block_weights.constant_weights`), the same kept weights out of place."""
    act = None if weights_in_graph() else plain_mlp_activation(mlp)
    if act is None:
        return h + mlp(x)
    w = mlp_weights(mlp)
    if torch.is_grad_enabled():
        if not w.n_live:
            return h + w.b_out
        return h + (act(x @ w.w_in + w.b_in) @ w.w_out + w.b_out)
    if not w.n_live:
        return h.add_(w.b_out)
    x2, h2 = x.reshape(-1, x.shape[-1]), h.view(-1, h.shape[-1])
    step = x2.shape[0]
    if x.device.type == "cpu" and 2 * w.w_in.numel() * w.w_in.element_size() <= MLP_SLICE_MAX_WEIGHT_BYTES:
        step = max(1, MLP_SLICE_BYTES // (w.w_in.shape[1] * w.w_in.element_size()))
    for lo in range(0, x2.shape[0], step):
        h2[lo : lo + step].addmm_(act(torch.addmm(w.b_in, x2[lo : lo + step], w.w_in)), w.w_out)
    return h.add_(w.b_out)


def _add_attn_out(w: AttentionWeights, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``h`` plus the attention output of the writing heads' results ``z`` (``[..., live · d_head]``); without
    autograd accumulated into ``h`` in place."""
    if torch.is_grad_enabled():
        return h + torch.nn.functional.linear(z, w.w_o.T, w.b_o)
    h.view(-1, h.shape[-1]).addmm_(z.reshape(-1, z.shape[-1]), w.w_o)
    return h.add_(w.b_o)


#: ``tap(layer, point, resid)``: called with each residual stream ``Float[Tensor, "batch pos d_model"]`` as it is
#: formed, ``point`` one of ``"resid_pre"``, ``"resid_mid"``, ``"resid_post"`` (read or copy it; do not modify or
#: keep it: without autograd the next sublayer adds its output to the same tensor in place).
Tap = Callable[[int, str, torch.Tensor], None]

#: ``z_tap(layer, z)``: called with every head's output before ``W_O``, ``Float[Tensor, "batch head pos d_head"]``
#: (all of the model's heads), as TransformerLens's ``hook_z`` reads it transposed, except for the heads the fused
#: attention leaves out, given as zeros: exact where their values are zero, not where only their ``W_O`` is
#: (:func:`interp.engines.block_weights.silent_heads_only` tells). Read or copy it; do not keep it.
ZTap = Callable[[int, torch.Tensor], None]


def _every_head(w: AttentionWeights, z: torch.Tensor, n_heads: int) -> torch.Tensor:
    """The writing heads' ``z`` (``[row, live, pos, d_head]``) laid out over all ``n_heads`` heads, zeros elsewhere
    (a head whose values are all zero has ``z = 0``); ``z`` itself when every head writes."""
    if w.live is None and z.shape[1] == n_heads:
        return z
    full = z.new_zeros(z.shape[0], n_heads, *z.shape[2:])
    if z.shape[1]:
        full[:, w.live if w.live is not None else slice(None)] = z
    return full


def fused_resid(
    model,
    tokens: torch.Tensor,
    *,
    positions: torch.Tensor | None = None,
    visible: torch.Tensor | None = None,
    tap: Tap | None = None,
    stop_at_layer: int | None = None,
    causal_prefix: int | None = None,
    keep: tuple[torch.Tensor, torch.Tensor] | None = None,
    keys_values: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    z_tap: ZTap | None = None,
    through: str = "resid",
) -> torch.Tensor | None:
    """Residual ``Float[Tensor, "batch pos d_model"]`` after block ``stop_at_layer - 1`` (default: the final one, before
    ``ln_final``), as ``model(tokens, stop_at_layer=...)`` for right-padded ``Int[Tensor, "batch pos"]`` tokens.

    ``positions`` (``Int[Tensor, "batch pos"]``, default ``0 … pos-1``) index the position table; ``visible``
    (``Bool[Tensor, "batch query key"]``) further restricts causal attention (see :mod:`interp.packing`); with
    ``causal_prefix = P`` the queries of columns ``< P`` use plain causal attention over columns ``< P`` (``visible``
    applies to the later queries only: the split layout of :func:`interp.packing.layout`); ``tap`` sees every
    residual stream on the way (see :data:`Tap`). ``keep = (rows, cols)`` (``Int[Tensor, "n"]`` each) returns only
    the residuals ``Float[Tensor, "n d_model"]`` at those places: the last block then runs its keys and values at
    every position but its queries, attention output and MLP at the kept places only (readers of a few positions,
    such as answer scoring, skip most of that block). A ``keys_values`` list receives each block's keys and values
    (``Float[Tensor, "batch head pos d_head"]``, writing heads only) for :func:`fused_continue`; ``z_tap`` sees every
    block's heads' outputs (see :data:`ZTap`; not with ``keep``).

    ``through`` says how far the last block runs when only what it hands over is wanted: ``"resid"`` (default) all
    of it, the residual returned; ``"z"`` up to its heads' outputs (for ``z_tap``: no ``W_O``, no MLP);
    ``"keys_values"`` its keys and values only (for ``keys_values``: no queries, attention or MLP). Those two return
    ``None``.
    """
    if through not in THROUGH:
        raise ValueError(f"through: one of {', '.join(map(repr, THROUGH))}, got {through!r}")
    if through != "resid" and (keep is not None or {"z": z_tap, "keys_values": keys_values}[through] is None):
        raise ValueError(f"through={through!r}: needs {'z_tap' if through == 'z' else 'keys_values'} and no keep "
                         "(it stops the last block where that is handed over)")  # fmt: skip
    if keep is not None and (keys_values is not None or z_tap is not None):
        raise ValueError("keep, keys_values, z_tap: keep takes neither (with keep the last block's keys, values and "
                         "head outputs at the other places are not computed)")  # fmt: skip
    device = model.cfg.device
    tokens = tokens.to(device)
    n = tokens.shape[1]
    w_pos = model.pos_embed.W_pos
    h = model.embed(tokens) + (w_pos[:n] if positions is None else w_pos[positions.to(device)])
    mask = None
    split = causal_prefix if visible is not None and causal_prefix else 0
    if visible is not None:
        causal = torch.ones(n, n, dtype=torch.bool, device=device).tril()
        visible = visible.to(device) & causal
        mask = visible[:, None, split:]  # [batch, 1, query (from split), key]
    sdpa = torch.nn.functional.scaled_dot_product_attention
    tap = tap or (lambda layer, point, resid: None)
    blocks = model.blocks[: model.cfg.n_layers if stop_at_layer is None else stop_at_layer]
    final = len(blocks) - 1
    for layer, block in enumerate(blocks):
        tap(layer, "resid_pre", h)
        w = attention_weights(block.attn)
        if keep is not None and layer == final:
            return _last_block_at(block, h, keep, visible, w)
        if w.n_live and layer == final and through == "keys_values":
            keys_values.append(_keys_values(w, _layer_norm(block.ln1, h)))
            return None
        if w.n_live:
            q, k, v = _qkv(w, _layer_norm(block.ln1, h))
            if keys_values is not None:
                keys_values.append((k, v))
            scale = 1.0 / w.scale
            if mask is None or split >= n:  # no query beyond the causal prefix: plain causal attention
                z = sdpa(q, k, v, is_causal=True, scale=scale)  # [batch, head, pos, d_head]
            elif split:  # the prefix block causally; the later queries against every key through the mask
                head = sdpa(q[:, :, :split], k[:, :, :split], v[:, :, :split], is_causal=True, scale=scale)
                z = torch.cat([head, sdpa(q[:, :, split:], k, v, attn_mask=mask, scale=scale)], dim=2)
            else:
                z = sdpa(q, k, v, attn_mask=mask, scale=scale)
            if z_tap is not None:
                z_tap(layer, _every_head(w, z, model.cfg.n_heads))
            if layer == final and through == "z":
                return None
            h = _add_attn_out(w, h, z.transpose(1, 2).reshape(z.shape[0], n, -1))
        else:  # no head writes: the attention adds its output bias only
            h = h + w.b_o
            if keys_values is not None:
                keys_values.append((h.new_zeros(h.shape[0], 0, n, 1), h.new_zeros(h.shape[0], 0, n, 1)))
            if z_tap is not None:
                z_tap(layer, h.new_zeros(h.shape[0], model.cfg.n_heads, n, w.d_head))
            if layer == final and through != "resid":
                return None
        tap(layer, "resid_mid", h)
        h = _add_mlp_out(block.mlp, h, _layer_norm(block.ln2, h))
        tap(layer, "resid_post", h)
    if keep is not None:  # stop_at_layer=0: the embeddings
        return h[keep[0].to(device), keep[1].to(device)]
    return h


#: How far :func:`fused_resid` runs its last block.
THROUGH = ("resid", "z", "keys_values")


def _keys_values(w: AttentionWeights, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values ``Float[Tensor, "batch head pos d_head"]`` of the writing heads for normalised ``x``
    (``[batch, pos, d_model]``), without the queries."""
    width = w.w_qkv.shape[1] // 3
    kv = x @ w.w_qkv[:, width:] + w.b_qkv[width:]
    k, v = kv.view(*x.shape[:2], 2, w.n_live, w.d_head).permute(2, 0, 3, 1, 4)
    return k, v


class _RowGroups:
    """Items grouped by the row they belong to (continuation rows by the prompt they continue, kept places by their
    batch row): ``per_prompt`` lays ``[item, head, query, x]`` out as ``[row, head, slot · query, x]`` (a row's items
    side by side, unused slots zero), ``per_row`` reads it back, ``prompts_of`` selects the rows used from a
    ``[row, ...]`` tensor (no copy when all are, in order)."""

    def __init__(self, rows: torch.Tensor):
        order = torch.argsort(rows, stable=True)
        self.prompts, counts = torch.unique_consecutive(rows[order], return_counts=True)
        group = torch.repeat_interleave(torch.arange(len(self.prompts), device=rows.device), counts)
        slot = torch.arange(len(rows), device=rows.device) - (torch.cumsum(counts, 0) - counts)[group]
        self.group, self.slot = torch.empty_like(group), torch.empty_like(slot)  # indexed by the original row
        self.group[order], self.slot[order] = group, slot
        self.n_slots = int(counts.max())

    def per_prompt(self, x: torch.Tensor) -> torch.Tensor:
        _, heads, t, width = x.shape
        grid = x.new_zeros(len(self.prompts), heads, self.n_slots, t, width)
        grid[self.group, :, self.slot] = x
        return grid.view(len(self.prompts), heads, self.n_slots * t, width)

    def per_row(self, grid: torch.Tensor) -> torch.Tensor:
        n_prompts, heads, _, width = grid.shape
        return grid.view(n_prompts, heads, self.n_slots, -1, width)[self.group, :, self.slot]

    def prompts_of(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.prompts) == x.shape[0] and bool((self.prompts == torch.arange(x.shape[0], device=x.device)).all()):
            return x
        return x[self.prompts]


def _last_block_at(block, h: torch.Tensor, keep, visible: torch.Tensor | None, w: AttentionWeights) -> torch.Tensor:
    """Block ``block`` on residual ``h`` (``[batch, pos, d_model]``), its output at ``keep = (rows, cols)`` only."""
    device = h.device
    rows, cols = keep[0].to(device), keep[1].to(device)
    flat, inverse = torch.unique(rows * h.shape[1] + cols, return_inverse=True)
    rows_u, cols_u = flat // h.shape[1], flat % h.shape[1]
    out = h[rows_u, cols_u]  # [m, d_model]
    if w.n_live:
        x = _layer_norm(block.ln1, h)
        w_qkv, b_qkv, d_head, heads = w.w_qkv, w.b_qkv, w.d_head, w.n_live
        width = w_qkv.shape[1] // 3
        k, v = _keys_values(w, x)  # at every position
        q = x[rows_u, cols_u] @ w_qkv[:, :width] + b_qkv[:width]  # queries at the kept places: [m, heads · d_head]
        # the kept places of each row side by side (slot = rank within its row; unused slots look at key 0)
        groups = _RowGroups(rows_u)
        q_grid = groups.per_prompt(q.view(len(rows_u), heads, 1, d_head))  # [row, head, slot, d_head]
        query_cols = groups.per_prompt(cols_u.view(-1, 1, 1, 1))[:, 0, :, 0]  # [row, slot]
        keys = torch.arange(h.shape[1], device=device)
        if visible is None:
            allowed = keys[None, None, :] <= query_cols[:, :, None]
        else:
            allowed = visible[groups.prompts[:, None], query_cols]
        allowed[..., 0] = True  # unused slots; a kept query always sees key 0 (the first prompt token)
        z = torch.nn.functional.scaled_dot_product_attention(
            q_grid,
            groups.prompts_of(k),
            groups.prompts_of(v),
            attn_mask=allowed[:, None],
            scale=1.0 / w.scale,
        )
        out = _add_attn_out(w, out, groups.per_row(z).reshape(len(rows_u), -1))
    else:
        out = out + w.b_o
    out = _add_mlp_out(block.mlp, out, _layer_norm(block.ln2, out))
    return out[inverse]


def fused_continue(
    model,
    keys_values: list[tuple[torch.Tensor, torch.Tensor]],
    prompt_lengths: torch.Tensor,
    rows: torch.Tensor,
    tokens: torch.Tensor | None = None,
    *,
    resid: torch.Tensor | None = None,
    start_at_layer: int = 0,
    stop_at_layer: int | None = None,
    edit_z: tuple[int, Callable[[torch.Tensor], torch.Tensor]] | dict[int, Callable] | None = None,
    drop_grad_at: int | None = None,
) -> torch.Tensor:
    """Residual ``Float[Tensor, "row pos d_model"]`` after block ``stop_at_layer - 1`` (default: the final one) of
    right-padded ``tokens`` (``Int[Tensor, "row pos"]``) continuing prompts ``rows`` (repeats allowed) whose keys and
    values :func:`fused_resid` stored in ``keys_values`` (``prompt_lengths``: each prompt's real tokens): the
    key-value-cached forward on the fused route.

    Token ``j`` of row ``r`` sits at position ``prompt_lengths[rows[r]] + j`` and attends to its prompt's real tokens
    and the row's tokens up to itself; the prompts are not run again. Instead of ``tokens``, ``resid``
    (``Float[Tensor, "row pos d_model"]``, not modified) can give the residual entering block ``start_at_layer``
    (e.g. one patched there): positions enter only through the embedding, so none are needed then.

    ``edit_z = (layer, fn)`` (or ``{layer: fn, ...}``): at that block, every head's output before ``W_O`` (``z``,
    ``Float[Tensor, "row head pos d_head"]``, zeros for heads whose values are all zero) goes through ``fn`` (which may
    change it in place or return a new tensor), and what it returns is written through every head's ``W_O`` (a head
    patching, as TransformerLens's ``hook_z`` sees it). ``drop_grad_at = layer``: that block's output enters the
    residual stream detached (the same values; the backward pass goes around the block, through the skip connection
    only: GradDrop, Kramár et al. 2024).
    """
    if (tokens is None) == (resid is None):
        raise ValueError("fused_continue: pass exactly one of tokens and resid")
    if tokens is not None and start_at_layer != 0:
        raise ValueError(f"start_at_layer: tokens enter at layer 0, got start_at_layer={start_at_layer}")
    stop = model.cfg.n_layers if stop_at_layer is None else stop_at_layer
    if not 0 <= start_at_layer <= stop <= model.cfg.n_layers:
        raise ValueError(
            f"start_at_layer, stop_at_layer: need 0 <= start <= stop <= {model.cfg.n_layers} (the model's layers), "
            f"got {start_at_layer}, {stop_at_layer}"
        )
    if len(keys_values) < stop:
        raise ValueError(f"keys_values: has {len(keys_values)} layers, the run needs {stop} (from fused_resid)")
    n = keys_values[0][0].shape[2]
    if len(rows) and not 0 <= int(rows.min()) <= int(rows.max()) < len(prompt_lengths):
        raise ValueError(f"rows: must index prompt_lengths (0 … {len(prompt_lengths) - 1}), got {rows.tolist()}")
    if len(prompt_lengths) and int(prompt_lengths.max()) > n:
        raise ValueError(f"prompt_lengths: at most the cached width {n}, got {prompt_lengths.tolist()}")
    if resid is not None and (resid.ndim != 3 or resid.shape[0] != len(rows) or resid.shape[-1] != model.cfg.d_model):
        raise ValueError(
            f"resid: need [len(rows)={len(rows)}, pos, d_model={model.cfg.d_model}], got {list(resid.shape)}"
        )
    device = model.cfg.device
    rows = rows.to(device)
    plen = prompt_lengths.to(device)[rows]
    if tokens is not None:
        tokens = tokens.to(device)
        n_rows, t = tokens.shape
        positions = plen[:, None] + torch.arange(t, device=device)[None]
        n_ctx = model.pos_embed.W_pos.shape[0]
        h = model.embed(tokens) + model.pos_embed.W_pos[positions.clamp(max=n_ctx - 1)]  # clamped: pads only
    else:
        h = resid.to(device, model.cfg.dtype, copy=True)  # a copy: the sublayers below add into it in place
        n_rows, t = h.shape[:2]
    groups = _RowGroups(rows)
    beyond_prompt = torch.arange(n, device=device)[None, None, :] >= plen[:, None, None]  # [row, 1, prompt key]
    later = torch.ones(t, t, dtype=torch.bool, device=device).triu(1)  # [query, own key]
    edits = dict([edit_z]) if isinstance(edit_z, tuple) else dict(edit_z or {})
    if any(not start_at_layer <= la < stop for la in edits):
        raise ValueError(f"edit_z: layers {sorted(edits)} are not all run (layers {start_at_layer} … {stop - 1})")
    for layer in range(start_at_layer, stop):
        block = model.blocks[layer]
        w = attention_weights(block.attn)
        before = h if layer == drop_grad_at else None
        if w.n_live or layer in edits:
            z = _continue_z(w, _layer_norm(block.ln1, h), keys_values[layer], groups, beyond_prompt, later, n)
            if layer in edits:
                h = _add_edited_z(block.attn, w, h, z, edits[layer])
            else:
                h = _add_attn_out(w, h, z.transpose(1, 2).reshape(n_rows, t, -1))
        else:
            h = h + w.b_o
        h = _add_mlp_out(block.mlp, h, _layer_norm(block.ln2, h))
        if before is not None:
            h = before + (h - before).detach()
    return h


@dataclass(frozen=True)
class Join:
    """Rows that join a :func:`fused_continue_joining` run at block ``layer`` (``n_layers``: after the last block):
    ``count`` copies of the base rows, laid out copy after copy, as those rows enter the block, each copy changed
    either by ``patch`` (given the copies' residual ``Float[Tensor, "count·base pos d_model"]``, returns it changed;
    may change it in place) or by ``edit_z`` at that block (every head's ``z`` of the copies, as ``edit_z`` of
    :func:`fused_continue` sees it), not both."""

    layer: int
    count: int
    patch: Callable[[torch.Tensor], torch.Tensor] | None = None
    edit_z: Callable[[torch.Tensor], torch.Tensor] | None = None


def fused_continue_joining(
    model,
    keys_values: list[tuple[torch.Tensor, torch.Tensor]],
    prompt_lengths: torch.Tensor,
    rows: torch.Tensor,
    resid: torch.Tensor,
    joins: Sequence[Join],
    *,
    start_at_layer: int,
    kept: dict[int, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, list[int]]:
    """Without autograd: :func:`fused_continue` of base rows ``rows`` (residual ``resid`` entering block
    ``start_at_layer``, not modified) through the final block, with the rows of each :class:`Join` joining at its
    block, so that every block runs once for all the rows it has (a patch at block ``s`` needs blocks ``>= s`` only;
    many patches at different blocks share one pass instead of one each). A copy joined for ``edit_z`` enters its
    block with the base rows' input: its heads' outputs there are the base rows', edited, not computed again.

    Returns (residual ``Float[Tensor, "row pos d_model"]`` after the final block: the base rows first, then the
    joined ones; the first row of each join, in the order of ``joins``). ``kept``, if given, receives the base rows'
    residual entering each block from ``start_at_layer`` on (copies; key ``n_layers``: after the last block).
    """
    n_layers = model.cfg.n_layers
    for j in joins:
        if not start_at_layer <= j.layer <= n_layers or (j.patch is None) == (j.edit_z is None) or j.count < 1:
            raise ValueError(f"joins: each joins at a block {start_at_layer} … {n_layers} with a count >= 1 and "
                             f"exactly one of patch and edit_z, got {j}")  # fmt: skip
        if j.edit_z is not None and j.layer == n_layers:
            raise ValueError(f"joins: edit_z at block {j.layer}, after the last block (no heads there)")
    if torch.is_grad_enabled():
        raise ValueError("fused_continue_joining: runs without autograd (use fused_continue with edit_z for gradients)")
    if len(keys_values) < n_layers:
        raise ValueError(f"keys_values: has {len(keys_values)} layers, the run needs {n_layers} (from fused_resid)")
    device = model.cfg.device
    base_rows = rows.to(device)
    b, n = len(base_rows), keys_values[0][0].shape[2]
    h = resid.to(device, model.cfg.dtype, copy=True)  # a copy: the sublayers below add into it in place
    t = h.shape[1]
    prompt_of, first_row = base_rows, [0] * len(joins)
    later = torch.ones(t, t, dtype=torch.bool, device=device).triu(1)  # [query, own key]
    groups = beyond_prompt = None

    def join(parts: list[tuple[int, torch.Tensor]]) -> None:
        nonlocal h, prompt_of, groups
        for i, part in parts:
            first_row[i] = h.shape[0]
            h = torch.cat([h, part])
            prompt_of = torch.cat([prompt_of, base_rows.repeat(joins[i].count)])
        groups = None if parts else groups

    for layer in range(start_at_layer, n_layers + 1):
        if kept is not None:
            kept[layer] = h[:b].clone()
        here = [i for i, j in enumerate(joins) if j.layer == layer]
        join([(i, joins[i].patch(h[:b].repeat(joins[i].count, 1, 1))) for i in here if joins[i].patch is not None])
        if layer == n_layers:
            break
        if groups is None:
            groups = _RowGroups(prompt_of)
            beyond_prompt = (
                torch.arange(n, device=device)[None, None, :] >= prompt_lengths.to(device)[prompt_of][:, None, None]
            )  # [row, 1, prompt key]
        block = model.blocks[layer]
        w = attention_weights(block.attn)
        edited = [i for i in here if joins[i].edit_z is not None]
        if w.n_live or edited:
            z = _continue_z(w, _layer_norm(block.ln1, h), keys_values[layer], groups, beyond_prompt, later, n)
            parts = [
                (i, _add_edited_z(block.attn, w, h[:b].repeat(c, 1, 1), z[:b].repeat(c, 1, 1, 1), joins[i].edit_z))
                for i, c in ((i, joins[i].count) for i in edited)
            ]  # before the base rows' own attention output is added into h in place
            h = _add_attn_out(w, h, z.transpose(1, 2).reshape(h.shape[0], t, -1)) if w.n_live else h + w.b_o
        else:
            parts, h = [], h + w.b_o
        join(parts)
        h = _add_mlp_out(block.mlp, h, _layer_norm(block.ln2, h))
    return h, first_row


def _continue_z(w: AttentionWeights, x: torch.Tensor, cached, groups: _RowGroups, beyond_prompt, later, n: int):
    """The writing heads' ``z`` ``Float[Tensor, "row head pos d_head"]`` of continuation rows with normalised input
    ``x`` against their prompts' cached keys and values and their own (see :func:`fused_continue`)."""
    if not w.n_live:
        return x.new_zeros(x.shape[0], 0, x.shape[1], w.d_head)
    q, k, v = _qkv(w, x)
    cached_k, cached_v = cached
    scale = 1.0 / w.scale
    # scores against the prompt's cached keys, each prompt's rows side by side (its keys are not copied per row), then
    # against the row's own keys; one softmax over both
    to_prompt = groups.per_row(groups.per_prompt(q) @ groups.prompts_of(cached_k).transpose(-1, -2))
    to_prompt = (to_prompt * scale).masked_fill_(beyond_prompt[:, None], float("-inf"))
    to_own = ((q @ k.transpose(-1, -2)) * scale).masked_fill_(later, float("-inf"))
    weights = torch.softmax(torch.cat([to_prompt, to_own], dim=-1), dim=-1)
    z = groups.per_row(groups.per_prompt(weights[..., :n]) @ groups.prompts_of(cached_v))
    return z + weights[..., n:] @ v  # [row, head, query, d_head]


def _add_edited_z(attn, w: AttentionWeights, h: torch.Tensor, z: torch.Tensor, fn) -> torch.Tensor:
    """``h`` plus the attention output of every head's ``z`` after ``fn`` (see ``edit_z`` of :func:`fused_continue`):
    the writing heads' ``z`` laid out over all heads (zeros elsewhere: a head whose values are all zero has ``z = 0``;
    one whose ``W_O`` is zero writes nothing whatever its ``z``), edited, and written through every head's ``W_O``."""
    w_o, b_o = output_weights(attn)
    rows, _, t, _ = z.shape
    full = fn(_every_head(w, z, w_o.shape[0] // w.d_head))
    out = full.transpose(1, 2).reshape(rows, t, -1) @ w_o.to(h.dtype) + b_o.to(h.dtype)
    return h + out
