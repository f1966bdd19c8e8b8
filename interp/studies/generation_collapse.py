"""Generation collapse (the paper's claim 5, docs/science.md §5): superposed at the first answer token, committed after.

For prompts mixing tasks in several proportions it measures, per prompt:

(a) P(each task's first answer token): superposition at token 1;
(b) after the first token (the greedy one, or one drawn by sampling), P(each task's continuation) given it:
    commitment at token 2+ (:attr:`~interp.results.CollapseCurve.continuation`, ``greedy_commit``, ``sampled_commit``);
(c) ``n_samples`` sampled completions per prompt (seeded ``torch.Generator``): the fraction that equals some task's
    full answer, a hybrid (one task's first token, another's continuation) or none.

Everything works on token ids (the answer's tokens as they follow the prompt's), for any model and family. The
metrics read next-token log-probabilities through a small interface (:class:`NextTokenModel`), so the tests check
them on a toy whose numbers are known exactly.

Default (honest) setting: the embedded model knows single-character answers only, so the default task sets are its
two bias-add pairs (``add1``/``add7``, ``add2``/``add5``; it never learned retrieval in context, so its retrieval
answers do not depend on the examples). There an answer is one character plus the newline: token 1 shows
superposition and token 2 is the newline, so commitment is trivial (P(newline | a task's character) ≈ 1) and the
point of the study on this model is (a) and (c): sampled completions reproduce the token-1 odds. The study is meant
for multi-token answers (operands sums, add_translate, country names) on models that know them, e.g.
``GenerationCollapseConfig(settings=[("operands", ("copy_first", "sum"))], n_examples=10)`` on GPT-2.

>>> GenerationCollapseConfig.quick().validate()
>>> GenerationCollapseConfig(n_samples=0).validate()
Traceback (most recent call last):
...
ValueError: n_samples: must be >= 1, got 0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from interp.defaults import EMBEDDED_PAIRS, pairs_of
from interp.generation import PromptCache, terminator_token_ids
from interp.metrics import bootstrap_ci
from interp.models import model_info, tokenizer_of
from interp.plots.generation import generation_collapse_figure
from interp.prompts import build_prompts, check_simplex
from interp.results import CollapseCurve
from interp.studies.common import distribution, metadata, write_outputs, writes_one_set
from interp.tasks import get_family, resolve_tasks
from interp.tokenization import encode_batch

STUDY = "generation_collapse"


class NextTokenModel(Protocol):
    """What the metrics read: ``Float[Tensor, "row vocab"]`` log P(next token | prompt ``rows[i]`` + ``conts[i]``)."""

    def next_log_probs(self, prompt_rows: Sequence[int], conts: Sequence[Sequence[int]]) -> torch.Tensor: ...


@dataclass
class GenerationCollapseConfig:
    """Task sets ``(family, tasks)``, proportions (one per task set size; default: A from 0 to 1), prompts, samples."""

    settings: list[tuple[str, tuple[str, ...]]] = field(
        default_factory=lambda: [(p[0], tuple(p[1:])) for p in pairs_of("bias_add")]
    )
    proportions: list[tuple[float, ...]] = field(
        default_factory=lambda: [(0.0, 1.0), (0.25, 0.75), (0.5, 0.5), (0.75, 0.25), (1.0, 0.0)]
    )
    n_prompts: int = 40
    n_examples: int = 20
    n_samples: int = 200
    max_new_tokens: int = 8
    terminator: str = "\n"
    seed: int = 0
    #: A task set shows superposition to collapse at a proportion only where every task holds at least this mean mass
    #: of the first answer token (:func:`superposition_precondition`); elsewhere no collapse claim is made.
    superposition_threshold: float = 0.1

    @classmethod
    def quick(cls) -> GenerationCollapseConfig:
        """Three proportions, 6 prompts, 100 samples each: a smoke run."""
        return cls(
            settings=[("bias_add", EMBEDDED_PAIRS[1][1:])],
            proportions=[(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)],
            n_prompts=6,
            n_samples=100,
        )

    def validate(self) -> None:
        """``ValueError`` naming the first bad field (no model needed)."""
        for fam, tasks in self.settings:
            resolve_tasks(get_family(fam), list(tasks))
            for p in self.proportions:
                check_simplex(p, len(tasks))
        for name in ("n_prompts", "n_examples", "n_samples", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not self.terminator:
            raise ValueError("terminator: must be a non-empty string")
        t = self.superposition_threshold
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < 1:
            raise ValueError(f"superposition_threshold: must be a number in (0, 1), got {t!r}")


def answer_token_ids(tokenizer, prompt_text: str, answers: Sequence[str]) -> tuple[list[int], list[tuple[int, ...]]]:
    """The prompt's ids (BOS first) and each answer's ids as they follow the prompt's tokens.

    When an answer would merge with the prompt's last token under joint tokenisation, the answer is tokenised on
    its own: a model generating after the prompt's tokens produces that sequence, not the merged one.
    """
    seqs = encode_batch(tokenizer, [prompt_text] + [prompt_text + a for a in answers])
    prompt, out = seqs[0], []
    for full, answer in zip(seqs[1:], answers, strict=True):
        if full[: len(prompt)] == prompt and len(full) > len(prompt):
            out.append(tuple(full[len(prompt) :]))
        else:
            out.append(tuple(tokenizer(answer, add_special_tokens=False)["input_ids"]))
    return prompt, out


def _sequence_log_probs(lm: NextTokenModel, items: Sequence[tuple[int, Sequence[int], Sequence[int]]]) -> np.ndarray:
    """log P(cont | prompt ``row`` + prefix) for each ``(row, prefix, cont)``, every needed position in one batch."""
    rows, queries, owners = [], [], []
    for i, (row, prefix, cont) in enumerate(items):
        for t in range(len(cont)):
            rows.append(row)
            queries.append(list(prefix) + list(cont[:t]))
            owners.append((i, cont[t]))
    out = np.zeros(len(items))
    if queries:
        logp = lm.next_log_probs(rows, queries)
        for q, (i, token) in enumerate(owners):
            out[i] += float(logp[q, token])
    return out


def sample_completions_batch(
    lm: NextTokenModel,
    rows: Sequence[int],
    n: int,
    ends: set[int] | frozenset[int],
    max_new_tokens: int,
    generator: torch.Generator,
) -> list[list[tuple[int, ...]]]:
    """``n`` completions sampled from the model for each prompt row (ancestral sampling, ``generator`` seeded by the
    caller); a completion stops at its first token in ``ends`` (kept) or after ``max_new_tokens`` (unfinished).

    Samples that share a partial completion share its forward pass: each distinct partial completion runs once and
    the next tokens of all ``m`` samples holding it are ``m`` draws from its distribution — the same distribution
    as ``n`` separate samples, at a cost that grows with the number of distinct partial completions, not with ``n``.
    Completions come back grouped (equal ones adjacent), not in draw order.
    """
    done: list[list[tuple[int, ...]]] = [[] for _ in rows]
    open_: dict[tuple[int, tuple[int, ...]], int] = {(slot, ()): n for slot in range(len(rows))}
    for _ in range(max_new_tokens):
        if not open_:
            break
        keys = list(open_)
        probs = lm.next_log_probs([rows[slot] for slot, _ in keys], [list(c) for _, c in keys]).double().exp()
        grown: dict[tuple[int, tuple[int, ...]], int] = {}
        for r, (slot, cont) in enumerate(keys):
            draws = torch.multinomial(probs[r], open_[slot, cont], replacement=True, generator=generator)
            tokens, counts = torch.unique(draws, return_counts=True)
            for token, count in zip(tokens.tolist(), counts.tolist(), strict=True):
                seq = (*cont, token)
                if token in ends:
                    done[slot] += [seq] * count
                else:
                    grown[slot, seq] = count
        open_ = grown
    for (slot, cont), count in open_.items():
        done[slot] += [cont] * count
    return done


def sample_completions(
    lm: NextTokenModel, row: int, n: int, ends: set[int] | frozenset[int], max_new_tokens: int, generator
) -> list[tuple[int, ...]]:
    """``n`` completions of prompt ``row`` (:func:`sample_completions_batch` for one prompt)."""
    return sample_completions_batch(lm, [row], n, ends, max_new_tokens, generator)[0]


def collapse_metrics(
    lm: NextTokenModel,
    row: int,
    answers: Sequence[tuple[int, ...]],
    ends: set[int] | frozenset[int],
    *,
    n_samples: int,
    max_new_tokens: int,
    generator: torch.Generator,
) -> dict:
    """The per-prompt collapse numbers for one prompt (row ``row`` of ``lm``) and its tasks' answer token ids.

    ``answers[j]`` ends with a terminator token. Returns ``first`` (P(first token of task j), split among tasks that
    share it), ``first_other``, ``continuation`` (``[j, k]``: P(task k's continuation | task j's first token)),
    ``full`` (exact P(task j's answer)), ``greedy_commit``, ``greedy_none``, ``sampled_commit``, ``sampled``
    (fraction of samples per task), ``sampled_none`` and ``sampled_hybrid``.
    """
    return collapse_metrics_batch(
        lm, [row], [answers], ends, n_samples=n_samples, max_new_tokens=max_new_tokens, generator=generator
    )[0]


def collapse_metrics_batch(
    lm: NextTokenModel,
    rows: Sequence[int],
    answers: Sequence[Sequence[tuple[int, ...]]],
    ends: set[int] | frozenset[int],
    *,
    n_samples: int,
    max_new_tokens: int,
    generator: torch.Generator,
) -> list[dict]:
    """:func:`collapse_metrics` for many prompts (``answers[i]`` for prompt row ``rows[i]``): each kind of query —
    first tokens, continuations, sampling steps — runs once for all prompts together."""
    first_logp = lm.next_log_probs(list(rows), [[] for _ in rows]).double()
    heads = [[a[0] for a in ans] for ans in answers]
    cont_items = [(row, [h], a[1:]) for row, ans, hs in zip(rows, answers, heads, strict=True) for h in hs for a in ans]
    cont_all = np.exp(_sequence_log_probs(lm, cont_items))
    samples = sample_completions_batch(lm, rows, n_samples, ends, max_new_tokens, generator)
    out, at = [], 0
    for i, ans in enumerate(answers):
        k = len(ans)
        cont = cont_all[at : at + k * k].reshape(k, k)
        at += k * k
        out.append(_prompt_metrics(first_logp[i], ans, heads[i], cont, samples[i]))
    return out


def _prompt_metrics(first_logp: torch.Tensor, answers, heads: list[int], cont: np.ndarray, samples) -> dict:
    """One prompt's numbers from its first-token log-probs, continuation odds ``cont[j, m]`` and samples."""
    k = len(answers)
    share = np.array([heads.count(h) for h in heads], dtype=float)
    p_head = np.array([float(first_logp[h].exp()) for h in heads])
    full = p_head * np.diag(cont)
    distinct = dict(zip(heads, p_head, strict=True))
    task_head_mass = sum(distinct.values())
    greedy = int(first_logp.argmax())
    if greedy in heads:
        j = heads.index(greedy)
        same = [m for m in range(k) if heads[m] == greedy]
        greedy_commit, greedy_none = float(sum(cont[j, m] for m in _distinct_answers(answers, same))), 0.0
    else:
        greedy_commit, greedy_none = 0.0, 1.0
    distinct_full = sum(full[m] for m in _distinct_answers(answers, range(k)))
    sampled = np.zeros(k)
    hybrids = {(*answers[j][:1], *answers[m][1:]) for j in range(k) for m in range(k)} - set(answers)
    n_hybrid = 0
    for s in samples:
        match = [m for m in range(k) if answers[m] == s]
        for m in match:
            sampled[m] += 1.0 / len(match)
        n_hybrid += not match and s in hybrids
    return {
        "first": p_head / share,
        "first_other": max(0.0, 1.0 - task_head_mass),
        "continuation": cont,
        "full": full,
        "greedy_commit": greedy_commit,
        "greedy_none": greedy_none,
        "sampled_commit": distinct_full / task_head_mass if task_head_mass > 0 else 0.0,
        "sampled": sampled / len(samples),
        "sampled_none": 1.0 - sampled.sum() / len(samples),
        "sampled_hybrid": n_hybrid / len(samples),
    }


def _distinct_answers(answers: Sequence[tuple[int, ...]], indices) -> list[int]:
    """Indices of the first task holding each distinct answer among ``indices`` (shared answers counted once)."""
    seen: dict[tuple[int, ...], int] = {}
    for m in indices:
        seen.setdefault(answers[m], m)
    return list(seen.values())


class _CacheModel:
    """:class:`NextTokenModel` over a :class:`~interp.generation.PromptCache` (prompts run once)."""

    def __init__(self, model, prompt_ids: Sequence[Sequence[int]], batch_size: int = 64):
        self.cache, self.batch_size = PromptCache(model, prompt_ids), batch_size

    def next_log_probs(self, prompt_rows, conts) -> torch.Tensor:
        return self.cache.next_log_probs(prompt_rows, conts, self.batch_size)


@torch.inference_mode()
def collapse_point(model, family: str, tasks: Sequence[str], proportions, config: GenerationCollapseConfig) -> dict:
    """Per-prompt collapse numbers for one proportion: lists of :func:`collapse_metrics` values over prompts."""
    prompts = build_prompts(
        family, list(tasks), proportions=proportions, n_examples=config.n_examples, n_prompts=config.n_prompts,
        seed=config.seed,
    )  # fmt: skip
    tok = tokenizer_of(model)
    ends = terminator_token_ids(tok, config.terminator)
    ids, answers = [], []
    for p in prompts:
        prompt_ids, ans = answer_token_ids(tok, p.text, [a + config.terminator for a in p.answers])
        if any(not a or a[-1] not in ends for a in ans):
            raise ValueError(f"terminator: an answer of prompt {p.index} does not end in a token holding it")
        ids.append(prompt_ids)
        answers.append(ans)
    lm = _CacheModel(model, ids)
    generator = torch.Generator().manual_seed(config.seed)
    rows = collapse_metrics_batch(
        lm, list(range(len(prompts))), answers, ends, n_samples=config.n_samples,
        max_new_tokens=config.max_new_tokens, generator=generator,
    )  # fmt: skip
    out = {key: np.asarray([r[key] for r in rows], dtype=float) for key in rows[0]}
    out["answer_tokens"] = max(len(a) for ans in answers for a in ans)
    return out


def collapse_curve(model, family: str, tasks: Sequence[str], config: GenerationCollapseConfig) -> CollapseCurve:
    """Every proportion of ``config`` for one task set, summarised over prompts with bootstrap CIs."""
    fam = get_family(family)
    points = [collapse_point(model, family, tasks, p, config) for p in config.proportions]
    seed = config.seed

    def mean(key: str) -> np.ndarray:
        return np.asarray([pt[key].mean(axis=0) for pt in points])

    first_ci = np.asarray([[bootstrap_ci(pt["first"][:, j], seed=seed) for j in range(len(tasks))] for pt in points])
    return CollapseCurve(
        model=model_info(model).model_id,
        family=family,
        tasks=tuple(tasks),
        task_index=tuple(fam.task_names.index(t) for t in tasks),
        proportions=tuple(tuple(float(x) for x in p) for p in config.proportions),
        n_examples=config.n_examples,
        n_prompts=config.n_prompts,
        n_samples=config.n_samples,
        answer_tokens=tuple(int(pt["answer_tokens"]) for pt in points),
        first_token=mean("first"),
        first_token_ci95=first_ci,
        first_other=mean("first_other"),
        full_answer=mean("full"),
        sampled=mean("sampled"),
        sampled_none=mean("sampled_none"),
        sampled_hybrid=mean("sampled_hybrid"),
        continuation=mean("continuation"),
        greedy_commit=distribution([pt["greedy_commit"] for pt in points], seed),
        greedy_none=mean("greedy_none"),
        sampled_commit=distribution([pt["sampled_commit"] for pt in points], seed),
    )


def superposition_precondition(first_token: np.ndarray, threshold: float) -> list[dict]:
    """Per point (``first_token``: ``Float[ndarray, "point task"]``), whether there is superposition to collapse:
    every task holds at least ``threshold`` of the first answer token's mass. A pair where one task gets (almost)
    none of it commits before any token is generated, so "generation collapses" cannot be said of it.

    >>> [p["superposed"] for p in superposition_precondition(np.array([[0.51, 0.0004], [0.77, 0.23]]), 0.1)]
    [False, True]
    """
    out = []
    for row in np.asarray(first_token, dtype=float):
        k = int(np.argmin(row))
        out.append({"superposed": bool(row[k] >= threshold), "weakest": k, "weakest_mass": float(row[k])})
    return out


@writes_one_set
def run(model, config: GenerationCollapseConfig, out_dir: str | Path, *, progress: bool = True) -> dict:
    """Every task set of ``config``; writes ``generation_collapse.{html,png,json}``. Each curve's numbers say, per
    proportion, whether it meets the precondition of a collapse claim (:func:`superposition_precondition`)."""
    config.validate()
    curves = [
        collapse_curve(model, fam, tasks, config)
        for fam, tasks in tqdm(config.settings, desc=STUDY, disable=not progress)
    ]
    meta = metadata(model, config, STUDY)
    title = (
        f"Generation collapse · model {meta['model']['model_id']} · {config.n_prompts} prompts × "
        f"{config.n_samples} samples per proportion"
    )
    numbers = {
        **meta,
        "curves": [
            c.to_dict() | {"precondition": superposition_precondition(c.first_token, config.superposition_threshold)}
            for c in curves
        ],
    }
    paths = write_outputs(generation_collapse_figure(curves, title=title), numbers, out_dir, STUDY)
    return {"results": curves, "numbers": numbers, "paths": paths}
