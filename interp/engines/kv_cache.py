"""The key-value-cache engine: each prompt runs once into a frozen cache, then its answers' tokens run from it.

1. *Prompt pass*: each distinct prefix — the candidate's first ``prompt_len`` tokens, i.e. the prompt itself unless
   the answer merged into its last token — runs once, right-padded with an attention mask, filling a TransformerLens
   key-value cache. ``prompt_hooks`` (the per-cell interventions of :func:`interp.engines.score`) act here only.
2. *Answer pass*: the answers' remaining context tokens run from that frozen cache, batched over the prompts of a
   batch, never re-running the prompt (no hook of the prompt pass is attached any more).

With a plan made by ``plan_scoring(..., shared_prefix=False)`` every candidate is one full row and only the first
pass runs: the *full-rows* route, exact for any model and for hooks of the caller.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from interp.engines.plan import ScoringPlan, pad_rows
from interp.engines.readout import per_slot, read_targets, terms_in_batch
from interp.hooks import final_resid, hooked

#: ``prompt_hooks(prompt_indices) -> [(hook_name, fn), ...]``: hooks for one prompt-pass batch whose i-th sequence
#: is the prefix of prompt ``prompt_indices[i]``.
PromptHooks = Callable[[list[int]], list[tuple[str, Callable]]]


def forward_resid(model, tokens: torch.Tensor, attention_mask: torch.Tensor, cache) -> torch.Tensor:
    """Final residual ``Float[Tensor, "batch pos d_model"]`` (before ``ln_final``) of right-padded ``tokens``,
    appending to ``cache``.

    The mask goes in only with a cache (which records it for the answer pass). Without one it is not needed (the rows
    are right-padded and attention is causal, so no real token sees a pad) and it would be harmful: on a model with
    sliding-window or chunked attention, a pad far enough past its row's last token has every key masked, and Hugging
    Face's attention takes the softmax in float32, where a float64 model's mask value (``finfo(float64).min``) is
    ``-inf``: that row's softmax is NaN, and the next layer carries it into every real position (0 × NaN).
    """
    return final_resid(model, tokens, attention_mask if cache is not None else None, cache)


class _RowsEntry:
    """One layer's cached keys/values, restricted to batch rows ``sel`` (repeats allowed) without copying them all:
    rows are gathered layer by layer when the layer appends (TransformerLens reads ``past_keys`` only for its
    shape and calls ``append``), so at most one layer's gathered copy is alive at a time."""

    frozen = True

    def __init__(self, entry, sel: torch.Tensor):
        self.entry, self.sel = entry, sel.to(entry.past_keys.device)

    @property
    def past_keys(self) -> torch.Tensor:  # shape-correct view, no copy
        k = self.entry.past_keys
        return k[:1].expand(len(self.sel), *k.shape[1:])

    @property
    def past_values(self) -> torch.Tensor:
        v = self.entry.past_values
        return v[:1].expand(len(self.sel), *v.shape[1:])

    def append(self, new_keys: torch.Tensor, new_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keys = torch.cat([self.entry.past_keys[self.sel], new_keys], dim=1)
        return keys, torch.cat([self.entry.past_values[self.sel], new_values], dim=1)


def sub_cache(cache, sel: torch.Tensor | None):
    """A frozen view of ``cache`` over batch rows ``sel`` (repeats allowed; ``None`` = the cache itself)."""
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    if sel is None:
        return cache
    mask = cache.previous_attention_mask
    return TransformerLensKeyValueCache(
        [_RowsEntry(e, sel) for e in cache.entries], mask[sel.to(mask.device)], frozen=True
    )


@torch.inference_mode()
def run_with_cache(
    model,
    plan: ScoringPlan,
    *,
    pad: int,
    batch_size: int = 32,
    prompt_hooks: PromptHooks | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per slot: summed log-prob ``Float[ndarray, "prompt cand"]`` (float64) and greedy-exact flags (bool).

    Prefix rows run ``batch_size`` at a time (sorted by length) with a key-value cache; then the answer contexts of
    that batch run from the frozen cache, up to ``4 * batch_size`` rows per pass (each row reads its prefix's keys
    and values, gathered one layer at a time). ``prompt_hooks`` act only in the prompt pass.
    """
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    head_lp, head_ok = (
        torch.zeros(len(plan.prompt_terms), dtype=torch.float64),
        torch.zeros(len(plan.prompt_terms), dtype=torch.bool),
    )
    tail_lp, tail_ok = (
        torch.zeros(len(plan.answer_terms), dtype=torch.float64),
        torch.zeros(len(plan.answer_terms), dtype=torch.bool),
    )
    answer_rows_of: list[list[int]] = [[] for _ in plan.prefixes]  # answer (suffix) rows of each prefix row
    for s, p in enumerate(plan.suffix_prefix):
        answer_rows_of[p].append(s)
    order = sorted(range(len(plan.prefixes)), key=lambda r: len(plan.prefixes[r]))
    for lo in range(0, len(order), batch_size):
        chunk = order[lo : lo + batch_size]
        x, mask = pad_rows([plan.prefixes[r] for r in chunk], pad)
        has_answers = any(answer_rows_of[r] for r in chunk)  # full rows: no answer pass, no cache
        cache = None
        if has_answers:
            cache = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, len(chunk))
        prompts_here = [plan.prefix_prompt[r] for r in chunk]
        with hooked(model, prompt_hooks(prompts_here) if prompt_hooks else []):
            resid = forward_resid(model, x, mask, cache)
        if cache is not None:
            cache.freeze()
        local = np.full(len(plan.prefixes), -1, dtype=np.int64)
        local[chunk] = np.arange(len(chunk))
        idx, rows, pos, tgt = terms_in_batch(plan.prompt_terms, local)
        if len(idx):
            head_lp[idx], head_ok[idx] = read_targets(model, resid, rows, pos, tgt)
        del resid
        pending = sorted(
            ((b, sr) for b, r in enumerate(chunk) for sr in answer_rows_of[r]), key=lambda m: len(plan.suffixes[m[1]])
        )
        for alo in range(0, len(pending), 4 * batch_size):  # all answers of the batch together, length-sorted
            members = pending[alo : alo + 4 * batch_size]
            sel = torch.tensor([b for b, _ in members])
            if len(members) == len(chunk) and bool((sel == torch.arange(len(chunk))).all()):
                sel = None
            sx, smask = pad_rows([plan.suffixes[sr] for _, sr in members], pad)
            resid = forward_resid(model, sx, smask, sub_cache(cache, sel))  # prompt hooks are detached by now
            slocal = np.full(len(plan.suffixes), -1, dtype=np.int64)
            slocal[[sr for _, sr in members]] = np.arange(len(members))
            idx, rows, pos, tgt = terms_in_batch(plan.answer_terms, slocal)
            if len(idx):
                tail_lp[idx], tail_ok[idx] = read_targets(model, resid, rows, pos, tgt)
    slots = np.concatenate([plan.prompt_terms[:, 0], plan.answer_terms[:, 0]])
    return per_slot(plan, slots, torch.cat([head_lp, tail_lp]), torch.cat([head_ok, tail_ok]))
