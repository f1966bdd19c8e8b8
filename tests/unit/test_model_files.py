"""A broken model folder is one line naming the file and the fault, in Python and on the command line (issue 36: a
truncated ``model.safetensors`` gave a raw ``SafetensorError`` and a 34-line traceback; sizes in ``config.json``
that do not match the weights, 35 lines; a bad ``training.json``, a message without the file's name). Each test
copies the shipped embedded checkpoint and damages the copy."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from interp.cli import main
from interp.model_files import ModelFolderError, check_weight_files, read_trained_examples
from interp.models import embedded_model_dir, load_model


def _halve(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _config(**changes) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config.update({k: v(config[k]) if callable(v) else v for k, v in changes.items()})
        (folder / "config.json").write_text(json.dumps(config))

    return damage


def _sharded_with_a_missing_shard(folder: Path) -> None:
    (folder / "model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    weight_map = {"transformer.wte.weight": "model-00001-of-00002.safetensors", "x": "model-00002-of-00002.safetensors"}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def _garbage_bin(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not a torch file at all" * 40)


# (name, damage, the file the message names, a phrase of the message)
BROKEN = [
    ("truncated", lambda d: _halve(d / "model.safetensors"), "model.safetensors", "truncated or damaged"),
    ("empty", lambda d: (d / "model.safetensors").write_bytes(b""), "model.safetensors", "empty file"),
    ("garbage", lambda d: (d / "model.safetensors").write_bytes(b"\x00junk" * 99), "model.safetensors", "not a whole"),
    ("missing shard", _sharded_with_a_missing_shard, "model-00002-of-00002.safetensors", "missing"),
    ("garbage bin", _garbage_bin, "pytorch_model.bin", "not a readable torch file"),
    ("wider config", _config(n_embd=lambda n: 2 * n), "config.json", "is [384] in the weights but [768]"),
    ("more layers", _config(n_layer=lambda n: n + 2), "config.json", "has no weights for 24 tensor(s)"),
    ("fewer layers", _config(n_layer=lambda n: n - 1), "config.json", "has no place for 11 tensor(s)"),
    ("bigger vocab", _config(vocab_size=lambda n: n + 10), "config.json", "sizes do not match"),
    ("training.json not JSON", lambda d: (d / "training.json").write_text("{"), "training.json", "not valid JSON"),
    (
        "training.json bad value",
        lambda d: (d / "training.json").write_text(json.dumps({"config": {"n_examples": {"bias_add": "many"}}})),
        "training.json",
        'config.n_examples must map each family to a positive integer, got {"bias_add": "many"}',
    ),
]  # fmt: skip


@pytest.fixture
def broken(request, tmp_path) -> tuple[Path, str, str]:
    name, damage, file, phrase = request.param
    folder = tmp_path / "model"
    shutil.copytree(embedded_model_dir(), folder)
    damage(folder)
    return folder, file, phrase


@pytest.mark.parametrize("broken", BROKEN, ids=[case[0] for case in BROKEN], indirect=True)
def test_load_model_names_the_file_and_the_fault_in_one_line(broken):
    folder, file, phrase = broken
    with pytest.raises(ValueError) as err:
        load_model(str(folder), device="cpu")
    message = str(err.value)
    assert str(folder) in message and file in message and phrase in message and "\n" not in message, message
    assert "weights_only" not in message and "Traceback" not in message


@pytest.mark.parametrize("broken", BROKEN, ids=[case[0] for case in BROKEN], indirect=True)
def test_the_command_line_says_it_in_one_line_without_a_traceback(broken, capsys):
    folder, file, phrase = broken
    argv = ["measure", "--family", "bias_add", "--tasks", "add1,add7", "--n-prompts", "2", "--model", str(folder)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("interp: error: --model: "), err
    assert file in err and phrase in err


def test_a_whole_folder_passes_every_check():
    check_weight_files(embedded_model_dir())
    assert read_trained_examples(embedded_model_dir()) == {"retrieval": 24, "bias_add": 24}


def test_an_old_format_torch_file_that_cannot_be_mapped_is_still_read(tmp_path):
    from safetensors.torch import load_file

    folder = tmp_path / "model"
    shutil.copytree(embedded_model_dir(), folder)
    old_format = {"_use_new_zipfile_serialization": False}
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin", **old_format)
    (folder / "model.safetensors").unlink()
    check_weight_files(folder)
    with pytest.raises(ModelFolderError, match="training.json: not valid JSON"):
        (folder / "training.json").write_text("")
        read_trained_examples(folder)
