"""The table study: measurements over models × families × proportions × seeds into one tidy table (no figure).

One row per (model, family, proportions, seed, prompt, task) with the answer's probability. Save it as CSV or JSON
with :func:`save_table` and read it back with :func:`load_table`. Like the figure studies of this package it takes
model specs or loaded models and validates every argument before any model is loaded.

>>> table = measure_table(["embedded"], {"operands": [(0.5, 0.5, 0.0)]}, n_prompts=4)   # doctest: +SKIP
>>> sorted(table.columns)[:3]                                                       # doctest: +SKIP
['family', 'log_prob', 'model']
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from interp.export import atomic_path
from interp.models import load_model, model_info
from interp.prompts import build_prompts, check_simplex
from interp.scoring import score_answers
from interp.seeds import check_seed
from interp.tasks import get_family, resolve_tasks
from interp.validate import (
    ArgumentError,
    ArgumentTypeError,
    check_count,
    check_flag,
    check_model,
    check_sequence,
)

COLUMNS = (
    "model",
    "family",
    "tasks",
    "proportions",
    "seed",
    "n_examples",
    "prompt",
    "task",
    "target",
    "log_prob",
    "prob",
    "other",
)


def format_proportions(props: Sequence[float]) -> str:
    return ",".join(f"{p:.6g}" for p in props)


def measure_table(
    models: Sequence,
    families: Mapping[str, Sequence[Sequence[float]]],
    *,
    tasks: Mapping[str, Sequence[str]] | None = None,
    seeds: Sequence[int] = (0,),
    n_prompts: int = 100,
    n_examples: int = 20,
    include_newline: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Measure answer probabilities for every combination.

    Args:
        models: model specs (loaded with :func:`interp.models.load_model`) or loaded models.
        families: family name → list of proportion vectors (one entry per task of ``tasks[family]``).
        tasks: family name → candidate tasks (default: all tasks of the family).
        seeds: prompt seeds; n_prompts, n_examples: per setting.

    Every argument is validated before any model is loaded or run.
    """
    models = check_sequence(models, "models", what="model specs or loaded models")
    for m in models:
        if not isinstance(m, str):
            check_model(m, "models")
    if not isinstance(families, Mapping) or not families:
        raise ArgumentError("families", "need a non-empty dict: family name → list of proportion vectors")
    if tasks is not None and not isinstance(tasks, Mapping):
        raise ArgumentTypeError("tasks", f"need a dict: family name → candidate tasks, got {type(tasks).__name__}")
    seeds = [check_seed(s, "seeds") for s in check_sequence(seeds, "seeds", what="seeds")]
    check_count(n_prompts, "n_prompts")
    check_count(n_examples, "n_examples", minimum=0)
    check_flag(include_newline, "include_newline")
    check_flag(progress, "progress")
    tasks = dict(tasks or {})
    plan = []
    for fam_name, mixes in families.items():
        try:
            fam = get_family(fam_name)
        except ArgumentError as err:
            raise ArgumentError("families", str(err)) from None
        names = resolve_tasks(fam, tasks.get(fam_name), name=f"tasks[{fam_name!r}]")
        for mix in check_sequence(mixes, f"families[{fam_name!r}]", what="proportion vectors"):
            props = check_simplex(mix, len(names), name=f"families[{fam_name!r}]")
            plan.extend((fam.name, names, props, seed) for seed in seeds)
    loaded = [load_model(m) if isinstance(m, str) else m for m in models]
    rows = []
    bar = tqdm(total=len(loaded) * len(plan), disable=not progress, desc="study")
    for model in loaded:
        mid = model_info(model).model_id
        for fam_name, names, props, seed in plan:
            prompts = build_prompts(
                fam_name, names, proportions=props, n_examples=n_examples, n_prompts=n_prompts, seed=seed
            )
            scores = score_answers(model, prompts, include_newline=include_newline)
            other = scores.other
            for i in range(len(prompts)):
                for k, task in enumerate(names):
                    rows.append(
                        (
                            mid,
                            fam_name,
                            ",".join(names),
                            format_proportions(props),
                            seed,
                            n_examples,
                            i,
                            task,
                            props[k],
                            scores.log_probs[i, k],
                            float(np.exp(scores.log_probs[i, k])),
                            float(other[i]),
                        )
                    )
            bar.update()
    bar.close()
    return pd.DataFrame(rows, columns=list(COLUMNS))


def save_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``table`` as ``.csv`` or ``.json`` (records), atomically."""
    path = Path(path)
    if path.suffix not in (".csv", ".json"):
        raise ValueError(f"path: suffix must be .csv or .json, got {path.suffix!r}")
    with atomic_path(path) as tmp:
        if path.suffix == ".csv":
            table.to_csv(tmp, index=False, float_format="%.17g")
        else:
            tmp.write_text(json.dumps(table.to_dict(orient="records")))
    return path


def load_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`save_table`."""
    path = Path(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"proportions": str, "tasks": str})
    if path.suffix == ".json":
        return pd.DataFrame(json.loads(path.read_text()), columns=list(COLUMNS))
    raise ValueError(f"path: suffix must be .csv or .json, got {path.suffix!r}")
