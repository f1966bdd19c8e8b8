"""Learning-rate schedules: linear warm-up then cosine decay to ``min_lr_ratio``, over steps or over wall-clock time.

>>> from interp.training.config import TrainConfig
>>> cfg = TrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1, time_budget_s=60, warmup_fraction=0.1)
>>> round(step_lr_factor(9, cfg), 3), round(step_lr_factor(99, cfg), 3), round(time_lr_factor(0.55, cfg), 3)
(1.0, 0.1, 0.55)
"""

from __future__ import annotations

import math

from interp.training.config import TrainConfig


def _cosine(progress: float, min_ratio: float) -> float:
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def step_lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of ``cfg.lr`` at ``step`` (0-based) of a ``cfg.steps``-step run."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return _cosine(progress, cfg.min_lr_ratio)


def time_lr_factor(fraction: float, cfg: TrainConfig) -> float:
    """Multiplier of ``cfg.lr`` when ``fraction`` of ``cfg.time_budget_s`` has elapsed (warm-up by time too)."""
    warm = cfg.warmup_fraction
    if fraction < warm:
        return max(fraction / warm, 1e-3)  # never exactly 0: the first step still moves
    return _cosine((fraction - warm) / max(1e-9, 1 - warm), cfg.min_lr_ratio)


def lr_factor(step: int, elapsed_s: float, cfg: TrainConfig) -> float:
    """The schedule ``cfg`` asks for: by time when ``cfg.time_budget_s`` is set, else by step."""
    if cfg.time_budget_s:
        return time_lr_factor(elapsed_s / cfg.time_budget_s, cfg)
    return step_lr_factor(step, cfg)
