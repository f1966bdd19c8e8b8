"""Tasks solved and KL vs the number K of tasks mixed in the prompt (the paper's scale analysis, docs/science.md §5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from interp.defaults import tasks_for
from interp.generation import complete_outputs_batch
from interp.metrics import bootstrap_ci, count_solved, kl_divergence
from interp.plots.mixtures import tasks_solved_figure
from interp.prompts import build_prompts
from interp.results import TasksSolvedCurve
from interp.scoring import score_answers_alone_and_complete
from interp.studies.common import metadata, write_outputs, writes_one_set
from interp.tasks import get_family, resolve_tasks

#: (family, its six default tasks in the order K adds them, examples per prompt).
DEFAULT_SETTINGS = tuple((fam, tasks_for(fam, 6), 20) for fam in ("retrieval", "bias_add"))


@dataclass
class TasksSolvedConfig:
    settings: list[tuple[str, tuple[str, ...], int]] = field(
        default_factory=lambda: [tuple(s) for s in DEFAULT_SETTINGS]
    )
    ks: list[int] = field(default_factory=lambda: [2, 3, 4, 5, 6])
    n_prompts: int = 50
    beam_width: int = 8
    max_new_tokens: int = 2  # single-character answers + newline; raise it for longer answers
    seed: int = 0

    @classmethod
    def quick(cls) -> TasksSolvedConfig:
        return cls(settings=[DEFAULT_SETTINGS[1]], ks=[2, 3], n_prompts=6, beam_width=4)

    def validate(self) -> None:
        for fam, tasks, _ in self.settings:
            resolve_tasks(get_family(fam), tasks)
            if max(self.ks) > len(tasks):
                raise ValueError(f"ks: K up to {max(self.ks)} needs that many tasks; {fam} lists {len(tasks)}")
        if min(self.ks) < 1:
            raise ValueError(f"ks: values must be >= 1, got {self.ks}")
        if self.beam_width < max(self.ks):
            raise ValueError(f"beam_width: must be >= the largest K ({max(self.ks)}), got {self.beam_width}")


def solved_at_k(model, family: str, tasks, k: int, n_examples: int, config: TasksSolvedConfig) -> dict:
    names = tuple(tasks[:k])
    t = np.full(k, 1.0 / k)
    prompts = build_prompts(
        family, names, proportions=t, n_examples=n_examples, n_prompts=config.n_prompts, seed=config.seed
    )
    alone, answers = score_answers_alone_and_complete(model, prompts)
    outputs = complete_outputs_batch(
        model, [p.text for p in prompts], beam_width=config.beam_width, max_new_tokens=config.max_new_tokens
    )
    comps = [[lp for _, lp in outs] for outs in outputs]
    solved = count_solved(answers.log_probs, comps, k=k)
    kl = kl_divergence(t, alone.probs)
    return {
        "k": k,
        "solved": float(solved.mean()),
        "solved_ci95": list(bootstrap_ci(solved, seed=config.seed)),
        "kl": float(kl.mean()),
        "kl_ci95": list(bootstrap_ci(kl, seed=config.seed)),
    }


@writes_one_set
def run(model, config: TasksSolvedConfig, out_dir: str | Path, *, progress: bool = True) -> dict:
    config.validate()
    meta = metadata(model, config, "tasks_solved")
    mid = meta["model"]["model_id"]
    series = []
    for fam, tasks, n in config.settings:
        rows = [
            solved_at_k(model, fam, tasks, k, n, config)
            for k in tqdm(config.ks, desc=f"tasks_solved {fam}", disable=not progress)
        ]
        series.append(
            TasksSolvedCurve(
                model=mid,
                family=fam,
                tasks=tuple(tasks),
                n_examples=n,
                **{key: np.asarray([r[key] for r in rows]) for key in ("solved", "solved_ci95", "kl", "kl_ci95")},
                k=tuple(r["k"] for r in rows),
            )
        )
    title = f"Tasks solved vs K · model {mid} · {config.n_prompts} prompts per K · beam width {config.beam_width}"
    numbers = {**meta, "series": [s.to_dict() for s in series]}
    paths = write_outputs(tasks_solved_figure(series, title=title), numbers, out_dir, "tasks_solved")
    return {"results": series, "numbers": numbers, "paths": paths}
