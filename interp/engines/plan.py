"""From prompt and answer texts to rows of tokens: which tokens run, and which scored token sums into which
(prompt, candidate) slot.

For a prompt and a candidate answer, ``prompt + answer`` is tokenised *together* (BOS convention of
:func:`interp.tokenization.encode`). The scored tokens start where that sequence first departs from the prompt's own
tokens; normally that is right after the prompt. When the answer's first token merges with the prompt's last token
(BPE), the scored span starts one token earlier and covers the merged token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from interp.hooks import context_length
from interp.tokenization import check_known, concatenates, encode_batch, right_pad
from interp.validate import ArgumentError, ArgumentTypeError, check_count, check_int


@dataclass(frozen=True)
class Candidate:
    """Token-level view of one (prompt, answer) pair: ``ids`` = BOS + prompt + answer, scored from ``start``."""

    ids: tuple[int, ...]
    start: int
    prompt_len: int

    @property
    def merged(self) -> bool:
        return self.start < self.prompt_len

    @property
    def n_fed(self) -> int:
        """Tokens the model reads: all but the last answer token (its log-prob needs no forward position)."""
        return len(self.ids) - 1


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def candidates_for(tokenizer, prompt_text: str, answers: Sequence[str]) -> list[Candidate]:
    """Tokenise ``prompt_text + answer`` for each answer and locate the answer's tokens."""
    return candidates_batch(tokenizer, [prompt_text], [answers])[0]


def candidates_batch(tokenizer, prompt_texts: Sequence[str], answers: Sequence[Sequence[str]]) -> list[list[Candidate]]:
    """:func:`candidates_for` for many prompts, in one tokenizer call (for a tokenizer that concatenates, e.g. the
    character-level one, each prompt and each distinct answer are tokenised once and joined)."""
    specials = [t for t in getattr(tokenizer, "all_special_tokens", []) if t]
    if concatenates(tokenizer) and not any(t in x for t in specials for x in [*prompt_texts, *_flat(answers)]):
        return _joined_candidates(tokenizer, prompt_texts, answers)
    texts = [t for text, group in zip(prompt_texts, answers, strict=True) for t in [text, *(text + a for a in group)]]
    seqs = encode_batch(tokenizer, texts)
    starts = np.cumsum([0] + [1 + len(g) for g in answers])[:-1]
    check_known(tokenizer, prompt_texts, [seqs[i] for i in starts], "prompts")
    for i, at in enumerate(starts):  # the prompts are known: an unknown token comes from an answer
        end = at + 1 + len(answers[i])
        check_known(tokenizer, texts[at + 1 : end], seqs[at + 1 : end], f"answers[{i}]")
    out, at = [], 0
    for text, group in zip(prompt_texts, answers, strict=True):
        prompt_ids, fulls = seqs[at], seqs[at + 1 : at + 1 + len(group)]
        at += 1 + len(group)
        cands = []
        for full in fulls:
            start = common_prefix(prompt_ids, full)
            if start == len(full):
                raise _adds_no_token(text)
            cands.append(Candidate(tuple(full), max(start, 1), len(prompt_ids)))
        out.append(cands)
    return out


def _adds_no_token(prompt_text: str) -> ValueError:
    return ArgumentError("answers", f"an answer adds no token to prompt {prompt_text[-30:]!r}")


def _flat(groups: Sequence[Sequence[str]]) -> list[str]:
    return [a for g in groups for a in g]


def _joined_candidates(tokenizer, prompt_texts, answers) -> list[list[Candidate]]:
    """Candidates when tokens(prompt + answer) == tokens(prompt) + tokens(answer): no merge, scored from the end."""
    prompt_ids = encode_batch(tokenizer, list(prompt_texts))
    check_known(tokenizer, prompt_texts, prompt_ids, "prompts")
    distinct = sorted(set(_flat(answers)))
    answer_ids = {a: tuple(ids[1:]) for a, ids in zip(distinct, encode_batch(tokenizer, distinct), strict=True)}
    for i, group in enumerate(answers):
        check_known(tokenizer, group, [(0, *answer_ids[a]) for a in group], f"answers[{i}]")
    out = []
    for text, prompt, group in zip(prompt_texts, prompt_ids, answers, strict=True):
        if any(not answer_ids[a] for a in group):
            raise _adds_no_token(text)
        out.append([Candidate((*prompt, *answer_ids[a]), len(prompt), len(prompt)) for a in group])
    return out


def check_fits(model, lengths: Sequence[int], what: str = "prompts") -> None:
    """Refuse sequences of more tokens than the model's context (``lengths`` = tokens actually fed)."""
    n_ctx = context_length(model)
    longest = max(lengths, default=0)
    if longest > n_ctx:
        raise ArgumentError(
            what,
            f"longest sequence has {longest} tokens, more than the model's context of {n_ctx}; "
            "use fewer examples (n_examples) or a model with a longer context",
        )


@dataclass(frozen=True)
class ScoringPlan:
    """Which tokens run in which pass, and which scored token sums into which (prompt, candidate) slot.

    ``prompt_terms``/``answer_terms`` are ``Int[ndarray, "term 4"]`` rows ``(slot, row, position, target)``: a scored
    answer token read in the prompt pass (row = prefix row, position in it) or in the answer pass (row = suffix row,
    position in the suffix). Slot ``i * n_candidates + k`` is candidate ``k`` of prompt ``i``.
    """

    prefixes: list[tuple[int, ...]]
    prefix_prompt: list[int]
    suffixes: list[tuple[int, ...]]
    suffix_prefix: list[int]
    prompt_terms: np.ndarray
    answer_terms: np.ndarray
    shape: tuple[int, int]
    n_merged: int

    @property
    def longest(self) -> int:
        """Most tokens fed for one candidate (prefix + suffix)."""
        suf = [len(self.prefixes[p]) + len(s) for s, p in zip(self.suffixes, self.suffix_prefix, strict=True)]
        return max([len(p) for p in self.prefixes] + suf, default=0)


def plan_scoring(
    cands: Sequence[Sequence[Candidate]], *, shared_prefix: bool = True, across_prompts: bool = False
) -> ScoringPlan:
    """Split every candidate into a shared prefix (its first ``prompt_len`` tokens) and the answer tokens after it.

    Candidates of a prompt share one prefix row (two rows when an answer merges into the prompt's last token);
    identical answer contexts share one suffix row. With ``across_prompts``, rows are shared across prompts too:
    prompts with identical tokens run once (only when nothing acts per prompt, e.g. no prompt hooks). With
    ``shared_prefix=False`` every distinct candidate context is one full row (no key-value cache: the exact path for
    attention the cache does not reproduce, e.g. sliding windows).
    """
    n_cands = max((len(g) for g in cands), default=0)
    prefixes: list[tuple[int, ...]] = []
    prefix_prompt: list[int] = []
    suffixes: list[tuple[int, ...]] = []
    suffix_prefix: list[int] = []
    head: list[tuple[int, int, int, int]] = []
    tail: list[tuple[int, int, int, int]] = []
    rows: dict[tuple[int, ...], int] = {}
    suffix_rows: dict[tuple[int, tuple[int, ...]], int] = {}
    for i, group in enumerate(cands):
        if not across_prompts:
            rows, suffix_rows = {}, {}
        for k, c in enumerate(group):
            slot, cut = i * n_cands + k, (min(c.prompt_len, c.n_fed) if shared_prefix else c.n_fed)
            row = rows.setdefault(c.ids[:cut], len(prefixes))
            if row == len(prefixes):
                prefixes.append(c.ids[:cut])
                prefix_prompt.append(i)
            srow = -1
            if c.n_fed > cut:
                srow = suffix_rows.setdefault((row, c.ids[cut : c.n_fed]), len(suffixes))
                if srow == len(suffixes):
                    suffixes.append(c.ids[cut : c.n_fed])
                    suffix_prefix.append(row)
            for j in range(c.start, len(c.ids)):  # token j is predicted at position j - 1
                if j - 1 < cut:
                    head.append((slot, row, j - 1, c.ids[j]))
                else:
                    tail.append((slot, srow, j - 1 - cut, c.ids[j]))
    n_merged = sum(c.merged for g in cands for c in g)
    as_array = lambda t: np.array(t, dtype=np.int64).reshape(-1, 4)  # noqa: E731
    return ScoringPlan(
        prefixes,
        prefix_prompt,
        suffixes,
        suffix_prefix,
        as_array(head),
        as_array(tail),
        (len(cands), n_cands),
        n_merged,
    )


def pad_rows(rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``Int[Tensor, "batch pos"]`` tokens (:func:`interp.tokenization.right_pad`) and their attention
    mask (1 = real token; the key-value cache needs it)."""
    return right_pad(rows, pad), right_pad([[1] * len(r) for r in rows], 0)


def check_batch_size(batch_size: int) -> int:
    """``batch_size`` if it is an integer >= 1 (an :class:`~interp.validate.ArgumentError` otherwise)."""
    return check_count(batch_size, "batch_size")


def resolve_positions(lengths: Sequence[int], positions: Sequence[int] | None, name: str = "positions") -> list[int]:
    """Per-prompt positions in unpadded coordinates: ``None`` = last token; negatives count from the end.

    Raises ``ValueError`` naming ``positions`` when one lies outside its prompt.

    >>> resolve_positions([4, 6], None), resolve_positions([4, 6], [1, -2])
    ([3, 5], [1, 4])
    """
    if positions is None:
        return [n - 1 for n in lengths]
    if isinstance(positions, str) or not hasattr(positions, "__len__") or getattr(positions, "ndim", 1) == 0:
        raise ArgumentTypeError(name, f"give one int per prompt (a sequence of {len(lengths)}), got a single value")
    positions = [check_int(p.item() if hasattr(p, "item") else p, name) for p in positions]
    if len(positions) != len(lengths):
        raise ArgumentError(name, f"expected {len(lengths)} positions (one per prompt), got {len(positions)}")
    out = []
    for i, (p, n) in enumerate(zip(positions, lengths, strict=True)):
        if not -n <= p < n:
            raise ArgumentError(
                name,
                f"position {p} of prompt {i} lies outside the prompt; valid: {-n}..{n - 1} "
                f"(the prompt has {n} tokens including BOS)",
            )
        out.append(p % n)
    return out


def token_batches(
    order: Sequence[int], lengths: Sequence[int], batch_size: int, max_tokens: int | None
) -> list[list[int]]:
    """Split ``order`` (sorted by length) into batches of at most ``batch_size`` rows and ``max_tokens`` padded tokens.

    >>> token_batches([0, 1, 2, 3], [2, 3, 5, 5], batch_size=8, max_tokens=10)
    [[0, 1], [2, 3]]
    """
    out: list[list[int]] = []
    chunk: list[int] = []
    width = 0
    for i in order:
        wider = max(width, lengths[i])
        if chunk and (len(chunk) >= batch_size or (max_tokens is not None and (len(chunk) + 1) * wider > max_tokens)):
            out.append(chunk)
            chunk, wider = [], lengths[i]
        chunk.append(i)
        width = wider
    if chunk:
        out.append(chunk)
    return out
