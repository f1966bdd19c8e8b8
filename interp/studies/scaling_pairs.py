"""Scale across seeds and task pairs (claim 4, issue 27): does "calibration improves with size" survive more than
one training seed and one pair of tasks, and what does KL mix together?

For every model of the size family and its seed replicas (``interp/checkpoints/size_family/<size>`` is seed 0,
``interp/checkpoints/size_family_seeds/<size>-seed<k>`` the others, trained by ``experiments/size_family_seeds.sh``)
and every pair of the family's trained tasks, on 50/50 prompts:

- ``kl``: KL(t ‖ p) with t = (½, ½) (the paper's definition: mass on other answers counts against the model);
- ``tv``: total variation between t and (P(A), P(B), P(other));
- ``hedging``: P(other), the mass on neither answer;
- ``preference``: |mean over prompts of s − ½|, s = P(A) / (P(A) + P(B)) the share of task A: a fixed preference
  for one task whatever the prompt (0: none);
- ``commitment``: the across-prompt variance of s (0: every prompt splits alike; ¼: each prompt commits to one
  task, coin-flip style).

A *unit* is one (seed, pair). Per size: the mean over units with a 95% bootstrap CI over units, and per seed the mean
over pairs. ``verdicts`` say, for each metric, whether it rises or falls with size as a trend test says: Page's L
test with the training seeds as blocks on the per-seed means (:func:`interp.trends.page_trend`: both directions, the
count of strictly monotone seeds, the power over planted trends; ``"page"`` and its ``"words"``), beside the Spearman
correlations of the per-seed means and of all units with parameters (descriptive: four sizes per seed give a ρ of
little weight, and units of one seed share a model).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from interp.metrics import bootstrap_ci, kl_divergence, total_variation
from interp.models import embedded_model_dir, load_model
from interp.prompts import build_prompts
from interp.scoring import score_answers
from interp.seeds import check_seed
from interp.trends import page_trend, trend_words

METRICS = ("kl", "tv", "hedging", "preference", "commitment")
SIZE_FAMILY_DIR = embedded_model_dir().parent / "size_family"
SEEDS_DIR = embedded_model_dir().parent / "size_family_seeds"
SIZES = ("xs", "s", "m", "l")


def seed_replicas(sizes: Sequence[str] = SIZES) -> dict[str, dict[int, str]]:
    """``{size: {seed: path}}`` of every shipped checkpoint: seed 0 from the size family, others from the seeds
    folder (``<size>-seed<k>``)."""
    out: dict[str, dict[int, str]] = {}
    for size in sizes:
        found = {}
        if (SIZE_FAMILY_DIR / size / "config.json").is_file():
            found[0] = str(SIZE_FAMILY_DIR / size)
        for d in sorted(SEEDS_DIR.glob(f"{size}-seed*")):
            if (d / "config.json").is_file() and d.name.removeprefix(f"{size}-seed").isdigit():
                found[int(d.name.removeprefix(f"{size}-seed"))] = str(d)
        if found:
            out[size] = dict(sorted(found.items()))
    return out


@dataclass
class PairsConfig:
    """The family, its trained tasks (every pair of them is measured), prompts per pair, examples, seed."""

    family: str = "bias_add"
    tasks: tuple[str, ...] = ("add1", "add7", "add4", "add9")
    n_prompts: int = 100
    n_examples: int = 16
    seed: int = 0

    def validate(self) -> None:
        if len(self.tasks) < 2 or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks: need at least two distinct tasks, got {list(self.tasks)}")
        for name in ("n_prompts", "n_examples"):
            if (
                isinstance(getattr(self, name), bool)
                or not isinstance(getattr(self, name), int)
                or getattr(self, name) < 2
            ):
                raise ValueError(f"{name}: must be an integer >= 2, got {getattr(self, name)!r}")
        check_seed(self.seed)


def pair_metrics(model, pair: tuple[str, str], config: PairsConfig) -> dict[str, float]:
    """The five metrics (module docstring) of one model on 50/50 prompts of ``pair``."""
    prompts = build_prompts(
        config.family, list(pair), proportions=[0.5, 0.5], n_examples=config.n_examples, n_prompts=config.n_prompts,
        seed=config.seed,
    )  # fmt: skip
    p = score_answers(model, prompts).probs
    share = p[:, 0] / np.maximum(p.sum(axis=1), 1e-300)
    t = [0.5, 0.5]
    return {
        "kl": float(kl_divergence(t, p).mean()),
        "tv": float(total_variation(t, p).mean()),
        "hedging": float(np.clip(1 - p.sum(axis=1), 0, 1).mean()),
        "preference": float(abs(share.mean() - 0.5)),
        "commitment": float(share.var()),
    }


def measure(models: dict[str, dict[int, Any]], config: PairsConfig, *, extra: Sequence[str] = ()) -> dict[str, Any]:
    """Every (size, seed, pair) unit and the summaries. ``models``: ``{size: {seed: spec or loaded model}}``;
    ``extra``: sizes measured and summarised but left out of the verdicts (a model trained differently, e.g. the
    embedded one beside the size family)."""
    config.validate()
    pairs = list(itertools.combinations(config.tasks, 2))
    units, params = [], {}
    for size, by_seed in models.items():
        for seed, spec in by_seed.items():
            model = load_model(spec) if isinstance(spec, str | Path) else spec
            params[size] = int(sum(x.numel() for x in model.parameters()))
            for pair in pairs:
                units.append({"size": size, "seed": seed, "pair": list(pair), **pair_metrics(model, pair, config)})
    sizes = sorted(params, key=params.get)
    summary = {}
    for size in sizes:
        mine = [u for u in units if u["size"] == size]
        seeds = sorted({u["seed"] for u in mine})
        summary[size] = {
            "n_params": params[size],
            "n_units": len(mine),
            "seeds": seeds,
            **{
                m: {
                    "mean": float(np.mean([u[m] for u in mine])),
                    "ci95": list(bootstrap_ci([u[m] for u in mine], seed=config.seed)),
                    "per_seed": {str(s): float(np.mean([u[m] for u in mine if u["seed"] == s])) for s in seeds},
                }
                for m in METRICS
            },
        }
    return {"sizes": sizes, "pairs": [list(p) for p in pairs], "units": units, "summary": summary,
            "extra": list(extra), "verdicts": verdicts([u for u in units if u["size"] not in extra], params,
                                                        [x for x in sizes if x not in extra])}  # fmt: skip


def verdicts(units: list[dict], params: dict[str, int], sizes: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
    """Per metric: Page's L trend test over the per-seed means (seeds with every size as blocks, sizes by parameters;
    ``"page"`` with its ``"words"``), and the Spearman correlations of every unit's value and of each seed's means
    against parameters (with p for the units)."""
    out = {}
    x = np.array([params[u["size"]] for u in units], dtype=float)
    all_seeds = sorted({u["seed"] for u in units})
    complete = [s for s in all_seeds if {u["size"] for u in units if u["seed"] == s} >= set(sizes)]
    for m in METRICS:
        y = np.array([u[m] for u in units])
        rho, p = spearmanr(x, y) if len(set(x)) > 1 and np.ptp(y) > 0 else (float("nan"), float("nan"))
        per_seed = {}
        for s in complete:
            means = [np.mean([u[m] for u in units if u["seed"] == s and u["size"] == size]) for size in sizes]
            varies = len(sizes) > 1 and np.ptp(means) > 0
            r = spearmanr([params[size] for size in sizes], means)[0] if varies else float("nan")
            per_seed[str(s)] = None if not np.isfinite(r) else float(r)
        table = [
            [float(np.mean([u[m] for u in units if u["seed"] == s and u["size"] == size])) for size in sizes]
            for s in complete
        ]
        trend = (
            page_trend(table, metric=m, sizes=list(sizes), blocks=[str(s) for s in complete], seed=seed)
            if len(complete) >= 2 and len(sizes) >= 3
            else None
        )
        out[m] = {
            "page": None
            if trend is None
            else trend.to_dict() | {"words": trend_words(trend), "direction": trend.direction},
            "spearman_all_units": None if not np.isfinite(rho) else float(rho),
            "p_all_units": None if not np.isfinite(p) else float(p),
            "spearman_per_seed": per_seed,
            "falls_with_size_in_every_seed": bool(per_seed) and all(r is not None and r < 0 for r in per_seed.values()),
        }
    return out
