"""Decoding complete answers (text up to a terminator such as ``\\n``): beam search and exact top-k answers.

Each prompt runs once, filling a TransformerLens key-value cache; every later step feeds only the partial
answers' tokens from that frozen cache (batched over prompts and beams) and computes a log-softmax at each
row's last position only, in the model's dtype (half precision raised to float32).

* :func:`complete_outputs` / :func:`complete_outputs_batch`: the beam search of the "tasks solved" study.
* :func:`superposed_answers`: the ``k`` most probable complete answers with their exact probabilities, found by
  an exact best-first search (a partial answer's probability bounds every completion of it).

>>> outs = complete_outputs(model, "\\n34@57=", beam_width=4, max_new_tokens=5)   # doctest: +SKIP
>>> outs[0]                                                                         # doctest: +SKIP
('91\\n', -0.02)
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from interp.engines.exact import cache_exact, fused_forward_exact
from interp.engines.fused import fused_continue, fused_resid
from interp.engines.kv_cache import forward_resid, sub_cache
from interp.engines.nn_model import is_nnsight
from interp.engines.nn_traces import next_log_probs
from interp.engines.plan import pad_rows
from interp.engines.readout import logits_at
from interp.hooks import attached_hooks, context_length
from interp.models import tokenizer_of
from interp.tokenization import encode_batch, pad_id

_TERMINATOR_CACHE: dict[tuple[int, str], frozenset[int]] = {}


def terminator_token_ids(tokenizer, terminator: str = "\n") -> frozenset[int]:
    """Ids of every vocabulary token whose text contains ``terminator`` (cached per tokenizer)."""
    key = (id(tokenizer), terminator)
    if key not in _TERMINATOR_CACHE:
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        _TERMINATOR_CACHE[key] = frozenset(i for i, t in enumerate(texts) if terminator in t)
    return _TERMINATOR_CACHE[key]


def newline_token_ids(tokenizer) -> set[int]:
    """Ids of every vocabulary token whose text contains a newline."""
    return set(terminator_token_ids(tokenizer, "\n"))


class PromptCache:
    """Prompts run once (right-padded, masked) into a frozen key-value cache; continuations then run from it.

    Where :func:`interp.engines.exact.fused_forward_exact` holds when it is built, the cache is the fused forward's
    own keys and values (:func:`interp.engines.fused.fused_continue`); otherwise TransformerLens's key-value cache and
    forward. Where no cache is exact (:func:`interp.engines.exact.cache_exact` is false: sliding-window attention, or
    hooks of the caller attached, which must see every position), each continuation runs with its whole prompt
    again; so it does on the nnsight engine, batched into traces that save the next-token log-probs only
    (:func:`interp.engines.nn_traces.next_log_probs`).
    """

    def __init__(self, model, prompt_ids: Sequence[Sequence[int]]):
        self.model, self.pad = model, pad_id(tokenizer_of(model))
        self.prompt_ids = [tuple(p) for p in prompt_ids]
        if is_nnsight(model):  # no cache crosses a trace: every continuation runs with its prompt again
            self.fused = self.cached = False
            self.last_logp = next_log_probs(model, self.prompt_ids, pad=self.pad, batch_size=64)
            return
        x, mask = pad_rows(prompt_ids, self.pad)
        self.fused = fused_forward_exact(model)
        self.cached = self.fused or cache_exact(model)
        if self.fused:
            self.keys_values: list = []
            resid = fused_resid(model, x, keys_values=self.keys_values)
            self.lengths = torch.tensor([len(p) for p in prompt_ids])
        elif self.cached:
            from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

            self.cache = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, len(prompt_ids))
            resid = forward_resid(model, x, mask, self.cache)
            self.cache.freeze()
        else:
            resid = forward_resid(model, x, mask, None)
        last = torch.tensor([len(p) - 1 for p in prompt_ids])
        #: ``Float[Tensor, "prompt vocab"]`` next-token log-probs after each prompt.
        self.last_logp = torch.log_softmax(logits_at(model, resid, torch.arange(len(prompt_ids)), last), dim=-1).cpu()

    def next_log_probs(self, prompt_rows: Sequence[int], conts: Sequence[Sequence[int]], batch_size: int = 64):
        """``Float[Tensor, "row vocab"]`` log P(next token | prompt ``prompt_rows[i]`` + ``conts[i]``)."""
        prompt_rows = list(prompt_rows)
        out = self.last_logp[prompt_rows].clone()  # empty continuations: the prompt's own next token
        todo = [i for i, c in enumerate(conts) if len(c)]
        if is_nnsight(self.model) and todo:
            full = [(*self.prompt_ids[prompt_rows[i]], *conts[i]) for i in todo]
            out[todo] = next_log_probs(self.model, full, pad=self.pad, batch_size=batch_size).to(out.dtype)
            return out
        for lo in range(0, len(todo), batch_size):
            idx = todo[lo : lo + batch_size]
            rows, chunk = torch.tensor([prompt_rows[i] for i in idx]), [conts[i] for i in idx]
            full = not self.cached or attached_hooks(self.model) > 0  # hooks attached since: they see whole rows
            if full:
                chunk = [(*self.prompt_ids[prompt_rows[i]], *conts[i]) for i in idx]
            x, mask = pad_rows(chunk, self.pad)
            if full:
                resid = forward_resid(self.model, x, mask, None)
            elif self.fused:
                resid = fused_continue(self.model, self.keys_values, self.lengths, rows, x)
            else:
                resid = forward_resid(self.model, x, mask, sub_cache(self.cache, rows))
            last = torch.tensor([len(c) - 1 for c in chunk])
            logits = logits_at(self.model, resid, torch.arange(len(chunk)), last)
            out[idx] = torch.log_softmax(logits, dim=-1).cpu().to(out.dtype)
        return out


def _check_room(model, prompt_ids: Sequence[Sequence[int]], new_tokens: int, name: str) -> None:
    longest = max(len(p) for p in prompt_ids)
    if longest + new_tokens - 1 > context_length(model):
        raise ValueError(f"{name}: prompt of {longest} tokens + {new_tokens} new tokens exceeds the context")


@torch.inference_mode()
def complete_outputs_batch(
    model, prompt_texts: Sequence[str], *, beam_width: int = 8, max_new_tokens: int = 12, batch_size: int = 16
) -> list[list[tuple[str, float]]]:
    """:func:`complete_outputs` for many prompts: ``batch_size`` prompts share each forward pass."""
    if beam_width < 1 or max_new_tokens < 1:
        raise ValueError(f"beam_width and max_new_tokens: must be >= 1, got {beam_width}, {max_new_tokens}")
    tok = tokenizer_of(model)
    ends = terminator_token_ids(tok, "\n")
    ids = encode_batch(tok, list(prompt_texts))
    _check_room(model, ids, max_new_tokens, "max_new_tokens")
    results: list[list[tuple[str, float]]] = []
    for lo in range(0, len(ids), batch_size):
        cache = PromptCache(model, ids[lo : lo + batch_size])
        beams = [[([], 0.0)] for _ in range(len(ids[lo : lo + batch_size]))]
        finished: list[list[tuple[list[int], float]]] = [[] for _ in beams]
        for _ in range(max_new_tokens):
            flat = [(i, cont, score) for i, group in enumerate(beams) for cont, score in group]
            if not flat:
                break
            logp = cache.next_log_probs([i for i, _, _ in flat], [c for _, c, _ in flat], 64)
            top = logp.topk(beam_width, dim=-1)
            expanded: list[list[tuple[list[int], float]]] = [[] for _ in beams]
            for r, (i, cont, score) in enumerate(flat):
                for lp, t in zip(top.values[r].tolist(), top.indices[r].tolist(), strict=True):
                    expanded[i].append((cont + [t], score + lp))
            for i, group in enumerate(expanded):
                group.sort(key=lambda b: -b[1])
                beams[i] = []
                for cont, score in group:
                    if cont[-1] in ends:
                        finished[i].append((cont, score))
                    elif len(beams[i]) < beam_width:
                        beams[i].append((cont, score))
        for done in finished:
            done.sort(key=lambda b: -b[1])
            results.append([(tok.decode(c), s) for c, s in done])
    return results


def complete_outputs(
    model, prompt_text: str, *, beam_width: int = 8, max_new_tokens: int = 12
) -> list[tuple[str, float]]:
    """Complete outputs (text up to and including the first newline) with their log-probs, best first.

    A beam of ``beam_width`` partial completions is extended by each one's top ``beam_width`` next
    tokens; a completion that emits a newline-bearing token is finished. Partial completions still
    open after ``max_new_tokens`` are dropped.
    """
    return complete_outputs_batch(model, [prompt_text], beam_width=beam_width, max_new_tokens=max_new_tokens)[0]


@dataclass(frozen=True)
class Answer:
    """One complete answer: its tokens (the last one holds the terminator), text and exact log-probability."""

    tokens: tuple[int, ...]
    text: str
    log_prob: float


@torch.inference_mode()
def superposed_answers(
    model, prompt: str, k: int, *, max_len: int = 8, terminator: str = "\n", batch_size: int = 32
) -> list[Answer]:
    """The ``k`` most probable complete answers to ``prompt`` (at most ``max_len`` tokens, ending at ``terminator``).

    Exact, not a heuristic beam: a best-first search pops partial answers by probability (``batch_size`` at a
    time, expanded in one batched forward from the prompt's key-value cache); a child enters the frontier only
    when its parent's more probable children have, so the frontier stays small. The search stops once ``k``
    complete answers are at least as probable as the best open partial, which bounds every answer not yet found.
    An answer is a token sequence whose last token (only) contains ``terminator``; its probability is that of the
    sequence (answers continue the prompt's tokens: no merge across the prompt boundary). Fewer than ``k``
    answers come back only when fewer exist within ``max_len`` tokens.

    >>> [(a.text, round(a.log_prob, 2)) for a in superposed_answers(model, "\\n3=4\\n5=", 2)]  # doctest: +SKIP
    [('6\\n', -0.4), ('12\\n', -1.3)]
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k: must be an integer >= 1, got {k!r}")
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len: must be an integer >= 1, got {max_len!r}")
    if not isinstance(terminator, str) or not terminator:
        raise ValueError(f"terminator: must be a non-empty string, got {terminator!r}")
    tok = tokenizer_of(model)
    ends = terminator_token_ids(tok, terminator)
    if not ends:
        raise ValueError(f"terminator: no token of the vocabulary contains {terminator!r}")
    ids = encode_batch(tok, [prompt])
    _check_room(model, ids, max_len, "max_len")
    cache = PromptCache(model, ids)
    # frontier items: (-log_prob, tie, node, rank): child number `rank` (by probability) of expanded node `node`
    nodes: list[tuple[tuple[int, ...], float, torch.Tensor, torch.Tensor]] = []  # (tokens, logp, sorted lp, ids)
    frontier: list[tuple[float, int, int, int]] = []
    found: list[Answer] = []
    tie = itertools.count()

    def expand(parents: list[tuple[tuple[int, ...], float]]) -> None:
        logp = cache.next_log_probs([0] * len(parents), [list(p) for p, _ in parents], batch_size)
        values, order = logp.double().sort(dim=-1, descending=True)
        for (seq, lp), v, o in zip(parents, values, order, strict=True):
            nodes.append((seq, lp, v, o))
            heapq.heappush(frontier, (-(lp + float(v[0])), next(tie), len(nodes) - 1, 0))

    expand([((), 0.0)])
    while frontier:
        kth = sorted(a.log_prob for a in found)[-k] if len(found) >= k else None
        if kth is not None and kth >= -frontier[0][0]:
            break
        to_expand = []
        while frontier and len(to_expand) < batch_size:
            neg, _, node, rank = heapq.heappop(frontier)
            seq, lp, values, order = nodes[node]
            if rank + 1 < len(order):  # the next sibling can now enter the frontier
                heapq.heappush(frontier, (-(lp + float(values[rank + 1])), next(tie), node, rank + 1))
            child = (*seq, int(order[rank]))
            if child[-1] in ends:
                found.append(Answer(child, tok.decode(list(child)), -neg))
                break  # re-check the stopping rule before popping more
            if len(child) < max_len:
                to_expand.append((child, -neg))
        if to_expand:
            expand(to_expand)
    found.sort(key=lambda a: -a.log_prob)
    return found[:k]
