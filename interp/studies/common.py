"""What every study shares: config handling, metadata and writing outputs atomically."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

import interp
from interp.export import write_figure, write_json
from interp.metrics import bootstrap_ci
from interp.models import model_info


def metadata(model, config: Any, study: str) -> dict[str, Any]:
    """Provenance saved with every result: study, config, model id + weights hash, package version."""
    info = model_info(model)
    return {
        "study": study,
        "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config),
        "model": info.to_dict(),
        "interp_version": interp.__version__,
    }


def distribution(values: np.ndarray, seed: int) -> dict[str, Any]:
    """Mean, 95% bootstrap CI, variance and quantiles of per-prompt values."""
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


def write_outputs(fig, numbers: dict[str, Any], out_dir: str | Path, name: str) -> dict[str, str | None]:
    """Write ``name.json`` (numbers + metadata), ``name.html`` and ``name.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    paths = write_figure(fig, out_dir / name, width=1200, height=int(fig.layout.height or 560))
    paths["json"] = str(write_json(out_dir / f"{name}.json", numbers))
    return paths
