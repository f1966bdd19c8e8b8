"""A two-token-answer family for the generation-collapse study, and the small model trained on it.

``two_digit_shift``: single digit x, task ``shift{b}`` answers the two digits (x + b) mod 10 and (x + 2b) mod 10
(``3>45`` for b = 1). Given x and the first answer digit, the second is determined (b = digit − x), so after
generating token 1 a model can either *commit* (continue the task its own first digit implies) or keep following
the in-context mixture (then the second digit of the other task, a "hybrid", gets probability): exactly the
question of the paper's claim 5 (docs/science.md §5), which the embedded model's one-character answers cannot ask.

The family is built in (:func:`interp.tasks.two_digit_shift`) and the trained model ships in
``interp/checkpoints/two_digit_shift`` (``interp.load_model("two_digit")``).

    python experiments/two_digit_shift.py train   # ~4 min on one CPU thread → runs/two_digit_shift, then shipped
    python experiments/two_digit_shift.py study   # → figures/generation_collapse_two_digit/
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from interp.models import TWO_DIGIT_DIR, load_model
from interp.studies.generation_collapse import GenerationCollapseConfig, run
from interp.training import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "experiments" / "configs" / "two_digit_shift.json"
RUN = ROOT / "runs" / "two_digit_shift"


def ship(final: Path, target: Path = TWO_DIGIT_DIR) -> Path:
    """Copy a trained model directory to ``target`` (whole or not at all: copied beside it, then renamed)."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(final, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=("train", "study"))
    ap.add_argument("--run", default=str(RUN), help="training run directory (default runs/two_digit_shift)")
    ap.add_argument("--out", default=str(ROOT / "figures" / "generation_collapse_two_digit"))
    args = ap.parse_args(argv)
    if args.command == "train":
        final = train(TrainConfig.from_json(CONFIG), args.run, progress=False)
        print(f"model written to {final}; shipped to {ship(Path(final))}")
        return
    model = load_model("two_digit")
    # pairs whose second digits differ (shift4 and shift9 share theirs: 2·4 ≡ 2·9 mod 10), so a hybrid is visible
    config = GenerationCollapseConfig(
        settings=[("two_digit_shift", ("shift1", "shift7")), ("two_digit_shift", ("shift1", "shift4"))],
        n_examples=16,
    )
    run(model, config, args.out)


if __name__ == "__main__":
    main()
