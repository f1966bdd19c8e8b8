"""Dry run of the prepared device script on CPU with a tiny plan: probe, choice, training, packed outputs."""

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
from time_limits import limit_s


def unpack(out, dest):
    data = b"".join(p.read_bytes() for p in sorted(out.glob("runs.tar.part*")))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def run_script(out, budget, *args):
    cmd = ["bash", "experiments/gpu_train.sh", str(out), str(budget), "--plan", "experiments/configs/gpu_tiny.json"]
    cmd += ["--device", "cpu", "--work", str(out.parent / f"{out.name}_work"), "--startup-s", "8", "--pack-s", "2"]
    cmd += args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s(300), env=script_env())


def script_env() -> dict:
    return {**os.environ, "PYTHON": sys.executable}  # the interpreter running the tests


def test_gpu_script_probes_chooses_trains_and_packs_a_loadable_model(tmp_path):
    from interp.models import load_model
    from interp.prompts import build_prompts
    from interp.scoring import greedy_correct

    out = tmp_path / "out"
    proc = run_script(out, 60, "--probe-s", "2", "--part-mb", "0.05")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["probe"]) == {"L1_d32", "L2_d48"}
    assert all(r["ok"] and r["tokens_per_s"] > 0 for r in summary["probe"].values())
    chosen = summary["chosen"]
    assert chosen == "L2_d48"  # the larger one reaches the plan's (tiny) min_tokens
    run = summary["runs"][chosen]
    assert run["returncode"] == 0 and run["final"] and run["steps_done"] > 0 and run["eval"]
    # the budget holds, up to a training process's start-up beyond --startup-s on a busy CPU
    assert summary["wall_s"] <= 60 + 30 and summary["train_budget_s"] < 60 - 8 - 2
    parts = sorted(out.glob("runs.tar.part*"))
    assert len(parts) > 1 and all(p.stat().st_size <= 0.05 * 2**20 for p in parts)
    assert (out / "console.log").is_file() and not list(out.glob("**/state.pt"))
    model = load_model(str(unpack(out, tmp_path / "unpacked") / chosen / "final"), device="cpu")
    assert model.cfg.n_layers == 2 and model.cfg.d_model == 48
    prompts = build_prompts("bias_add", ["add2"], n_examples=10, n_prompts=8, seed=5)
    assert greedy_correct(model, prompts, "add2").shape == (8,)


@pytest.mark.slow  # four training processes side by side: about a minute of budget plus start-up
def test_gpu_script_trains_a_size_family_side_by_side(tmp_path):
    out = tmp_path / "fam"
    proc = run_script(out, 60, "--mode", "family")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["runs"]) == 4 and "probe" not in summary
    unpacked = unpack(out, tmp_path / "unpacked")
    for name, run in summary["runs"].items():
        assert run["returncode"] == 0 and run["final"] and run["eval"], name
        cfg = json.loads((unpacked / name / "log.json").read_text())["config"]
        assert cfg["time_budget_s"] == summary["train_budget_s"]  # the same time budget for every size
        assert (unpacked / name / "final" / "model.safetensors").is_file()


def test_gpu_script_refuses_a_bad_plan_before_any_work(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"base": {"steps": 0}, "candidates": {"a": {}}, "family": {"a": {}}}))
    cmd = ["bash", "experiments/gpu_train.sh", str(tmp_path / "o"), "20", "--plan", str(plan), "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s(120), env=script_env())
    assert proc.returncode != 0 and "steps: 0 is out of range" in proc.stdout
    assert not (tmp_path / "o" / "summary.json").exists()


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
