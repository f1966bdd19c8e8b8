"""A two-token-answer family for the generation-collapse study, and the small model trained on it.

``two_digit_shift``: single digit x, task ``shift{b}`` answers the two digits (x + b) mod 10 and (x + 2b) mod 10
(``3>45`` for b = 1). Given x and the first answer digit, the second is determined (b = digit − x), so after
generating token 1 a model can either *commit* (continue the task its own first digit implies) or keep following
the in-context mixture (then the second digit of the other task, a "hybrid", gets probability): exactly the
question of the paper's claim 5 (docs/science.md §5), which the embedded model's one-character answers cannot ask.

    python experiments/two_digit_shift.py train   # ~10 min on one CPU thread → runs/two_digit_shift/final
    python experiments/two_digit_shift.py study   # → figures/generation_collapse_two_digit/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from interp.models import load_model
from interp.studies.generation_collapse import GenerationCollapseConfig, run
from interp.tasks import Family, Task, family_names, register_family
from interp.training import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "experiments" / "configs" / "two_digit_shift.json"
RUN = ROOT / "runs" / "two_digit_shift"
SHIFTS = (1, 7, 4, 9)


def _answer(b: int):
    return lambda x: f"{(x + b) % 10}{(x + 2 * b) % 10}"


def two_digit_shift() -> Family:
    """``3>45``: task ``shift{b}`` answers (x + b) mod 10 then (x + 2b) mod 10."""
    return Family(
        name="two_digit_shift",
        tasks=tuple(Task(f"shift{b}", _answer(b), f"(x + {b}) mod 10, (x + {2 * b}) mod 10") for b in SHIFTS),
        sample_input=lambda rng: int(rng.integers(10)),
        render=str,
        separator=">",
        description="x uniform in 0..9",
        n_inputs=10,
    )


def register() -> None:
    if "two_digit_shift" not in family_names():
        register_family(two_digit_shift())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=("train", "study"))
    ap.add_argument("--run", default=str(RUN), help="run directory (default runs/two_digit_shift)")
    ap.add_argument("--out", default=str(ROOT / "figures" / "generation_collapse_two_digit"))
    args = ap.parse_args(argv)
    register()
    if args.command == "train":
        print(f"model written to {train(TrainConfig.from_json(CONFIG), args.run, progress=False)}")
        return
    final = Path(args.run).resolve() / "final"
    model = load_model(str(final.relative_to(ROOT)) if final.is_relative_to(ROOT) else str(final))
    # pairs whose second digits differ (shift4 and shift9 share theirs: 2·4 ≡ 2·9 mod 10), so a hybrid is visible
    config = GenerationCollapseConfig(
        settings=[("two_digit_shift", ("shift1", "shift7")), ("two_digit_shift", ("shift1", "shift4"))],
        n_examples=16,
    )
    run(model, config, args.out)


if __name__ == "__main__":
    main()
