"""What every study shares: provenance metadata and writing a figure with its numbers atomically. (Results that
studies run together compute identically are shared through :func:`interp.remember.remembered`.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

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
