"""Exact answer probabilities: P(answer | prompt) by teacher forcing, each prompt run once with a key-value cache.

For a prompt and a candidate answer, ``prompt + answer`` is tokenised *together* (BOS convention of
:func:`interp.tokenization.encode`). The scored tokens start where that sequence first departs from the
prompt's own tokens; normally that is right after the prompt. When the answer's first token merges
with the prompt's last token (BPE), the scored span starts one token earlier and covers the merged
token (counted in :attr:`AnswerScores.n_merged`).

How it runs (:func:`plan_scoring` then :func:`run_plan`). For models with learned positions and global causal
attention (GPT-2 style, :func:`interp.packing.packable`) and no hooks (none passed, none attached), each prompt and
all its answers form one *packed row* (the answers after the prompt, each seeing only the prompt and its own
tokens): one forward pass per batch, through the fused-attention forward where it applies (:mod:`interp.fused`).
Otherwise (rotary models, hooks, a caller's prompt pass) two passes run:

1. *Prompt pass*: each distinct prefix — the candidate's first ``prompt_len`` tokens, i.e. the prompt itself
   unless the answer merged into its last token — runs once, right-padded with an attention mask, filling a
   TransformerLens key-value cache. ``prompt_hooks`` (patching) act here.
2. *Answer pass*: the answers' remaining context tokens run from that frozen cache, batched over the prompts
   of a batch (candidate ``k`` of every prompt together), never re-running the prompt.

Log-softmax is computed only at the scored positions (never over the whole sequence), in the model's dtype
(float32/float64; half precision is raised to float32), and summed in float64. Everything runs under
``torch.inference_mode()``.

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

from interp.fused import cached_from_weights
from interp.hooks import attached_hooks, context_length, hooked
from interp.models import tokenizer_of, trained_examples
from interp.packing import layout, pack, packable, packed_forward
from interp.prompts import Prompt
from interp.remember import scores_memo
from interp.results import AnswerScores
from interp.tokenization import concatenates, encode_batch, pad_id, right_pad


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
    return ValueError(f"answers: an answer adds no token to prompt {prompt_text[-30:]!r}")


def _flat(groups: Sequence[Sequence[str]]) -> list[str]:
    return [a for g in groups for a in g]


def _joined_candidates(tokenizer, prompt_texts, answers) -> list[list[Candidate]]:
    """Candidates when tokens(prompt + answer) == tokens(prompt) + tokens(answer): no merge, scored from the end."""
    prompt_ids = encode_batch(tokenizer, list(prompt_texts))
    distinct = sorted(set(_flat(answers)))
    answer_ids = {a: tuple(ids[1:]) for a, ids in zip(distinct, encode_batch(tokenizer, distinct), strict=True)}
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
        raise ValueError(
            f"{what}: longest sequence has {longest} tokens, more than the model's context of {n_ctx}; "
            "use fewer examples (n_examples) or a model with a longer context"
        )


def warn_untrained(model, prompts: Sequence[Prompt]) -> None:
    """Warn when a model trained by ``interp train`` meets a family it never saw, or a prompt whose query sits past
    the positions its training prompts reached (its numbers there are unreliable); and when a hand-built model
    (:mod:`interp.construction`) is asked about a family or tasks it was not built for (it answers those with
    near-uniform noise)."""
    built = getattr(model, "interp_construction", None)
    if built is not None and prompts:
        family, asked = prompts[0].family, prompts[0].tasks
        if family != built.family:
            warnings.warn(
                f"prompts: this hand-built model computes {built.family} tasks only, not {family!r}; its numbers "
                "here are noise",
                stacklevel=3,
            )
        elif not set(asked) <= set(built.tasks):
            missing = [t for t in asked if t not in built.tasks]
            warnings.warn(
                f"prompts: this hand-built model was built for {', '.join(built.tasks)}, not {', '.join(missing)}; "
                f"its numbers for those are noise (build it with tasks=... or "
                f"'constructed:{family}:tasks={'+'.join(asked)}')",
                stacklevel=3,
            )
    trained = trained_examples(model)
    if not trained or not prompts:
        return
    family = prompts[0].family
    longest = max(len(p.example_tasks) for p in prompts)
    if family == TEXTS_FAMILY:  # the caller's own strings: examples counted as lines, any trained family
        most = max(trained.values())
        if longest >= most:
            warnings.warn(
                f"prompts: up to {longest} example lines, but this model's training prompts held at most {most}; "
                f"the query sits at untrained positions — use at most {most - 1} examples",
                stacklevel=3,
            )
        return
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


#: ``prompt_hooks(prompt_indices) -> [(hook_name, fn), ...]``: hooks for one prompt-pass batch whose i-th sequence
#: is the prefix of ``prompts[prompt_indices[i]]`` (see :func:`score_answers`).
PromptHooks = Callable[[list[int]], list[tuple[str, Callable]]]
#: ``prefix_forward(model, tokens, attention_mask, cache, prompt_indices) -> resid``: runs the prompt pass, filling
#: ``cache`` for every layer, and returns the final residual stream ``Float[Tensor, "batch pos d_model"]`` (before
#: ``ln_final``). Lets a caller supply the residual at some layer (e.g. shared across a λ sweep) instead of running
#: every layer; the default is :func:`run_prefix`.
PrefixForward = Callable[..., torch.Tensor]


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


def run_prefix(model, tokens: torch.Tensor, attention_mask: torch.Tensor, cache, prompt_indices: list[int]):
    """Default :data:`PrefixForward`: every layer, filling ``cache``; returns the final residual stream."""
    return forward_resid(model, tokens, attention_mask, cache)


def forward_resid(model, tokens: torch.Tensor, attention_mask: torch.Tensor, cache) -> torch.Tensor:
    """Final residual ``Float[Tensor, "batch pos d_model"]`` (before ``ln_final``), appending to ``cache``."""
    device = model.cfg.device
    return model(
        tokens.to(device),
        attention_mask=attention_mask.to(device),
        past_kv_cache=cache,
        stop_at_layer=model.cfg.n_layers,
    )


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


def unembed(model, x: torch.Tensor) -> torch.Tensor:
    """``Float[Tensor, "n vocab"]`` logits of normalised residuals ``Float[Tensor, "n d_model"]``.

    TransformerLens's ``Unembed`` copies ``W_U.T`` into a contiguous tensor on every call (154 MB for GPT-2 small,
    a tenth of a second on CPU); multiplying by ``W_U`` as stored needs no copy. A bias of zeros (GPT-2's) is not
    added: ``addmm`` would first copy it into every row of the ``[n, vocab]`` output. Hooks on ``unembed`` keep the
    module's own forward.
    """
    u = model.unembed
    if u.hook_in.fwd_hooks or u.hook_out.fwd_hooks:
        return u(x[None])[0]
    w = u.W_U.to(x.dtype)
    if not cached_from_weights(u, "bias_nonzero", (u.b_U,), lambda: bool(u.b_U.any())):  # kept: no device sync per call
        return x @ w
    return torch.addmm(u.b_U.to(x.dtype), x, w)


def logits_at(model, resid: torch.Tensor, rows: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Logits ``Float[Tensor, "n vocab"]`` at ``resid[rows, pos]`` only (``ln_final`` + unembed + soft cap).

    The dtype is the model's, raised to float32 for half precision (so a log-softmax never runs below float32).
    """
    device = resid.device
    x = resid[rows.to(device), pos.to(device)][None]  # [1, n, d_model]
    if model.cfg.normalization_type is not None:
        x = model.ln_final(x)
    logits = unembed(model, x[0])
    cap = getattr(model.cfg, "output_logits_soft_cap", 0.0) or 0.0
    if cap > 0:
        logits = cap * torch.tanh(logits / cap)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return logits


def _read(model, resid: torch.Tensor, rows: torch.Tensor, pos: torch.Tensor, targets: torch.Tensor):
    """log P(target) (float64, CPU) and whether target is the argmax, at ``resid[rows, pos]`` only."""
    key = rows * resid.shape[1] + pos
    uniq, inv = torch.unique(key, return_inverse=True)  # candidates sharing a position: one log-softmax
    width = resid.shape[1]
    logits = logits_at(model, resid, uniq // width, uniq % width)
    logp = torch.log_softmax(logits, dim=-1)
    inv, t = inv.to(logp.device), targets.to(logp.device)
    chosen = logp[inv, t]
    return chosen.double().cpu(), (logits.argmax(dim=-1)[inv] == t).cpu()


def _terms_of(terms: np.ndarray, local: np.ndarray) -> tuple[np.ndarray, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices of ``terms`` whose row is in this batch (``local[row] >= 0``) and their (batch row, pos, target)."""
    idx = np.flatnonzero(local[terms[:, 1]] >= 0) if len(terms) else np.zeros(0, dtype=np.int64)
    t = terms[idx]
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return idx, as_t(local[t[:, 1]]), as_t(t[:, 2]), as_t(t[:, 3])


@torch.inference_mode()
def run_plan(
    model,
    plan: ScoringPlan,
    *,
    pad: int,
    batch_size: int = 32,
    prompt_hooks: PromptHooks | None = None,
    prefix_forward: PrefixForward | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per slot: summed log-prob ``Float[ndarray, "prompt cand"]`` (float64) and greedy-exact flags (bool).

    Prefix rows run ``batch_size`` at a time (sorted by length) with a key-value cache; then the answer contexts of
    that batch run from the frozen cache, up to ``4 * batch_size`` rows per pass (each row reads its prefix's keys
    and values, gathered one layer at a time). ``prompt_hooks`` act only in
    the prompt pass; ``prefix_forward`` replaces it (see :data:`PrefixForward`).
    """
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    if prompt_hooks is None and prefix_forward is None and attached_hooks(model) == 0 and packable(model):
        return _run_packed(model, plan, pad=pad, batch_size=batch_size)
    prefix_forward = prefix_forward or run_prefix
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
        cache = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, len(chunk))
        prompts_here = [plan.prefix_prompt[r] for r in chunk]
        with hooked(model, prompt_hooks(prompts_here) if prompt_hooks else []):
            resid = prefix_forward(model, x, mask, cache, prompts_here)
        cache.freeze()
        local = np.full(len(plan.prefixes), -1, dtype=np.int64)
        local[chunk] = np.arange(len(chunk))
        idx, rows, pos, tgt = _terms_of(plan.prompt_terms, local)
        if len(idx):
            head_lp[idx], head_ok[idx] = _read(model, resid, rows, pos, tgt)
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
            idx, rows, pos, tgt = _terms_of(plan.answer_terms, slocal)
            if len(idx):
                tail_lp[idx], tail_ok[idx] = _read(model, resid, rows, pos, tgt)
    slots = np.concatenate([plan.prompt_terms[:, 0], plan.answer_terms[:, 0]])
    return _per_slot(plan, slots, torch.cat([head_lp, tail_lp]), torch.cat([head_ok, tail_ok]))


def _per_slot(plan: ScoringPlan, slots: np.ndarray, lp: torch.Tensor, ok: torch.Tensor):
    """Per (prompt, candidate) slot: the scored tokens' summed log-prob ``Float[ndarray, "prompt cand"]`` and whether
    all of them were the argmax (greedy-exact)."""
    n_slots = plan.shape[0] * plan.shape[1]
    total = np.bincount(slots, weights=lp.numpy(), minlength=n_slots)
    n_ok = np.bincount(slots, weights=ok.numpy().astype(np.float64), minlength=n_slots)
    n_all = np.bincount(slots, minlength=n_slots)
    return total.reshape(plan.shape), (n_ok == n_all).reshape(plan.shape)


@torch.inference_mode()
def _run_packed(model, plan: ScoringPlan, *, pad: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`run_plan` in one forward pass per batch: each prompt with all its answers in one packed row
    (:mod:`interp.packing`), so the prompt runs once and no key-value cache is copied per answer."""
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
        idx, r, pos, tgt = _terms_of(terms, local)
        if not len(idx):
            continue
        batch = layout(model, rows, chunk, pad=pad)
        width = batch.tokens.shape[1]
        places, inverse = torch.unique(r * width + torch.from_numpy(batch.columns(r.numpy(), pos.numpy())),
                                       return_inverse=True)  # fmt: skip
        kept = packed_forward(model, batch, keep=(places // width, places % width))  # [place, d_model]
        lp[idx], ok[idx] = _read(model, kept[None], torch.zeros_like(inverse), inverse, tgt)
    return _per_slot(plan, terms[:, 0], lp, ok)


def uses_cache(model) -> bool:
    """Whether answers run from the prompt's key-value cache: not for local (sliding-window) attention, whose cached
    path in TransformerLens does not match a full forward (measured on Mistral: several nats), and not while the
    caller has hooks attached (a hook of theirs, e.g. a :func:`interp.patching.patch`, must see every position of
    every sequence as a full forward would)."""
    return not getattr(model.cfg, "use_local_attn", False) and attached_hooks(model) == 0


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: must be an integer >= 1, got {batch_size!r}")


def score_answers(
    model,
    prompts: Sequence[Prompt],
    *,
    include_newline: bool = False,
    batch_size: int = 32,
    prompt_hooks: PromptHooks | None = None,
    prefix_forward: PrefixForward | None = None,
) -> AnswerScores:
    """log P(answer_k | prompt) for every prompt and every candidate task (teacher-forced, exact).

    Args:
        model: a model from :func:`interp.models.load_model`.
        prompts: prompts of one candidate-task set (``Prompt.tasks`` equal across prompts).
        include_newline: also score the ``\\n`` that ends an answer (the complete output).
        batch_size: prompts per forward pass (the answers of a batch then run ``batch_size`` at a time).
        prompt_hooks: optional ``f(prompt_indices) -> [(hook_name, fn)]``: hooks for one *prompt pass*, whose
            i-th sequence is ``BOS + prompts[prompt_indices[i]]`` right-padded (positions are unpadded token
            coordinates, the same as :func:`interp.tokenization.encode`). When an answer's first token merges with
            the prompt's last token, that prompt also gets a row whose last token is the merged one. The answer
            tokens then run from the key-value cache *without* hooks, so hooks must act on prompt positions only
            (patching the query's last token does); they are removed after each batch, also on error.
        prefix_forward: optional replacement of the prompt pass (see :data:`PrefixForward`), e.g. to start from a
            residual stream shared across a sweep.

    Raises ``ValueError`` (before any forward pass) when the prompts disagree on their tasks or a
    sequence exceeds the model's context.

    >>> s = score_answers(model, build_prompts("bias_add", ["add1", "add7"], n_prompts=4))  # doctest: +SKIP
    >>> s.log_probs.shape                                                                  # doctest: +SKIP
    (4, 2)
    """
    suffix = "\n" if include_newline else ""
    return _score_with_suffixes(model, prompts, (suffix,), batch_size, prompt_hooks, prefix_forward)[0]


#: ``Prompt.family`` of the prompts :func:`score_texts` makes from plain strings.
TEXTS_FAMILY = "texts"


def score_texts(
    model,
    prompts: Sequence[str],
    answers: Sequence[Sequence[str]],
    *,
    include_newline: bool = False,
    batch_size: int = 32,
    labels: Sequence[str] | None = None,
) -> AnswerScores:
    """log P(answer | prompt) for your own prompt strings: ``answers[i][k]`` is the k-th candidate for
    ``prompts[i]`` (the same number for every prompt), scored exactly as :func:`score_answers` scores built prompts.

    The same checks apply: the context length (before any forward pass), and for a model trained by ``interp
    train`` a warning when a prompt has as many example lines as its training prompts or more (a prompt's
    examples are its lines before the last, the query). ``labels`` name the candidates (default ``a0``, ``a1``, ...).

    >>> s = score_texts(model, ["3>4\\n5>6\\n7>"], [["8", "2"]], labels=["add1", "add5"])   # doctest: +SKIP
    >>> s.tasks, s.log_probs.shape                                                          # doctest: +SKIP
    (('add1', 'add5'), (1, 2))
    """
    if isinstance(prompts, str) or not prompts:
        raise ValueError(f"prompts: need a non-empty list of prompt strings, got {prompts!r}")
    if len(answers) != len(prompts) or any(isinstance(a, str) for a in answers):
        raise ValueError(
            f"answers: need one list of candidate strings per prompt ({len(prompts)}), e.g. [['8', '2'], ...]"
        )
    k = len(answers[0])
    if k == 0 or any(len(a) != k for a in answers):
        raise ValueError(
            f"answers: every prompt needs the same number (>= 1) of candidates, got {[len(a) for a in answers]}"
        )
    names = tuple(labels) if labels is not None else tuple(f"a{j}" for j in range(k))
    if len(names) != k or len(set(names)) != k:
        raise ValueError(f"labels: need {k} distinct names (one per candidate), got {list(names)}")
    for i, (text, cands) in enumerate(zip(prompts, answers, strict=True)):
        if not isinstance(text, str) or not all(isinstance(a, str) and a for a in cands):
            raise ValueError(f"prompts[{i}]/answers[{i}]: need a string and non-empty answer strings")
    built = [
        Prompt(
            text=text,
            family=TEXTS_FAMILY,
            tasks=names,
            answers=tuple(cands),
            example_tasks=("?",) * text.count("\n"),
            query=text.rsplit("\n", 1)[-1],
            query_input=None,
            proportions=(),
            seed=0,
            index=i,
        )
        for i, (text, cands) in enumerate(zip(prompts, answers, strict=True))
    ]
    return score_answers(model, built, include_newline=include_newline, batch_size=batch_size)


def score_answers_alone_and_complete(
    model, prompts: Sequence[Prompt], *, batch_size: int = 32
) -> tuple[AnswerScores, AnswerScores]:
    """:func:`score_answers` without and with ``include_newline`` from one forward pass over the prompts (the
    answers alone and the complete outputs share each prompt's row).

    >>> alone, complete = score_answers_alone_and_complete(model, prompts)  # doctest: +SKIP
    >>> bool((complete.log_probs <= alone.log_probs + 1e-6).all())                # doctest: +SKIP
    True
    """
    alone, complete = _score_with_suffixes(model, prompts, ("", "\n"), batch_size, None, None)
    return alone, complete


def _score_with_suffixes(
    model,
    prompts: Sequence[Prompt],
    suffixes: tuple[str, ...],
    batch_size: int,
    prompt_hooks: PromptHooks | None,
    prefix_forward: PrefixForward | None,
) -> list[AnswerScores]:
    """One :class:`AnswerScores` per suffix (appended to every answer), all candidates in one plan."""
    if not prompts:
        raise ValueError("prompts: need at least one prompt")
    _check_batch_size(batch_size)
    tasks = prompts[0].tasks
    if any(p.tasks != tasks for p in prompts):
        raise ValueError("prompts: all prompts must share the same candidate tasks (Prompt.tasks)")
    tok = tokenizer_of(model)
    answers = [[a + sfx for sfx in suffixes for a in p.answers] for p in prompts]
    nothing_per_prompt = prompt_hooks is None and prefix_forward is None
    memo = scores_memo(model) if nothing_per_prompt and not attached_hooks(model) else None  # see remembering()
    todo = [i for i, p in enumerate(prompts) if memo is None or any((p.text, a) not in memo for a in answers[i])]
    cands = candidates_batch(tok, [prompts[i].text for i in todo], [answers[i] for i in todo]) if todo else []
    check_fits(model, [c.n_fed for group in cands for c in group])
    warn_untrained(model, prompts)
    lp = np.empty((len(prompts), len(answers[0])))
    merged = np.zeros(lp.shape, dtype=bool)
    if todo:
        plan = plan_scoring(cands, shared_prefix=uses_cache(model), across_prompts=nothing_per_prompt)
        lp[todo], _ = run_plan(
            model,
            plan,
            pad=pad_id(tok),
            batch_size=batch_size,
            prompt_hooks=prompt_hooks,
            prefix_forward=prefix_forward,
        )
        merged[todo] = [[c.merged for c in group] for group in cands]
    if memo is not None:
        done = set(todo)
        for i, p in enumerate(prompts):
            for j, a in enumerate(answers[i]):
                if i in done:
                    memo[p.text, a] = (float(lp[i, j]), bool(merged[i, j]))
                else:
                    lp[i, j], merged[i, j] = memo[p.text, a]
    k = len(tasks)
    return [
        AnswerScores(
            np.ascontiguousarray(lp[:, j * k : (j + 1) * k]),
            tuple(tasks),
            sfx == "\n",
            int(merged[:, j * k : (j + 1) * k].sum()),
        )
        for j, sfx in enumerate(suffixes)
    ]


def greedy_correct(model, prompts: Sequence[Prompt], task: str, *, batch_size: int = 32) -> np.ndarray:
    """Per prompt: is ``task``'s answer exactly what greedy decoding produces (every answer token the argmax)?

    Teacher-forced, so each prompt runs once: greedy decoding emits the answer iff each of its tokens
    is the argmax given the prompt and the answer's earlier tokens.

    >>> greedy_correct(model, build_prompts("bias_add", ["add1"], n_prompts=4), "add1")  # doctest: +SKIP
    array([ True,  True,  True,  True])
    """
    if not prompts:
        raise ValueError("prompts: need at least one prompt")
    _check_batch_size(batch_size)
    tok = tokenizer_of(model)
    cands = candidates_batch(tok, [p.text for p in prompts], [[p.answer(task)] for p in prompts])
    check_fits(model, [g[0].n_fed for g in cands])
    warn_untrained(model, prompts)
    _, ok = run_plan(
        model,
        plan_scoring(cands, shared_prefix=uses_cache(model), across_prompts=True),
        pad=pad_id(tok),
        batch_size=batch_size,
    )
    return ok[:, 0]
