"""Several continuations of one prompt in one row: the prompt once, then each continuation after it.

A *packed row* is ``prefix + suffix_1 + suffix_2 + …``. Each suffix token sees the prefix and the earlier tokens of
its own suffix only (a block attention mask), at the positions it would have alone (``len(prefix) + j``), so every
logit equals the one a separate ``prefix + suffix_i`` forward gives, up to float rounding — but the prefix runs once
and there is no key-value cache to copy per continuation. This is how the engines read K candidate
answers in one forward pass over the prompts.

Exact only where positions enter through a learned position table (``positional_embedding_type == "standard"``,
GPT-2 style) and attention is causal and global: :func:`interp.engines.exact.absolute_positions` says so; other
models use the key-value cache.

>>> rows = pack([(1, 2, 3)], [(7,), (8, 9)], [0, 0], n_ctx=16)
>>> rows.tokens, rows.positions, rows.segments
([(1, 2, 3, 7, 8, 9)], [(0, 1, 2, 3, 3, 4)], [(0, 0, 0, 1, 2, 2)])
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from interp.engines.exact import fused_forward_exact
from interp.engines.fused import fused_resid
from interp.engines.plan import ScoringPlan
from interp.engines.readout import per_slot, read_targets, terms_in_batch
from interp.hooks import context_length, final_resid, hooked


@dataclass(frozen=True)
class PackedRows:
    """Rows of ``prefix + suffixes`` and where each prefix and suffix landed.

    ``positions[r][t]`` is token ``t``'s position as seen alone; ``segments[r][t]`` is 0 for prefix tokens and
    ``1 + i`` for the ``i``-th suffix of the row. ``prefix_row[p]``: the packed row holding prefix ``p`` (its first
    row when its suffixes fill several); ``suffix_row[s]``/``suffix_start[s]``: the row and offset of suffix ``s``.
    """

    tokens: list[tuple[int, ...]]
    positions: list[tuple[int, ...]]
    segments: list[tuple[int, ...]]
    prefix_row: np.ndarray
    suffix_row: np.ndarray
    suffix_start: np.ndarray
    prefix_len: np.ndarray  # prefix tokens at the start of each row


def pack(
    prefixes: Sequence[Sequence[int]],
    suffixes: Sequence[Sequence[int]],
    suffix_prefix: Sequence[int],
    *,
    n_ctx: int,
) -> PackedRows:
    """Pack each prefix with its suffixes (``suffix_prefix[s]`` = the prefix of suffix ``s``) into rows of at most
    ``n_ctx`` tokens; a prefix whose suffixes do not fit in one row is repeated in further rows.

    Raises ``ValueError`` when a single ``prefix + suffix`` is longer than ``n_ctx``.
    """
    by_prefix: list[list[int]] = [[] for _ in prefixes]
    for s, p in enumerate(suffix_prefix):
        by_prefix[p].append(s)
    tokens, positions, segments = [], [], []
    row_prefix: list[int] = []
    prefix_row = np.full(len(prefixes), -1, dtype=np.int64)
    suffix_row = np.full(len(suffixes), -1, dtype=np.int64)
    suffix_start = np.full(len(suffixes), -1, dtype=np.int64)
    for p, prefix in enumerate(prefixes):
        base = len(prefix)
        row: list[int] = list(prefix)
        pos, seg, n_seg = list(range(base)), [0] * base, 0
        prefix_row[p] = len(tokens)
        for s in by_prefix[p]:
            suffix = suffixes[s]
            if base + len(suffix) > n_ctx:
                raise ValueError(f"suffixes: prefix + suffix has {base + len(suffix)} tokens, more than n_ctx={n_ctx}")
            if len(row) + len(suffix) > n_ctx:  # row full: close it, start another copy of the prefix
                row_prefix.append(p)
                tokens.append(tuple(row))
                positions.append(tuple(pos))
                segments.append(tuple(seg))
                row, pos, seg, n_seg = list(prefix), list(range(base)), [0] * base, 0
            suffix_row[s], suffix_start[s] = len(tokens), len(row)
            n_seg += 1
            row += suffix
            pos += range(base, base + len(suffix))
            seg += [n_seg] * len(suffix)
        row_prefix.append(p)
        tokens.append(tuple(row))
        positions.append(tuple(pos))
        segments.append(tuple(seg))
    prefix_len = np.array([len(prefixes[p]) for p in row_prefix], dtype=np.int64)
    return PackedRows(tokens, positions, segments, prefix_row, suffix_row, suffix_start, prefix_len)


@dataclass(frozen=True)
class PackedBatch:
    """Packed rows laid out for one forward pass: ``Int[Tensor, "batch width"]`` tokens, positions and segments (pads:
    segment -1). With ``prefix_width`` set, every row's prefix sits in columns ``[0, prefix_width)`` (right-padded)
    and its suffixes from column ``prefix_width`` on, so the prefix block can use plain causal attention. ``fused``:
    whether the batch runs through the fused-attention forward (decided once, by :func:`layout`)."""

    tokens: torch.Tensor
    positions: torch.Tensor
    segments: torch.Tensor
    prefix_width: int | None
    prefix_len: np.ndarray
    fused: bool

    def columns(self, rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Column of token ``positions[i]`` (index within its packed row) of batch row ``rows[i]``."""
        return split_columns(positions, self.prefix_len[rows], self.prefix_width)


def split_columns(index: np.ndarray, prefix_len: np.ndarray, prefix_width: int | None) -> np.ndarray:
    """Column of each token ``index`` (within its packed row, whose prefix has ``prefix_len`` tokens) in the split
    layout: prefix tokens where they are, suffix tokens from ``prefix_width`` on (``None``: rows as packed)."""
    if prefix_width is None:
        return index
    return np.where(index < prefix_len, index, index - prefix_len + prefix_width)


def layout(model, rows: PackedRows, chunk: Sequence[int], *, pad: int) -> PackedBatch:
    """Lay packed rows ``chunk`` out for one forward pass of ``model``: prefixes in a causal block, then the suffixes
    (the split layout), unless TransformerLens's forward runs it and it is wider than the context (its causal mask
    stops there): then each row as packed, right-padded."""
    fused = fused_forward_exact(model)
    n_ctx = None if fused else context_length(model)
    plen = rows.prefix_len[list(chunk)]
    rest = [len(rows.tokens[r]) - n for r, n in zip(chunk, plen, strict=True)]
    width = int(plen.max()) + max(rest)
    split = int(plen.max()) if n_ctx is None or width <= n_ctx else None
    if split is None:
        width = max(len(rows.tokens[r]) for r in chunk)
    lengths = np.array([len(rows.tokens[r]) for r in chunk], dtype=np.int64)
    row = np.repeat(np.arange(len(chunk)), lengths)  # every token of the chunk: its batch row and index in its row
    index = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    cols = split_columns(index, plen[row], split)

    def grid(values: list[tuple[int, ...]], fill: int) -> torch.Tensor:
        out = np.full((len(chunk), width), fill, dtype=np.int64)
        out[row, cols] = np.fromiter(itertools.chain.from_iterable(values[r] for r in chunk), np.int64, len(row))
        return torch.from_numpy(out)

    tokens, positions, segments = grid(rows.tokens, pad), grid(rows.positions, 0), grid(rows.segments, -1)
    return PackedBatch(tokens, positions, segments, split, plen, fused)


def block_mask(segments: torch.Tensor) -> torch.Tensor:
    """``Bool[Tensor, "batch query key"]``: key visible to query when it is a prefix token or in the query's own
    segment (the causal mask applies on top). ``segments`` is ``Int[Tensor, "batch pos"]`` (pads: -1)."""
    key = segments[:, None, :]
    return (key == 0) | (key == segments[:, :, None])


def packed_forward(model, batch: PackedBatch, *, keep: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Final residual ``Float[Tensor, "batch width d_model"]`` (before ``ln_final``) of a :class:`PackedBatch`, or
    with ``keep = (rows, cols)`` only ``Float[Tensor, "n d_model"]`` at those places (cheaper on the fused route:
    see :func:`interp.fused.fused_resid`).

    Where ``batch.fused`` (:func:`interp.fused.fused_forward_exact` when laid out), the rows run through the
    fused-attention forward with the :func:`block_mask` (the prefix block with plain causal attention); otherwise two
    kinds of hooks do the packing and are removed on return (also on error): the position embedding is read at
    ``positions``, and every layer's attention scores get the :func:`block_mask`.
    """
    tokens, positions, segments = batch.tokens, batch.positions, batch.segments
    if batch.fused:  # same maths in PyTorch's fused attention, the block mask passed to it directly
        return fused_resid(
            model,
            tokens,
            positions=positions,
            visible=block_mask(segments),
            causal_prefix=batch.prefix_width,
            keep=keep,
        )
    attention_mask = (segments >= 0).long()
    visible = block_mask(segments)[:, None]  # [batch, 1, query, key]
    on_device: dict[torch.device, torch.Tensor] = {}

    def at_positions(pos_embed: torch.Tensor, hook) -> torch.Tensor:
        return model.pos_embed.W_pos[positions.to(pos_embed.device)].to(pos_embed.dtype)

    def blocked(scores: torch.Tensor, hook) -> torch.Tensor:
        if scores.device not in on_device:
            on_device[scores.device] = visible.to(scores.device)
        return scores.masked_fill(~on_device[scores.device], float("-inf"))

    fwd = [("hook_pos_embed", at_positions)]
    fwd += [(f"blocks.{layer}.attn.hook_attn_scores", blocked) for layer in range(model.cfg.n_layers)]
    with hooked(model, fwd):
        resid = final_resid(model, tokens, attention_mask)
    return resid if keep is None else resid[keep[0].to(resid.device), keep[1].to(resid.device)]


@torch.inference_mode()
def run_packed(model, plan: ScoringPlan, *, pad: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`interp.engines.kv_cache.run_with_cache`'s numbers in one forward pass per batch: each prompt with all
    its answers in one packed row (see above), so the prompt runs once and no key-value cache is copied per answer."""
    rows = pack(plan.prefixes, plan.suffixes, plan.suffix_prefix, n_ctx=context_length(model))
    head, tail = plan.prompt_terms, plan.answer_terms
    terms = np.concatenate(  # (slot, packed row, position in it, target)
        [
            np.stack([head[:, 0], rows.prefix_row[head[:, 1]], head[:, 2], head[:, 3]], axis=1),
            np.stack(
                [tail[:, 0], rows.suffix_row[tail[:, 1]], rows.suffix_start[tail[:, 1]] + tail[:, 2], tail[:, 3]],
                axis=1,
            ),
        ]
    ).reshape(-1, 4)
    lp, ok = torch.zeros(len(terms), dtype=torch.float64), torch.zeros(len(terms), dtype=torch.bool)
    order = sorted(range(len(rows.tokens)), key=lambda r: (rows.prefix_len[r], len(rows.tokens[r])))
    for lo in range(0, len(order), batch_size):
        chunk = order[lo : lo + batch_size]
        local = np.full(len(rows.tokens), -1, dtype=np.int64)
        local[chunk] = np.arange(len(chunk))
        idx, r, pos, tgt = terms_in_batch(terms, local)
        if not len(idx):
            continue
        batch = layout(model, rows, chunk, pad=pad)
        width = batch.tokens.shape[1]
        places, inverse = torch.unique(r * width + torch.from_numpy(batch.columns(r.numpy(), pos.numpy())),
                                       return_inverse=True)  # fmt: skip
        kept = packed_forward(model, batch, keep=(places // width, places % width))  # [place, d_model]
        lp[idx], ok[idx] = read_targets(model, kept[None], torch.zeros_like(inverse), inverse, tgt)
    return per_slot(plan, terms[:, 0], lp, ok)
