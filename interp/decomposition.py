"""Decomposition of task vectors, 2-D projections and cosine matrices: pure maths on captured numbers.

Nothing here runs a model or imports torch: inputs are numpy arrays, torch tensors (converted with
``.detach().cpu()``) or :class:`~interp.vectors.TaskVector` objects (their ``mean``), duck-typed.

Decomposition (docs/science.md §4): per layer, the unit-normalised mixed-prompt vector ``y`` is regressed on the
unit-normalised single-task vectors ``x_k`` with the ``d_model`` coordinates as samples,
``y ≈ b + Σ_k c_k x_k`` (least squares, with or without the scalar intercept ``b``, or non-negative ``c`` by NNLS).
Reported: the coefficients and the residual norm ‖y − ŷ‖ (≤ 1 for unit ``y``). Controls replace ``y`` by vectors
from mixed prompts with random answers, from random strings, or a third task's vector
(:func:`interp.vectors.null_vectors`).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a, b = rng.normal(size=(2, 3, 64))            # two "task vectors": 3 layers, d_model 64
>>> d = decompose(0.6 * a + 0.4 * b, [a, b], normalize=False, intercept=False)
>>> np.round(d.coefs[0], 6).tolist(), bool(d.residual_norm.max() < 1e-9)
([0.6, 0.4], True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.optimize import nnls

from interp.heldout import check_vectors_disjoint
from interp.results import CosineMatrix, Decomposition, Projection
from interp.validate import ArgumentError, ArgumentTypeError, check_choice, check_flag, check_int, check_sequence

METHODS = ("lstsq", "nnls")
PROJECTIONS = ("lda", "pca")


def _is_vector(x: Any) -> bool:
    """Duck-typed :class:`~interp.vectors.TaskVector` (no torch import here)."""
    return hasattr(x, "incompatibilities") and hasattr(x, "mean") and hasattr(x, "layers")


def as_array(x: Any, name: str = "x") -> np.ndarray:
    """A finite float64 numpy array from an array, a torch tensor or a TaskVector (its per-layer mean); an
    :class:`~interp.validate.ArgumentError` naming ``name`` for anything else or a NaN."""
    if _is_vector(x):
        x = x.mean
    if hasattr(x, "detach"):
        if x.is_complex() or x.device.type == "meta":
            raise ArgumentTypeError(name, f"need real numbers with values, got a {x.dtype} tensor on {x.device}")
        arr = x.detach().cpu().double().numpy()
    else:
        try:
            arr = np.asarray(x, dtype=float)
        except (TypeError, ValueError):
            raise ArgumentTypeError(name, f"need an array of numbers, got {type(x).__name__}") from None
    if not np.isfinite(arr).all():
        raise ArgumentError(name, "holds NaN or infinite values")
    return arr


def _check_compatible(vectors: Sequence[Any]) -> None:
    vecs = [v for v in vectors if _is_vector(v)]
    for v in vecs[1:]:
        diffs = vecs[0].incompatibilities(v)
        if diffs:
            raise ArgumentError("vectors", "incompatible task vectors; they differ in " + "; ".join(diffs))


def unit(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x`` divided by its L2 norm along ``axis`` (zero vectors stay zero)."""
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x, dtype=float), where=n > 0)


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
    target: Any,
    basis: Sequence[Any],
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

    A TaskVector target made from any prompt a basis vector was made from is refused (their shared sampling noise
    would pull the target into the basis's span; :func:`interp.heldout.check_vectors_disjoint`).
    """
    check_choice(method, "method", METHODS)
    check_flag(intercept, "intercept")
    check_flag(normalize, "normalize")
    basis = check_sequence(basis, "basis", what="basis vectors")
    _check_compatible([target, *basis])
    check_vectors_disjoint(target, basis)
    vecs = [v for v in [target, *basis] if _is_vector(v)]
    y = as_array(target, "target")
    if y.ndim not in (1, 2):
        raise ArgumentError("target", f"need a [d_model] or [layer, d_model] array, got shape {y.shape}")
    arrays = [as_array(b, f"basis[{i}]") for i, b in enumerate(basis)]
    if any(a.shape != y.shape for a in arrays):
        shapes = sorted({a.shape for a in arrays})
        raise ArgumentError("basis", f"each vector must have the target's shape {y.shape}, got {shapes}")
    X = np.stack(arrays, axis=-1)  # [layer, d, k]
    if y.ndim == 1:
        y, X = y[None], X[None]
    if normalize:
        y, X = unit(y, axis=1), unit(X, axis=1)
    if names is None:
        names = [b.describe() if _is_vector(b) else f"x{i}" for i, b in enumerate(basis)]
    names = check_sequence(names, "names", what="names", allow_empty=True)
    if len(names) != len(basis):
        raise ArgumentError("names", f"expected {len(basis)} names (one per basis vector), got {len(names)}")
    if layers is None:
        layers = vecs[0].layers if vecs else tuple(range(y.shape[0]))
    layers = [check_int(la, "layers", minimum=0) for la in check_sequence(layers, "layers", what="layers")]
    if len(layers) != y.shape[0]:
        raise ArgumentError("layers", f"expected {y.shape[0]} layers (one per row), got {len(layers)}")
    coefs, icpt, resid, cond = [], [], [], []
    for la in range(y.shape[0]):
        c, b0 = _fit(y[la], X[la], method, intercept)
        coefs.append(c)
        icpt.append(b0)
        resid.append(float(np.linalg.norm(y[la] - X[la] @ c - b0)))
        cond.append(_condition_number(X[la], intercept))
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
        np.array(cond),
    )


def _condition_number(X: np.ndarray, intercept: bool) -> float:
    """Ratio of the largest to the smallest singular value of the design ``[d, k]`` (+ a ones column with an
    intercept); ``inf`` when it is rank-deficient."""
    A = np.column_stack([X, np.ones(len(X))]) if intercept else X
    s = np.linalg.svd(A, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 0 else float("inf")


def centred_cosines(vectors: Sequence[Any]) -> np.ndarray:
    """``Float[ndarray, "layer n n"]``: cosines after subtracting, per layer, the mean of the ``n`` vectors.

    Residual-stream vectors at the separator share a large common component (raw cosines are all near 1 in
    small models); centring shows how the vectors differ from each other.
    """
    _check_compatible(vectors)
    m = np.stack([as_array(v) for v in vectors], axis=1)  # [layer, n, d]
    m = m - m.mean(axis=1, keepdims=True)
    return np.stack([cosine_matrix(x) for x in m])


def cosines(vectors: Mapping[str, Any], *, centred: bool = False) -> CosineMatrix:
    """Named :class:`~interp.results.CosineMatrix` between compatible vectors at each of their layers."""
    if not vectors:
        raise ValueError("vectors: need at least one TaskVector")
    vs = list(vectors.values())
    matrix = centred_cosines(vs) if centred else task_cosines(vs)
    layers = tuple(vs[0].layers) if _is_vector(vs[0]) else tuple(range(matrix.shape[0]))
    return CosineMatrix(matrix, tuple(vectors), layers, centred)


def control_decompositions(
    vectors: Mapping[str, Any], *, method: str = "lstsq", intercept: bool = True
) -> dict[str, Decomposition]:
    """Decompose ``"mixed"`` and each control of :func:`interp.vectors.null_vectors` on the basis ``("a", "b")``."""
    missing = [k for k in ("a", "b") if k not in vectors]
    if missing:
        raise ValueError(f"vectors: missing basis vectors {missing}; expected the keys of null_vectors()")
    basis = [vectors["a"], vectors["b"]]
    return {
        name: decompose(v, basis, method=method, intercept=intercept, names=("a", "b"))
        for name, v in vectors.items()
        if name not in ("a", "b")
    }


def project_2d(
    acts: Any, labels: Sequence[str], *, method: str = "lda", layers: Sequence[int] | None = None
) -> Projection:
    """LDA (needs ≥ 3 classes) or PCA 2-D projection of ``Float[Tensor, "layer prompt d_model"]`` per layer.

    A 2-D input ``[prompt, d_model]`` is treated as one layer; ``layers`` names the model layers of the rows
    (default ``0..layer-1``). A layer where every prompt's vector is identical projects to the origin with zero
    explained variance (LDA is undefined there). Deterministic (no random state involved). scikit-learn is imported
    here, on first use, so that importing this module stays cheap.
    """
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    check_choice(method, "method", PROJECTIONS)
    x = as_array(acts, "acts")
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ArgumentError("acts", f"expected shape (layer, prompt, d_model), got {x.shape}")
    labels = [str(la) for la in check_sequence(labels, "labels", what="labels (one per prompt)")]
    if len(labels) != x.shape[1]:
        raise ArgumentError("labels", f"expected {x.shape[1]} labels (one per prompt), got {len(labels)}")
    n_classes = len(set(labels))
    if method == "lda" and n_classes < 3:
        raise ArgumentError(
            "labels", f"LDA gives 2 components only with >= 3 classes, got {n_classes}; use method='pca'"
        )
    if method == "pca" and min(x.shape[1], x.shape[2]) < 2:
        raise ArgumentError("acts", f"PCA to 2-D needs >= 2 prompts and >= 2 dimensions, got {x.shape[1:]}")
    if layers is not None:
        layers = [check_int(la, "layers", minimum=0) for la in check_sequence(layers, "layers", what="layers")]
    coords, explained = [], []
    for layer_x in x:
        if np.ptp(layer_x, axis=0).max(initial=0.0) == 0.0:  # every prompt identical here: nothing to project
            coords.append(np.zeros((layer_x.shape[0], 2)))
            explained.append(np.zeros(2))
            continue
        if method == "pca":
            fit = PCA(n_components=2, svd_solver="full").fit(layer_x)
        else:
            fit = LinearDiscriminantAnalysis(n_components=2, solver="svd").fit(layer_x, labels)
        coords.append(fit.transform(layer_x))
        explained.append(fit.explained_variance_ratio_[:2])
    layers = tuple(range(x.shape[0])) if layers is None else tuple(layers)
    if len(layers) != x.shape[0]:
        raise ArgumentError("layers", f"expected {x.shape[0]} layers (one per row of acts), got {len(layers)}")
    return Projection(np.array(coords), tuple(labels), np.array(explained), method, layers)


def cosine_matrix(a: Any, b: Any | None = None) -> np.ndarray:
    """Cosine similarities ``Float[ndarray, "n m"]`` between the rows of ``a`` ``[n, d]`` and ``b`` ``[m, d]``."""
    x = as_array(a)
    y = x if b is None else as_array(b)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"a, b: need 2-D arrays with equal width, got {x.shape} and {y.shape}")
    return unit(x) @ unit(y).T


def task_cosines(vectors: Sequence[Any]) -> np.ndarray:
    """``Float[ndarray, "layer task task"]``: cosine between task vectors at each layer (compatible vectors)."""
    if not vectors:
        raise ValueError("vectors: need at least one TaskVector")
    _check_compatible(vectors)
    m = np.stack([as_array(v) for v in vectors], axis=1)  # [layer, task, d]
    return np.stack([cosine_matrix(layer_m) for layer_m in m])


def layer_cosines(vector: Any, other: Any = None) -> np.ndarray:
    """``Float[ndarray, "layer layer"]``: cosine between the layers of one vector (or of two)."""
    return cosine_matrix(as_array(vector), None if other is None else as_array(other))
