"""Mixture sweep: P(task A), P(task B), P(other) as the fraction d of task-A examples goes 0 → 1.

Shows the paper's claims 1–2 on pairs of tasks: does the mean track d, and how spread are single prompts (the
across-prompt variance is part of the finding, docs/science.md §2)?

>>> MixtureSweepConfig.quick().validate()
>>> MixtureSweepConfig(d=[0.5, 1.5]).validate()
Traceback (most recent call last):
...
ValueError: d: fractions must lie in [0, 1], got [0.5, 1.5]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from interp.defaults import EMBEDDED_PAIRS
from interp.plots.mixtures import mixture_sweep_figure
from interp.prompts import build_prompts
from interp.remember import remembered
from interp.results import MixtureCurve
from interp.scoring import score_answers
from interp.studies.common import distribution, metadata, write_outputs, writes_one_set
from interp.tasks import get_family, resolve_tasks

STUDY = "mixture_sweep"


@dataclass
class MixtureSweepConfig:
    """Pairs (family, task A, task B), the fractions ``d`` of task-A examples, prompts per point and the seed."""

    pairs: list[tuple[str, str, str]] = field(default_factory=lambda: [tuple(p) for p in EMBEDDED_PAIRS])
    d: list[float] = field(default_factory=lambda: [round(0.1 * i, 1) for i in range(11)])
    n_prompts: int = 100
    n_examples: int = 20
    sampling: str = "exact"
    seed: int = 0

    def validate(self) -> None:
        """``ValueError`` naming the first bad field (no model needed)."""
        for fam, a, b in self.pairs:
            resolve_tasks(get_family(fam), [a, b])
        if any(not 0 <= x <= 1 for x in self.d):
            raise ValueError(f"d: fractions must lie in [0, 1], got {self.d}")

    @classmethod
    def quick(cls) -> MixtureSweepConfig:
        """Two pairs, three points, 16 prompts: a smoke run."""
        return cls(pairs=list(EMBEDDED_PAIRS[:2]), d=[0.0, 0.5, 1.0], n_prompts=16)


def mixture_curve(
    model,
    family: str,
    task_a: str,
    task_b: str,
    d: list[float],
    *,
    n_prompts: int,
    n_examples: int,
    seed: int,
    sampling: str = "exact",
) -> MixtureCurve:
    """Per-d distribution over prompts of P(a_A), P(a_B), P(other) and P(a_A) + P(a_B) for one pair (computed once
    per model and arguments inside :func:`interp.remember.remembering`)."""
    key = ("mixture_curve", id(model), family, task_a, task_b, tuple(d), n_prompts, n_examples, seed, sampling)
    return remembered(
        key,
        lambda: _mixture_curve(model, family, task_a, task_b, d, n_prompts, n_examples, seed, sampling),
    )


def _mixture_curve(model, family, task_a, task_b, d, n_prompts, n_examples, seed, sampling) -> MixtureCurve:
    fam = get_family(family)
    per_key: dict[str, list] = {"a": [], "b": [], "other": [], "two_answer_mass": []}
    for x in d:
        prompts = build_prompts(
            fam,
            [task_a, task_b],
            proportions=[x, 1 - x],
            n_examples=n_examples,
            n_prompts=n_prompts,
            seed=seed,
            sampling=sampling,
        )
        s = score_answers(model, prompts)
        p = s.probs
        for key, values in (("a", p[:, 0]), ("b", p[:, 1]), ("other", s.other), ("two_answer_mass", p.sum(axis=1))):
            per_key[key].append(values)
    return MixtureCurve(
        family,
        (task_a, task_b),
        (fam.task_names.index(task_a), fam.task_names.index(task_b)),
        tuple(d),
        **{key: distribution(values, seed) for key, values in per_key.items()},
    )


@writes_one_set
def run(model, config: MixtureSweepConfig, out_dir: str | Path, *, progress: bool = True) -> dict:
    """Run every pair, write ``mixture_sweep.{html,png,json}``; returns ``{"results", "numbers", "paths"}``."""
    config.validate()
    curves = [
        mixture_curve(
            model,
            fam,
            a,
            b,
            config.d,
            n_prompts=config.n_prompts,
            n_examples=config.n_examples,
            seed=config.seed,
            sampling=config.sampling,
        )
        for fam, a, b in tqdm(config.pairs, desc=STUDY, disable=not progress)
    ]
    meta = metadata(model, config, STUDY)
    title = (
        f"Mixed prompts: P(answer) vs fraction of task A · model {meta['model']['model_id']} · "
        f"{config.n_prompts} prompts × {config.n_examples} examples per point"
    )
    numbers = {**meta, "curves": [c.to_dict() for c in curves]}
    paths = write_outputs(mixture_sweep_figure(curves, title=title), numbers, out_dir, STUDY)
    return {"results": curves, "numbers": numbers, "paths": paths}
