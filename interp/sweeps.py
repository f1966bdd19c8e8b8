"""Patching experiments: one batched cell driver and its specialisations (docs/science.md §4).

A *cell* is an :class:`~interp.interventions.Intervention` (layer, hook point, mode, vector) applied at each query's
last token. :func:`score_cells` scores every prompt once per cell: where answers are one token it shares the
unpatched prefix (the tokens before the patch run once for all cells, the patched token once up to the patch layer,
and only that token runs the later layers, with the cells in the batch dimension); otherwise one batched pass over
prompts replicated per cell (:func:`score_cells_per_cell`). Both equal :mod:`interp.reference`, the method as plain
loops (``tests/test_equivalence.py``). The experiments are short specialisations that build cells and summarise:

- :func:`patched_scores`: one vector (or intervention) at one layer;
- :func:`best_layer`: one task vector at every layer, with zero-shot and in-context references;
- :func:`lambda_sweep`: v(λ) = λ·v_A + (1 − λ)·v_B at every (λ, layer), with the real mixed-prompt curve
  (λ is the weight of task A, the same meaning as the fraction of task-A examples everywhere);
- :func:`simplex_sweep`: Σ_k w_k v_k on a barycentric grid;
- :func:`proportion_sweep`: decomposition of mixed-prompt vectors vs the fraction of task A (no patching).

Results are :mod:`interp.results` values.

>>> sweep = lambda_sweep(model, "bias_add", "add1", "add7", va, vb, layers=[1, 2])   # doctest: +SKIP
>>> sweep.probs.shape                                                              # doctest: +SKIP
(31, 2, 3)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch

from interp.capture import capture_resid, resolve_positions, token_ids
from interp.decomposition import METHODS, decompose
from interp.fused import fused_continue, fused_forward_exact, fused_resid
from interp.hooks import check_hook, check_layer, check_layers
from interp.interventions import Intervention, apply_rowwise, check_mode
from interp.metrics import candidate_accuracy, mean_and_sem
from interp.models import tokenizer_of
from interp.patching import as_intervention, check_intervention, check_vector_for_model, intervention_hook
from interp.prompts import Prompt, build_prompts, check_simplex, zero_shot_prompts
from interp.results import BestLayer, MixtureSweep, ProportionSweep
from interp.scoring import (
    AnswerScores,
    ScoringPlan,
    candidates_batch,
    check_fits,
    logits_at,
    pad_rows,
    plan_scoring,
    score_answers,
    sub_cache,
    warn_untrained,
)
from interp.tasks import get_family, resolve_tasks
from interp.tokenization import pad_id
from interp.vectors import TaskVector, check_compatible, convex, task_vector, warn_if_other_task

#: 31 evenly spaced λ in [0, 1] (docs/science.md §4).
DEFAULT_LAMBDAS: tuple[float, ...] = tuple(float(x) for x in np.linspace(0, 1, 31))


def check_lambdas(lambdas: Sequence[float] | np.ndarray) -> np.ndarray:
    """λ values: a non-empty 1-D sequence of finite numbers in [0, 1]."""
    lam = np.asarray(lambdas, dtype=float)
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"lambdas: need a non-empty 1-D sequence, got shape {lam.shape}")
    bad = [float(x) for x in lam if not (math.isfinite(x) and 0.0 <= x <= 1.0)]
    if bad:
        raise ValueError(f"lambdas: every λ must lie in [0, 1]; got {bad[:5]}")
    return lam


def _sweep_layers(model, layers: Sequence[int] | None, vectors: Sequence[TaskVector]) -> tuple[int, ...]:
    if layers is None:
        layers = vectors[0].layers
    out = tuple(check_layer(model, la, "layers") for la in layers)
    if not out:
        raise ValueError("layers: need at least one layer")
    for v in vectors:
        missing = [la for la in out if la not in v.layers]
        if missing:
            raise ValueError(f"layers: {missing} not captured in vector {v.describe()!r}; it has {list(v.layers)}")
    return out


def last_positions(model, prompts: Sequence[Prompt], positions: Sequence[int] | None = None) -> list[int]:
    """Per prompt, the patch position in token coordinates (default the last token), validated."""
    return resolve_positions([len(x) for x in token_ids(model, prompts)], positions)


def score_cells(
    model,
    prompts: Sequence[Prompt],
    interventions: Sequence[Intervention],
    *,
    positions: Sequence[int] | None = None,
    batch_size: int = 32,
    include_newline: bool = False,
) -> np.ndarray:
    """log-probs ``Float[ndarray, "cell prompt task"]``: every prompt scored once per intervention (a *cell*).

    An intervention with ``position=None`` acts at ``positions[i]`` of prompt ``i`` (default: its last token).
    Two routes, equal to :mod:`interp.reference` within float rounding (``tests/test_equivalence.py``):

    - *shared prefix* (:func:`_score_cells_shared`), when every answer is one token scored right after the patched
      position, which is the prompt's last token (no ``include_newline``, no BPE merge), and every intervention acts
      at ``resid_pre``/``resid_post`` there: the tokens before the patch position run once through every layer (a
      key-value cache shared by all cells), the patched token once through the layers below the patch, and only that
      token through the layers above it, with the cells of a layer in the batch dimension;
    - otherwise (multi-token answers, ``resid_mid``, other positions) :func:`score_cells_per_cell`: one
      :func:`score_answers` call over the prompts replicated per cell.
    """
    n = len(prompts)
    if not interventions:
        return np.zeros((0, n, len(prompts[0].tasks)))
    for i, iv in enumerate(interventions):
        check_intervention(model, iv, f"interventions[{i}]")
    pos = last_positions(model, prompts, positions)
    shared = None
    if all(iv.position is None and iv.hook in ("resid_pre", "resid_post") for iv in interventions):
        shared = _shared_prefix_plan(model, prompts, pos, include_newline)
    if shared is None:
        return score_cells_per_cell(
            model, prompts, interventions, positions=pos, batch_size=batch_size, include_newline=include_newline
        )
    return _score_cells_shared(model, shared, interventions, batch_size=batch_size)


def score_cells_per_cell(
    model,
    prompts: Sequence[Prompt],
    interventions: Sequence[Intervention],
    *,
    positions: Sequence[int],
    batch_size: int,
    include_newline: bool = False,
) -> np.ndarray:
    """:func:`score_cells` by one full patched prompt pass per cell (any answers, any hook point): one
    :func:`score_answers` call over the prompts replicated per cell; each batch gets one hook per hook point present,
    patching only its rows."""
    n = len(prompts)
    if not interventions:
        return np.zeros((0, n, len(prompts[0].tasks)))
    point_of = np.array([iv.hook_name for iv in interventions])
    own = [iv.position for iv in interventions]
    pos = torch.tensor(list(positions), dtype=torch.long)

    def prompt_hooks(idx: list[int]) -> list[tuple[str, Callable]]:
        idx_t = torch.tensor(idx)
        cell, prompt = idx_t // n, idx_t % n
        out = []
        for point in sorted(set(point_of[cell.numpy()].tolist())):
            sel = torch.nonzero(torch.from_numpy(point_of[cell.numpy()] == point)).flatten()
            cols = torch.tensor(
                [int(pos[prompt[s]]) if own[cell[s]] is None else own[cell[s]] for s in sel.tolist()], dtype=torch.long
            )
            out.append((point, intervention_hook(interventions, cell[sel], sel, cols)))
        return out

    scores = score_answers(
        model,
        list(prompts) * len(interventions),
        include_newline=include_newline,
        batch_size=batch_size,
        prompt_hooks=prompt_hooks,
    )
    return scores.log_probs.reshape(len(interventions), n, -1)


def _shared_prefix_plan(model, prompts, positions, include_newline: bool) -> ScoringPlan | None:
    """The scoring plan when the shared-prefix route is exact (see :func:`score_cells`), else ``None``."""
    if include_newline:
        return None
    tok = tokenizer_of(model)
    cands = candidates_batch(tok, [p.text for p in prompts], [list(p.answers) for p in prompts])
    plan = plan_scoring(cands)
    n = len(prompts)
    pos = np.asarray(list(positions), dtype=np.int64)
    if len(plan.answer_terms) or plan.prefix_prompt != list(range(n)) or len(pos) != n:
        return None
    last = np.array([len(r) - 1 for r in plan.prefixes])
    if (pos != last).any() or (last < 1).any() or (plan.prompt_terms[:, 2] != last[plan.prompt_terms[:, 1]]).any():
        return None
    check_fits(model, [len(r) for r in plan.prefixes])
    warn_untrained(model, prompts)
    return plan


def _split_layer(iv: Intervention) -> int:
    """The first block that runs after the intervention (its patch sits between blocks ``s - 1`` and ``s``)."""
    return iv.layer + 1 if iv.hook == "resid_post" else iv.layer


@torch.inference_mode()
def _score_cells_shared(
    model, plan: ScoringPlan, interventions: Sequence[Intervention], *, batch_size: int
) -> np.ndarray:
    """The shared-prefix route of :func:`score_cells` (``plan`` from :func:`_shared_prefix_plan`).

    Identical prompts run once. Per batch of distinct prompts: the tokens before the last run once into a frozen
    key-value cache; per split layer ``s`` (``s = layer + 1`` for ``resid_post``, ``layer`` for ``resid_pre``) the
    last token runs through blocks ``< s`` from that cache, is expanded over the cells of that layer, intervened,
    and runs through blocks ``>= s`` reading its prompt's cached keys and values; one log-softmax per (cell, prompt)
    row serves all candidates. Where :func:`interp.fused.fused_forward_exact` holds, the cache is the fused forward's
    own keys and values, read in place by every cell's row (:func:`interp.fused.fused_continue`); otherwise
    TransformerLens's key-value cache, its rows gathered per cell one layer at a time.
    """
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    n, k = plan.shape
    n_layers, device = model.cfg.n_layers, model.cfg.device
    pad = pad_id(tokenizer_of(model))
    out = np.zeros((len(interventions), n * k))
    fused = fused_forward_exact(model)  # no hook attached, GPT-2-style attention: the fused forward and its own cache
    split_of = np.array([_split_layer(iv) for iv in interventions])
    distinct: dict[tuple[int, ...], int] = {}
    uid = np.array([distinct.setdefault(r, len(distinct)) for r in plan.prefixes])
    rows_u = list(distinct)
    head = plan.prompt_terms  # (slot, row, position, target); row == prompt here
    order = sorted(range(len(rows_u)), key=lambda u: len(rows_u[u]))
    for lo in range(0, len(order), batch_size):
        chunk = order[lo : lo + batch_size]
        b = len(chunk)
        x, mask = pad_rows([rows_u[u][:-1] for u in chunk], pad)
        if fused:  # keys and values of every layer from the fused forward; continued in place, not copied per cell
            keys_values: list = []
            fused_resid(model, x, keys_values=keys_values)
            prompt_len = torch.tensor([len(rows_u[u]) - 1 for u in chunk])
        else:
            cache = TransformerLensKeyValueCache.init_cache(model.cfg, device, b)
            model(x.to(device), attention_mask=mask.to(device), past_kv_cache=cache, stop_at_layer=n_layers)
            cache.freeze()
        last_tok = torch.tensor([[rows_u[u][-1]] for u in chunk])
        local = np.full(len(rows_u), -1, dtype=np.int64)
        local[chunk] = np.arange(b)
        terms = head[local[uid[head[:, 1]]] >= 0]
        t_row = torch.from_numpy(local[uid[terms[:, 1]]])
        t_tgt = torch.from_numpy(terms[:, 3])
        cells_per_pass = max(1, min(1024, 16384 // x.shape[1]) // b)  # one token per row: bounded activations
        for s in sorted(set(split_of.tolist())):
            if fused:
                resid = fused_continue(model, keys_values, prompt_len, torch.arange(b), last_tok, stop_at_layer=s)
            else:
                resid = model(
                    last_tok.to(device),
                    attention_mask=torch.ones_like(last_tok).to(device),
                    past_kv_cache=cache,
                    stop_at_layer=s,
                )  # [b, 1, d_model], unpatched, shared
            ids = np.flatnonzero(split_of == s)
            for clo in range(0, len(ids), cells_per_pass):
                cid = ids[clo : clo + cells_per_pass]
                c = len(cid)
                act = resid.repeat(c, 1, 1)
                which = torch.arange(c).repeat_interleave(b)
                act[:, 0] = apply_rowwise([interventions[i] for i in cid], which, act[:, 0])
                if s < n_layers and fused:
                    rows = torch.arange(b).repeat(c)
                    act = fused_continue(model, keys_values, prompt_len, rows, resid=act, start_at_layer=s)
                elif s < n_layers:
                    view = sub_cache(cache, torch.arange(b).repeat(c))
                    ones = torch.ones(c * b, 1, dtype=view.previous_attention_mask.dtype, device=device)
                    full_mask = torch.cat([view.previous_attention_mask, ones], dim=1)
                    act = model(
                        act, start_at_layer=s, attention_mask=full_mask, past_kv_cache=view, stop_at_layer=n_layers
                    )
                every = torch.arange(c * b)
                logp = torch.log_softmax(logits_at(model, act, every, torch.zeros_like(every)), dim=-1)
                rows = (torch.arange(c)[:, None] * b + t_row[None, :]).flatten().to(logp.device)
                chosen = logp[rows, t_tgt.repeat(c).to(logp.device)]
                out[cid[:, None], terms[None, :, 0]] = chosen.double().cpu().numpy().reshape(c, -1)
    return out.reshape(len(interventions), n, k)


def patched_scores(
    model,
    prompts: Sequence[Prompt],
    vector: TaskVector | Intervention,
    layer: int | None = None,
    *,
    mode: str = "replace",
    positions: Sequence[int] | None = None,
    batch_size: int = 32,
    include_newline: bool = False,
) -> AnswerScores:
    """Answer scores with ``vector`` patched at ``layer`` at each prompt's last token (or ``positions``); or with
    an :class:`~interp.interventions.Intervention` (its own layer, mode and hook).

    ``prompts`` are normally zero-shot queries (:func:`interp.prompts.zero_shot_prompts`). Refuses a vector
    from another model or weight processing; everything is validated before any forward pass.
    """
    if not prompts:
        raise ValueError("prompts: need at least one prompt")
    iv = as_intervention(model, vector, layer, mode=mode, name="vector")
    logp = score_cells(
        model, prompts, [iv], positions=positions, batch_size=batch_size, include_newline=include_newline
    )[0]
    return AnswerScores(logp, tuple(prompts[0].tasks), include_newline)


def _mean_p_and_accuracy(logp: np.ndarray, k: int) -> tuple[float, float]:
    """Mean P(candidate ``k``) and candidate accuracy of ``k`` over prompts (``logp``: ``[prompt, task]``)."""
    return float(np.exp(logp[..., k]).mean()), float(candidate_accuracy(logp, k))


def best_layer(
    model,
    family: str,
    task: str,
    vector: TaskVector,
    *,
    n_prompts: int = 100,
    seed: int = 0,
    layers: Sequence[int] | None = None,
    n_examples: int = 20,
    mode: str = "replace",
    batch_size: int = 32,
) -> BestLayer:
    """Patch ``vector`` (replace) into zero-shot queries at each layer; best layer = argmax mean P(correct).

    Candidates are all tasks of ``family``; accuracy is *candidate accuracy* (:func:`interp.metrics.candidate_accuracy`:
    the correct answer is the most probable of the candidates' answers), reported beside its chance level
    ``1 / n_candidates``. The zero-shot baseline and the in-context reference (``n_examples`` examples of ``task``)
    use the same queries.
    """
    fam = get_family(family)
    tasks = fam.task_names
    resolve_tasks(fam, [task])
    check_mode(mode)
    check_vector_for_model(model, vector)
    warn_if_other_task(vector, fam.name, task)
    layers = _sweep_layers(model, layers, [vector])
    k = tasks.index(task)
    zs = zero_shot_prompts(fam, tasks, n_prompts=n_prompts, seed=seed)
    icl = build_prompts(
        fam, tasks, counts=[n_examples if t == task else 0 for t in tasks], n_prompts=n_prompts, seed=seed
    )
    if getattr(model, "interp_construction", None) is not None:  # a hand-built model: is `task` one it computes?
        warn_untrained(model, [replace(zs[0], tasks=(task,), answers=(zs[0].answer(task),))])
    with warnings.catch_warnings():  # every task of the family is a candidate by design; only `task` is asked about
        warnings.filterwarnings("ignore", message="prompts: this hand-built model was built for")
        cells = [as_intervention(model, vector, la, mode=mode) for la in layers]
        logp = score_cells(model, zs, cells, batch_size=batch_size)
        zs_p, zs_acc = _mean_p_and_accuracy(score_answers(model, zs, batch_size=batch_size).log_probs, k)
        icl_p, icl_acc = _mean_p_and_accuracy(score_answers(model, icl, batch_size=batch_size).log_probs, k)
    per_layer = [_mean_p_and_accuracy(logp[i], k) for i in range(len(layers))]
    return BestLayer(
        fam.name,
        task,
        layers,
        np.array([p for p, _ in per_layer]),
        np.array([a for _, a in per_layer]),
        zs_p,
        zs_acc,
        icl_p,
        icl_acc,
        n_prompts,
        seed,
        n_candidates=len(tasks),
        p_correct_sem=np.exp(logp[..., k]).std(axis=-1, ddof=1) / math.sqrt(n_prompts) if n_prompts > 1 else None,
    )


def _mixture_sweep(
    model,
    family: str,
    tasks: Sequence[str],
    vectors: Sequence[TaskVector],
    weights: np.ndarray,
    layers: Sequence[int] | None,
    n_prompts: int,
    n_examples: int,
    seed: int,
    mode: str,
    mixed_reference: bool,
    batch_size: int,
) -> MixtureSweep:
    fam = get_family(family)
    tasks = resolve_tasks(fam, tasks)
    if len(vectors) != len(tasks):
        raise ValueError(f"vectors: need one TaskVector per task ({len(tasks)}), got {len(vectors)}")
    check_mode(mode)
    for i, v in enumerate(vectors):
        check_vector_for_model(model, v, f"vectors[{i}]")
        check_compatible(vectors[0], v)
        warn_if_other_task(v, fam.name, tasks[i], f"vectors[{i}]")
    layers = _sweep_layers(model, layers, vectors)
    for w in weights:
        check_simplex(w, len(tasks), "weights")
    zs = zero_shot_prompts(fam, tasks, n_prompts=n_prompts, seed=seed)
    mixed_prompts: list[Prompt] = []
    if mixed_reference:
        for w in weights:
            mixed_prompts += build_prompts(
                fam, tasks, proportions=w, n_examples=n_examples, n_prompts=n_prompts, seed=seed
            )
    # ---- every argument checked: forward passes from here on
    cells = []
    for w in weights:
        v = convex(list(w), vectors)
        cells += [as_intervention(model, v, la, mode=mode) for la in layers]
    logp = score_cells(model, zs, cells, batch_size=batch_size)
    probs, sem = mean_and_sem(logp.reshape(len(weights), len(layers), n_prompts, len(tasks)))
    real_probs = real_sem = fractions = None
    if mixed_reference:
        rl = score_answers(model, mixed_prompts, batch_size=batch_size).log_probs
        real_probs, real_sem = mean_and_sem(rl.reshape(len(weights), n_prompts, len(tasks)))
        fractions = np.array([p.fractions() for p in mixed_prompts]).reshape(len(weights), n_prompts, -1).mean(1)
    return MixtureSweep(
        fam.name,
        tuple(tasks),
        weights,
        layers,
        probs,
        sem,
        real_probs,
        real_sem,
        fractions,
        n_prompts,
        n_examples,
        seed,
        mode,
    )


def lambda_sweep(
    model,
    family: str,
    task_a: str,
    task_b: str,
    va: TaskVector,
    vb: TaskVector,
    *,
    lambdas: Sequence[float] | np.ndarray = DEFAULT_LAMBDAS,
    layers: Sequence[int] | None = None,
    n_prompts: int = 100,
    n_examples: int = 20,
    seed: int = 0,
    mode: str = "replace",
    mixed_reference: bool = True,
    batch_size: int = 32,
) -> MixtureSweep:
    """Patch v(λ) = λ·v_A + (1 − λ)·v_B at each zero-shot query's last token, for every (λ, layer).

    λ is the weight of task A (the paper's α·v_1 + (1 − α)·v_2). Returns P(a_A), P(a_B), P(other) per cell
    (``probs[λ, layer]``) and, with ``mixed_reference``, the real mixed-prompt curve: ``n_examples`` in-context
    examples, a fraction λ of them task A, same queries (same ``seed``).

    >>> sweep = lambda_sweep(model, "bias_add", "add1", "add7", va, vb, layers=[1, 2])   # doctest: +SKIP
    >>> sweep.probs.shape                                                                     # doctest: +SKIP
    (31, 2, 3)
    """
    lam = check_lambdas(lambdas)
    weights = np.stack([lam, 1.0 - lam], axis=1)
    return _mixture_sweep(
        model,
        family,
        [task_a, task_b],
        [va, vb],
        weights,
        layers,
        n_prompts,
        n_examples,
        seed,
        mode,
        mixed_reference,
        batch_size,
    )


def simplex_grid(k: int, resolution: int) -> np.ndarray:
    """Barycentric grid ``Float[ndarray, "point k"]``: all weights ``i/resolution`` summing to 1.

    >>> simplex_grid(3, 2).tolist()
    [[0.0, 0.0, 1.0], [0.0, 0.5, 0.5], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k: need an integer >= 1, got {k!r}")
    if not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution: need an integer >= 1, got {resolution!r}")

    def parts(n: int, m: int) -> list[list[int]]:
        if m == 1:
            return [[n]]
        return [[i, *rest] for i in range(n + 1) for rest in parts(n - i, m - 1)]

    return np.array(parts(resolution, k), dtype=float) / resolution


def simplex_sweep(
    model,
    family: str,
    tasks: Sequence[str],
    vectors: Sequence[TaskVector],
    *,
    resolution: int = 4,
    weights: np.ndarray | None = None,
    layers: Sequence[int] | None = None,
    n_prompts: int = 100,
    n_examples: int = 20,
    seed: int = 0,
    mode: str = "replace",
    mixed_reference: bool = True,
    batch_size: int = 32,
) -> MixtureSweep:
    """Patch Σ_k w_k v_k for barycentric weights on :func:`simplex_grid` (K ≥ 3 tasks; or given ``weights``).

    ``probs[point, layer]`` holds P(a_1), …, P(a_K), P(other); ``real_probs`` the mixed-prompt reference.
    """
    if len(tasks) < 2:
        raise ValueError(f"tasks: need at least 2 tasks for a simplex sweep, got {list(tasks)}")
    w = simplex_grid(len(tasks), resolution) if weights is None else np.asarray(weights, dtype=float)
    if w.ndim != 2 or w.shape[1] != len(tasks):
        raise ValueError(f"weights: expected shape (point, {len(tasks)}), got {w.shape}")
    return _mixture_sweep(
        model, family, tasks, vectors, w, layers, n_prompts, n_examples, seed, mode, mixed_reference, batch_size
    )


def proportion_sweep(
    model,
    family: str,
    task_a: str,
    task_b: str,
    *,
    proportions: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    va: TaskVector | None = None,
    vb: TaskVector | None = None,
    n_prompts: int = 100,
    n_examples: int = 20,
    seed: int = 0,
    method: str = "lstsq",
    intercept: bool = True,
    hook: str = "resid_post",
    layers: Sequence[int] | None = None,
    batch_size: int = 32,
) -> ProportionSweep:
    """Decompose mixed-prompt vectors (fraction ``q`` of task-A examples) on v_A, v_B for each ``q``.

    ``va``/``vb`` default to single-task vectors with the same settings.
    """
    if method not in METHODS:
        raise ValueError(f"method: {method!r} not supported; valid: {', '.join(METHODS)}")
    q = np.asarray(proportions, dtype=float)
    if q.ndim != 1 or q.size == 0 or not np.all((q >= 0) & (q <= 1)):
        raise ValueError(f"proportions: need a non-empty 1-D sequence of values in [0, 1], got {q.tolist()}")
    fam = get_family(family)
    resolve_tasks(fam, [task_a, task_b])
    check_hook(hook)
    layers = check_layers(model, layers)
    for name, v in (("va", va), ("vb", vb)):
        if v is not None and (v.hook != hook or any(la not in v.layers for la in layers)):
            raise ValueError(f"{name}: needs hook {hook!r} and layers {list(layers)}; has {v.hook!r}, {list(v.layers)}")
    kw = dict(n_prompts=n_prompts, n_examples=n_examples, seed=seed, hook=hook, layers=layers, batch_size=batch_size)
    basis = [va or task_vector(model, fam.name, task_a, **kw), vb or task_vector(model, fam.name, task_b, **kw)]
    basis_means = [torch.stack([v.at(la) for la in layers]) for v in basis]
    fracs, coefs, icpt, resid = [], [], [], []
    for qi in q:
        prompts = build_prompts(
            fam, [task_a, task_b], proportions=[qi, 1 - qi], n_examples=n_examples, n_prompts=n_prompts, seed=seed
        )
        acts = capture_resid(model, prompts, layers=layers, hook=hook, batch_size=batch_size)
        d = decompose(acts.mean(dim=1), basis_means, method=method, intercept=intercept, layers=layers)
        fracs.append(np.mean([p.fractions()[0] for p in prompts]))
        coefs.append(d.coefs)
        icpt.append(d.intercept)
        resid.append(d.residual_norm)
    return ProportionSweep(
        q, np.array(fracs), np.array(coefs), np.array(icpt), np.array(resid), layers, method, intercept
    )
