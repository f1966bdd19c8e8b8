"""Analyses of task vectors: linear decomposition, controls, 2-D projections, cosine matrices (science.md §4).

Decomposition: per layer, the unit-normalised mixed-prompt vector ``y`` is regressed on the unit-normalised
single-task vectors ``x_k`` with the ``d_model`` coordinates as samples, ``y ≈ b + Σ_k c_k x_k`` (least
squares, with or without the scalar intercept ``b``, or non-negative ``c`` by NNLS). Reported: the
coefficients and the residual norm ‖y − ŷ‖ (≤ 1 for unit ``y``). Controls replace ``y`` by vectors from
mixed prompts with random answers, from random strings, or a third task's vector.

Everything here is numpy / scikit-learn on captured tensors, except the helpers that build and capture the
control prompts (they take a model).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a, b = rng.normal(size=(2, 3, 64))            # two "task vectors": 3 layers, d_model 64
>>> d = decompose(0.6 * a + 0.4 * b, [a, b], normalize=False, intercept=False)
>>> np.round(d.coefs[0], 6).tolist(), bool(d.residual_norm.max() < 1e-9)
([0.6, 0.4], True)
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.optimize import nnls

from interp.capture import capture_resid
from interp.hooks import check_hook, check_layers
from interp.prompts import Prompt, build_prompts
from interp.tasks import get_family, resolve_tasks
from interp.vectors import TaskVector, check_compatible, task_vector, vector_from_prompts

METHODS = ("lstsq", "nnls")
PROJECTIONS = ("lda", "pca")
RANDOM_ALPHABET = string.ascii_letters + string.digits
MAX_TRIES = 1000

ArrayLike = np.ndarray | torch.Tensor


def _np(x: ArrayLike | TaskVector) -> np.ndarray:
    if isinstance(x, TaskVector):
        x = x.mean
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=float)


def unit(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x`` divided by its L2 norm along ``axis`` (zero vectors stay zero)."""
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x, dtype=float), where=n > 0)


# ---------------------------------------------------------------------------------------------
# Decomposition


@dataclass(frozen=True)
class Decomposition:
    """Per-layer fit ``y ≈ intercept + Σ_k coefs[:, k] · x_k``.

    ``coefs``: ``Float[ndarray, "layer k"]``; ``intercept``, ``residual_norm``, ``target_norm``:
    ``Float[ndarray, "layer"]`` (intercept 0 when not fitted; norms of the fitted, possibly unit, target).
    """

    coefs: np.ndarray
    intercept: np.ndarray
    residual_norm: np.ndarray
    target_norm: np.ndarray
    layers: tuple[int, ...]
    names: tuple[str, ...]
    method: str
    fit_intercept: bool
    normalized: bool

    @property
    def relative_residual(self) -> np.ndarray:
        """‖y − ŷ‖ / ‖y‖ per layer (equals ``residual_norm`` for a unit target)."""
        return np.divide(
            self.residual_norm, self.target_norm, out=np.zeros_like(self.residual_norm), where=self.target_norm > 0
        )


def _fit(y: np.ndarray, X: np.ndarray, method: str, intercept: bool) -> tuple[np.ndarray, float]:
    """One layer: ``y`` ``[d]``, ``X`` ``[d, k]`` → (coefs ``[k]``, intercept)."""
    if method == "lstsq":
        A = np.column_stack([X, np.ones(len(y))]) if intercept else X
        sol = np.linalg.lstsq(A, y, rcond=None)[0]
        return (sol[:-1], float(sol[-1])) if intercept else (sol, 0.0)
    if intercept:  # the intercept is unconstrained: centring over coordinates removes it exactly
        xm, ym = X.mean(axis=0), y.mean()
        c = nnls(X - xm, y - ym)[0]
        return c, float(ym - xm @ c)
    return nnls(X, y)[0], 0.0


def decompose(
    target: ArrayLike | TaskVector,
    basis: Sequence[ArrayLike | TaskVector],
    *,
    method: str = "lstsq",
    intercept: bool = True,
    normalize: bool = True,
    names: Sequence[str] | None = None,
    layers: Sequence[int] | None = None,
) -> Decomposition:
    """Regress ``target`` on ``basis`` layer by layer.

    Args:
        target: ``Float[Tensor, "layer d_model"]`` (or a :class:`TaskVector`).
        basis: K vectors of the same shape (TaskVectors must be compatible with a TaskVector target).
        method: ``"lstsq"`` (ordinary least squares) or ``"nnls"`` (non-negative coefficients,
            ``scipy.optimize.nnls``).
        intercept: also fit a scalar offset shared by all coordinates.
        normalize: unit-normalise target and basis per layer first (the paper's setting).
        names: labels of the basis vectors (default from TaskVectors, else ``x0, x1, …``).
        layers: model layers of the rows (default the TaskVector's, else ``0..layer-1``).
    """
    if method not in METHODS:
        raise ValueError(f"method: {method!r} not supported; valid: {', '.join(METHODS)}")
    if not basis:
        raise ValueError("basis: need at least one basis vector")
    vecs = [v for v in [target, *basis] if isinstance(v, TaskVector)]
    for v in vecs[1:]:
        check_compatible(vecs[0], v)
    y = _np(target)
    X = np.stack([_np(b) for b in basis], axis=-1)  # [layer, d, k]
    if y.ndim == 1:
        y, X = y[None], X[None]
    if y.ndim != 2 or X.shape[:2] != y.shape:
        raise ValueError(f"basis: each vector must have the target's shape {y.shape}, got {X.shape[:2]}")
    if normalize:
        y, X = unit(y, axis=1), unit(X, axis=1)
    if names is None:
        names = [b.describe() if isinstance(b, TaskVector) else f"x{i}" for i, b in enumerate(basis)]
    if len(names) != len(basis):
        raise ValueError(f"names: expected {len(basis)} names (one per basis vector), got {len(names)}")
    if layers is None:
        layers = vecs[0].layers if vecs else tuple(range(y.shape[0]))
    if len(layers) != y.shape[0]:
        raise ValueError(f"layers: expected {y.shape[0]} layers (one per row), got {len(layers)}")
    coefs, icpt, resid = [], [], []
    for la in range(y.shape[0]):
        c, b0 = _fit(y[la], X[la], method, intercept)
        coefs.append(c)
        icpt.append(b0)
        resid.append(float(np.linalg.norm(y[la] - X[la] @ c - b0)))
    return Decomposition(
        np.array(coefs),
        np.array(icpt),
        np.array(resid),
        np.linalg.norm(y, axis=1),
        tuple(int(la) for la in layers),
        tuple(names),
        method,
        intercept,
        normalize,
    )


# ---------------------------------------------------------------------------------------------
# Control prompts and vectors


def random_answer_prompts(
    family: str,
    tasks: Sequence[str] | None = None,
    *,
    proportions: Sequence[float] | None = None,
    n_examples: int = 20,
    n_prompts: int = 100,
    seed: int = 0,
) -> list[Prompt]:
    """Mixed prompts whose example answers are random: each example pairs a fresh input with the answer of a
    random task of the family to another random input. Queries equal :func:`build_prompts`'s (same seed);
    ``example_tasks`` are all ``"random"``.
    """
    fam = get_family(family)
    base = build_prompts(fam, tasks, proportions=proportions, n_examples=n_examples, n_prompts=n_prompts, seed=seed)
    out = []
    for p in base:
        rng = np.random.default_rng([seed, p.index, 2])
        lines = []
        for _ in range(p.n_examples):
            x = _input_other_than(fam, p.query, rng)
            t = fam.task_names[int(rng.integers(len(fam.task_names)))]
            lines.append(fam.query(x) + fam.task(t).answer(fam.sample_input(rng)))
        out.append(_with_examples(p, lines, "random"))
    return out


def random_string_prompts(
    family: str,
    tasks: Sequence[str] | None = None,
    *,
    n_examples: int = 20,
    n_prompts: int = 100,
    seed: int = 0,
    alphabet: str = RANDOM_ALPHABET,
) -> list[Prompt]:
    """Prompts whose example lines are random strings (``alphabet``, the lengths of real example lines),
    followed by the real query of :func:`build_prompts` (same seed); ``example_tasks`` are ``"random_string"``.
    """
    fam = get_family(family)
    if not alphabet:
        raise ValueError("alphabet: need at least one character")
    base = build_prompts(fam, tasks, n_examples=n_examples, n_prompts=n_prompts, seed=seed)
    out = []
    for p in base:
        rng = np.random.default_rng([seed, p.index, 3])
        real = p.text.split("\n")[: p.n_examples]
        lines = ["".join(alphabet[i] for i in rng.integers(len(alphabet), size=len(r))) for r in real]
        out.append(_with_examples(p, lines, "random_string"))
    return out


def _input_other_than(fam, query: str, rng: np.random.Generator):
    for _ in range(MAX_TRIES):
        x = fam.sample_input(rng)
        if fam.query(x) != query:
            return x
    raise ValueError(f"family {fam.name!r}: could not draw an example input different from the query")


def _with_examples(p: Prompt, lines: Sequence[str], label: str) -> Prompt:
    text = "".join(line + "\n" for line in lines) + p.query if lines else "\n" + p.query
    return replace(p, text=text, example_tasks=(label,) * len(lines))


def control_vectors(
    model,
    family: str,
    task_a: str,
    task_b: str,
    third_task: str,
    *,
    n_prompts: int = 100,
    n_examples: int = 20,
    seed: int = 0,
    hook: str = "resid_post",
    layers: Sequence[int] | None = None,
    batch_size: int = 32,
) -> dict[str, TaskVector]:
    """Single-task, 50/50-mixed and control vectors, keyed ``"a"``, ``"b"``, ``"mixed"``, ``"random_answers"``,
    ``"random_strings"``, ``"third_task"`` (all with the same seed, hence the same queries).
    """
    fam = get_family(family)
    resolve_tasks(fam, [task_a, task_b, third_task])
    check_hook(hook)
    layers = check_layers(model, layers)
    kw = dict(n_prompts=n_prompts, n_examples=n_examples, seed=seed, hook=hook, layers=layers, batch_size=batch_size)
    cap = dict(hook=hook, layers=layers, batch_size=batch_size)
    pair = [task_a, task_b]
    return {
        "a": task_vector(model, fam.name, task_a, **kw),
        "b": task_vector(model, fam.name, task_b, **kw),
        "mixed": task_vector(model, fam.name, pair, proportions=[0.5, 0.5], **kw),
        "random_answers": vector_from_prompts(
            model,
            random_answer_prompts(fam.name, pair, n_examples=n_examples, n_prompts=n_prompts, seed=seed),
            label="random_answers",
            **cap,
        ),
        "random_strings": vector_from_prompts(
            model,
            random_string_prompts(fam.name, pair, n_examples=n_examples, n_prompts=n_prompts, seed=seed),
            label="random_strings",
            **cap,
        ),
        "third_task": task_vector(model, fam.name, third_task, **kw),
    }


def control_decompositions(
    vectors: Mapping[str, TaskVector], *, method: str = "lstsq", intercept: bool = True
) -> dict[str, Decomposition]:
    """Decompose ``"mixed"`` and each control of :func:`control_vectors` on the basis ``("a", "b")``."""
    missing = [k for k in ("a", "b") if k not in vectors]
    if missing:
        raise ValueError(f"vectors: missing basis vectors {missing}; expected the keys of control_vectors()")
    basis = [vectors["a"], vectors["b"]]
    return {
        name: decompose(v, basis, method=method, intercept=intercept, names=("a", "b"))
        for name, v in vectors.items()
        if name not in ("a", "b")
    }


@dataclass(frozen=True)
class ProportionSweep:
    """Decomposition coefficients vs the in-context proportion of task B.

    ``proportions``: ``Float[ndarray, "point"]`` requested fraction of B; ``fractions`` the realised one;
    ``coefs``: ``Float[ndarray, "point layer 2"]`` (on v_A, v_B); ``intercept``/``residual_norm``:
    ``Float[ndarray, "point layer"]``.
    """

    proportions: np.ndarray
    fractions: np.ndarray
    coefs: np.ndarray
    intercept: np.ndarray
    residual_norm: np.ndarray
    layers: tuple[int, ...]
    method: str
    fit_intercept: bool


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
    """Decompose mixed-prompt vectors (fraction ``q`` of task-B examples) on v_A, v_B for each ``q``.

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
            fam, [task_a, task_b], proportions=[1 - qi, qi], n_examples=n_examples, n_prompts=n_prompts, seed=seed
        )
        acts = capture_resid(model, prompts, layers=layers, hook=hook, batch_size=batch_size)
        d = decompose(acts.mean(dim=1), basis_means, method=method, intercept=intercept, layers=layers)
        fracs.append(np.mean([p.fractions()[1] for p in prompts]))
        coefs.append(d.coefs)
        icpt.append(d.intercept)
        resid.append(d.residual_norm)
    return ProportionSweep(
        q, np.array(fracs), np.array(coefs), np.array(icpt), np.array(resid), layers, method, intercept
    )


# ---------------------------------------------------------------------------------------------
# Per-prompt vectors and 2-D views


def mixture_groups(
    family: str,
    tasks: Sequence[str],
    *,
    n_prompts: int = 50,
    n_examples: int = 20,
    seed: int = 0,
) -> dict[str, list[Prompt]]:
    """Prompt groups for 2-D views: each single task, each pairwise 50/50 mixture, the uniform mixture.

    Keys: ``"a"``, ``"a+b"``, ``"uniform"`` (the last only for 3 or more tasks). Candidate tasks are ``tasks``
    throughout, so every group shares the same queries.
    """
    fam = get_family(family)
    tasks = resolve_tasks(fam, tasks)
    k = len(tasks)

    def group(weights: Sequence[float]) -> list[Prompt]:
        return build_prompts(fam, tasks, proportions=weights, n_examples=n_examples, n_prompts=n_prompts, seed=seed)

    groups = {t: group([float(i == j) for j in range(k)]) for i, t in enumerate(tasks)}
    for i, j in itertools.combinations(range(k), 2):
        groups[f"{tasks[i]}+{tasks[j]}"] = group([0.5 if m in (i, j) else 0.0 for m in range(k)])
    if k >= 3:
        groups["uniform"] = group([1.0 / k] * k)
    return groups


def capture_groups(
    model,
    groups: Mapping[str, Sequence[Prompt]],
    *,
    layers: Sequence[int] | None = None,
    hook: str = "resid_post",
    batch_size: int = 32,
) -> tuple[torch.Tensor, list[str]]:
    """Per-prompt vectors ``Float[Tensor, "layer prompt d_model"]`` of all groups and each prompt's label."""
    prompts = [p for ps in groups.values() for p in ps]
    labels = [name for name, ps in groups.items() for _ in ps]
    return capture_resid(model, prompts, layers=layers, hook=hook, batch_size=batch_size), labels


@dataclass(frozen=True)
class Projection:
    """2-D coordinates ``Float[ndarray, "layer prompt 2"]`` of per-prompt vectors, one fit per layer.

    ``explained``: ``Float[ndarray, "layer 2"]`` explained-variance ratios (PCA: of the total variance;
    LDA: of the between-class variance).
    """

    coords: np.ndarray
    labels: tuple[str, ...]
    explained: np.ndarray
    method: str


def project_2d(acts: ArrayLike, labels: Sequence[str], *, method: str = "lda") -> Projection:
    """LDA (needs ≥ 3 classes) or PCA 2-D projection of ``Float[Tensor, "layer prompt d_model"]`` per layer.

    A 2-D input ``[prompt, d_model]`` is treated as one layer. Deterministic (no random state involved).
    """
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    if method not in PROJECTIONS:
        raise ValueError(f"method: {method!r} not supported; valid: {', '.join(PROJECTIONS)}")
    x = _np(acts)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"acts: expected shape (layer, prompt, d_model), got {x.shape}")
    labels = [str(la) for la in labels]
    if len(labels) != x.shape[1]:
        raise ValueError(f"labels: expected {x.shape[1]} labels (one per prompt), got {len(labels)}")
    n_classes = len(set(labels))
    if method == "lda" and n_classes < 3:
        raise ValueError(f"labels: LDA gives 2 components only with >= 3 classes, got {n_classes}; use method='pca'")
    if method == "pca" and min(x.shape[1], x.shape[2]) < 2:
        raise ValueError(f"acts: PCA to 2-D needs >= 2 prompts and >= 2 dimensions, got {x.shape[1:]}")
    coords, explained = [], []
    for layer_x in x:
        if method == "pca":
            fit = PCA(n_components=2, svd_solver="full").fit(layer_x)
        else:
            fit = LinearDiscriminantAnalysis(n_components=2, solver="svd").fit(layer_x, labels)
        coords.append(fit.transform(layer_x))
        explained.append(fit.explained_variance_ratio_[:2])
    return Projection(np.array(coords), tuple(labels), np.array(explained), method)


# ---------------------------------------------------------------------------------------------
# Cosine similarities


def cosine_matrix(a: ArrayLike, b: ArrayLike | None = None) -> np.ndarray:
    """Cosine similarities ``Float[ndarray, "n m"]`` between the rows of ``a`` ``[n, d]`` and ``b`` ``[m, d]``."""
    x = _np(a)
    y = x if b is None else _np(b)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"a, b: need 2-D arrays with equal width, got {x.shape} and {y.shape}")
    return unit(x) @ unit(y).T


def task_cosines(vectors: Sequence[TaskVector]) -> np.ndarray:
    """``Float[ndarray, "layer task task"]``: cosine between task vectors at each layer (compatible vectors)."""
    if not vectors:
        raise ValueError("vectors: need at least one TaskVector")
    for v in vectors[1:]:
        check_compatible(vectors[0], v)
    m = np.stack([_np(v) for v in vectors], axis=1)  # [layer, task, d]
    return np.stack([cosine_matrix(layer_m) for layer_m in m])


def layer_cosines(vector: TaskVector | ArrayLike, other: TaskVector | ArrayLike | None = None) -> np.ndarray:
    """``Float[ndarray, "layer layer"]``: cosine between the layers of one vector (or of two)."""
    return cosine_matrix(_np(vector), None if other is None else _np(other))
