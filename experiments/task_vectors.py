"""Task-vector study (docs/science.md §4) on one model: figures + ``task_vectors.json``, then the acceptance numbers.

.venv/bin/python experiments/task_vectors.py --quick
.venv/bin/python experiments/task_vectors.py --model embedded --path runs/embedded/checkpoints/step001400
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from interp.models import load_model
from interp.studies import check_study_outputs, default_out
from interp.studies.task_vectors import TaskVectorsConfig, acceptance_lines, run


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded", help="model spec for interp.models.load_model")
    parser.add_argument("--path", default=None, help="weights directory (e.g. an intermediate training checkpoint)")
    parser.add_argument("--quick", action="store_true", help="one pair, few prompts and λ points (smoke run)")
    parser.add_argument(
        "--out", help="output folder (default figures/task_vectors; with --quick figures-quick/task_vectors)"
    )
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    config = TaskVectorsConfig.quick() if args.quick else TaskVectorsConfig()
    config.validate()  # fail before loading the model
    args.out = args.out or f"{default_out(args.quick)}/task_vectors"  # a smoke run never replaces committed results
    check_study_outputs(["task_vectors"], Path(args.out).parent)
    model = load_model(args.model, path=args.path, device=args.device)
    start = time.perf_counter()
    result = run(model, config, args.out)
    print(
        f"task_vectors: {time.perf_counter() - start:.1f}s; wrote {sum(1 for p in result['paths'].values() if p)} "
        f"files under {args.out}"
    )
    print("\n".join(acceptance_lines(result["numbers"])))
    return result


if __name__ == "__main__":
    main()
