"""How often the claim rules say "detected": their false-positive rate and power, measured (docs/science.md §7).

On the hand-built model (:mod:`interp.construction`), whose effects are known by construction, the steering test
(:func:`interp.nulls.steering_null`) is run on planted effects of known size, each trial on ``replications`` prompt
seeds, and its claim (:class:`interp.claims.Claim`) is worded by the rules:

- **false effect**: a random direction of the task vector's norm, shifted into the zero-shot queries at the task
  layer: exchangeable with the test's own random vectors, so each replication rejects with probability α;
- **true effects of known dose** ``c``: the task's vector, held out from the queries, shifted in at ``c`` times its
  size (x ← x + c·(v − μ)): ``c = 1`` is the built task vector, smaller doses rise less.

Per dose: the share of trials whose verdict is "detected" (the rule's false-positive rate at the false effect, its
power at the true ones), the share of single replications that reject, the mean rise, and the minimum detectable
rise each claim's simulated power curve reported at its n (compared with the measured power, it checks the
simulation). The trend rule (:func:`interp.trends.trend_words`) is calibrated beside it on simulated
``[seed, size]`` tables, without and with a planted trend. Every random choice takes ``seed``.

>>> CalibrationConfig.quick().validate()
>>> CalibrationConfig(trials=0).validate()
Traceback (most recent call last):
...
ValueError: trials: must be an integer >= 1, got 0
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interp.claims import VERDICTS, claim_from_null
from interp.construction import TASK_LAYER
from interp.export import write_json
from interp.heldout import HELD_OUT_STRIDE, held_out_seed
from interp.models import load_model
from interp.nulls import steering_null
from interp.prompts import zero_shot_prompts
from interp.studies.common import metadata
from interp.studies.task_vectors import null_summary
from interp.sweeps import target_means
from interp.trends import page_trend, trend_words
from interp.vectors import task_vector

STUDY = "claims_calibration"
FAMILY, TASK = "retrieval", "pos1"


@dataclass
class CalibrationConfig:
    """Trials per dose, replications (prompt seeds) per trial, prompts, the doses of the true effect, and the trend
    rule's simulated tables (``trend_effect``: the planted rise per size step, in units of the noise's s.d.)."""

    model: str = "constructed:retrieval:K=3"
    trials: int = 12
    replications: int = 3
    n_prompts: int = 16
    n_examples: int = 12
    doses: list[float] = field(default_factory=lambda: [0.1, 0.3, 1.0])
    n_random: int = 40
    power_sims: int = 40
    trend_trials: int = 400
    trend_blocks: int = 3
    trend_sizes: int = 4
    trend_effect: float = 1.0
    seed: int = 0

    @classmethod
    def quick(cls) -> CalibrationConfig:
        """Two trials, one dose, few prompts: a smoke run."""
        return cls(trials=2, n_prompts=6, doses=[1.0], n_random=20, power_sims=5, trend_trials=20)

    def validate(self) -> None:
        for name, minimum in (
            ("trials", 1), ("replications", 1), ("n_prompts", 2), ("n_examples", 1), ("n_random", 1),
            ("power_sims", 0), ("trend_trials", 1), ("trend_blocks", 2), ("trend_sizes", 3), ("seed", 0),
        ):  # fmt: skip
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise ValueError(f"{name}: must be an integer >= {minimum}, got {v!r}")
        if self.seed + 100 * self.trials >= HELD_OUT_STRIDE or self.replications > 100:
            raise ValueError(
                f"trials: seed + 100 × trials must stay below {HELD_OUT_STRIDE} (prompt seeds of the trials are "
                f"seed + 100·trial + replication) and replications <= 100, got {self.trials}, {self.replications}"
            )
        if not self.doses or any(not isinstance(d, int | float) or not 0 < d <= 10 for d in self.doses):
            raise ValueError(f"doses: need a non-empty list of numbers in (0, 10], got {self.doses!r}")
        if not isinstance(self.trend_effect, int | float) or self.trend_effect <= 0:
            raise ValueError(f"trend_effect: must be a number > 0, got {self.trend_effect!r}")


def _dosed(vector, centre: torch.Tensor, dose: float | None, generator: torch.Generator):
    """``vector`` at the task layer moved to ``centre + dose·(v − centre)``, or (``dose=None``) to ``centre`` plus a
    random direction of the same size: the false effect."""
    v = vector.at(TASK_LAYER).double()
    step = v - centre
    if dose is None:
        u = torch.randn(step.shape[0], generator=generator, dtype=torch.float64)
        new = centre + step.norm() * u / u.norm()
    else:
        new = centre + dose * step
    return dataclasses.replace(vector, mean=new[None].to(vector.mean.dtype))


def steering_arm(model, config: CalibrationConfig) -> dict[str, Any]:
    """Every trial of every dose (``None``: the false effect); a claim per trial, its verdict counted."""
    tasks = model.interp_construction.tasks
    arms: dict[str, dict[str, Any]] = {}
    for dose in [None, *config.doses]:
        name = "random direction" if dose is None else f"dose {dose:g}"
        verdicts, single, rises, mdes = Counter(), [], [], []
        for t in range(config.trials):
            reps = []
            for r in range(config.replications):
                s = config.seed + 100 * t + r
                v = task_vector(
                    model, FAMILY, TASK, n_prompts=config.n_prompts, n_examples=config.n_examples, seed=s,
                    layers=[TASK_LAYER],
                )  # fmt: skip
                queries = zero_shot_prompts(FAMILY, list(tasks), n_prompts=config.n_prompts, seed=held_out_seed(s))
                centre = target_means(model, queries, [TASK_LAYER], v.hook, 32)[0]
                planted = _dosed(v, centre, dose, torch.Generator().manual_seed(10_000 + s))
                test = steering_null(
                    model, queries, TASK, planted, TASK_LAYER, mode="shift", n_random=config.n_random, seed=s,
                    power_sims=config.power_sims,
                )  # fmt: skip
                reps.append(null_summary(test, s))
                single.append(test.p_value < 0.05)
                rises.append(test.statistic)
                if test.mde is not None:
                    mdes.append(test.mde)
            claim = claim_from_null(f"{STUDY}/{name}/{t}", f"rise of P({TASK})", {**reps[0], "replications": reps})
            verdicts[claim.verdict] += 1
        arms[name] = {
            "dose": dose,
            "verdicts": {v: verdicts[v] for v in VERDICTS},
            "detected_rate": verdicts["detected"] / config.trials,
            "single_rejection_rate": float(np.mean(single)),
            "mean_rise": float(np.mean(rises)),
            "median_mde": float(np.median(mdes)) if mdes else None,
        }
    return arms


def trend_arm(config: CalibrationConfig) -> dict[str, Any]:
    """The trend rule on simulated ``[block, size]`` tables of unit-s.d. noise, without and with a planted rise of
    ``trend_effect`` per size step: the share worded "rises with size", "falls with size", "no trend detected"."""
    rng = np.random.default_rng(config.seed)
    steps = np.arange(config.trend_sizes, dtype=float)
    out = {}
    for name, effect in (("no trend", 0.0), (f"rise {config.trend_effect:g} per size step", config.trend_effect)):
        words = Counter()
        for _ in range(config.trend_trials):
            table = rng.standard_normal((config.trend_blocks, config.trend_sizes)) + effect * steps
            words[trend_words(page_trend(table, power_sims=0)).split(" (")[0]] += 1
        out[name] = {
            "effect": effect,
            "words": dict(words),
            "rises_rate": words["rises with size"] / config.trend_trials,
            "falls_rate": words["falls with size"] / config.trend_trials,
        }
    return out


def run(config: CalibrationConfig, out_dir: str | Path, *, progress: bool = False) -> dict[str, Any]:
    """Both arms; writes ``out_dir/calibration.json``. The config is checked before the model is built."""
    config.validate()
    model = load_model(config.model, device="cpu")
    start = time.perf_counter()
    numbers = {
        **metadata(model, config, STUDY),
        "steering": steering_arm(model, config),
        "trend": trend_arm(config),
        "runtime_s": None,
    }
    numbers["runtime_s"] = round(time.perf_counter() - start, 1)
    path = write_json(Path(out_dir) / "calibration.json", numbers)
    return {"numbers": numbers, "paths": {"json": str(path)}}


__all__ = ["CalibrationConfig", "run", "steering_arm", "trend_arm"]
