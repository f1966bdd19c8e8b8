"""experiments/device_run.sh (issue 25's whole device call) and its checks, dry-run on the CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scripts import load_script
from time_limits import factor, limit_s

ROOT = Path(__file__).resolve().parents[2]


def _device_check():
    return load_script("experiments/device_check.py")


def _write(path: Path, mib: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(int(mib * 2**20))  # sparse: the size counts, not the disk


def test_outputs_within_the_limits_pass_and_each_excess_is_named(tmp_path):
    check = _device_check()
    ok = tmp_path / "ok"
    for i in range(4):
        _write(ok / f"runs.tar.part{i:02d}", 15)
    for name in ("summary.json", "console.log", "env.json", "a/b/gpu_inference.json"):
        _write(ok / name, 0.01)
    sizes, problems = check.output_problems(ok)
    assert len(sizes) == 8 and problems == []

    _write(ok / "extra.log", 0.01)  # a ninth file
    assert check.output_problems(ok)[1] == ["9 files (at most 8)"]

    big = tmp_path / "big"
    _write(big / "model.safetensors", 17)
    _write(big / "a" / "b" / "c" / "deep.json", 0.01)
    for i in range(3):
        _write(big / f"part{i}", 16)
    problems = check.output_problems(big)[1]
    assert problems == [
        "model.safetensors: 17.0 MiB (at most 16)",
        "a/b/c/deep.json: too deep (at most 2 folders down)",
        "65.0 MiB in all (at most 64)",
    ]
    assert check.main(["outputs", str(big)]) == 1 and check.main(["outputs", str(tmp_path / "ok")]) == 1
    assert check.main(["nonsense", "x"]) == 2


def _unimportable_transformer_lens(tmp_path: Path) -> Path:
    """A folder whose ``transformer_lens`` raises on import: what a device image without the carried wheels gives."""
    package = tmp_path / "site" / "transformer_lens"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('simulated: not carried')\n")
    return package.parent


def test_preflight_records_versions_and_names_a_failing_import(tmp_path, monkeypatch):
    check = _device_check()
    env = check.preflight()
    assert "preflight_error" not in env, env
    assert env["torch"] and env["transformers"] and env["transformer-lens"] and isinstance(env["gpus"], list)
    monkeypatch.syspath_prepend(str(_unimportable_transformer_lens(tmp_path)))
    monkeypatch.delitem(sys.modules, "transformer_lens", raising=False)
    assert check.preflight()["preflight_error"] == "ImportError: simulated: not carried"


def _device_run(out: Path, total: int, *args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "WORK": str(out.parent / f"{out.name}_work"),
        "INFER_S": "25",
        "WHEELS": str(out.parent / "no_wheels"),  # this environment already has everything: carry nothing
        "INFER_ARGS": "--big-params 2e6 --n-examples 10 --prompts 4 --repeats 1",
        **(extra_env or {}),
    }
    cmd = ["bash", "experiments/device_run.sh", str(out), str(total), "--plan", "experiments/configs/gpu_tiny.json"]
    cmd += ["--device=auto", "--probe-s", "2", "--startup-s", "8", "--pack-s", "2", *args]  # auto: the CPU here
    return subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s(300) + total, env=env, cwd=ROOT)


def test_the_whole_device_call_dry_run_trains_checks_and_fits_what_comes_back(tmp_path):
    """The call's wall-clock budget (60 s on an idle machine, 25 s of it for the inference check) grows with how busy
    the machine is (issue 36: on a busy machine the preflight took so long that 17 s were left to train, and the call
    refused)."""
    out = tmp_path / "out"
    scale = factor()  # the whole call and the part kept for the inference check (a busy run timed that out)
    proc = _device_run(out, int(60 * scale), extra_env={"INFER_S": str(int(25 * scale))})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    names = sorted(p.name for p in out.iterdir())
    assert names == ["console.log", "env.json", "gpu_inference.json", "runs.tar.part00", "summary.json"]
    assert "out fits the device tool's limits" in proc.stdout
    env = json.loads((out / "env.json").read_text())
    assert "preflight_error" not in env and env["gpus"] == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"][summary["chosen"]]["final"]
    inference = json.loads((out / "gpu_inference.json").read_text())
    assert inference["rows"][0]["model"].startswith("trained (") and summary["chosen"] in inference["rows"][0]["model"]
    assert all(r.get("pass", True) for r in inference["rows"])


def test_a_failed_preflight_ends_the_call_before_training(tmp_path):
    pythonpath = str(_unimportable_transformer_lens(tmp_path)) + os.pathsep + os.environ.get("PYTHONPATH", "")
    out = tmp_path / "out"
    proc = _device_run(out, int(limit_s(60)), extra_env={"PYTHONPATH": pythonpath})
    assert proc.returncode == 1
    assert json.loads((out / "env.json").read_text())["preflight_error"] == "ImportError: simulated: not carried"
    assert not (out / "summary.json").exists() and "probe" not in proc.stdout


def test_a_budget_too_small_for_training_is_refused_before_any_work(tmp_path):
    out = tmp_path / "out"
    proc = _device_run(out, 30, extra_env={"INFER_S": "25"})
    assert proc.returncode == 2 and "to train after INFER_S=25" in proc.stderr
    assert not (out / "summary.json").exists() and "probe" not in proc.stdout


def test_the_tree_that_travels_to_a_device_leaves_room_for_the_wheels():
    """A device call takes the working tree (tracked files) and the carried wheels, 64 MiB in all: a shipped model
    that grows the tree past that would make issue 25's call impossible (the wheels are ~5 MB)."""
    proc = subprocess.run(["git", "ls-files", "-z"], capture_output=True, cwd=ROOT)
    if proc.returncode != 0:
        pytest.skip("not a git checkout")
    files = [ROOT / name for name in proc.stdout.decode().split("\0") if name]
    tracked = sum(p.stat().st_size for p in files if p.is_file())
    assert tracked + 8 * 2**20 <= 64 * 2**20, f"tracked files: {tracked / 2**20:.1f} MiB"
