"""Superposition metrics: pure functions of a probability matrix and the in-context task fractions.

Shapes: ``probs`` is ``Float[ndarray, "prompt task"]`` (answer probabilities, not renormalised);
``targets`` is ``Float[ndarray, "task"]`` or ``Float[ndarray, "prompt task"]`` (the fractions t).

>>> import numpy as np
>>> p = np.array([[0.5, 0.25], [0.25, 0.5]])
>>> round(float(kl_divergence([0.5, 0.5], p).mean()), 4)   # 0.5 log(0.5/0.5) + 0.5 log(0.5/0.25)
0.3466
>>> rank_view(p).tolist()
[0.5, 0.25]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from interp.seeds import check_seed
from interp.validate import ArgumentError, ArgumentTypeError, check_flag, check_sequence

EPS = 1e-12


def _finite_array(values: Any, name: str) -> np.ndarray:
    if isinstance(values, str | bytes):
        raise ArgumentTypeError(name, f"need an array of numbers, got {values!r}")
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentTypeError(name, f"need an array of numbers, got {type(values).__name__}") from None
    if not np.isfinite(arr).all():
        raise ArgumentError(name, "holds NaN or infinite values")
    return arr


def _as_targets(targets: Sequence[float] | np.ndarray, probs: np.ndarray) -> np.ndarray:
    t = _finite_array(targets, "targets")
    if t.ndim == 1:
        if t.shape[0] != probs.shape[1]:
            raise ArgumentError(
                "targets", f"{t.shape[0]} values for probs with {probs.shape[1]} columns (one per task)"
            )
        t = np.broadcast_to(t, probs.shape)
    if t.shape != probs.shape:
        raise ArgumentError("targets", f"shape {t.shape} does not match probs {probs.shape}")
    if (t < 0).any() or not np.allclose(t.sum(axis=1), 1.0, atol=1e-6):
        raise ArgumentError("targets", "each row must be non-negative and sum to 1")
    return t


def _as_probs(probs: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    p = _finite_array(probs, "probs")
    if p.ndim != 2 or p.size == 0:
        raise ArgumentError("probs", f"expected a non-empty 2-D array (prompt, task), got shape {p.shape}")
    if (p < -1e-9).any() or (p.sum(axis=1) > 1 + 1e-6).any():
        raise ArgumentError("probs", "entries must be >= 0 and each row must sum to at most 1")
    return np.clip(p, 0.0, 1.0)


def kl_divergence(targets, probs, *, renormalize: bool = False) -> np.ndarray:
    """Per-prompt KL(t ‖ p) = Σ_k t_k (log t_k − log p_k), 0·log 0 = 0 (the paper's metric).

    ``p`` is not renormalised (mass on other outputs counts against the model) unless ``renormalize``;
    probabilities are floored at 1e-12 so a zero never gives infinity.
    """
    p = _as_probs(probs)
    t = _as_targets(targets, p)
    if check_flag(renormalize, "renormalize"):
        p = p / np.maximum(p.sum(axis=1, keepdims=True), EPS)
    logp = np.log(np.maximum(p, EPS))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(t > 0, t * (np.log(np.where(t > 0, t, 1.0)) - logp), 0.0)
    return terms.sum(axis=1)


def total_variation(targets, probs) -> np.ndarray:
    """Per-prompt TV between t and the model's (p_1..p_K, other): ½(Σ_k |t_k − p_k| + other)."""
    p = _as_probs(probs)
    t = _as_targets(targets, p)
    other = np.clip(1.0 - p.sum(axis=1), 0.0, 1.0)
    return 0.5 * (np.abs(t - p).sum(axis=1) + other)


def rank_view(probs) -> np.ndarray:
    """Per-prompt probabilities sorted in decreasing order, averaged: mass of the top-1, top-2, ... task."""
    p = _as_probs(probs)
    return -np.sort(-p, axis=1).mean(axis=0)


def bootstrap_ci(values, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean (``scipy.stats.bootstrap``, seeded)."""
    from scipy.stats import bootstrap

    seed = check_seed(seed)
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError("values: need at least one value")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: must be in (0, 1), got {confidence}")
    if v.size == 1 or np.all(v == v[0]):
        return float(v[0]), float(v[0])
    res = bootstrap(
        (v,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
        vectorized=True,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def bootstrap_cis(values, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """``Float[ndarray, "row 2"]``: :func:`bootstrap_ci` of every row of ``values`` (``Float[ndarray, "row n"]``) from
    one resampling: the indices each row's own seeded call draws (the same for every row of one length), the means
    of all rows at once, each row's percentile interval equal to ``bootstrap_ci(row, seed=seed)`` up to rounding
    (tested).

    >>> bootstrap_cis([[0.0, 1.0, 1.0, 0.0], [2.0, 2.0, 2.0, 2.0]]).shape
    (2, 2)
    """
    seed = check_seed(seed)
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[1] == 0:
        raise ValueError(f"values: need a [row, n] array with n >= 1, got shape {list(v.shape)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: must be in (0, 1), got {confidence}")
    out = np.repeat(v[:, :1], 2, axis=1)  # a constant row (or one value): its value, as bootstrap_ci gives it
    varied = np.flatnonzero((v != v[:, :1]).any(axis=1))
    if len(varied):
        n = v.shape[1]
        picks = np.random.default_rng(seed).integers(0, n, (n_resamples, n))  # scipy.stats.bootstrap's draw
        alpha = (1 - confidence) / 2
        chunk = max(1, 2**22 // (n_resamples * n))  # rows at a time: ≤ 32 MiB of resampled values
        for lo in range(0, len(varied), chunk):
            rows = varied[lo : lo + chunk]
            means = v[rows][:, picks].mean(axis=-1)  # [row, resample]
            out[rows] = np.quantile(means, [alpha, 1 - alpha], axis=-1).T
    return out


def describe(values, *, seed: int = 0) -> dict:
    """Mean, 95% bootstrap CI, variance and quantiles of per-prompt values (the one summary of a distribution).

    >>> d = describe([0.0, 1.0, 1.0, 0.0]); d["mean"], d["var"], d["median"]
    (0.5, 0.25, 0.5)
    """
    v = np.asarray(values, dtype=float)
    q = np.quantile(v, [0.1, 0.25, 0.5, 0.75, 0.9])
    return {
        "mean": float(v.mean()),
        "ci95": list(bootstrap_ci(v, seed=seed)),
        "var": float(v.var()),
        "q10": float(q[0]),
        "q25": float(q[1]),
        "median": float(q[2]),
        "q75": float(q[3]),
        "q90": float(q[4]),
    }


def summarize(probs, targets=None, *, tasks: Sequence[str] | None = None, seed: int = 0) -> dict:
    """Means, across-prompt variances, 95% CIs per task and for "other"; rank view; KL and TV when targets given."""
    p = _as_probs(probs)
    seed = check_seed(seed)
    if targets is not None:
        _as_targets(targets, p)
    names = (
        check_sequence(tasks, "tasks", what="task names")
        if tasks is not None
        else [f"task{k}" for k in range(p.shape[1])]
    )
    if len(names) != p.shape[1]:
        raise ArgumentError(
            "tasks",
            f"{len(names)} names {names} for probs with {p.shape[1]} columns (one column per task); "
            "give one name per column",
        )
    other = np.clip(1.0 - p.sum(axis=1), 0.0, 1.0)
    out: dict = {"n_prompts": int(p.shape[0]), "tasks": {}}
    for k, name in enumerate(names):
        out["tasks"][name] = {
            "mean": float(p[:, k].mean()),
            "var": float(p[:, k].var()),
            "ci95": bootstrap_ci(p[:, k], seed=seed),
        }
    out["other"] = {"mean": float(other.mean()), "var": float(other.var()), "ci95": bootstrap_ci(other, seed=seed)}
    out["rank_view"] = rank_view(p).tolist()
    if targets is not None:
        kl = kl_divergence(targets, p)
        out["kl"] = {"mean": float(kl.mean()), "ci95": bootstrap_ci(kl, seed=seed)}
        kln = kl_divergence(targets, p, renormalize=True)
        out["kl_renormalized"] = {"mean": float(kln.mean()), "ci95": bootstrap_ci(kln, seed=seed)}
        tv = total_variation(targets, p)
        out["tv"] = {"mean": float(tv.mean()), "ci95": bootstrap_ci(tv, seed=seed)}
    return out


#: Log-probs (nats) of one sequence computed by two routes (packed scoring vs beam search's cached steps) agree to
#: float32 rounding, ~1e-6 relative: more than 1e-5 nats on the size family's lowest log-probs (a solved count flipped
#: between regenerations of the same code at that tolerance); within this they count as the same number.
SAME_SEQUENCE_ATOL = 1e-4


def count_solved(answer_log_probs, completion_log_probs: Sequence[Sequence[float]], k: int | None = None) -> np.ndarray:
    """Tasks solved per prompt: task j counts when log P(a_j) ≥ the K-th best complete output's log-prob
    (within :data:`SAME_SEQUENCE_ATOL`: the answer is often that very output, scored by another route).

    Args:
        answer_log_probs: ``Float[ndarray, "prompt task"]`` log P(answer + newline).
        completion_log_probs: per prompt, log-probs of complete outputs found by beam search.
        k: K (default: the number of tasks). With fewer than K outputs found, the threshold is the
            lowest one found (a conservative count).
    """
    a = np.asarray(answer_log_probs, dtype=float)
    k = a.shape[1] if k is None else k
    if len(completion_log_probs) != a.shape[0]:
        raise ValueError("completion_log_probs: need one list per prompt")
    solved = np.zeros(a.shape[0], dtype=int)
    for i, comps in enumerate(completion_log_probs):
        ranked = sorted(comps, reverse=True)
        if not ranked:
            continue
        threshold = ranked[min(k, len(ranked)) - 1]
        solved[i] = int((a[i] >= threshold - SAME_SEQUENCE_ATOL).sum())
    return solved


def candidate_accuracy(log_probs, k: int) -> float:
    """Fraction of prompts whose candidate ``k`` has the highest probability among the candidates' answers.

    This is *candidate accuracy* (argmax over the K candidate tasks' answers, teacher-forced), not greedy decoding
    over the vocabulary (:func:`interp.scoring.greedy_correct` is that). Chance level is ``1 / K``.

    >>> candidate_accuracy(np.log([[0.5, 0.2], [0.1, 0.3]]), 0)
    0.5
    """
    lp = np.asarray(log_probs, dtype=float)
    if lp.ndim < 1 or not 0 <= k < lp.shape[-1]:
        raise ValueError(f"k: candidate index {k!r} out of range for {lp.shape[-1] if lp.ndim else 0} candidates")
    return float((lp.argmax(axis=-1) == k).mean())


def mean_and_sem(log_probs) -> tuple[np.ndarray, np.ndarray]:
    """``[..., prompt, task]`` log-probs → mean and s.e.m. over prompts of (P(a_1), …, P(a_K), P(other)).

    >>> m, s = mean_and_sem(np.log([[[0.5, 0.25]], [[0.25, 0.5]]]).transpose(1, 0, 2))
    >>> m.round(3).tolist(), s.round(3).tolist()
    ([[0.375, 0.375, 0.25]], [[0.125, 0.125, 0.0]])
    """
    p = np.exp(np.asarray(log_probs, dtype=float))
    p = np.concatenate([p, 1.0 - p.sum(axis=-1, keepdims=True)], axis=-1)
    n = p.shape[-2]
    sem = p.std(axis=-2, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(p.mean(axis=-2))
    return p.mean(axis=-2), sem
