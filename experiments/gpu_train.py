"""One device call, end to end: probe the throughput of candidate sizes, then train within the rest of the budget.

    python experiments/gpu_train.py --out OUT --budget-s 540 [--plan experiments/configs/gpu_paper.json]
        [--mode best|family] [--probe-s 24] [--device auto|cuda|cpu] [--work DIR]

``--mode best`` (default): a ``--probe-s`` throughput probe split over the plan's ``candidates`` (out-of-memory
candidates retried once with twice the gradient accumulation), then the largest candidate that reaches the
plan's ``min_tokens`` in the remaining time (else the fastest) trains with a wall-clock budget (learning rate by
elapsed fraction, evaluation + half-precision checkpoint every ``checkpoint_every_s``), so a call cut short
still leaves an evaluated model. ``--mode family``: every size of the plan's ``family`` trains side by side
(one process each, same data, same time budget) for the scaling study.

Everything is written under ``--work`` (default ``OUT/work``); ``OUT`` receives ``summary.json`` (probe,
choice, per-run losses and evaluations) and ``runs.tar`` (each run's ``final`` model, ``log.json`` and, while
they fit ``--pack-mb``, its checkpoints) split into parts of at most ``--part-mb`` MiB
(``cat runs.tar.part* | tar x`` rebuilds it). A run's resumable ``state.pt`` is never packed.
"""

from __future__ import annotations

import time

T_START = time.time()  # the budget counts from here, before the heavy imports

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402
from pathlib import Path  # noqa: E402

from interp.export import write_json  # noqa: E402
from interp.training import TrainConfig, read_config_json  # noqa: E402
from interp.training.side_by_side import wait_then_stop  # noqa: E402


def plan_configs(plan: dict, section: str) -> dict[str, TrainConfig]:
    """The validated config of each entry of ``plan[section]`` (base updated by the entry's overrides)."""
    entries = plan.get(section)
    if not isinstance(entries, dict) or not entries:
        raise ValueError(f"plan: needs a non-empty {section!r} object of name -> overrides")
    out = {}
    for name, overrides in entries.items():
        unknown = set(overrides) - set(TrainConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"plan: {section}[{name!r}] overrides unknown keys {sorted(unknown)}")
        cfg = TrainConfig(**{**plan.get("base", {}), **overrides})
        cfg.validate()
        out[name] = cfg
    return out


def run_probes(configs: dict[str, TrainConfig], device: str, seconds: float) -> dict[str, dict]:
    """Throughput of each candidate (``seconds`` split evenly); out of memory → retried with grad_accum × 2."""
    from interp.training.probe import probe

    share = seconds / len(configs)
    results = {}
    for name, cfg in configs.items():
        result = probe(cfg, device, share)
        if not result["ok"] and "out of memory" in result["error"] and 2 * cfg.grad_accum <= cfg.batch_size:
            cfg.grad_accum *= 2
            result = probe(cfg, device, share)
        results[name] = {**result, "grad_accum": cfg.grad_accum}
        print(f"probe {name}: {json.dumps(results[name])}", flush=True)
    return results


def choose(probes: dict[str, dict], train_s: float, min_tokens: float) -> str:
    """The largest candidate reaching ``min_tokens`` in ``train_s`` seconds, else the fastest one."""
    ok = {n: r for n, r in probes.items() if r["ok"]}
    if not ok:
        raise RuntimeError(f"every candidate failed the probe: {json.dumps(probes)}")
    enough = [n for n, r in ok.items() if r["tokens_per_s"] * train_s >= min_tokens]
    if enough:
        return max(enough, key=lambda n: ok[n]["n_params"])
    return max(ok, key=lambda n: ok[n]["tokens_per_s"])


def launch(
    configs: dict[str, TrainConfig], work: Path, device: str, budget_s: float, startup_s: float
) -> dict[str, int | None]:
    """Train every config in its own process (side by side), each with ``budget_s`` of wall clock; wait for all."""
    procs, logs = {}, []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name, cfg in configs.items():
        run = work / name
        run.mkdir(parents=True, exist_ok=True)
        cfg.time_budget_s = budget_s
        write_json(run / "config.json", {k: getattr(cfg, k) for k in TrainConfig.__dataclass_fields__})
        cmd = [sys.executable, __file__, "--single", str(run / "config.json"), "--out", str(run), "--device", device]
        logs.append(open(run / "stdout.log", "w"))  # noqa: SIM115 (closed once every process has ended)
        procs[name] = subprocess.Popen(cmd, stdout=logs[-1], stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + budget_s + startup_s + 60  # a safety net: each run stops itself inside budget_s
    return wait_then_stop(procs, logs, expired=lambda: time.time() >= deadline)


def run_summary(run: Path, returncode: int | None) -> dict:
    """Steps, tokens, last losses and evaluations of one run (from its ``log.json``)."""
    log = json.loads((run / "log.json").read_text()) if (run / "log.json").is_file() else {}
    train = log.get("train", [])
    out = {
        "returncode": returncode,
        "steps_done": log.get("steps_done", train[-1]["step"] if train else 0),
        "tokens": log.get("tokens", 0),
        "wall_s": round(log.get("wall_s", 0.0), 1),
        "loss_last": train[-1]["loss"] if train else None,
        "losses": [(r["step"], round(r["loss"], 4)) for r in train],
        "eval": log.get("eval", []),
        "final": (run / "final" / "model.safetensors").is_file(),
    }
    if returncode not in (0, None) and (run / "stdout.log").is_file():
        out["stdout_tail"] = (run / "stdout.log").read_text()[-3000:]
    return out


def pack(work: Path, names: list[str], out: Path, pack_mb: float, part_mb: float) -> list[str]:
    """``runs.tar`` of each run's final model and log (then checkpoints, newest first, while under ``pack_mb``)."""
    members = []
    for name in names:
        run = work / name
        members += [p for p in (run / "log.json", run / "config.json", run / "stdout.log") if p.is_file()]
        members += sorted(p for p in (run / "final").rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in members)
    for name in names:
        for ckpt in sorted((work / name / "checkpoints").glob("step*"), reverse=True):
            files = [p for p in ckpt.rglob("*") if p.is_file()]
            size = sum(p.stat().st_size for p in files)
            if total + size <= pack_mb * 2**20:
                members += files
                total += size
    tar_path = work / "runs.tar"
    with tarfile.open(tar_path, "w") as tar:
        for p in members:
            tar.add(p, arcname=str(p.relative_to(work)))
    return split_file(tar_path, out, int(part_mb * 2**20))


def split_file(path: Path, out: Path, part_bytes: int) -> list[str]:
    """Copy ``path`` into ``out`` as ``NAME.partNN`` pieces of at most ``part_bytes``; returns their names."""
    names = []
    with open(path, "rb") as f:
        for i in range(100):
            chunk = f.read(part_bytes)
            if not chunk and i:
                break
            names.append(f"{path.name}.part{i:02d}")
            (out / names[-1]).write_bytes(chunk)
            if len(chunk) < part_bytes:
                break
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (summary.json and runs.tar parts)")
    ap.add_argument("--budget-s", type=float, default=540.0, help="wall-clock budget of the whole call (default 540)")
    ap.add_argument("--plan", default="experiments/configs/gpu_paper.json", help="plan JSON (base, candidates, family)")
    ap.add_argument("--mode", choices=("best", "family"), default="best", help="best: probe + one run; family: sizes")
    ap.add_argument("--probe-s", type=float, default=24.0, help="seconds of throughput probe in all (default 24)")
    ap.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto", help="default: cuda when present")
    ap.add_argument("--work", help="where runs are written in full (default OUT/work)")
    ap.add_argument(
        "--pack-mb",
        type=float,
        default=56.0,
        help="most MiB packed into runs.tar (default 56: 4 parts, leaving 4 of the 8 files and 8 of the 64 MiB a "
        "device call returns for summary, console log, env and inference JSON)",
    )
    ap.add_argument("--part-mb", type=float, default=15.0, help="most MiB per runs.tar part (default 15)")
    ap.add_argument("--startup-s", type=float, default=20.0, help="kept for a training process to start (default 20)")
    ap.add_argument("--pack-s", type=float, default=10.0, help="kept for packing the outputs (default 10)")
    ap.add_argument("--single", help=argparse.SUPPRESS)  # internal: train one config (a child process)
    args = ap.parse_args(argv)
    for name in ("budget_s", "probe_s", "pack_mb", "part_mb", "startup_s", "pack_s"):
        if not getattr(args, name) > 0:
            ap.error(f"--{name.replace('_', '-')}: must be > 0, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> None:
    t0 = T_START
    args = parse_args(argv)
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if args.single:
        from interp.training import train

        train(TrainConfig.from_json(args.single), args.out, device=device, progress=False)
        return
    section = "candidates" if args.mode == "best" else "family"
    try:
        plan = read_config_json(args.plan)
        configs = plan_configs(plan, section)  # every config error before any work
    except ValueError as e:
        raise SystemExit(f"gpu_train.py: --plan {args.plan}: {e}") from None
    _check_evaluation_available()
    out = Path(args.out)
    work = Path(args.work) if args.work else out / "work"
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    summary: dict = {"device": _device_name(device), "budget_s": args.budget_s, "mode": args.mode, "plan": plan}
    if args.mode == "best":
        summary["probe"] = run_probes(configs, device, args.probe_s)
        train_s = args.budget_s - (time.time() - t0) - args.startup_s - args.pack_s
        summary["chosen"] = choose(summary["probe"], train_s, float(plan.get("min_tokens", 0)))
        configs = {summary["chosen"]: configs[summary["chosen"]]}
        configs[summary["chosen"]].grad_accum = summary["probe"][summary["chosen"]]["grad_accum"]
    train_s = args.budget_s - (time.time() - t0) - args.startup_s - args.pack_s
    if train_s <= 0:
        raise SystemExit(f"--budget-s: {args.budget_s} s leaves no time to train after the probe")
    train_s = summary["train_budget_s"] = round(train_s, 1)
    print(f"training {', '.join(configs)} for {train_s:.0f} s on {device}", flush=True)
    codes = launch(configs, work, device, train_s, args.startup_s)
    summary["runs"] = {name: run_summary(work / name, code) for name, code in codes.items()}
    summary["packed"] = pack(work, list(configs), out, args.pack_mb, args.part_mb)
    summary["wall_s"] = round(time.time() - t0, 1)
    write_json(out / "summary.json", summary)
    for name, run in summary["runs"].items():
        last = run["eval"][-1]["accuracy"] if run["eval"] else {}
        fams = " ".join(f"{f} mean {sum(a.values()) / len(a):.3f} min {min(a.values()):.3f}" for f, a in last.items())
        print(f"{name}: rc {run['returncode']} steps {run['steps_done']} tokens {run['tokens']} {fams}", flush=True)


def _check_evaluation_available() -> None:
    """Evaluation converts to TransformerLens: fail in seconds, not at the first evaluation minutes in."""
    try:
        import transformer_lens  # noqa: F401
    except ImportError as e:
        raise SystemExit(
            f"gpu_train.py: evaluation needs transformer_lens ({e}); carry its wheels to the device machine"
        ) from None


def _device_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name() if device == "cuda" else "cpu"


if __name__ == "__main__":
    main()
