"""Exact answer probabilities: P(answer | prompt) by teacher forcing, batched.

For a prompt and a candidate answer, ``prompt + answer`` is tokenised *together* (BOS convention of
:func:`interp.tokenization.encode`). The scored tokens start where that sequence first departs from the
prompt's own tokens; normally that is right after the prompt. When the answer's first token merges
with the prompt's last token (BPE), the scored span starts one token earlier and covers the merged
token (counted in :attr:`AnswerScores.n_merged`).

Efficiency: candidates of one prompt whose contexts are prefixes of each other share a forward pass
(single-token answers of one prompt cost one pass together); rows are right-padded, sorted by length
and batched; everything runs under ``torch.inference_mode()`` in log space.

>>> from interp.prompts import build_prompts                       # doctest: +SKIP
>>> scores = score_answers(model, build_prompts("operands", n_prompts=8))  # doctest: +SKIP
>>> scores.probs.shape, scores.other.shape                          # doctest: +SKIP
((8, 3), (8,))
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from interp.hooks import context_length, forward_logits, hooks
from interp.models import tokenizer_of, trained_examples
from interp.prompts import Prompt
from interp.tokenization import encode_batch, pad_id, right_pad


@dataclass(frozen=True)
class Candidate:
    """Token-level view of one (prompt, answer) pair: ``ids`` = BOS + prompt + answer, scored from ``start``."""

    ids: tuple[int, ...]
    start: int
    prompt_len: int

    @property
    def merged(self) -> bool:
        return self.start < self.prompt_len


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def candidates_for(tokenizer, prompt_text: str, answers: Sequence[str]) -> list[Candidate]:
    """Tokenise ``prompt_text + answer`` for each answer and locate the answer's tokens."""
    seqs = encode_batch(tokenizer, [prompt_text] + [prompt_text + a for a in answers])
    prompt_ids = seqs[0]
    out = []
    for full in seqs[1:]:
        start = common_prefix(prompt_ids, full)
        if start == len(full):
            raise ValueError(f"answers: an answer adds no token to prompt {prompt_text[-30:]!r}")
        out.append(Candidate(tuple(full), max(start, 1), len(prompt_ids)))
    return out


@dataclass(frozen=True)
class AnswerScores:
    """Log-probabilities ``Float[ndarray, "prompt task"]`` of each task's answer to each prompt's query."""

    log_probs: np.ndarray
    tasks: tuple[str, ...]
    include_newline: bool
    n_merged: int = 0

    @property
    def probs(self) -> np.ndarray:
        """P(answer) per prompt and task (not renormalised)."""
        return np.exp(self.log_probs)

    @property
    def other(self) -> np.ndarray:
        """1 − Σ_k P(a_k) per prompt: the mass on every other output."""
        return 1.0 - self.probs.sum(axis=1)


def _plan_rows(cands: list[list[Candidate]]) -> tuple[list[tuple[int, ...]], list[int], list[list[int]]]:
    """Share forward passes: candidate contexts that are prefixes of a longer one use its row.

    Returns the rows, the prompt index of each row, and per prompt the row of each candidate.
    """
    rows: list[tuple[int, ...]] = []
    row_prompt: list[int] = []
    where: list[list[int]] = []
    for i, group in enumerate(cands):
        order = sorted(range(len(group)), key=lambda k: -len(group[k].ids))
        local: list[int] = []
        assign = [0] * len(group)
        for k in order:
            ctx = group[k].ids[:-1]
            for r in local:
                if rows[r][: len(ctx)] == ctx:
                    assign[k] = r
                    break
            else:
                rows.append(ctx)
                row_prompt.append(i)
                local.append(len(rows) - 1)
                assign[k] = len(rows) - 1
        where.append(assign)
    return rows, row_prompt, where


def check_fits(model, lengths: Sequence[int], what: str = "prompts") -> None:
    n_ctx = context_length(model)
    longest = max(lengths, default=0)
    if longest > n_ctx:
        raise ValueError(
            f"{what}: longest sequence has {longest} tokens, more than the model's context of {n_ctx}; "
            "use fewer examples (n_examples) or a model with a longer context"
        )


def warn_untrained(model, prompts: Sequence[Prompt]) -> None:
    """Warn when a model trained by ``interp train`` meets a family it never saw, or a prompt whose query sits past
    the positions its training prompts reached (its numbers there are unreliable)."""
    trained = trained_examples(model)
    if not trained or not prompts:
        return
    family = prompts[0].family
    longest = max(len(p.example_tasks) for p in prompts)
    if family not in trained:
        warnings.warn(
            f"prompts: this model was trained on {', '.join(sorted(trained))} only, not on {family!r}",
            stacklevel=3,
        )
    elif longest >= trained[family]:
        warnings.warn(
            f"prompts: {longest} examples of {family}, but this model's training prompts held {trained[family]}; "
            f"the query sits at untrained positions — use at most {trained[family] - 1} examples",
            stacklevel=3,
        )


#: ``batch_hooks(row_ids) -> [(hook_name, fn), ...]``: hooks for one batch whose i-th sequence is row ``row_ids[i]``.
BatchHooks = Callable[[list[int]], list[tuple[str, Callable]]]


@torch.inference_mode()
def row_log_probs(
    model, rows: list[tuple[int, ...]], *, batch_size: int = 32, pad: int = 0, batch_hooks: BatchHooks | None = None
) -> list[torch.Tensor]:
    """Per row, ``Float[Tensor, "pos vocab"]`` next-token log-probs (right-padded batches sorted by length).

    ``batch_hooks`` (optional) gives the hooks to attach for each batch (e.g. patching at per-row positions);
    they are attached through :func:`interp.hooks.hooks` and removed after the batch, also on error.
    """
    order = sorted(range(len(rows)), key=lambda r: len(rows[r]))
    out: list[torch.Tensor | None] = [None] * len(rows)
    for lo in range(0, len(order), batch_size):
        chunk = order[lo : lo + batch_size]
        x = right_pad([rows[r] for r in chunk], pad)
        with hooks(model, batch_hooks(chunk) if batch_hooks else []):
            logits = forward_logits(model, x)
        logp = torch.log_softmax(logits.float(), dim=-1).cpu()
        for i, r in enumerate(chunk):
            out[r] = logp[i, : len(rows[r])]
    return out  # type: ignore[return-value]


def score_answers(
    model,
    prompts: Sequence[Prompt],
    *,
    include_newline: bool = False,
    batch_size: int = 32,
    prompt_hooks: Callable[[list[int]], list[tuple[str, Callable]]] | None = None,
) -> AnswerScores:
    """log P(answer_k | prompt) for every prompt and every candidate task (teacher-forced, exact).

    Args:
        model: a model from :func:`interp.models.load_model`.
        prompts: prompts of one candidate-task set (``Prompt.tasks`` equal across prompts).
        include_newline: also score the ``\\n`` that ends an answer (the complete output).
        batch_size: rows per forward pass.
        prompt_hooks: optional ``f(prompt_indices) -> [(hook_name, fn)]`` giving the hooks for a batch whose
            i-th sequence belongs to ``prompts[prompt_indices[i]]`` (used by patching). Every sequence
            starts with its prompt's tokens, so prompt positions are the same in every row of a prompt.

    Raises ``ValueError`` (before any forward pass) when the prompts disagree on their tasks or a
    sequence exceeds the model's context.
    """
    if not prompts:
        raise ValueError("prompts: need at least one prompt")
    tasks = prompts[0].tasks
    if any(p.tasks != tasks for p in prompts):
        raise ValueError("prompts: all prompts must share the same candidate tasks (Prompt.tasks)")
    tok = tokenizer_of(model)
    suffix = "\n" if include_newline else ""
    cands = [candidates_for(tok, p.text, [a + suffix for a in p.answers]) for p in prompts]
    check_fits(model, [len(c.ids) for group in cands for c in group])
    warn_untrained(model, prompts)
    rows, row_prompt, where = _plan_rows(cands)
    batch_hooks = None
    if prompt_hooks is not None:

        def batch_hooks(row_ids: list[int]) -> list[tuple[str, Callable]]:
            return prompt_hooks([row_prompt[r] for r in row_ids])

    logps = row_log_probs(model, rows, batch_size=batch_size, pad=pad_id(tok), batch_hooks=batch_hooks)
    out = np.zeros((len(prompts), len(tasks)), dtype=np.float64)
    for i, group in enumerate(cands):
        for k, c in enumerate(group):
            lp = logps[where[i][k]]
            targets = torch.tensor(c.ids[c.start :])
            positions = torch.arange(c.start - 1, len(c.ids) - 1)
            out[i, k] = float(lp[positions, targets].double().sum())
    n_merged = sum(c.merged for group in cands for c in group)
    return AnswerScores(out, tuple(tasks), include_newline, n_merged)


def greedy_correct(model, prompts: Sequence[Prompt], task: str, *, batch_size: int = 32) -> np.ndarray:
    """Per prompt: is ``task``'s answer exactly what greedy decoding produces (every answer token the argmax)?

    Teacher-forced, so one forward pass per prompt: greedy decoding emits the answer iff each of its tokens
    is the argmax given the prompt and the answer's earlier tokens.
    """
    if not prompts:
        raise ValueError("prompts: need at least one prompt")
    tok = tokenizer_of(model)
    cands = [candidates_for(tok, p.text, [p.answer(task)])[0] for p in prompts]
    check_fits(model, [len(c.ids) for c in cands])
    warn_untrained(model, prompts)
    rows = [c.ids[:-1] for c in cands]
    logps = row_log_probs(model, rows, batch_size=batch_size, pad=pad_id(tok))
    out = np.zeros(len(prompts), dtype=bool)
    for i, c in enumerate(cands):
        pred = logps[i][c.start - 1 : len(c.ids) - 1].argmax(dim=-1)
        out[i] = bool((pred == torch.tensor(c.ids[c.start :])).all())
    return out
