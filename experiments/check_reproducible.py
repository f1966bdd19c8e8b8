"""Rerun a training config from scratch up to one of its saved checkpoints and compare bit for bit.

    python experiments/check_reproducible.py --config experiments/configs/embedded.json --run runs/embedded \\
        --step 800 --out-json interp/checkpoints/embedded/reproducibility.json

Same seed and thread count → the rerun's checkpoint must have identical weights (SHA-256 of
``model.safetensors``) and identical held-out accuracies in the log up to that step. A full rerun costs the
whole training time; a prefix is what fits beside other work, and the JSON says which step was checked.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from interp.export import write_json
from interp.models import sha256_file
from interp.training import TrainConfig, train


def same_config(recorded: dict, cfg: TrainConfig) -> bool:
    """``cfg`` is the recorded config: equal on every recorded key, and fields added to TrainConfig since the
    recording (absent from it) still at their defaults, which reproduce what the recorded run did."""
    current = json.loads(json.dumps(asdict(cfg)))  # the log stores asdict(cfg), through JSON
    defaults = json.loads(json.dumps(asdict(TrainConfig())))
    if set(recorded) - set(current):
        return False
    return all(current[k] == recorded[k] for k in recorded) and all(
        current[k] == defaults[k] for k in set(current) - set(recorded)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="training config JSON of the original run")
    ap.add_argument("--run", required=True, help="the original run directory (with checkpoints/ and log.json)")
    ap.add_argument("--step", type=int, required=True, help="a checkpoint step saved by the original run")
    ap.add_argument("--out-json", help="where to write the comparison (printed either way)")
    args = ap.parse_args()
    cfg = TrainConfig.from_json(args.config)
    original = Path(args.run) / "checkpoints" / f"step{args.step:06d}"
    if not (original / "model.safetensors").is_file():
        saved = sorted(p.name for p in (Path(args.run) / "checkpoints").glob("step*"))
        raise SystemExit(f"--step: no checkpoint {original}; saved: {', '.join(saved) or 'none'}")
    original_log = json.loads((Path(args.run) / "log.json").read_text())
    if not same_config(original_log["config"], cfg):
        raise SystemExit(f"--config: {args.config} differs from the config recorded in {args.run}/log.json")
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="rerun.") as tmp:
        train(cfg, tmp, resume=False, progress=False, until=args.step)
        rerun = Path(tmp) / "checkpoints" / f"step{args.step:06d}"
        rerun_log = json.loads((Path(tmp) / "log.json").read_text())
        sha_a, sha_b = sha256_file(original / "model.safetensors"), sha256_file(rerun / "model.safetensors")
    evals_a = [e["accuracy"] for e in original_log["eval"] if e["step"] <= args.step]
    evals_b = [e["accuracy"] for e in rerun_log["eval"]]
    losses_a = [r["loss"] for r in original_log["train"] if r["step"] <= args.step]
    losses_b = [r["loss"] for r in rerun_log["train"]]
    result = {
        "config": args.config,
        "step": args.step,
        "threads": cfg.threads,
        "seed": cfg.seed,
        "weights_identical": sha_a == sha_b,
        "original_sha256": sha_a,
        "rerun_sha256": sha_b,
        "eval_accuracies_identical": evals_a == evals_b,
        "n_evals_compared": len(evals_b),
        "losses_identical": losses_a == losses_b,
        "rerun_wall_s": round(time.time() - start, 1),
    }
    print(json.dumps(result, indent=2))
    if args.out_json:
        write_json(args.out_json, result)


if __name__ == "__main__":
    main()
