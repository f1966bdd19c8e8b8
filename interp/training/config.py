"""The training configuration: :class:`TrainConfig`, its ranges and its JSON loader.

>>> cfg = TrainConfig(families={"bias_add": 1.0}, n_examples={"bias_add": 8}, steps=0)
>>> cfg.validate()
Traceback (most recent call last):
...
ValueError: steps: 0 is out of range; must be an integer >= 1
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from interp.prompts import build_prompts
from interp.tasks import get_family, resolve_tasks

POSITION_INITS = ("random", "sinusoidal", "periodic")
PRECISIONS = ("float32", "bfloat16")
CHECKPOINT_DTYPES = ("float32", "float16", "bfloat16")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved next to every checkpoint).

    Fields added after the shipped CPU model (``precision`` onwards) default to what that run did, so its
    recorded config still describes it exactly.
    """

    families: dict[str, float] = field(default_factory=lambda: {"retrieval": 1.0, "bias_add": 1.0})
    tasks: dict[str, list[str]] = field(default_factory=dict)  # optional subset per family
    n_examples: dict[str, int] = field(default_factory=lambda: {"retrieval": 24, "bias_add": 24})
    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 4
    n_ctx: int = 320
    batch_size: int = 32
    steps: int = 1000
    lr: float = 1e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 200
    eval_prompts: int = 100
    eval_n_examples: int = 20
    checkpoint_every: int = 0
    batch_by_family: bool = True  # one family per batch (prompts still hold one task each): no padding waste
    seed: int = 0
    threads: int = 2
    #: "random" (GPT-2's N(0, 0.02)) or "sinusoidal": the learned position embeddings start as sinusoids
    #: (Vaswani et al. 2017) at the same per-coordinate scale, so attending a fixed offset back is easy from step 0.
    #: "periodic": sinusoidal, with the first coordinates replaced by sines and cosines whose periods are the
    #: trained families' example lengths (e.g. 11 for ``qWeRtYuI>e\n``), so a token's index inside its example is a
    #: linear feature from step 0 (needs families whose examples all have one length). Still learned embeddings.
    position_init: str = "random"
    #: Task curriculum (0 = off): a family's active tasks grow from ``curriculum_start_tasks`` (the first ones of a
    #: seeded permutation) to all of them by step ``curriculum_steps``; every prompt still holds ONE task.
    curriculum_steps: int = 0
    curriculum_start_tasks: int = 2
    #: "float32" or "bfloat16" (autocast of the forward pass; weights and optimizer state stay float32).
    precision: str = "float32"
    #: ``torch.compile`` the model (CUDA runs; off by default: compilation costs tens of seconds).
    compile: bool = False
    #: Micro-batches per step: the ``batch_size`` prompts of a step are split in this many forward passes
    #: (token-weighted, so the gradient equals the full batch's up to rounding). Large batches on little memory.
    grad_accum: int = 1
    #: Batches are generated ahead of the loop: 0 = one background thread, N > 0 = N worker processes.
    #: Batch content depends only on (seed, step), never on this.
    data_workers: int = 0
    #: How many batches are generated ahead.
    prefetch: int = 4
    #: Wall-clock budget in seconds (0 = off: ``steps`` sets the schedule). When on, warm-up and cosine decay
    #: follow the elapsed fraction of the budget, training stops before the budget is spent (``steps`` is only
    #: a cap), and the last evaluation and checkpoint fit inside it.
    time_budget_s: float = 0.0
    #: Warm-up length as a fraction of the time budget (time-budgeted runs only).
    warmup_fraction: float = 0.05
    #: Evaluate / checkpoint every this many seconds of training (0 = off); adds to the step-based triggers.
    eval_every_s: float = 0.0
    checkpoint_every_s: float = 0.0
    #: Dtype of the weights in checkpoint directories (loading always gives float32).
    checkpoint_dtype: str = "float32"

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        """Read a config file; ``ValueError`` naming the file when it is missing, not JSON or not an object."""
        data = read_config_json(path)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"config: {path}: unknown keys {sorted(unknown)}; valid: {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**data)

    def example_periods(self) -> list[int]:
        """Length in characters (newline included) of one example of each family, for ``position_init='periodic'``."""
        periods = []
        for name in self.families:
            fam = get_family(name)
            rng = np.random.default_rng(0)
            lengths = {
                len(fam.example(fam.sample_input(rng), task)) + 1
                for task in resolve_tasks(fam, self.tasks.get(name))
                for _ in range(20)
            }
            if len(lengths) != 1:
                raise ValueError(
                    f"position_init: 'periodic' needs examples of one length; {name} has lengths {sorted(lengths)}"
                )
            periods.append(lengths.pop())
        return sorted(set(periods))

    def validate(self) -> None:
        """``ValueError`` naming the field and its allowed values for anything out of range (cheap checks first)."""
        check_ranges(self)
        for name in self.families:
            resolve_tasks(get_family(name), self.tasks.get(name))
            if name not in self.n_examples:
                raise ValueError(f"n_examples: missing an entry for family {name!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model: {self.d_model} must be divisible by n_heads={self.n_heads}")
        _check_choices(self)
        if self.position_init == "periodic":
            periods = self.example_periods()
            n_features = sum(2 * (period // 2) for period in periods)
            if n_features > self.d_model // 2:
                raise ValueError(
                    f"position_init: 'periodic' needs {n_features} coordinates for periods {periods};"
                    f" d_model={self.d_model} allows at most {self.d_model // 2}"
                )
        _check_example_counts(self)  # cheap bounds first: evaluation prompts are built below
        if self.evaluates():
            _check_eval_prompts(self)

    def evaluates(self) -> bool:
        """Whether the run evaluates at all (step or time trigger, or the end of a time-budgeted run)."""
        return bool(self.eval_every or self.eval_every_s or self.checkpoint_every_s or self.time_budget_s)


def read_config_json(path: str | Path) -> dict:
    """The JSON object in ``path``; ``ValueError`` naming the file for every way it can be unusable."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"config: {path} is a directory, not a JSON file")
    if not p.is_file():
        raise ValueError(f"config: {path}: no such file")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"config: {path} is not valid JSON ({e.msg}, line {e.lineno} column {e.colno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"config: {path} is not a UTF-8 text file") from None
    if not isinstance(data, dict):
        raise ValueError(f'config: {path} must be a JSON object ({{"key": value, ...}}), not {type(data).__name__}')
    return data


#: field -> (kind, lowest, highest, lowest allowed?): ints are checked as ints (bool refused), floats must be finite.
RANGES: dict[str, tuple[type, float, float, bool]] = {
    "n_layers": (int, 1, math.inf, True),
    "d_model": (int, 1, math.inf, True),
    "n_heads": (int, 1, math.inf, True),
    "n_ctx": (int, 2, math.inf, True),
    "batch_size": (int, 1, math.inf, True),
    "steps": (int, 1, math.inf, True),
    "lr": (float, 0, 1, False),
    "warmup_steps": (int, 0, math.inf, True),
    "min_lr_ratio": (float, 0, 1, True),
    "weight_decay": (float, 0, math.inf, True),
    "grad_clip": (float, 0, math.inf, False),
    "eval_every": (int, 0, math.inf, True),
    "eval_prompts": (int, 1, math.inf, True),
    "eval_n_examples": (int, 1, math.inf, True),
    "checkpoint_every": (int, 0, math.inf, True),
    "seed": (int, 0, math.inf, True),
    "threads": (int, 1, 1024, True),
    "curriculum_steps": (int, 0, math.inf, True),
    "curriculum_start_tasks": (int, 1, math.inf, True),
    "grad_accum": (int, 1, math.inf, True),
    "data_workers": (int, 0, 256, True),
    "prefetch": (int, 1, 1024, True),
    "time_budget_s": (float, 0, math.inf, True),
    "warmup_fraction": (float, 0, 1, True),
    "eval_every_s": (float, 0, math.inf, True),
    "checkpoint_every_s": (float, 0, math.inf, True),
}


def _range_text(kind: type, lo: float, hi: float, closed: bool) -> str:
    what = "an integer" if kind is int else "a number"
    low = f"{'>=' if closed else '>'} {lo:g}"
    return f"{what} {low}" if math.isinf(hi) else f"{what} {low} and <= {hi:g}"


def check_value(name: str, value, kind: type, lo: float, hi: float, closed: bool) -> None:
    """``ValueError`` unless ``value`` is a ``kind`` in the range (``name`` is what the message calls it)."""
    ok_type = (
        isinstance(value, int) if kind is int else isinstance(value, (int, float)) and math.isfinite(value)
    ) and not isinstance(value, bool)
    in_range = ok_type and (value >= lo if closed else value > lo) and value <= hi
    if not in_range:
        raise ValueError(f"{name}: {value!r} is out of range; must be {_range_text(kind, lo, hi, closed)}")


def check_ranges(cfg: TrainConfig) -> None:
    """Every numeric field (and every family weight and example count) within its range."""
    for name, spec in RANGES.items():
        check_value(name, getattr(cfg, name), *spec)
    for kind, name in ((dict, "families"), (dict, "n_examples"), (dict, "tasks")):
        if not isinstance(getattr(cfg, name), kind) or (name == "families" and not cfg.families):
            raise ValueError(f"{name}: must be a non-empty JSON object, got {getattr(cfg, name)!r}")
    for fam, weight in cfg.families.items():
        check_value(f"families[{fam!r}]", weight, float, 0, math.inf, False)
    for fam, n in cfg.n_examples.items():
        check_value(f"n_examples[{fam!r}]", n, int, 1, math.inf, True)
    if cfg.grad_accum > cfg.batch_size:
        raise ValueError(f"grad_accum: {cfg.grad_accum} must be at most batch_size={cfg.batch_size}")
    for name in ("batch_by_family", "compile"):
        if not isinstance(getattr(cfg, name), bool):
            raise ValueError(f"{name}: {getattr(cfg, name)!r}; must be true or false")


def _check_choices(cfg: TrainConfig) -> None:
    for name, valid in (
        ("position_init", POSITION_INITS),
        ("precision", PRECISIONS),
        ("checkpoint_dtype", CHECKPOINT_DTYPES),
    ):
        if getattr(cfg, name) not in valid:
            raise ValueError(f"{name}: {getattr(cfg, name)!r}; valid: {', '.join(valid)}")


def _check_example_counts(cfg: TrainConfig) -> None:
    """Example counts that cannot fit ``n_ctx`` (each example takes at least one token, the query and BOS two
    more), refused before any prompt is built (a count of 100000 used to build 8 prompts of that size first)."""
    counts = [(f"n_examples[{name!r}]", n) for name, n in cfg.n_examples.items()]
    if cfg.evaluates():
        counts.append(("eval_n_examples", cfg.eval_n_examples))
    for name, n in counts:
        if n + 2 > cfg.n_ctx:
            raise ValueError(
                f"{name}: {n} examples take at least {n + 2} tokens with the query and BOS, more than "
                f"n_ctx={cfg.n_ctx}; use fewer examples or raise n_ctx"
            )


def _check_eval_prompts(cfg: TrainConfig) -> None:
    """Held-out evaluation prompts (with query and answer) must fit the context and sit at trained positions."""
    for name in cfg.families:
        longest = max(
            len(p.text) + max(len(a) for a in p.answers) + 1
            for p in build_prompts(
                name,
                resolve_tasks(get_family(name), cfg.tasks.get(name))[:1],
                n_examples=cfg.eval_n_examples,
                n_prompts=8,
                seed=0,
            )
        )
        if longest > cfg.n_ctx:
            raise ValueError(
                f"n_ctx: {cfg.n_ctx} is shorter than a {name} evaluation prompt with eval_n_examples="
                f"{cfg.eval_n_examples} (up to {longest} tokens); raise n_ctx or lower eval_n_examples"
            )
        if cfg.n_examples[name] <= cfg.eval_n_examples:
            # the query and answer of an evaluation prompt sit after eval_n_examples examples: positions a
            # training prompt with no more examples never reaches, whose embeddings stay untrained
            raise ValueError(
                f"n_examples: {name} has {cfg.n_examples[name]} examples per training prompt; it must exceed"
                f" eval_n_examples={cfg.eval_n_examples} so evaluation queries sit at trained positions"
            )
