"""The engines: every way the toolkit runs prompts and reads answer log-probabilities, behind one door.

:func:`score` takes prompt texts, candidate answers and, optionally, :class:`~interp.interventions.Intervention`
values (*cells*: each prompt is scored once per cell), and returns log P(answer | prompt) per (cell, prompt,
candidate). Every route equals :mod:`interp.reference` (one plain forward per prompt and candidate) within float
rounding on the models it is exact for (:mod:`interp.engines.exact`); ``tests/equivalence/test_equivalence.py``
checks each.
:func:`choose_route` is the one decision:

=================  ================================================================  ===================
route              when                                                              module (engines.)
=================  ================================================================  ===================
``packed``         no cells, no hook of the caller, absolute positions (GPT-2 style)  ``packed``
``kv_cache``       no cells, the key-value cache is exact                            ``kv_cache``
``full_rows``      no cells, the cache is not exact (sliding window, caller's hooks)  ``kv_cache``
``shared_prefix``  one intervention per cell on ``resid_pre``/``resid_post`` or a      ``shared_prefix``
                   head's ``z``, one-token answers right after the prompt, no BPE
                   merge; the fused forward: at any position after BOS (the tokens
                   before it run once), TransformerLens's cache: at the last token
``per_cell``       any other cells: prompts replicated per cell, each cell a hook     ``kv_cache``
                   of the prompt pass (cache or full rows as above)
``nnsight``        a model loaded with ``engine="nnsight"``: full rows, replicated    ``nn_traces``
                   per cell, batched into traces (here, simulated remote, or NDIF)
=================  ================================================================  ===================

:func:`explain_route` says why, in a sentence (also in :attr:`Scored.reason`).

>>> out = score(model, ["3>4\\n1>"], [["2", "8"]])                             # doctest: +SKIP
>>> out.log_probs.shape, out.route                                            # doctest: +SKIP
((1, 1, 2), 'packed')
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from interp.engines import nn_traces
from interp.engines.exact import absolute_positions, cache_exact, fused_forward_exact
from interp.engines.kv_cache import run_with_cache
from interp.engines.nn_model import is_nnsight
from interp.engines.packed import run_packed
from interp.engines.plan import (
    candidates_batch,
    check_batch_size,
    check_fits,
    plan_scoring,
    resolve_positions,
)
from interp.engines.shared_prefix import SPLIT_HOOKS, run_shared_prefix, shared_prefix_plan, split_positions
from interp.hooks import attached_hooks
from interp.interventions import Intervention, check_intervention, intervention_hook
from interp.models import tokenizer_of
from interp.tokenization import pad_id
from interp.validate import ArgumentError, ArgumentTypeError, check_sequence

ROUTES = ("packed", "kv_cache", "full_rows", "shared_prefix", "per_cell", "nnsight")
#: A cell: one intervention, or several applied together in the same pass (e.g. a vector injected at several layers).
Cell = Intervention | tuple[Intervention, ...]


def as_cells(model, interventions: Sequence[Cell] | None) -> list[tuple[Intervention, ...]]:
    """Every cell as a tuple of interventions, each checked against ``model``; two interventions of one cell may not
    act on the same hook point and position."""
    cells = []
    for i, cell in enumerate(interventions or ()):
        group = (cell,) if isinstance(cell, Intervention) else tuple(cell)
        if not group:
            raise ArgumentError(
                f"interventions[{i}]", "an empty cell; give an Intervention or a non-empty tuple of them"
            )
        for j, iv in enumerate(group):
            check_intervention(model, iv, f"interventions[{i}]" + (f"[{j}]" if len(group) > 1 else ""))
        places = [(iv.hook_name, iv.position, iv.head) for iv in group]  # heads of one layer: distinct places
        if len(set(places)) != len(places):
            raise ArgumentError(f"interventions[{i}]", "two interventions act on the same hook point and position")
        cells.append(group)
    return cells


@dataclass(frozen=True)
class Scored:
    """What :func:`score` read: ``log_probs`` ``Float[ndarray, "cell prompt cand"]`` (one cell when no
    interventions were given); ``greedy`` ``Bool[ndarray, "cell prompt cand"]`` whether every answer token was the
    argmax (``None`` on the shared-prefix route, which reads the first token only); ``merged``
    ``Bool[ndarray, "prompt cand"]`` whether the answer's first token merged with the prompt's last one; ``route``
    the route taken (:data:`ROUTES`) and ``reason`` why (:func:`explain_route`)."""

    log_probs: np.ndarray
    greedy: np.ndarray | None
    merged: np.ndarray
    route: str
    reason: str = ""


def choose_route(model, cands, cells: Sequence[tuple[Intervention, ...]], positions: Sequence[int]) -> str:
    """The route :func:`score` takes (see the module's table); ``cells`` as :func:`as_cells` returns them."""
    return explain_route(model, cands, cells, positions)[0]


def explain_route(model, cands, cells: Sequence[tuple[Intervention, ...]], positions: Sequence[int]) -> tuple[str, str]:
    """``(route, why)``: the route :func:`score` takes and the reason, in one sentence (the first condition of the
    module's table that decides it)."""
    if is_nnsight(model):
        return "nnsight", "a model loaded with engine='nnsight': its own traces, full rows replicated per cell"
    if not cells:
        if attached_hooks(model) == 0 and absolute_positions(model):
            return "packed", "no cells, no hook attached, learned absolute positions: prompts packed with their answers"
        if cache_exact(model):
            return "kv_cache", "no cells: each prompt once into TransformerLens's key-value cache, then its answers"
        why = "a hook of the caller is attached" if attached_hooks(model) else "the model's cache is not exact for it"
        return "full_rows", f"no cells, and {why}: every candidate as one full row"
    if any(len(c) > 1 for c in cells):
        return "per_cell", "a cell holds several interventions, applied together in one full pass per cell"
    hooks = sorted({c[0].hook for c in cells} - set(SPLIT_HOOKS))
    if hooks:
        return "per_cell", f"hook point {hooks[0]} is not one the shared prefix splits at ({', '.join(SPLIT_HOOKS)})"
    fused, cached = fused_forward_exact(model), cache_exact(model)
    if not (fused or cached):
        why = "a hook of the caller is attached" if attached_hooks(model) else "no exact key-value cache for this model"
        return "per_cell", f"{why}: prompts replicated per cell, every token run per cell"
    if any(c[0].position == 0 for c in cells):
        return "per_cell", "an intervention at BOS (position 0) leaves no prefix to share"
    if shared_prefix_plan(cands, positions) is None:
        return "per_cell", "answers of several tokens, merged into the prompt, or a patch position beyond a prompt"
    split = split_positions([c[0] for c in cells], positions)
    last = np.array([len(g[0].ids[: g[0].prompt_len]) - 1 for g in cands])
    if not fused and (split != last).any():
        return "per_cell", "TransformerLens's key-value cache continues the last token only, and a patch is earlier"
    engine = "the fused forward's keys and values" if fused else "TransformerLens's key-value cache"
    tail = "the last token" if (split == last).all() else "the tokens from the earliest patch on"
    why = f"one-token answers, one intervention per cell: the prefix once ({engine}), {tail} per cell"
    return "shared_prefix", why


def score(
    model,
    prompt_texts: Sequence[str],
    answers: Sequence[Sequence[str]],
    interventions: Sequence[Cell] | None = None,
    *,
    positions: Sequence[int] | None = None,
    batch_size: int = 32,
    across_prompts: bool = False,
) -> Scored:
    """log P(``answers[i][k]`` | ``prompt_texts[i]``) for every prompt and candidate, once per intervention.

    Args:
        interventions: cells, each an Intervention or a tuple of them applied together (:data:`Cell`); an
            intervention with ``position=None`` acts at ``positions[i]`` of prompt ``i`` (default its last token).
            ``None``: the model as it is (one cell).
        positions: per-prompt token positions (``None``: each prompt's last token; negatives count from the end).
        batch_size: prompts per forward pass.
        across_prompts: prompts with identical tokens run once (only where nothing acts per prompt).

    Raises :class:`~interp.validate.ArgumentError` (a ``ValueError``) before any forward pass: a sequence longer
    than the context, an intervention that does not fit the model, a position outside its prompt, a prompt or
    answer the tokenizer cannot read (its unknown token), a candidate given twice for one prompt. And after it, naming
    the cell, where an intervention made the forward pass non-finite (its numbers would be NaN).
    """
    check_batch_size(batch_size)
    answers = _check_answers(prompt_texts, answers)
    cells = as_cells(model, interventions)
    tok = tokenizer_of(model)
    cands = candidates_batch(tok, list(prompt_texts), answers)
    check_fits(model, [c.n_fed for group in cands for c in group])
    merged = np.array([[c.merged for c in group] for group in cands], dtype=bool)
    lengths = [g[0].prompt_len for g in cands]
    pos = resolve_positions(lengths, positions)
    for i, iv in ((i, iv) for i, cell in enumerate(cells) for iv in cell):
        if iv.position is not None and iv.position >= min(lengths):
            short = lengths.index(min(lengths))
            raise ValueError(
                f"interventions[{i}]: position {iv.position} lies beyond prompt {short} ({lengths[short]} tokens "
                f"including BOS); valid: 0..{min(lengths) - 1}"
            )
    if cells and merged.any():
        warnings.warn(
            f"answers: {int(merged.sum())} answers merge their first token into the prompt's last one, so that token "
            "is predicted before the patched position: their scores do not see the interventions",
            stacklevel=2,
        )
    route, reason = explain_route(model, cands, cells, pos)
    pad = pad_id(tok)
    if route == "nnsight":
        lp, ok = nn_traces.score(
            model, cands, cells, pos, pad=pad, batch_size=batch_size, across_prompts=across_prompts
        )
        return Scored(lp, ok, merged, route, reason)
    if route in ("packed", "kv_cache", "full_rows"):
        plan = plan_scoring(cands, shared_prefix=route != "full_rows", across_prompts=across_prompts)
        run = run_packed if route == "packed" else run_with_cache
        lp, ok = run(model, plan, pad=pad, batch_size=batch_size)
        return _finite(Scored(lp[None], ok[None], merged, route, reason), cells)
    if route == "shared_prefix":
        plan = shared_prefix_plan(cands, pos)
        lp = run_shared_prefix(model, plan, [c[0] for c in cells], pos, batch_size=batch_size)
        return _finite(Scored(lp, None, merged, route, reason), cells)
    n = len(cands)
    plan = plan_scoring(cands * len(cells), shared_prefix=cache_exact(model))
    hooks = _per_cell_hooks(cells, n, pos)
    lp, ok = run_with_cache(model, plan, pad=pad, batch_size=batch_size, prompt_hooks=hooks)
    k = lp.shape[1]
    return _finite(Scored(lp.reshape(len(cells), n, k), ok.reshape(len(cells), n, k), merged, route, reason), cells)


def _check_answers(prompt_texts: Sequence[str], answers: Sequence[Sequence[str]]) -> list[list[str]]:
    """One list of distinct, non-empty candidate strings per prompt text (a candidate given twice would be counted
    twice in P(other) = 1 − Σ_k P(a_k), which then turns negative)."""
    texts = check_sequence(prompt_texts, "prompt_texts", what="prompt strings")
    groups = check_sequence(answers, "answers", what="lists of candidate strings (one list per prompt)")
    if len(groups) != len(texts):
        raise ArgumentError("answers", f"need one list of candidates per prompt ({len(texts)}), got {len(groups)}")
    out = []
    for i, (text, group) in enumerate(zip(texts, groups, strict=True)):
        if not isinstance(text, str):
            raise ArgumentTypeError(f"prompt_texts[{i}]", f"need a string, got {type(text).__name__}")
        group = check_sequence(group, f"answers[{i}]", what="candidate strings")
        bad = next((a for a in group if not isinstance(a, str) or not a), None)
        if bad is not None:
            raise ArgumentError(f"answers[{i}]", f"every candidate must be a non-empty string, got {bad!r}")
        twice = sorted({a for a in group if group.count(a) > 1})
        if twice:
            raise ArgumentError(
                f"answers[{i}]",
                f"candidate {twice[0]!r} is given more than once; each candidate must differ (a repeated one would "
                "be counted twice in P(other))",
            )
        out.append(group)
    return out


def _finite(scored: Scored, cells: Sequence[tuple[Intervention, ...]]) -> Scored:
    """``scored`` if every log-probability is finite; else an error naming the first cell whose forward pass was not
    (an intervention that overflows the activations, or a model or hook of the caller that gives NaN)."""
    bad = ~np.isfinite(scored.log_probs).reshape(scored.log_probs.shape[0], -1).all(axis=1)
    if not bad.any():
        return scored
    if not cells:
        raise ArgumentError(
            "model",
            "its forward pass gave non-finite log-probabilities (NaN or inf): a non-finite weight, or a hook "
            "attached to it that writes NaN or inf",
        )
    c = int(np.flatnonzero(bad)[0])
    what = "; ".join(
        f"{iv!r} (vector norm {float(iv.vector.double().norm()):.3g}, alpha {iv.alpha:g})" for iv in cells[c]
    )
    raise ArgumentError(
        f"interventions[{c}]",
        f"the forward pass with {what} gave non-finite log-probabilities (NaN or inf): it overflows the model's "
        f"activations; use a smaller vector or alpha",
    )


def _per_cell_hooks(cells: Sequence[tuple[Intervention, ...]], n: int, pos: Sequence[int]) -> Callable:
    """Prompt-pass hooks for prompts replicated per cell (row ``cell * n + prompt``): one hook per hook point
    present in the batch, each patching only its rows, at each intervention's own position or the prompt's; a cell of
    several interventions patches its rows at each of their hook points."""
    flat = [iv for cell in cells for iv in cell]
    members = [[sum(len(c) for c in cells[:i]) + j for j in range(len(cell))] for i, cell in enumerate(cells)]

    def prompt_hooks(idx: list[int]) -> list[tuple[str, Callable]]:
        by_point: dict[str, list[tuple[int, int, int]]] = {}  # hook point -> (batch row, flat index, column)
        for row, i in enumerate(idx):
            cell, prompt = divmod(i, n)
            for f in members[cell]:
                iv = flat[f]
                col = pos[prompt] if iv.position is None else iv.position
                by_point.setdefault(iv.hook_name, []).append((row, f, col))
        out = []
        for point, entries in sorted(by_point.items()):
            rows, which, cols = (torch.tensor(x, dtype=torch.long) for x in zip(*entries, strict=True))
            out.append((point, intervention_hook(flat, which, rows, cols)))
        return out

    return prompt_hooks
