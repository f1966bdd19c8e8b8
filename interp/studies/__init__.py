"""Studies: the one study system. A study is a Config dataclass + ``run(model, config, out_dir)`` returning
:mod:`interp.results` values (``"results"``), their JSON-ready numbers (``"numbers"``) and the files written
(``"paths"``): one figure (HTML + PNG) and its numbers (JSON) under ``out/<study>/``. :func:`run_studies` runs them
by name on one model; :mod:`interp.studies.table` is the figure-less table study (``measure_table``) behind
``interp measure``-style sweeps over several models.

>>> from interp.studies import STUDIES
>>> sorted(STUDIES)
['construction', 'generation_collapse', 'heads', 'mixture_sweep', 'scaling', 'superposition_bars',
 'task_vectors', 'tasks_solved']
"""

from __future__ import annotations

import importlib
import json
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.atomic_folder import stale_pngs
from interp.defaults import DEFAULT_OUT, QUICK_OUT, default_out
from interp.engines.nn_model import engine_record, is_nnsight
from interp.export import check_output_dir, pngs_in_background, write_json
from interp.models import load_model
from interp.png import PngSkipped, png_preflight, png_status, timeout_s, warm_png_export
from interp.remember import remembering
from interp.validate import ArgumentError, ArgumentTypeError, check_flag, check_model


@dataclass(frozen=True)
class Study:
    """A figure study: ``module`` holds ``run(model, config, out_dir, *, progress)`` and its config class."""

    name: str
    module: str
    config_name: str
    description: str

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
        ),
        Study(
            "superposition_bars",
            "interp.studies.superposition_bars",
            "SuperpositionBarsConfig",
            "Figure-2 view: mean P per task answer, other, rank view, KL",
        ),
        Study(
            "tasks_solved",
            "interp.studies.tasks_solved",
            "TasksSolvedConfig",
            "number of tasks solved and KL vs K tasks in the prompt",
        ),
        Study(
            "scaling",
            "interp.studies.scaling",
            "ScalingConfig",
            "KL, tasks solved, accuracy and other mass vs number of parameters (size family)",
        ),
        Study(
            "generation_collapse",
            "interp.studies.generation_collapse",
            "GenerationCollapseConfig",
            "P(task) at the first answer token vs the completed answers (sampled)",
        ),
        Study(
            "task_vectors",
            "interp.studies.task_vectors",
            "TaskVectorsConfig",
            "task vectors: best layer, convex-combination patching, decomposition",
        ),
        Study(
            "heads",
            "interp.studies.heads",
            "HeadsConfig",
            "which attention heads carry each task: causal indirect effect, ablation, logit attribution, induction",
        ),
        Study(
            "construction",
            "interp.studies.construction",
            "ConstructionConfig",
            "the hand-built superposition model vs the given model on retrieval mixture sweeps",
        ),
    )
}
HEADLINE = ("mixture_sweep", "superposition_bars")


def check_study_names(names: Sequence[str] | None, argument: str = "studies") -> list[str]:
    """The studies to run, in the order given, each once (default: all); an unknown name is refused.

    >>> check_study_names(["scaling", "mixture_sweep", "scaling"])
    ['scaling', 'mixture_sweep']
    """
    if names is not None and (isinstance(names, str) or not isinstance(names, Sequence)):
        raise ArgumentTypeError(
            argument, f"a list of study names or None (all), got {names!r}; valid: {', '.join(STUDIES)}"
        )
    names = list(dict.fromkeys(names or STUDIES))
    unknown = [n for n in names if n not in STUDIES]
    if unknown:
        raise ArgumentError(argument, f"unknown {', '.join(map(repr, unknown))}; valid: {', '.join(STUDIES)}")
    return names


def check_study_outputs(names: Sequence[str], out: str | Path) -> Path:
    """Check, before any work, every folder a run of ``names`` will write: ``out`` can hold new folders (each study
    is written beside its folder, then swapped in) and each ``out/<study>`` is a folder whose files can be read
    (they are kept where unchanged). ``ValueError`` naming the folder otherwise; returns ``out``.

    >>> import tempfile; check_study_outputs(["heads"], tempfile.mkdtemp()).is_dir()
    True
    """
    out = check_output_dir(out, flag="out")
    for name in names:
        folder = out / name
        if folder.is_symlink() and not folder.exists():
            raise ValueError(f"out: {folder} is a broken link; remove it or give another --out")
        if not folder.exists():
            continue
        if not folder.is_dir():
            raise ValueError(f"out: {folder} is a file, not a folder; the {name} study writes its files there")
        unreadable = [p for p in [folder, *folder.iterdir()] if not os.access(p, os.R_OK)]
        if unreadable:
            raise ValueError(f"out: {unreadable[0]} cannot be read; the {name} study keeps unchanged files from it")
    return out


def check_run(names: Sequence[str] | None, out: str | Path) -> list[str]:
    """Everything a study run can check before the model loads: the study names, every output folder
    (:func:`check_study_outputs`) and the PNG settings (``INTERP_PNG_TIMEOUT_S``). Returns the names to run."""
    names = check_study_names(names, "names")
    check_study_outputs(names, out)
    timeout_s()  # a malformed INTERP_PNG_TIMEOUT_S fails now, not after the model has loaded
    return names


def run_studies(
    names: Sequence[str] | None = None,
    *,
    model: Any = "embedded",
    quick: bool = False,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Run studies (default: all) on one model, writing ``out/<study>/``; returns each study's numbers and paths.

    ``out`` defaults to ``figures/``, and to ``figures-quick/`` for a quick run (:func:`default_out`): a smoke run
    never replaces the committed results unless asked. Names, output folders and settings are checked before any
    model is loaded (:func:`check_run`). Each study's folder is written as one set (swapped in when the study is
    done; an error or Ctrl-C leaves the previous one whole), and no PNG is ever deleted: one that could not be
    redrawn for a changed figure is kept and named in a note.
    """
    if out is not None and not isinstance(out, str | Path):
        raise ArgumentTypeError("out", f"a folder (str or Path), got {type(out).__name__}")
    check_flag(quick, "quick")
    check_flag(progress, "progress")
    if not isinstance(model, str):
        check_model(model)
    out = default_out(quick) if out is None else out
    names = check_run(names, out)
    if isinstance(model, str):
        model = load_model(model)  # resolves the weights first: a missing model fails before any work
    said_png = png_preflight()
    if said_png:  # before any study runs: no browser, or PNG export turned off
        print(f"note: {said_png}")
    warm_png_export()  # the browser starts in its own process while the first study computes
    results = {}
    with warnings.catch_warnings(), remembering(), pngs_in_background():  # PNGs drawn while computing
        warnings.simplefilter("ignore", PngSkipped)  # said once below, as a note
        for name in names:
            study = STUDIES[name]
            config = study.config(quick)
            start = time.perf_counter()
            if is_nnsight(model):
                model.ledger.reset()
            results[name] = study.run(model, config, Path(out) / name, progress=progress)
            if is_nnsight(model):
                record_engine(results[name], model)
            wrote = [p for p in results[name]["paths"].values() if p and not p.endswith(".png")]
            print(f"{name}: {time.perf_counter() - start:.1f}s → {', '.join(wrote)}")
    pngs, stale = [], stale_pngs(clear=True)
    for result in results.values():  # a PNG is reported only once it exists (drawn in the background, or skipped)
        for key, path in result["paths"].items():
            if path and path.endswith(".png"):
                if Path(path).is_file() and path not in stale:
                    pngs.append(path)
                else:
                    result["paths"][key] = None
    if pngs:  # drawn now, or kept from before because their figure did not change
        print(f"PNG{' (figure unchanged, kept)' if png_status() else ''}: {', '.join(pngs)}")
    if png_status() and png_status() != said_png:
        print(f"note: {png_status()}")
    if stale:  # never deleted (without a browser they could not be drawn again), but they show the previous numbers
        print(
            f"note: {len(stale)} PNG(s) not redrawn, left from the previous run beside changed numbers (redraw them "
            f"with a browser: make png-deps, then rerun): {', '.join(stale)}"
        )
    print(f"outputs written under {Path(out).resolve()}")
    return results


def record_engine(result: dict, model) -> None:
    """Add what the nnsight engine sent for this study (:func:`interp.engines.nn_model.engine_record`: traces,
    requests, serialised request bytes) to its numbers and to every JSON file it wrote (rewritten atomically)."""
    record = engine_record(model)
    result["numbers"]["engine"] = record
    for path in result["paths"].values():
        if path and path.endswith(".json") and Path(path).is_file():
            numbers = json.loads(Path(path).read_text())
            if isinstance(numbers, dict):
                write_json(Path(path), {**numbers, "engine": record})


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


def demo(*, out: str | Path = DEFAULT_OUT, model: str = "embedded") -> dict[str, dict]:
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
    ap.add_argument("--out", help=f"output root (default {DEFAULT_OUT}/; with --quick {QUICK_OUT}/)")
    args = ap.parse_args(argv)
    return run_studies([name], model=args.model, quick=args.quick, out=args.out)
