"""``interp capture``: a store from the command line; a rerun continues it; bad input and a full disk are one line."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch

import interp.cli as cli
from interp.prompts import PromptSpec
from interp.store import ActivationStore, capture_to

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["capture", "--family", "bias_add", "--tasks", "add2,add7", "--n-prompts", "30", "--n-examples", "6",
        "--layers", "1,3", "--hooks", "resid_mid,resid_post", "--shard-size", "12"]  # fmt: skip


@pytest.fixture
def embedded(monkeypatch, embedded_model):
    """The command's model loading answered by the session's embedded model (the loading itself is tested elsewhere)."""
    monkeypatch.setattr(cli, "load_checked_model", lambda *args, **kwargs: embedded_model)
    return embedded_model


def test_capture_writes_a_store_equal_to_capture_to_and_a_rerun_continues_it(tmp_path, embedded, capsys):
    out = tmp_path / "store"
    assert cli.main([*ARGS, "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"capturing 30 prompts into {out} (shards of 12)"
    assert printed[1].startswith(f"{out}: 30 prompts in 3 shards")
    spec = PromptSpec("bias_add", ("add2", "add7"), n_examples=6, n_prompts=30, seed=0)
    same = capture_to(tmp_path / "library", embedded, spec, [1, 3], ["resid_mid", "resid_post"], shard_size=12)
    store = ActivationStore.open(out)
    assert store.config == same.config and torch.equal(store.load("resid_mid"), same.load("resid_mid"))
    manifest = (out / "manifest.json").read_bytes()
    (out / "shard-000001.safetensors").unlink()
    first_only = json.loads(manifest) | {"shards": json.loads(manifest)["shards"][:1]}
    (out / "manifest.json").write_text(json.dumps(first_only))  # as if killed after shard 0
    assert cli.main([*ARGS, "--out", str(out)]) == 0  # continues: shards 1 and 2 again
    assert (out / "manifest.json").read_bytes() == manifest


def test_a_store_of_other_settings_is_refused_naming_the_field(tmp_path, embedded, capsys):
    out = tmp_path / "store"
    assert cli.main([*ARGS, "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main([*ARGS, "--seed", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"interp: error: --out: {out} was captured with another configuration; it differs in ")
    assert "prompts.seed (0 in the store, 3 asked for)" in err


def test_a_full_disk_is_one_line_with_exit_status_1_and_the_store_resumes(tmp_path, embedded, monkeypatch, capsys):
    import interp.store.shards as shards

    real = shards.save_tensors

    def full(tensors, path, metadata):
        if ".shard-000002" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tensors, path, metadata)

    monkeypatch.setattr(shards, "save_tensors", full)
    out = tmp_path / "store"
    assert cli.main([*ARGS, "--out", str(out)]) == cli.EXIT_DISK_FULL == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("interp: error: disk full while writing shard 2 of the store")
    assert "keeps its 2 finished shard(s) of 3" in err
    monkeypatch.setattr(shards, "save_tensors", real)
    assert cli.main([*ARGS, "--out", str(out)]) == 0 and ActivationStore.open(out).complete


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--hooks", "resid_out"], "--hooks: 'resid_out' is not a residual hook point; valid: resid_pre"),
        (["--layers", "1,x"], "--layers: malformed '1,x'; expected comma-separated integers"),
        (["--shard-size", "0"], "--shard-size: must be >= 1, got 0"),
        (["--mix", "1/2,1/3"], "--mix: values must sum to 1"),
        (["--store-dtype", "int8"], "argument --store-dtype: invalid choice: 'int8'"),
    ],
)
def test_bad_input_is_one_line_before_any_model_loads(extra, message, tmp_path, capsys, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(cli, "load_checked_model", no_model)
    with pytest.raises(SystemExit) if extra[0] == "--store-dtype" else nullcontext():  # argparse's own exit
        assert cli.main([*ARGS, *extra, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "s").exists()


def test_a_layer_the_model_lacks_names_the_flag(tmp_path, embedded, capsys):
    without_layers = [a for i, a in enumerate(ARGS) if "--layers" not in ARGS[max(i - 1, 0) : i + 1]]
    assert cli.main([*without_layers, "--layers", "9", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("interp: error: --layers: ") and "9" in err and len(err.splitlines()) == 1


def test_bad_input_fails_in_a_fresh_process_before_torch_is_imported(tmp_path):
    probe = (
        "import sys; from interp.cli import main; rc = main(sys.argv[1:]); print('torch' in sys.modules); sys.exit(rc)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = ["capture", "--family", "bias_add", "--hooks", "resid_out", "--out", str(tmp_path / "s")]
    res = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, env=env)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stdout.strip() == "False" and not (tmp_path / "s").exists()
