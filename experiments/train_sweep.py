"""Train several variants of one config side by side and summarise their learning curves.

Each variant is the base config with some keys overridden; each runs in its own process
(``interp train``) so a GPU is shared by all of them, and every process stops at a common wall-clock
deadline (its ``log.json``, written every 50 steps, is kept). The summary lists, per variant and
evaluation step, the mean and minimum held-out single-task accuracy of each family.

Used to explore which training choices make in-context retrieval learnable within the CPU budget
(see ``experiments/logs/README.md``); the shipped model itself is trained on the CPU.

Example (seconds, on a CPU)::

    python experiments/train_sweep.py --base experiments/configs/tiny.json \\
        --variants '{"a": {}, "b": {"lr": 3e-3}}' --out-dir runs/sweep --out-json runs/sweep/summary.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from interp.export import write_json
from interp.training import TRAIN_DEVICES, TrainConfig, read_config_json
from interp.training.side_by_side import wait_then_stop


def variant_configs(base: dict, variants: dict[str, dict]) -> dict[str, TrainConfig]:
    """The validated config of each variant (base updated by its overrides)."""
    out = {}
    for name, overrides in variants.items():
        unknown = set(overrides) - set(TrainConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"variants: {name!r} overrides unknown keys {sorted(unknown)}")
        cfg = TrainConfig(**{**base, **overrides})
        cfg.validate()
        out[name] = cfg
    return out


def summarise(log: dict) -> dict:
    """Per evaluation: mean and minimum accuracy per family; plus the last training loss and steps done."""
    evals = []
    for e in log.get("eval", []):
        fams = {f: {"mean": sum(a.values()) / len(a), "min": min(a.values())} for f, a in e["accuracy"].items()}
        evals.append({"step": e["step"], "wall_s": round(e["wall_s"], 1), **fams})
    train = log.get("train", [])
    return {
        "steps_done": train[-1]["step"] if train else 0,
        "last_loss": train[-1]["loss"] if train else None,
        "wall_s": round(log.get("wall_s", 0.0), 1),
        "tokens": log.get("tokens", 0),
        "eval": evals,
        "last_accuracy": log["eval"][-1]["accuracy"] if log.get("eval") else None,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="base JSON config")
    ap.add_argument("--variants", required=True, help="JSON (or a path to one): {name: {key: value, ...}}")
    ap.add_argument("--out-dir", required=True, help="one run directory per variant goes here")
    ap.add_argument("--out-json", required=True, help="summary JSON (written atomically)")
    ap.add_argument("--device", default="cpu", choices=TRAIN_DEVICES)
    ap.add_argument("--deadline-s", type=float, default=600.0, help="stop every run after this many seconds")
    args = ap.parse_args(argv)

    text = Path(args.variants).read_text() if Path(args.variants).is_file() else args.variants
    variants = json.loads(text)
    base = read_config_json(args.base)  # errors name the file
    configs = variant_configs(base, variants)  # every error before any process starts
    out_dir = Path(args.out_dir)
    procs, logs = {}, []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name, cfg in configs.items():
        run = out_dir / name
        run.mkdir(parents=True, exist_ok=True)
        write_json(run / "config.json", {k: getattr(cfg, k) for k in TrainConfig.__dataclass_fields__})
        cmd = [sys.executable, "-m", "interp", "train", "--config", str(run / "config.json"), "--out", str(run)]
        cmd += ["--quiet", "--device", args.device]
        logs.append(open(run / "stdout.log", "w"))  # noqa: SIM115 (closed once every process has ended)
        procs[name] = subprocess.Popen(cmd, stdout=logs[-1], stderr=subprocess.STDOUT, env=env)
    t0 = time.time()
    wait_then_stop(procs, logs, expired=lambda: time.time() - t0 >= args.deadline_s, poll_s=2)
    summary = {"base": base, "variants": variants, "device": args.device, "deadline_s": args.deadline_s, "runs": {}}
    for name in configs:
        log_path = out_dir / name / "log.json"
        log = json.loads(log_path.read_text()) if log_path.exists() else {}
        summary["runs"][name] = {"returncode": procs[name].returncode, **summarise(log)}
        if procs[name].returncode not in (0, None, -15):
            summary["runs"][name]["stdout_tail"] = (out_dir / name / "stdout.log").read_text()[-2000:]
    write_json(args.out_json, summary)
    for name, run in summary["runs"].items():
        last = run["eval"][-1] if run["eval"] else {}
        fams = " ".join(f"{f} mean {v['mean']:.2f} min {v['min']:.2f}" for f, v in last.items() if isinstance(v, dict))
        print(f"{name:24s} steps {run['steps_done']:6d} loss {run['last_loss']} {fams}")


if __name__ == "__main__":
    main()
