"""What every study shares: provenance metadata, writing a figure with its numbers atomically, and writing the study's
folder as one set (:func:`writes_one_set`). (Results that studies run together compute identically are shared through
:func:`interp.remember.remembered`.)"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from interp.atomic_folder import one_set
from interp.export import package_version, write_figure, write_json
from interp.metrics import describe
from interp.models import model_info
from interp.results import Distribution


def metadata(model, config: Any, study: str) -> dict[str, Any]:
    """Provenance saved with every result: study, config, model id + weights hash, package version."""
    return {
        "study": study,
        "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config),
        "model": model_info(model).to_dict(),
        "interp_version": package_version(),
    }


def distribution(per_point: list, seed: int) -> Distribution:
    """A :class:`~interp.results.Distribution` over points from per-point arrays of per-prompt values."""
    rows = [describe(values, seed=seed) for values in per_point]
    return Distribution(**{key: np.asarray([r[key] for r in rows], dtype=float) for key in rows[0]})


def write_outputs(fig, numbers: dict[str, Any], out_dir: str | Path, name: str) -> dict[str, str | None]:
    """Write ``name.json`` (numbers + metadata), ``name.html`` and ``name.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    paths = write_figure(fig, out_dir / name, width=1200, height=int(fig.layout.height or 560))
    paths["json"] = str(write_json(out_dir / f"{name}.json", numbers))
    return paths


def writes_one_set(run: Callable[..., dict]) -> Callable[..., dict]:
    """Make a study's ``run(model, config, out_dir, *, progress)`` write ``out_dir`` as one set: every file goes into
    a staging folder beside it, swapped into place when the study has finished (and its PNGs are drawn);
    an error or Ctrl-C part-way leaves the previous run's folder whole (:func:`interp.atomic_folder.one_set`).
    The returned ``"paths"`` name the files in ``out_dir``. Every study's ``run`` carries it (tested).
    """

    @functools.wraps(run)
    def run_as_one_set(model, config, out_dir: str | Path, *, progress: bool = True) -> dict:
        target = Path(out_dir)
        with one_set(target) as staging:
            result = run(model, config, staging, progress=progress)
        result["paths"] = {key: _moved(path, staging, target) for key, path in result["paths"].items()}
        return result

    run_as_one_set.writes_one_set = True  # type: ignore[attr-defined]
    return run_as_one_set


def _moved(path: str | None, staging: Path, target: Path) -> str | None:
    """``path`` inside ``staging`` → the same file inside ``target`` (where it is once the set is swapped in)."""
    if path is None or not Path(path).is_relative_to(staging):
        return path
    return str(target / Path(path).relative_to(staging))
