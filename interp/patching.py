"""Activation patching of the residual stream at (layer, position): replace or add a vector.

Two ways in, both through :func:`interp.hooks.hooks` (removed in ``finally``, also on error):

- ``with patch(model, v, layer, positions): ...`` (context manager), or
- ``h = add_patch(model, v, layer, positions); ...; h.remove()`` (explicit handle).

Experiments (science.md §4) reuse the measurement engine :func:`interp.scoring.score_answers`:
:func:`patched_scores` (one vector, one layer), :func:`best_layer`, :func:`lambda_sweep` (convex combination
of two task vectors × layer) and :func:`simplex_sweep` (K task vectors on a barycentric grid). All (λ, layer)
cells of a sweep are scored in one batched pass over replicated zero-shot prompts.

Gotcha: positions given to :func:`patch` are *batch* coordinates (after padding); the toolkit right-pads, so
they equal the unpadded positions of ``encode(tok, text)``. For BPE models, an answer whose first token merges
with the prompt's last token (counted in ``AnswerScores.n_merged``) is scored on a row whose last prompt token
differs; the patch still lands at that position.

>>> v = task_vector(model, "operands", "sum")                              # doctest: +SKIP
>>> with patch(model, v, layer=2, positions=[7, 7]):                        # doctest: +SKIP
...     logits = forward_logits(model, tokens)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch

from interp.capture import resolve_positions, token_ids
from interp.hooks import check_hook, check_layer, hook_name, hooks
from interp.models import model_info
from interp.prompts import Prompt, build_prompts, zero_shot_prompts
from interp.scoring import AnswerScores, score_answers
from interp.tasks import get_family, resolve_tasks
from interp.vectors import TaskVector, check_compatible, check_weights, convex

MODES = ("replace", "add")
#: 31 evenly spaced λ in [0, 1] (science.md §4).
DEFAULT_LAMBDAS: tuple[float, ...] = tuple(float(x) for x in np.linspace(0, 1, 31))
ACCURACY_RULE = "argmax over the candidate tasks' answers (teacher-forced probabilities), not greedy decoding"


# ---------------------------------------------------------------------------------------------
# Validation


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode: {mode!r} not supported; valid: {', '.join(MODES)}")
    return mode


def check_vector_for_model(model, vector: TaskVector, name: str = "vector") -> None:
    """``ValueError`` unless ``vector`` was captured from this model (id, weight processing, width)."""
    if not isinstance(vector, TaskVector):
        raise ValueError(f"{name}: expected a TaskVector, got {type(vector).__name__}")
    info = model_info(model)
    diffs = []
    if vector.model_id != info.model_id:
        diffs.append(f"model_id ({vector.model_id!r} vs model's {info.model_id!r})")
    if vector.processing_dict != asdict(info.processing):
        diffs.append(f"processing ({vector.processing_dict} vs model's {asdict(info.processing)})")
    if vector.d_model != model.cfg.d_model:
        diffs.append(f"d_model ({vector.d_model} vs model's {model.cfg.d_model})")
    if diffs:
        raise ValueError(f"{name}: task vector does not belong to this model; differs in " + "; ".join(diffs))


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


def _values(vector: TaskVector | torch.Tensor, layer: int, d_model: int) -> torch.Tensor:
    if isinstance(vector, TaskVector):
        return vector.at(layer)
    if not isinstance(vector, torch.Tensor):
        raise ValueError(f"vector_or_tensor: expected a TaskVector or a Tensor, got {type(vector).__name__}")
    if vector.ndim not in (1, 2) or vector.shape[-1] != d_model:
        raise ValueError(
            f"vector_or_tensor: expected shape (d_model={d_model},) or (batch, {d_model}), got {tuple(vector.shape)}"
        )
    return vector


# ---------------------------------------------------------------------------------------------
# The patch itself


def _patch_hook(values: torch.Tensor, rows: torch.Tensor | None, cols: torch.Tensor | int, mode: str) -> Callable:
    """Hook writing ``values`` (``[d]`` or ``[n, d]``) at ``act[rows, cols]`` (all rows when ``rows`` is None)."""

    def fn(act, hook):  # TransformerLens passes the HookPoint as ``hook``
        b, n = act.shape[0], act.shape[1]
        r = torch.arange(b, device=act.device) if rows is None else rows.to(act.device)
        c = torch.as_tensor(cols, device=act.device)
        c = c.expand(r.shape[0]) if c.ndim == 0 else c
        if c.shape[0] != r.shape[0]:
            raise ValueError(f"positions: {c.shape[0]} positions for a batch of {r.shape[0]} sequences")
        if c.numel() and int(c.max()) >= n:
            raise ValueError(f"positions: {int(c.max())} lies beyond the sequence (length {n}) at {hook.name}")
        v = values.to(act.device, act.dtype)
        if v.ndim == 2 and v.shape[0] != r.shape[0]:
            raise ValueError(f"vector_or_tensor: {v.shape[0]} rows of values for a batch of {r.shape[0]} sequences")
        act = act.clone()  # out of place: the input of a resid_pre hook is the previous block's output
        act[r, c] = v if mode == "replace" else act[r, c] + v
        return act

    return fn


def _check_positions(positions: int | Sequence[int] | torch.Tensor) -> torch.Tensor:
    pos = torch.as_tensor(positions, dtype=torch.long)
    if pos.ndim > 1:
        raise ValueError(f"positions: an int or one int per sequence, got shape {tuple(pos.shape)}")
    if (pos < 0).any():
        raise ValueError(f"positions: must be >= 0 (batch coordinates, 0 = BOS), got {pos.tolist()}")
    return pos


@dataclass
class PatchHandle:
    """An attached patch; :meth:`remove` detaches exactly its hook (idempotent)."""

    model: object
    layer: int
    hook: str
    mode: str
    _cm: object = None

    @property
    def active(self) -> bool:
        return self._cm is not None

    def remove(self) -> None:
        if self._cm is not None:
            cm, self._cm = self._cm, None
            cm.__exit__(None, None, None)


def add_patch(
    model,
    vector_or_tensor: TaskVector | torch.Tensor,
    layer: int,
    positions: int | Sequence[int] | torch.Tensor,
    *,
    mode: str = "replace",
    hook: str | None = None,
) -> PatchHandle:
    """Attach a patch and return its handle (call ``.remove()``; prefer :func:`patch` where a block fits).

    Args:
        vector_or_tensor: a :class:`TaskVector` (its mean at ``layer``; must come from this model) or a
            ``Float[Tensor, "d_model"]`` / ``Float[Tensor, "batch d_model"]`` (one row per sequence).
        layer: model layer; the hook point is ``blocks.{layer}.hook_{hook}``.
        positions: an int (every sequence) or ``Int[Tensor, "batch"]`` (one per sequence), batch coordinates.
        mode: ``"replace"`` (set the residual) or ``"add"`` (add to it).
        hook: ``"resid_pre" | "resid_mid" | "resid_post"``; default the vector's hook (``"resid_post"`` for tensors).

    Everything is validated before the hook is attached; a position beyond a sequence raises during the run.
    """
    check_mode(mode)
    layer = check_layer(model, layer)
    if isinstance(vector_or_tensor, TaskVector):
        check_vector_for_model(model, vector_or_tensor, "vector_or_tensor")
        hook = check_hook(hook or vector_or_tensor.hook)
        if hook != vector_or_tensor.hook:
            raise ValueError(f"hook: {hook!r} differs from the vector's hook point {vector_or_tensor.hook!r}")
    else:
        hook = check_hook(hook or "resid_post")
    values = _values(vector_or_tensor, layer, model.cfg.d_model)
    pos = _check_positions(positions)
    cm = hooks(model, [(hook_name(layer, hook), _patch_hook(values, None, pos, mode))])
    cm.__enter__()
    return PatchHandle(model, layer, hook, mode, cm)


@contextmanager
def patch(
    model,
    vector_or_tensor: TaskVector | torch.Tensor,
    layer: int,
    positions: int | Sequence[int] | torch.Tensor,
    *,
    mode: str = "replace",
    hook: str | None = None,
) -> Iterator[PatchHandle]:
    """Context manager form of :func:`add_patch`: the hook is removed on exit, also on error."""
    handle = add_patch(model, vector_or_tensor, layer, positions, mode=mode, hook=hook)
    try:
        yield handle
    finally:
        handle.remove()


# ---------------------------------------------------------------------------------------------
# Patched measurements


def last_positions(model, prompts: Sequence[Prompt], positions: Sequence[int] | None = None) -> list[int]:
    """Per prompt, the patch position in token coordinates (default the last token), validated."""
    return resolve_positions([len(x) for x in token_ids(model, prompts)], positions)


def _cells_scores(
    model,
    prompts: Sequence[Prompt],
    cells: Sequence[tuple[int, torch.Tensor]],
    positions: Sequence[int],
    *,
    mode: str,
    hook: str,
    batch_size: int,
    include_newline: bool = False,
) -> np.ndarray:
    """log-probs ``[cell, prompt, task]``: every prompt scored once per cell ``(layer, value [d_model])``.

    One :func:`score_answers` call over the prompts replicated per cell; each batch gets one hook per layer
    present, patching only its rows.
    """
    n = len(prompts)
    if not cells:
        return np.zeros((0, n, len(prompts[0].tasks)))
    layer_of = np.array([la for la, _ in cells])
    values = torch.stack([v for _, v in cells])
    pos = torch.tensor(list(positions), dtype=torch.long)

    def prompt_hooks(idx: list[int]) -> list[tuple[str, Callable]]:
        idx_t = torch.tensor(idx)
        cell, prompt = idx_t // n, idx_t % n
        out = []
        for la in sorted(set(layer_of[cell.numpy()].tolist())):
            sel = torch.nonzero(torch.from_numpy(layer_of[cell.numpy()] == la)).flatten()
            out.append((hook_name(la, hook), _patch_hook(values[cell[sel]], sel, pos[prompt[sel]], mode)))
        return out

    scores = score_answers(
        model,
        list(prompts) * len(cells),
        include_newline=include_newline,
        batch_size=batch_size,
        prompt_hooks=prompt_hooks,
    )
    return scores.log_probs.reshape(len(cells), n, -1)


def patched_scores(
    model,
    prompts: Sequence[Prompt],
    vector: TaskVector,
    layer: int,
    *,
    mode: str = "replace",
    positions: Sequence[int] | None = None,
    batch_size: int = 32,
    include_newline: bool = False,
) -> AnswerScores:
    """Answer scores with ``vector`` patched at ``layer`` at each prompt's last token (or ``positions``).

    ``prompts`` are normally zero-shot queries (:func:`interp.prompts.zero_shot_prompts`). Refuses a vector
    from another model or weight processing; everything is validated before any forward pass.
    """
    check_mode(mode)
    if not prompts:
        raise ValueError("prompts: need at least one prompt")
    check_vector_for_model(model, vector)
    layer = check_layer(model, layer)
    value = vector.at(layer)
    pos = last_positions(model, prompts, positions)
    logp = _cells_scores(
        model,
        prompts,
        [(layer, value)],
        pos,
        mode=mode,
        hook=vector.hook,
        batch_size=batch_size,
        include_newline=include_newline,
    )[0]
    return AnswerScores(logp, tuple(prompts[0].tasks), include_newline)


@dataclass(frozen=True)
class BestLayer:
    """Patching a task vector into zero-shot queries, per layer, with references.

    ``p_correct``/``accuracy``: ``Float[ndarray, "layer"]`` mean P(correct answer) and accuracy when patched
    at ``layers[i]``. Accuracy = fraction of queries whose correct answer has the highest probability among
    the family's candidate answers (teacher-forced; not greedy decoding). ``zero_shot_*``: no patch;
    ``icl_*``: ``n_examples`` in-context examples of the task, same queries.
    """

    family: str
    task: str
    layers: tuple[int, ...]
    p_correct: np.ndarray
    accuracy: np.ndarray
    zero_shot_p: float
    zero_shot_accuracy: float
    icl_p: float
    icl_accuracy: float
    n_prompts: int
    seed: int
    accuracy_rule: str = ACCURACY_RULE

    @property
    def best(self) -> int:
        """The layer with the highest mean P(correct) (ties: the earliest)."""
        return self.layers[int(np.argmax(self.p_correct))]


def _p_and_acc(logp: np.ndarray, k: int) -> tuple[float, float]:
    return float(np.exp(logp[..., k]).mean()), float((logp.argmax(axis=-1) == k).mean())


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

    Candidates are all tasks of ``family`` (accuracy is the argmax over their answers). The zero-shot
    baseline and the full in-context accuracy (``n_examples`` examples of ``task``) use the same queries.
    """
    fam = get_family(family)
    tasks = fam.task_names
    resolve_tasks(fam, [task])
    check_mode(mode)
    check_vector_for_model(model, vector)
    layers = _sweep_layers(model, layers, [vector])
    k = tasks.index(task)
    zs = zero_shot_prompts(fam, tasks, n_prompts=n_prompts, seed=seed)
    icl = build_prompts(
        fam, tasks, counts=[n_examples if t == task else 0 for t in tasks], n_prompts=n_prompts, seed=seed
    )
    pos = last_positions(model, zs)
    logp = _cells_scores(
        model, zs, [(la, vector.at(la)) for la in layers], pos, mode=mode, hook=vector.hook, batch_size=batch_size
    )
    per_layer = [_p_and_acc(logp[i], k) for i in range(len(layers))]
    zs_p, zs_acc = _p_and_acc(score_answers(model, zs, batch_size=batch_size).log_probs, k)
    icl_p, icl_acc = _p_and_acc(score_answers(model, icl, batch_size=batch_size).log_probs, k)
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
    )


def _summarise(logp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[..., prompt, task]`` log-probs → mean and s.e.m. of (P(a_1), …, P(a_K), P(other)) over prompts."""
    p = np.exp(logp)
    p = np.concatenate([p, 1.0 - p.sum(axis=-1, keepdims=True)], axis=-1)
    n = p.shape[-2]
    sem = p.std(axis=-2, ddof=1) / math.sqrt(n) if n > 1 else np.zeros_like(p.mean(axis=-2))
    return p.mean(axis=-2), sem


@dataclass(frozen=True)
class MixtureSweep:
    """Patched probabilities over weight points × layers, and the real mixed-prompt curve.

    ``weights``: ``Float[ndarray, "point task"]`` (λ sweep: rows ``(1 − λ, λ)``); ``probs``/``sem``:
    ``Float[ndarray, "point layer task+1"]`` mean / s.e.m. of (P(a_1), …, P(a_K), P(other)) over queries;
    ``real_probs``/``real_sem``: ``Float[ndarray, "point task+1"]`` for in-context prompts with proportions
    ``weights`` (no patch, same queries), ``real_fractions`` the realised example fractions (exact counts
    round ``weights × n_examples``); ``None`` when ``real=False``.
    """

    family: str
    tasks: tuple[str, ...]
    weights: np.ndarray
    layers: tuple[int, ...]
    probs: np.ndarray
    sem: np.ndarray
    real_probs: np.ndarray | None
    real_sem: np.ndarray | None
    real_fractions: np.ndarray | None
    n_prompts: int
    n_examples: int
    seed: int
    mode: str

    @property
    def lambdas(self) -> np.ndarray:
        """λ = weight of the second task (meaningful for a two-task sweep)."""
        return self.weights[:, -1]


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
    real: bool,
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
    layers = _sweep_layers(model, layers, vectors)
    for w in weights:
        check_weights(w, len(tasks))
    zs = zero_shot_prompts(fam, tasks, n_prompts=n_prompts, seed=seed)
    mixed_prompts: list[Prompt] = []
    if real:
        for w in weights:
            mixed_prompts += build_prompts(
                fam, tasks, proportions=w, n_examples=n_examples, n_prompts=n_prompts, seed=seed
            )
    pos = last_positions(model, zs)
    # ---- every argument checked: forward passes from here on
    cells = []
    for w in weights:
        v = convex(list(w), vectors)
        cells += [(la, v.at(la)) for la in layers]
    logp = _cells_scores(model, zs, cells, pos, mode=mode, hook=vectors[0].hook, batch_size=batch_size)
    probs, sem = _summarise(logp.reshape(len(weights), len(layers), n_prompts, len(tasks)))
    real_probs = real_sem = fractions = None
    if real:
        rl = score_answers(model, mixed_prompts, batch_size=batch_size).log_probs
        real_probs, real_sem = _summarise(rl.reshape(len(weights), n_prompts, len(tasks)))
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
    real: bool = True,
    batch_size: int = 32,
) -> MixtureSweep:
    """Patch v(λ) = (1 − λ)·v_A + λ·v_B at each zero-shot query's last token, for every (λ, layer).

    Returns P(a_A), P(a_B), P(other) per cell (``probs[λ, layer]``) and, with ``real``, the real mixed-prompt
    curve: ``n_examples`` in-context examples, a fraction λ of them task B, same queries (same ``seed``).

    >>> sweep = lambda_sweep(model, "operands", "copy_first", "sum", va, vb, layers=[1, 2])   # doctest: +SKIP
    >>> sweep.probs.shape                                                                     # doctest: +SKIP
    (31, 2, 3)
    """
    lam = check_lambdas(lambdas)
    weights = np.stack([1.0 - lam, lam], axis=1)
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
        real,
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
    real: bool = True,
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
    return _mixture_sweep(model, family, tasks, vectors, w, layers, n_prompts, n_examples, seed, mode, real, batch_size)
