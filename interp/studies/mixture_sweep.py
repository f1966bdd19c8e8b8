"""Mixture sweep: P(task A), P(task B), P(other) as the fraction d of task-A examples goes 0 → 1.

Shows the paper's claims 1-2 on pairs of tasks: does the mean track d, and how spread are single
prompts (the across-prompt variance is part of the finding, science.md §2)?
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from interp.plots import mixture_sweep_figure
from interp.prompts import build_prompts
from interp.scoring import score_answers
from interp.studies.common import distribution, metadata, write_outputs
from interp.tasks import get_family, resolve_tasks

#: The task pairs the embedded model was trained on (one pair per family).
#: The embedded model's trained families (retrieval, bias_add), two pairs each.
DEFAULT_PAIRS = (
    ("retrieval", "pos1", "pos8"),
    ("bias_add", "add1", "add7"),
    ("retrieval", "pos3", "pos6"),
    ("bias_add", "add2", "add5"),
)


@dataclass
class MixtureSweepConfig:
    pairs: list[tuple[str, str, str]] = field(default_factory=lambda: [tuple(p) for p in DEFAULT_PAIRS])
    d: list[float] = field(default_factory=lambda: [round(0.1 * i, 1) for i in range(11)])
    n_prompts: int = 100
    n_examples: int = 20
    sampling: str = "exact"
    seed: int = 0

    def validate(self) -> None:
        for fam, a, b in self.pairs:
            resolve_tasks(get_family(fam), [a, b])
        if any(not 0 <= x <= 1 for x in self.d):
            raise ValueError(f"d: fractions must lie in [0, 1], got {self.d}")

    @classmethod
    def quick(cls) -> MixtureSweepConfig:
        return cls(pairs=[DEFAULT_PAIRS[0], DEFAULT_PAIRS[1]], d=[0.0, 0.5, 1.0], n_prompts=16)


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
) -> dict:
    """Per-d distribution of P(a_A), P(a_B), P(other) and their sum over prompts of one pair."""
    fam = get_family(family)
    out = {
        "family": family,
        "tasks": [task_a, task_b],
        "task_index": [fam.task_names.index(task_a), fam.task_names.index(task_b)],
        "d": list(d),
    }
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
            per_key[key].append(distribution(values, seed))
    for key, rows in per_key.items():
        out[key] = {stat: [r[stat] for r in rows] for stat in rows[0]}
    return out


def run(model, config: MixtureSweepConfig, out_dir: str | Path, *, progress: bool = True) -> dict:
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
        for fam, a, b in tqdm(config.pairs, desc="mixture_sweep", disable=not progress)
    ]
    meta = metadata(model, config, "mixture_sweep")
    title = (
        f"Mixed prompts: P(answer) vs fraction of task A · model {meta['model']['model_id']} · "
        f"{config.n_prompts} prompts × {config.n_examples} examples per point"
    )
    numbers = {**meta, "curves": curves}
    paths = write_outputs(mixture_sweep_figure(curves, title=title), numbers, out_dir, "mixture_sweep")
    return {"numbers": numbers, "paths": paths}
