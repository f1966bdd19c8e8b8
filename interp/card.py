"""Evaluation behind the embedded model's card: ICL accuracy, superposition across training, mixture sweeps.

Every number in ``interp/checkpoints/embedded/eval.json`` and its README comes from these functions,
run by ``experiments/embedded_card.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from interp.defaults import EMBEDDED_PAIRS, OPERANDS_PAIRS
from interp.metrics import bootstrap_ci
from interp.prompts import build_prompts
from interp.results import CheckpointRecord, PairAtHalf
from interp.scoring import greedy_correct, score_answers
from interp.tasks import get_family, resolve_tasks

#: Mean P(task-A answer) vs d logged by the paper's co-author for from-scratch models (docs/science.md §2).
#: Only the values quoted there; the bias-add values at d = 0.6-0.8 are not quoted.
COAUTHOR_CURVES = {
    "bias_add": {0.1: 0.114, 0.2: 0.202, 0.3: 0.299, 0.4: 0.408, 0.5: 0.492, 0.9: 0.899},
    "retrieval": {0.1: 0.009, 0.3: 0.133, 0.5: 0.489, 0.7: 0.844, 0.9: 0.990},
}
#: Pairs the card sweeps (two per family, from :mod:`interp.defaults`); only those whose family and tasks the model
#: was trained on are used.
CARD_PAIRS = tuple(sorted(EMBEDDED_PAIRS, key=lambda p: (p[0] != "retrieval", p))) + OPERANDS_PAIRS


def trained_pairs(train_config: dict, pairs: Sequence[tuple[str, str, str]] = CARD_PAIRS) -> list[tuple[str, str, str]]:
    """The ``pairs`` whose family and both tasks a run with ``train_config`` (a TrainConfig dict) trained on.

    >>> trained_pairs({"families": {"bias_add": 1.0}, "tasks": {}})
    [('bias_add', 'add1', 'add7'), ('bias_add', 'add2', 'add5')]
    """
    chosen = train_config.get("tasks") or {}
    out = []
    for fam, a, b in pairs:
        if fam in train_config["families"] and (fam not in chosen or {a, b} <= set(chosen[fam])):
            out.append((fam, a, b))
    return out


#: Selection rule stated in the card.
SELECTION_RULE = (
    "the last checkpoint at which every trained task reaches >= 95% single-task ICL accuracy at 20 examples "
    "(held-out prompts); if no checkpoint qualifies, the checkpoint with the highest mean accuracy over tasks "
    "(the latest one on ties)"
)


def icl_accuracy_table(
    model, families: dict[str, Sequence[str] | None], *, n_examples: Sequence[int], n_prompts: int, seed: int
) -> dict[str, dict[str, dict[str, dict]]]:
    """family → task → str(n_examples) → {accuracy, ci95}: greedy exact-answer accuracy on single-task prompts."""
    out: dict = {}
    for fam_name, tasks in families.items():
        fam = get_family(fam_name)
        for task in resolve_tasks(fam, tasks):
            for n in n_examples:
                prompts = build_prompts(fam, [task], n_examples=n, n_prompts=n_prompts, seed=seed)
                ok = greedy_correct(model, prompts, task).astype(float)
                out.setdefault(fam_name, {}).setdefault(task, {})[str(n)] = {
                    "accuracy": float(ok.mean()),
                    "ci95": list(bootstrap_ci(ok, seed=seed)),
                }
    return out


def pair_at_half(
    model, pairs: Sequence[tuple[str, str, str]], *, n_prompts: int, n_examples: int, seed: int
) -> list[PairAtHalf]:
    """Mean P(a_A), P(a_B) and across-prompt variance of P(a_A) on 50/50 prompts, per pair."""
    rows = []
    for fam, a, b in pairs:
        prompts = build_prompts(
            fam, [a, b], proportions=[0.5, 0.5], n_examples=n_examples, n_prompts=n_prompts, seed=seed
        )
        p = score_answers(model, prompts).probs
        rows.append(
            PairAtHalf(
                family=fam,
                tasks=(a, b),
                p_a=float(p[:, 0].mean()),
                p_b=float(p[:, 1].mean()),
                var_a=float(p[:, 0].var()),
                mass=float(p.sum(axis=1).mean()),
            )
        )
    return rows


def select_checkpoint(history: Sequence[CheckpointRecord], threshold: float = 0.95) -> tuple[int, bool]:
    """Index into ``history`` chosen by :data:`SELECTION_RULE`, and whether the threshold was met.

    >>> h = [CheckpointRecord(1, {"f": {"a": 0.2, "b": 0.9}}, ()), CheckpointRecord(2, {"f": {"a": 0.5, "b": 0.6}}, ())]
    >>> select_checkpoint(h)
    (1, False)
    """
    scores = [[v for fam in h.accuracy.values() for v in fam.values()] for h in history]
    qualifying = [i for i, acc in enumerate(scores) if min(acc) >= threshold]
    if qualifying:
        return qualifying[-1], True
    means = [float(np.mean(acc)) for acc in scores]
    best = max(means)
    return max(i for i, m in enumerate(means) if m == best), False


def checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    """The run's checkpoint directories in step order."""
    return sorted(Path(run_dir, "checkpoints").glob("step*"))
