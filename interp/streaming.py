"""Statistics that stream: one loop over chunks of captures, whether the chunks come from memory or from a store.

A *source* is a re-iterable of ``Float[Tensor, "layer rows d_model"]`` chunks with a ``len`` (its rows): a captured
tensor in memory (:class:`InMemory`, what :func:`as_source` makes of a tensor) or a store's memory-mapped shards
(:meth:`interp.store.ActivationStore.source`). Every statistic re-cuts the chunks into float64 blocks of a fixed
number of rows (:func:`blocks`, :func:`block_rows`: a function of the shape only) and folds them in one at a time,
so the same numbers give the same bits from memory and from a store, whatever the shard size, while a store is never
held whole (memory: one block and the running sums).

- :func:`moments`: per-layer mean and sum of squared deviations (Chan et al.'s pairwise merge of blocks): task
  vectors (:func:`interp.vectors.from_activations` runs through it);
- :func:`class_scatter`: per-class means and the pooled within-class scatter (covariance) per layer, and from it
  :func:`project_2d_streaming`: PCA or LDA to 2-D, fitted from the scatter and applied in a second pass, equal to
  :func:`interp.decomposition.project_2d` (scikit-learn on the whole matrix) to float precision;
- :func:`weighted_sums`: ``W @ X`` for a ``[k, rows]`` weight matrix given block by block (the permutation and
  split-half nulls of :mod:`interp.nulls`).

>>> import torch
>>> x = torch.randn(2, 10, 3, dtype=torch.float64)
>>> m = moments(x)
>>> bool(torch.allclose(m.mean, x.mean(1))), bool(torch.allclose(m.std(), x.std(1)))
(True, True)
>>> torch.equal(moments(InMemory(x, chunk_rows=3)).mean, moments(x).mean)   # the chunking does not matter
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from interp.decomposition import PROJECTIONS
from interp.results import Projection

#: Elements of a float64 block (32 MiB): rows per block = this ÷ (layers × d_model), at least 1.
BLOCK_ELEMENTS = 1 << 22


class Source(Protocol):
    """Re-iterable chunks ``Float[Tensor, "layer rows d_model"]``; ``len``: the rows they hold in all; ``dtype`` and
    ``d_model``: the chunks'."""

    dtype: torch.dtype
    d_model: int

    def __iter__(self) -> Iterator[torch.Tensor]: ...

    def __len__(self) -> int: ...


class InMemory:
    """A tensor ``Float[Tensor, "layer prompt d_model"]`` (or ``[prompt, d_model]``: one layer) as a source, cut
    into chunks of ``chunk_rows`` rows (default: one chunk)."""

    def __init__(self, acts: torch.Tensor, chunk_rows: int | None = None) -> None:
        if acts.ndim == 2:
            acts = acts[None]
        if acts.ndim != 3:
            raise ValueError(f"acts: expected shape (layer, prompt, d_model), got {tuple(acts.shape)}")
        self.acts, self.chunk_rows = acts, chunk_rows or max(1, acts.shape[1])

    def __iter__(self) -> Iterator[torch.Tensor]:
        for lo in range(0, self.acts.shape[1], self.chunk_rows):
            yield self.acts[:, lo : lo + self.chunk_rows]

    def __len__(self) -> int:
        return int(self.acts.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return self.acts.dtype

    @property
    def d_model(self) -> int:
        return int(self.acts.shape[2])


def as_source(x: Any) -> Source:
    """A tensor becomes :class:`InMemory`; a source passes through."""
    return InMemory(x) if isinstance(x, torch.Tensor) else x


def block_rows(n_layers: int, d_model: int) -> int:
    """Rows per block for chunks of this shape (see :data:`BLOCK_ELEMENTS`)."""
    return max(1, BLOCK_ELEMENTS // max(1, n_layers * d_model))


def blocks(chunks: Iterable[torch.Tensor], rows: int | None = None) -> Iterator[torch.Tensor]:
    """The rows of ``chunks`` re-cut into fresh contiguous float64 blocks ``[layer, rows, d_model]`` (the last may be
    shorter): identical blocks from any chunking of the same rows. ``rows`` defaults to :func:`block_rows`."""
    pending: list[torch.Tensor] = []
    have = 0
    for chunk in chunks:
        if chunk.ndim != 3:
            raise ValueError(f"chunks: expected [layer, rows, d_model] tensors, got shape {tuple(chunk.shape)}")
        if rows is None:
            rows = block_rows(chunk.shape[0], chunk.shape[2])
        lo = 0
        while lo < chunk.shape[1]:
            take = min(rows - have, chunk.shape[1] - lo)
            pending.append(chunk[:, lo : lo + take])
            have, lo = have + take, lo + take
            if have == rows:
                yield _float64_block(pending)
                pending, have = [], 0
    if have:
        yield _float64_block(pending)


def _float64_block(parts: list[torch.Tensor]) -> torch.Tensor:
    out = torch.empty(parts[0].shape[0], sum(p.shape[1] for p in parts), parts[0].shape[2], dtype=torch.float64)
    lo = 0
    for p in parts:
        out[:, lo : lo + p.shape[1]] = p  # converts to float64 as it copies
        lo += p.shape[1]
    return out


@dataclass(frozen=True)
class Moments:
    """``n`` rows; per layer and dimension their ``mean`` and ``m2`` = Σ (x − mean)² (float64 ``[layer, d_model]``)."""

    n: int
    mean: torch.Tensor
    m2: torch.Tensor

    def std(self, correction: int = 1) -> torch.Tensor:
        """Per-dimension standard deviation (``correction=1``: the sample std; 0 when ``n <= correction``)."""
        if self.n <= correction:
            return torch.zeros_like(self.mean)
        return (self.m2 / (self.n - correction)).sqrt()

    def merge(self, other: Moments) -> Moments:
        """The moments of both sets of rows (Chan, Golub & LeVeque's pairwise update)."""
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        m2 = self.m2 + other.m2 + delta.square() * (self.n * other.n / n)
        return Moments(n, mean, m2)

    @classmethod
    def of_block(cls, x: torch.Tensor) -> Moments:
        """Of one float64 block ``[layer, rows, d_model]``."""
        mean = x.mean(dim=1)
        return cls(int(x.shape[1]), mean, (x - mean[:, None]).square().sum(dim=1))


def moments(source: Source | torch.Tensor) -> Moments:
    """Per-layer mean and squared deviations of every row of ``source``, one block at a time."""
    total: Moments | None = None
    for x in blocks(as_source(source)):
        m = Moments.of_block(x)
        total = m if total is None else total.merge(m)
    if total is None:
        raise ValueError("source: holds no rows")
    return total


def weighted_sums(
    sources: Sequence[Source | torch.Tensor], weights: Callable[[int, int, int], torch.Tensor], k: int
) -> torch.Tensor:
    """``Σ_s W_s @ X_s``: for each source ``s`` (one layer, ``[1, rows, d]``) and each run of its rows ``lo .. hi``,
    ``weights(s, lo, hi)`` gives the ``[k, hi − lo]`` float64 weights of those rows; returns ``[k, d]`` float64.
    Runs are blocks cut further so that a run's weights hold at most :data:`BLOCK_ELEMENTS` numbers."""
    out = torch.zeros(0)
    run = max(1, BLOCK_ELEMENTS // max(1, k))
    for s, source in enumerate(sources):
        lo = 0
        for x in blocks(as_source(source)):
            if x.shape[0] != 1:
                raise ValueError(f"sources: need one layer per source, got {x.shape[0]}")
            for a in range(0, x.shape[1], run):
                b = min(a + run, x.shape[1])
                w = weights(s, lo + a, lo + b)
                if w.shape != (k, b - a):
                    raise ValueError(f"weights: expected a [{k}, {b - a}] tensor, got {tuple(w.shape)}")
                part = w @ x[0, a:b]
                out = part if out.numel() == 0 else out + part
            lo += x.shape[1]
    if out.numel() == 0:
        raise ValueError("sources: hold no rows")
    return out


# ---- covariance and 2-D projections ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassScatter:
    """Per class (``classes``, sorted): ``counts`` and ``means`` ``[layer, class, d]``; ``within``: the pooled
    within-class scatter Σ_k Σ_{i∈k} (x_i − μ_k)(x_i − μ_k)ᵀ ``[layer, d, d]`` (float64)."""

    classes: tuple[str, ...]
    counts: np.ndarray
    means: torch.Tensor
    within: torch.Tensor
    spread: np.ndarray  # [layer]: max over dimensions of (max − min over rows); 0 where every row is the same

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def mean(self) -> torch.Tensor:
        """``[layer, d]``: the overall mean."""
        w = torch.from_numpy(self.counts / self.n)
        return torch.einsum("k,lkd->ld", w, self.means)

    @property
    def total(self) -> torch.Tensor:
        """``[layer, d, d]``: the total scatter Σ_i (x_i − μ)(x_i − μ)ᵀ = within + between."""
        c = self.means - self.mean[:, None]
        return self.within + torch.einsum("k,lkd,lke->lde", torch.from_numpy(self.counts.astype(float)), c, c)

    def covariance(self) -> torch.Tensor:
        """``[layer, d, d]``: the sample covariance of all rows (``n − 1`` in the denominator)."""
        return self.total / (self.n - 1)


def class_scatter(source: Source | torch.Tensor, labels: Sequence[str] | None = None) -> ClassScatter:
    """:class:`ClassScatter` of ``source``'s rows with their ``labels`` (``None``: one class), streamed."""
    src = as_source(source)
    labels = ["all"] * len(src) if labels is None else [str(x) for x in labels]
    if len(labels) != len(src):
        raise ValueError(f"labels: expected {len(src)} labels (one per row), got {len(labels)}")
    classes = tuple(sorted(set(labels)))
    code = torch.tensor([classes.index(x) for x in labels])
    counts = np.zeros(len(classes), dtype=np.int64)
    means = within = low = high = None
    lo = 0
    for x in blocks(src):
        if means is None:
            means = torch.zeros(x.shape[0], len(classes), x.shape[2], dtype=torch.float64)
            within = torch.zeros(x.shape[0], x.shape[2], x.shape[2], dtype=torch.float64)
            low, high = x[:, 0].clone(), x[:, 0].clone()
        low, high = torch.minimum(low, x.amin(dim=1)), torch.maximum(high, x.amax(dim=1))
        hi = lo + x.shape[1]
        block_code = code[lo:hi]
        for k in torch.unique(block_code).tolist():
            xk = x[:, block_code == k]
            nb, na = xk.shape[1], int(counts[k])
            mb = xk.mean(dim=1)
            c = xk - mb[:, None]
            within += c.transpose(1, 2) @ c
            if na:
                delta = mb - means[:, k]
                within += (na * nb / (na + nb)) * delta[:, :, None] * delta[:, None, :]
                means[:, k] += delta * (nb / (na + nb))
            else:
                means[:, k] = mb
            counts[k] += nb
        lo = hi
    if means is None:
        raise ValueError("source: holds no rows")
    return ClassScatter(classes, counts, means, within, (high - low).amax(dim=1).numpy())


def _flip_like_sklearn(components: np.ndarray) -> np.ndarray:
    """Rows signed so that each one's largest-magnitude entry is positive (scikit-learn's ``svd_flip`` of PCA)."""
    signs = np.sign(components[np.arange(len(components)), np.argmax(np.abs(components), axis=1)])
    return components * signs[:, None]


def _pca(total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directions ``[d, 2]`` and explained-variance ratios ``[2]`` from the total scatter of one layer."""
    evals, evecs = np.linalg.eigh(total)
    order = np.argsort(evals)[::-1]
    evals, evecs = np.clip(evals[order], 0, None), evecs[:, order]
    return _flip_like_sklearn(evecs[:, :2].T).T, evals[:2] / evals.sum()


def _lda_denominator(n: int, k: int) -> int:
    """The within-class covariance's denominator in the installed scikit-learn's SVD solver: ``n`` from 1.9 on
    (scikit-learn pull request 33626, the maximum-likelihood covariance of its other solvers), ``n − k`` before."""
    import sklearn

    major, minor = (int(x) for x in sklearn.__version__.split(".")[:2])
    return n if (major, minor) >= (1, 9) else n - k


def _lda(counts: np.ndarray, means: np.ndarray, within: np.ndarray, tol: float = 1e-4):
    """scikit-learn's ``LinearDiscriminantAnalysis(solver="svd")`` fitted from sufficient statistics (the within-class
    SVD replaced by the eigen-decomposition of the same Gram matrix): offset ``[d]``, directions ``[d, 2]``,
    explained-variance ratios ``[2]``."""
    from scipy import linalg

    n, k = counts.sum(), len(counts)
    priors = counts / n
    xbar = priors @ means
    std = np.sqrt(np.diag(within) / n)
    std[std == 0] = 1.0
    gram = within / np.outer(std, std) / _lda_denominator(n, k)  # = X_ᵀ X_ of scikit-learn's scaled within-class data
    evals, evecs = np.linalg.eigh(gram)
    order = np.argsort(evals)[::-1]
    s = np.sqrt(np.clip(evals[order], 0, None))
    rank = int(np.sum(s > tol))
    scalings = (evecs[:, order[:rank]] / std[:, None]) / s[:rank]
    fac = 1.0 if k == 1 else 1.0 / (k - 1)
    x = (np.sqrt(n * priors * fac) * (means - xbar).T).T @ scalings
    _, s2, vt = linalg.svd(x, full_matrices=False)
    ratio = (s2**2 / np.sum(s2**2))[:2]
    rank2 = int(np.sum(s2 > tol * s2[0]))
    directions = np.zeros((len(xbar), 2))
    kept = (scalings @ vt.T[:, :rank2])[:, :2]
    directions[:, : kept.shape[1]] = kept  # fewer than 2 discriminant directions: the others are 0
    return xbar, directions, np.pad(ratio, (0, 2 - len(ratio)))


def project_2d_streaming(
    source: Source | torch.Tensor,
    labels: Sequence[str],
    *,
    method: str = "lda",
    layers: Sequence[int] | None = None,
):
    """:func:`interp.decomposition.project_2d` from a source in two passes (scatter, then coordinates), never holding
    it whole: the same :class:`~interp.results.Projection` to float precision (tested against scikit-learn)."""
    if method not in PROJECTIONS:
        raise ValueError(f"method: {method!r} not supported; valid: {', '.join(PROJECTIONS)}")
    src = as_source(source)
    labels = [str(x) for x in labels]
    if len(labels) != len(src):
        raise ValueError(f"labels: expected {len(src)} labels (one per prompt), got {len(labels)}")
    n_classes = len(set(labels))
    if method == "lda" and n_classes < 3:
        raise ValueError(f"labels: LDA gives 2 components only with >= 3 classes, got {n_classes}; use method='pca'")
    scatter = class_scatter(src, labels)
    n_layers, d = scatter.means.shape[0], scatter.means.shape[2]
    if method == "pca" and min(len(src), d) < 2:
        raise ValueError(f"acts: PCA to 2-D needs >= 2 prompts and >= 2 dimensions, got {(len(src), d)}")
    total = scatter.total.numpy()
    offsets, directions, explained = np.zeros((n_layers, d)), np.zeros((n_layers, d, 2)), np.zeros((n_layers, 2))
    for la in range(n_layers):
        if scatter.spread[la] == 0:  # every prompt identical here: the origin, as project_2d gives it
            continue
        if method == "pca":
            offsets[la] = scatter.mean[la].numpy()
            directions[la], explained[la] = _pca(total[la])
        else:
            means = scatter.means[la].numpy()
            offsets[la], directions[la], explained[la] = _lda(scatter.counts, means, scatter.within[la].numpy())
    off, dirs = torch.from_numpy(offsets), torch.from_numpy(directions)
    coords = [torch.einsum("lnd,ldc->lnc", x - off[:, None], dirs) for x in blocks(src)]
    layers = tuple(range(n_layers)) if layers is None else tuple(int(la) for la in layers)
    if len(layers) != n_layers:
        raise ValueError(f"layers: expected {n_layers} layers (one per row of acts), got {len(layers)}")
    return Projection(torch.cat(coords, dim=1).numpy(), tuple(labels), explained, method, layers)
