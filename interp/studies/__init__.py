"""Studies: the one study system. A study is a Config dataclass + ``run(model, config, out_dir)`` returning
:mod:`interp.results` values (``"results"``), their JSON-ready numbers (``"numbers"``) and the files written
(``"paths"``): one figure (HTML + PNG) and its numbers (JSON) under ``out/<study>/``. :func:`run_studies` runs them
by name on one model; :mod:`interp.studies.table` is the figure-less table study (``run_study``) behind
``interp measure``-style sweeps over several models.

>>> from interp.studies import STUDIES
>>> sorted(STUDIES)
['construction', 'generation_collapse', 'mixture_sweep', 'scaling', 'superposition_bars', 'task_vectors',
 'tasks_solved']
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.export import png_status, warm_png_export
from interp.models import load_model
from interp.studies.common import shared_results


@dataclass(frozen=True)
class Study:
    """A figure study: ``module`` holds ``run(model, config, out_dir, *, progress)`` and its config class."""

    name: str
    module: str
    config_name: str
    description: str
    cost_s: float = 10.0  # default config on the embedded model, 2 CPU cores (measured): how studies are grouped
    runs_with: str | None = None  # a study whose results this one reuses: both go to the same process

    def load(self):
        """The study's module (imported on first use, so listing studies stays cheap)."""
        return importlib.import_module(self.module)

    def config(self, quick: bool = False):
        """The default config (``quick``: the smoke-run variant)."""
        cls = getattr(self.load(), self.config_name)
        return cls.quick() if quick else cls()

    def run(self, model, config, out_dir, *, progress: bool = True) -> dict:
        return self.load().run(model, config, out_dir, progress=progress)


STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            "mixture_sweep",
            "interp.studies.mixture_sweep",
            "MixtureSweepConfig",
            "P(task A), P(task B), P(other) vs fraction d of task-A examples",
            cost_s=17.0,
        ),
        Study(
            "superposition_bars",
            "interp.studies.superposition_bars",
            "SuperpositionBarsConfig",
            "Figure-2 view: mean P per task answer, other, rank view, KL",
            cost_s=2.0,
        ),
        Study(
            "tasks_solved",
            "interp.studies.tasks_solved",
            "TasksSolvedConfig",
            "number of tasks solved and KL vs K tasks in the prompt",
            cost_s=5.0,
        ),
        Study(
            "scaling",
            "interp.studies.scaling",
            "ScalingConfig",
            "KL, tasks solved, accuracy and other mass vs number of parameters (size family)",
            cost_s=10.0,
        ),
        Study(
            "generation_collapse",
            "interp.studies.generation_collapse",
            "GenerationCollapseConfig",
            "P(task) at the first answer token vs the completed answers (sampled)",
            cost_s=2.0,
        ),
        Study(
            "task_vectors",
            "interp.studies.task_vectors",
            "TaskVectorsConfig",
            "task vectors: best layer, convex-combination patching, decomposition",
            cost_s=16.0,
        ),
        Study(
            "construction",
            "interp.studies.construction",
            "ConstructionConfig",
            "the hand-built superposition model vs the given model on retrieval mixture sweeps",
            cost_s=13.0,
            runs_with="mixture_sweep",
        ),
    )
}
HEADLINE = ("mixture_sweep", "superposition_bars")


def check_study_names(names: Sequence[str] | None) -> list[str]:
    names = list(names or STUDIES)
    unknown = [n for n in names if n not in STUDIES]
    if unknown:
        raise ValueError(f"studies: unknown {', '.join(map(repr, unknown))}; valid: {', '.join(STUDIES)}")
    return names


def check_jobs(jobs: int | None) -> None:
    """``ValueError`` naming ``jobs`` unless it is ``None`` (automatic) or an integer >= 1."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs: must be an integer >= 1 (or None: automatic), got {jobs!r}")


def run_studies(
    names: Sequence[str] | None = None,
    *,
    model: Any = "embedded",
    quick: bool = False,
    out: str | Path = "figures",
    progress: bool = True,
    jobs: int | None = None,
) -> dict[str, dict]:
    """Run studies (default: all) on one model, writing ``out/<study>/``; returns each study's numbers and paths.

    Names and the model spec are checked before any model is loaded. ``jobs``: processes that run groups of studies
    side by side, each with its share of the CPU threads and its own copy of the model (loaded again from the
    arguments :func:`~interp.models.load_model` recorded). ``None`` (default) picks 2 on a CPU with at least two
    threads when both groups hold enough work to pay for a second process (the full default set does; the demo's
    two studies do not), else 1. Every study's numbers are the same whichever process runs it (up to float rounding).

    >>> out = run_studies(["mixture_sweep"], quick=True, out="/tmp/figs")  # doctest: +SKIP
    """
    names = check_study_names(names)
    check_jobs(jobs)
    if isinstance(model, str):
        model = load_model(model)  # resolves the weights first: a missing model fails before any work
    load_args = getattr(model, "interp_load_args", None)
    if jobs is not None and jobs > 1 and load_args is None:
        raise ValueError("jobs: running studies in parallel needs a model from interp.models.load_model (or a spec)")
    groups = study_groups(names, jobs if jobs is not None else auto_jobs(model, names, quick), quick)
    warm_png_export()  # the browser starts while the first study computes
    if len(groups) == 1:
        results = _run_group(model, names, quick, out, progress)
    else:
        results = _run_groups_in_parallel(model, load_args, groups, quick, out, progress)
    if png_status():
        print(f"note: {png_status()}")
    print(f"outputs written under {Path(out).resolve()}")
    return {name: results[name] for name in names}


def _run_group(model, names: Sequence[str], quick: bool, out: str | Path, progress: bool) -> dict[str, dict]:
    results = {}
    with shared_results():  # studies run together compute an identical result once
        for name in names:
            study = STUDIES[name]
            config = study.config(quick)
            start = time.perf_counter()
            results[name] = study.run(model, config, Path(out) / name, progress=progress)
            wrote = [p for p in results[name]["paths"].values() if p]
            print(f"{name}: {time.perf_counter() - start:.1f}s → {', '.join(wrote)}", flush=True)
    return results


def _worker(load_args: dict, names: list[str], quick: bool, out: str, threads: int) -> dict[str, dict]:
    """One worker process: its thread share, its own copy of the model, its group of studies."""
    import torch

    torch.set_num_threads(threads)
    warm_png_export()
    return _run_group(load_model(**load_args), names, quick, out, progress=False)


def _run_groups_in_parallel(model, load_args, groups, quick, out, progress) -> dict[str, dict]:
    """The first group here, the others in spawned worker processes; CPU threads split evenly meanwhile."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import torch

    threads = torch.get_num_threads()
    share = max(1, threads // len(groups))
    context = multiprocessing.get_context("spawn")  # no fork of a process whose thread pools are running
    with ProcessPoolExecutor(max_workers=len(groups) - 1, mp_context=context) as pool:
        futures = [pool.submit(_worker, load_args, g, quick, str(out), share) for g in groups[1:]]
        torch.set_num_threads(share)
        try:
            results = _run_group(model, groups[0], quick, out, progress)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        finally:
            torch.set_num_threads(threads)
        for f in futures:
            results.update(f.result())
    return results


def auto_jobs(model, names: Sequence[str], quick: bool) -> int:
    """2 where a second process pays: CPU model loaded by :func:`~interp.models.load_model`, at least two threads,
    and the smaller of the two study groups estimated at >= 8 s; else 1."""
    import torch

    if getattr(model, "interp_load_args", None) is None or str(model.cfg.device) != "cpu":
        return 1
    if torch.get_num_threads() < 2:
        return 1
    groups = study_groups(names, 2, quick)
    return 2 if len(groups) == 2 and min(_cost(g, quick) for g in groups) >= 8.0 else 1


def _cost(names: Sequence[str], quick: bool) -> float:
    return sum(STUDIES[n].cost_s for n in names) / (20.0 if quick else 1.0)


def study_groups(names: Sequence[str], jobs: int, quick: bool = False) -> list[list[str]]:
    """Split ``names`` into at most ``jobs`` groups of similar estimated cost (longest first, each to the lightest
    group); a study that reuses another's results (``runs_with``) stays with it. Order within a group follows
    ``names``.

    >>> study_groups(list(STUDIES), 2)
    [['mixture_sweep', 'superposition_bars', 'construction'],
     ['tasks_solved', 'scaling', 'generation_collapse', 'task_vectors']]
    """
    units: dict[str, list[str]] = {}
    for name in names:
        anchor = STUDIES[name].runs_with
        units.setdefault(anchor if anchor in names else name, []).append(name)
    groups: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(units))))]
    for unit in sorted(units.values(), key=lambda u: -_cost(u, quick)):
        min(groups, key=lambda g: _cost(g, quick)).extend(unit)
    order = {n: i for i, n in enumerate(names)}
    return [sorted(g, key=order.__getitem__) for g in groups if g]


def headline_numbers(results: dict[str, dict]) -> list[str]:
    """Human-readable headline lines from mixture_sweep and superposition_bars results."""
    lines = []
    if "mixture_sweep" in results:
        for c in results["mixture_sweep"]["results"]:
            i = c.d.index(0.5) if 0.5 in c.d else len(c.d) // 2
            a, b, m = c.a, c.b, c.two_answer_mass
            lines.append(
                f"{c.family:<10} {c.tasks[0]:>11} vs {c.tasks[1]:<11} at d={c.d[i]:.1f}: "
                f"P(A)={a.mean[i]:.3f} [{a.ci95[i][0]:.3f},{a.ci95[i][1]:.3f}] "
                f"P(B)={b.mean[i]:.3f} [{b.ci95[i][0]:.3f},{b.ci95[i][1]:.3f}] "
                f"sum={m.mean[i]:.3f} var(P(A))={a.var[i]:.3f}"
            )
    if "superposition_bars" in results:
        for r in results["superposition_bars"]["results"]:
            probs = ", ".join(f"{t}={p:.3f}" for t, p in zip(r.tasks, r.mean, strict=True))
            lines.append(f"{r.family:<10} uniform mix: {probs}, other={r.other:.3f}, KL={r.kl:.3f}")
    return lines


def demo(*, out: str | Path = "figures", model: str = "embedded") -> dict[str, dict]:
    """The main job: headline studies on the embedded model, then the headline numbers."""
    results = run_studies(HEADLINE, model=model, out=out)
    print("\nheadline numbers (mean over prompts, 95% bootstrap CI):")
    for line in headline_numbers(results):
        print("  " + line)
    return results


def script_main(name: str, argv: Sequence[str] | None = None) -> dict[str, dict]:
    """Command line of the thin ``experiments/<study>.py`` scripts: ``[--model SPEC] [--quick] [--out DIR]``."""
    import argparse

    check_study_names([name])
    ap = argparse.ArgumentParser(
        prog=f"experiments/{name}.py",
        description=f"Regenerate figures/{name}/ (HTML, PNG, JSON); same as `interp figures {name}`.",
    )
    ap.add_argument("--model", default="embedded", help="model spec (default: the embedded model)")
    ap.add_argument("--quick", action="store_true", help="few prompts: a smoke run")
    ap.add_argument("--out", default="figures", help="output root (default figures/)")
    args = ap.parse_args(argv)
    return run_studies([name], model=args.model, quick=args.quick, out=args.out)
