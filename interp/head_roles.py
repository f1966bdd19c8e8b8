"""What each attention head does for each task: sufficient, necessary, specific, and a label (issue 37).

A head with a large causal indirect effect (CIE) is *sufficient*: its mean output restores the task in corrupted
prompts. That does not make it *necessary*, and a head that every task needs is not a task's head. Per head ``h`` and
task ``t`` of ``tasks`` (``docs/science.md §4``):

- sufficiency ``S[t, h]``: the CIE (:func:`interp.heads.causal_indirect_effects`);
- necessity ``N[t, h]``: the drop of P(correct) on single-task prompts of ``t`` when ``h``'s output at the last token
  is mean-ablated, the mean taken over single-task prompts of every task in ``tasks`` (so it carries no task);
  candidate accuracy with and without the ablation beside it;
- specificity: ``S[t, h]`` (or ``N``) minus its mean over the other tasks;
- a measure *holds* when its 95% bootstrap interval over prompts excludes 0 and its mean is at least ``threshold``
  and at least the random-head baseline (the mean |effect| of a head drawn at random, i.e. over all heads);
- label: ``none`` (neither holds), ``shared`` (sufficient, and sufficient for another task too),
  ``task-specific`` (sufficient for this task only, or necessary for it only), ``reads the query`` (necessary, not
  sufficient, and necessary for another task too: the head every task needs, carrying no task);
- induction heads (top previous-token-copying heads by induction score, Olsson et al. 2022) are marked, and the set
  ablations of Yin & Steinhardt (ICML 2025) exclude the overlap: the top sufficient heads without the induction
  heads, the induction heads without them, and random head sets without either, each mean-ablated together;
- stability: every number over ``seeds`` (prompt seeds, at least 3 for a claim): per head the modal label and how
  many seeds give it, and means with 95% t-intervals over seeds.

On the hand-built model with a query reader (``constructed:retrieval:K=2:reader=yes``) the task head (layer 2,
head 0) is ``shared``, each lookup head (layer 3, heads 0, 1) ``task-specific`` for its task, the query reader
(layer 3, head 2) ``reads the query``, every other head ``none`` (tested).

>>> roles = head_roles(model, "bias_add", ["add1", "add7", "add4"], seeds=(0, 1, 2))   # doctest: +SKIP
>>> roles.modal_label("add1", 0, 1), roles.agreement("add1", 0, 1)                      # doctest: +SKIP
('reads the query', 3)
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy import stats

from interp.heads import attention_scores, causal_indirect_effects, cie_prompts, head_outputs
from interp.interventions import Intervention
from interp.metrics import bootstrap_cis, candidate_accuracy
from interp.results import Result
from interp.scoring import family_candidates, score_answers
from interp.seeds import check_seed
from interp.sweeps import score_cells
from interp.tasks import get_family, resolve_tasks

LABELS = ("task-specific", "shared", "reads the query", "none")
#: Default smallest effect (probability) a measure needs to hold.
THRESHOLD = 0.05


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class HeadRoles(Result):
    """Every measure of this module, ``[seed, task, layer, head]`` unless said: ``sufficiency`` and its ``_ci``
    (``[..., 2]``), ``necessity`` and its ``_ci``, ``accuracy`` ``[seed, task]`` (unablated candidate accuracy on the
    single-task prompts), ``ablated_accuracy``, ``baseline`` ``[seed, task, 2]`` (random-head baselines of
    sufficiency and necessity), ``labels`` (nested ``[seed][task][layer][head]``), ``induction`` ``[layer, head]``
    (Bool: among the top induction heads), ``set_ablation`` (per seed and task, the P drops of ablating the top
    sufficient heads, the induction heads and random sets, each without the others)."""

    family: str
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    n_prompts: int
    threshold: float
    sufficiency: np.ndarray
    sufficiency_ci: np.ndarray
    necessity: np.ndarray
    necessity_ci: np.ndarray
    accuracy: np.ndarray
    ablated_accuracy: np.ndarray
    baseline: np.ndarray
    labels: tuple
    induction: np.ndarray
    set_ablation: tuple

    _dims: ClassVar = {"induction": ("layer", "head")}

    def _index(self, task: str) -> int:
        if task not in self.tasks:
            raise ValueError(f"task: {task!r} was not measured; valid: {', '.join(self.tasks)}")
        return self.tasks.index(task)

    def modal_label(self, task: str, layer: int, head: int) -> str:
        """The label most seeds give (ties: the first in :data:`LABELS`)."""
        counts = Counter(self.labels[s][self._index(task)][layer][head] for s in range(len(self.seeds)))
        return max(LABELS, key=lambda lab: (counts[lab], -LABELS.index(lab)))

    def agreement(self, task: str, layer: int, head: int) -> int:
        """How many seeds give the modal label."""
        t = self._index(task)
        lab = self.modal_label(task, layer, head)
        return sum(self.labels[s][t][layer][head] == lab for s in range(len(self.seeds)))

    def over_seeds(self, measure: str, task: str, layer: int, head: int) -> tuple[float, float, float]:
        """``(mean, lo, hi)`` of ``"sufficiency"``, ``"necessity"`` or ``"ablated_accuracy"`` over seeds (95%
        t-interval; the mean alone, lo = hi = mean, with one seed)."""
        values = np.asarray(getattr(self, measure))[:, self._index(task), layer, head]
        return mean_ci(values)

    def heads_labelled(self, label: str, task: str) -> list[tuple[int, int]]:
        """Heads whose modal label for ``task`` is ``label``, in layer-major order."""
        if label not in LABELS:
            raise ValueError(f"label: {label!r}; valid: {', '.join(LABELS)}")
        n_layers, n_heads = self.induction.shape
        return [(la, h) for la in range(n_layers) for h in range(n_heads) if self.modal_label(task, la, h) == label]


def mean_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the mean of ``values`` and its 95% t-interval (lo = hi = mean for one value)."""
    v = np.asarray(values, dtype=float)
    m = float(v.mean())
    if len(v) < 2:
        return m, m, m
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - half, m + half


def label_heads(suff: np.ndarray, suff_holds: np.ndarray, nec_holds: np.ndarray) -> list:
    """Labels ``[task][layer][head]`` from whether sufficiency and necessity hold (``Bool[ndarray, "task layer
    head"]``; ``suff`` is unused beyond its shape) by the module's rules."""
    n_tasks = suff.shape[0]
    out = []
    for t in range(n_tasks):
        others = [u for u in range(n_tasks) if u != t]
        s_other = suff_holds[others].any(axis=0) if others else np.zeros_like(suff_holds[t])
        n_other = nec_holds[others].any(axis=0) if others else np.zeros_like(nec_holds[t])
        lab = np.full(suff.shape[1:], "none", dtype=object)
        lab[nec_holds[t] & ~suff_holds[t]] = "task-specific"
        lab[nec_holds[t] & ~suff_holds[t] & n_other] = "reads the query"
        lab[suff_holds[t]] = "task-specific"
        lab[suff_holds[t] & s_other] = "shared"
        out.append(lab.tolist())
    return out


def _holds(mean: np.ndarray, ci: np.ndarray, threshold: float, baseline: float) -> np.ndarray:
    return (ci[..., 0] > 0) & (mean >= max(threshold, baseline))


def head_roles(
    model,
    family: str,
    tasks: Sequence[str],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    n_prompts: int = 30,
    n_examples: int = 10,
    threshold: float = THRESHOLD,
    induction_top: int = 3,
    set_size: int = 3,
    n_random_sets: int = 5,
    batch_size: int = 32,
) -> HeadRoles:
    """:class:`HeadRoles` of every head of ``model`` for ``tasks`` of ``family`` (at least two) over prompt
    ``seeds``: sufficiency (CIE), necessity (mean-ablation on single-task prompts), labels, induction heads and
    Yin & Steinhardt's set ablations (``set_size`` heads each; ``n_random_sets`` random sets)."""
    fam = get_family(family)
    names = resolve_tasks(fam, list(tasks))
    if len(names) < 2:
        raise ValueError(f"tasks: need at least two (specificity compares a task with the others), got {names!r}")
    seeds = tuple(check_seed(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds: need at least one prompt seed (three for a claim)")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold: a probability in (0, 1), got {threshold!r}")
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    scores = attention_scores(model, seed=seeds[0])["induction"]
    order = np.argsort(-scores.ravel(), kind="stable")[:induction_top]
    induction = np.zeros((n_layers, n_heads), dtype=bool)
    induction.ravel()[order[scores.ravel()[order] > 0.1]] = True  # an induction head attends there at all
    shape = (len(seeds), len(names), n_layers, n_heads)
    suff, suff_ci = np.zeros(shape), np.zeros((*shape, 2))
    nec, nec_ci = np.zeros(shape), np.zeros((*shape, 2))
    acc, abl_acc = np.zeros(shape[:2]), np.zeros(shape)
    baseline = np.zeros((*shape[:2], 2))
    labels, sets = [], []
    for si, seed in enumerate(seeds):
        kw = dict(n_prompts=n_prompts, n_examples=n_examples, seed=seed)
        prompts = {t: cie_prompts(family, t, **kw) for t in names}  # (clean single-task, corrupted, k)
        pooled = [p for t in names for p in prompts[t][0]]
        mean_z = head_outputs(model, pooled, batch_size=batch_size).double().mean(dim=1)  # [layer, head, d_head]
        cells = [Intervention(la, "ablate", mean_z[la, h].float(), hook="z", head=h, label="mean z over the tasks")
                 for la in range(n_layers) for h in range(n_heads)]  # fmt: skip
        for ti, t in enumerate(names):
            cie = causal_indirect_effects(model, family, t, batch_size=batch_size, **kw)
            suff[si, ti], suff_ci[si, ti] = cie.mean, cie.ci95
            single, _, k = prompts[t]
            with family_candidates(model, single, t):
                base_lp = score_answers(model, single, batch_size=batch_size).log_probs
                ablated = score_cells(model, single, cells, batch_size=batch_size)  # [cell, prompt, cand]
            drop = np.exp(base_lp[:, k])[None] - np.exp(ablated[:, :, k])  # [cell, prompt]
            nec[si, ti] = drop.mean(axis=1).reshape(n_layers, n_heads)
            nec_ci[si, ti] = bootstrap_cis(np.asarray(drop), seed=seed).reshape(n_layers, n_heads, 2)
            acc[si, ti] = candidate_accuracy(base_lp, k)
            abl_acc[si, ti] = np.array([candidate_accuracy(a, k) for a in ablated]).reshape(n_layers, n_heads)
            baseline[si, ti] = [np.abs(suff[si, ti]).mean(), np.abs(nec[si, ti]).mean()]
        s_holds = np.stack([_holds(suff[si, t], suff_ci[si, t], threshold, baseline[si, t, 0]) for t in
                            range(len(names))])  # fmt: skip
        n_holds = np.stack([_holds(nec[si, t], nec_ci[si, t], threshold, baseline[si, t, 1]) for t in
                            range(len(names))])  # fmt: skip
        labels.append(label_heads(suff[si], s_holds, n_holds))
        sets.append(_set_ablations(model, names, prompts, mean_z, suff[si], s_holds, induction, set_size,
                                   n_random_sets, seed, batch_size))  # fmt: skip
    return HeadRoles(family, names, seeds, n_prompts, float(threshold), suff, suff_ci, nec, nec_ci, acc, abl_acc,
                     baseline, tuple(labels), induction, tuple(sets))  # fmt: skip


def _set_ablations(model, names, prompts, mean_z, suff, suff_holds, induction, set_size, n_random_sets, seed,
                   batch_size):  # fmt: skip
    """Per task: P(correct) drops on its single-task prompts when a set of heads is mean-ablated together (Yin &
    Steinhardt): the (at most ``set_size``) most sufficient heads whose sufficiency holds and that are not induction
    heads, the induction heads that are not among those, and ``n_random_sets`` random sets of ``set_size`` heads
    that are neither."""
    n_layers, n_heads = induction.shape
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for ti, t in enumerate(names):
        ranked = [divmod(int(i), n_heads) for i in np.argsort(-suff[ti].ravel(), kind="stable")]
        fv = [h for h in ranked if suff_holds[ti][h] and not induction[h]][:set_size]
        ind = [tuple(map(int, h)) for h in np.argwhere(induction) if tuple(h) not in fv]
        rest = [(la, h) for la in range(n_layers) for h in range(n_heads) if (la, h) not in fv and not induction[la, h]]
        randoms = [[rest[i] for i in rng.choice(len(rest), size=min(set_size, len(rest)), replace=False)]
                   for _ in range(n_random_sets)] if rest else []  # fmt: skip
        groups = {"function vector heads": [fv] if fv else [], "induction heads": [ind] if ind else [],
                  "random heads": randoms}  # fmt: skip
        single, _, k = prompts[t]
        cells, owners = [], []
        for name, sets in groups.items():
            for heads in sets:
                cells.append(tuple(Intervention(la, "ablate", mean_z[la, h].float(), hook="z", head=h)
                                   for la, h in heads))  # fmt: skip
                owners.append((name, heads))
        with family_candidates(model, single, t):
            base = np.exp(score_answers(model, single, batch_size=batch_size).log_probs[:, k])
            ablated = np.exp(score_cells(model, single, cells, batch_size=batch_size)[:, :, k]) if cells else []
        entry: dict[str, Any] = {}
        for (name, heads), p in zip(owners, ablated, strict=True):
            entry.setdefault(name, {"heads": [], "drop": []})
            entry[name]["heads"].append([list(map(int, h)) for h in heads])
            entry[name]["drop"].append(float((base - p).mean()))
        out[t] = entry
    return out


__all__ = ["LABELS", "HeadRoles", "head_roles", "label_heads", "mean_ci"]
