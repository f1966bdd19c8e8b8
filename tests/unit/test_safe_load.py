"""Files from elsewhere never run code (issue 36): a run folder's ``state.pt``, a model folder that asks for code of its
own (``auto_map``, an unknown ``model_type``, a custom tokenizer), a pickled ``pytorch_model.bin``. Each test builds
the hostile files itself, answers "y" to any prompt (as a careless user would), and asserts that the toolkit refused
in one line naming the file and the field, that nothing prompted, and that the marker the code would write is absent.
"""

from __future__ import annotations

import ast
import builtins
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from time_limits import limit_s

from interp.models import context_and_tokenizer, embedded_model_dir, load_model
from interp.safe_load import UnsafeFileError, load_torch_file, refuse_custom_code

ROOT = Path(__file__).resolve().parents[2]


class RunsCode:
    """A pickle whose loading would run ``code`` (what a hostile ``state.pt`` or ``pytorch_model.bin`` holds)."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def marker_code(marker: Path) -> str:
    return f"import pathlib; pathlib.Path({str(marker)!r}).write_text('code ran')\n"


@pytest.fixture
def prompts(monkeypatch, tmp_path):
    """Every ``input()`` prompt, answered "y" (transformers asks "run the custom code? [y/N]" this way); transformers'
    module cache in a temporary folder, in case a loader did copy a folder's code there."""
    asked: list[str] = []

    def answer_yes(prompt: str = "") -> str:
        asked.append(prompt)
        return "y"

    monkeypatch.setattr(builtins, "input", answer_yes)
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "hf_modules"))
    return asked


def hostile_model_folder(tmp_path: Path, marker: Path, *, tokenizer_only: bool = False, auto_map: bool = True) -> Path:
    """The embedded model's folder whose ``config.json`` (or only ``tokenizer_config.json``) points transformers at a
    ``hostile.py`` of its own, which writes ``marker`` when imported."""
    folder = tmp_path / "hostile_model"
    shutil.copytree(embedded_model_dir(), folder)
    (folder / "hostile.py").write_text(
        marker_code(marker) + "class HostileConfig: pass\nclass HostileModel: pass\nclass HostileTokenizer: pass\n"
    )
    if tokenizer_only:
        tok = json.loads((folder / "tokenizer_config.json").read_text())
        tok.update(tokenizer_class="HostileTokenizer", auto_map={"AutoTokenizer": ["hostile.HostileTokenizer", None]})
        (folder / "tokenizer_config.json").write_text(json.dumps(tok))
        return folder
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="hostile", architectures=["HostileModel"])
    if auto_map:
        config["auto_map"] = {"AutoConfig": "hostile.HostileConfig", "AutoModelForCausalLM": "hostile.HostileModel"}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def assert_refused(err: pytest.ExceptionInfo, folder: Path, field: str, marker: Path, asked: list[str]) -> None:
    message = str(err.value)
    assert str(folder) in message and field in message and "\n" not in message, message
    assert not asked, f"prompted: {asked}"
    assert not marker.exists(), "the folder's code ran"


def test_a_model_folder_with_auto_map_is_refused_by_load_model(tmp_path, prompts):
    marker = tmp_path / "ran"
    folder = hostile_model_folder(tmp_path, marker)
    with pytest.raises(UnsafeFileError) as err:
        load_model(str(folder), device="cpu")
    assert_refused(err, folder, "auto_map", marker, prompts)


def test_an_unknown_model_type_is_refused_before_transformers_reads_the_folder(tmp_path, prompts, monkeypatch):
    import transformers

    marker = tmp_path / "ran"
    folder = hostile_model_folder(tmp_path, marker, auto_map=False)

    def never(*args, **kwargs):
        raise AssertionError("transformers was asked")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", never)
    with pytest.raises(UnsafeFileError) as err:
        load_model(str(folder), device="cpu")
    assert_refused(err, folder, "model_type 'hostile'", marker, prompts)


def test_a_custom_tokenizer_is_refused_by_the_context_check_and_by_load_model(tmp_path, prompts):
    marker = tmp_path / "ran"
    folder = hostile_model_folder(tmp_path, marker, tokenizer_only=True)
    with pytest.raises(UnsafeFileError) as err:
        context_and_tokenizer(str(folder))  # the command line's check that prompts fit, before the model loads
    assert_refused(err, folder, "auto_map", marker, prompts)
    assert "tokenizer_config.json" in str(err.value)
    with pytest.raises(UnsafeFileError) as err:
        load_model(str(folder), device="cpu")
    assert_refused(err, folder, "auto_map", marker, prompts)


def test_gpt2_from_a_path_and_from_the_hugging_face_cache_is_refused(tmp_path, prompts, monkeypatch):
    import huggingface_hub.constants

    marker = tmp_path / "ran"
    folder = hostile_model_folder(tmp_path, marker)
    monkeypatch.setenv("INTERP_GPT2_PATH", str(folder))
    with pytest.raises(UnsafeFileError) as err:
        load_model("gpt2", device="cpu")
    assert_refused(err, folder, "auto_map", marker, prompts)
    monkeypatch.delenv("INTERP_GPT2_PATH")
    cache = tmp_path / "hub"  # the local Hugging Face cache's layout for the repo id evil/model
    snapshot = cache / "models--evil--model" / "snapshots" / ("0" * 40)
    shutil.copytree(folder, snapshot)
    (cache / "models--evil--model" / "refs").mkdir()
    (cache / "models--evil--model" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    with pytest.raises(UnsafeFileError) as err:
        load_model("evil/model", device="cpu")
    assert_refused(err, snapshot, "auto_map", marker, prompts)


def test_the_command_line_refuses_a_hostile_model_folder_without_prompting(tmp_path):
    """stdin closed and not a terminal: the refusal is one line, exit 2, no prompt text, no code run."""
    marker = tmp_path / "ran"
    folder = hostile_model_folder(tmp_path, marker)
    env = {"HF_MODULES_CACHE": str(tmp_path / "hf_modules"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, "-m", "interp", "measure", "--family", "bias_add", "--model", str(folder), "--n-prompts", "2"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=limit_s(300),
        cwd=ROOT,
        env=env,
    )
    assert res.returncode == 2, res.stderr
    line = res.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith("interp: error: --model: "), line
    assert str(folder) in line and "auto_map" in line and "[y/N]" not in res.stdout + res.stderr
    assert not marker.exists()


def test_a_hostile_state_in_the_run_folder_is_not_run_by_interp_train(tmp_path, capsys):
    """Resuming is the default: a ``state.pt`` placed in ``--out`` was unpickled with ``weights_only=False``."""
    from interp.cli import main

    marker = tmp_path / "ran"
    out = tmp_path / "run"
    out.mkdir()
    torch.save({"model": {}, "opt": {}, "log": RunsCode(marker_code(marker)), "step": 1}, out / "state.pt")
    cfg = json.loads((ROOT / "experiments/configs/tiny.json").read_text())
    (tmp_path / "tiny.json").write_text(json.dumps({**cfg, "steps": 2, "eval_every": 0}))
    assert main(["train", "--config", str(tmp_path / "tiny.json"), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("interp: error: --out: "), err
    assert str(out / "state.pt") in err and "--no-resume" in err and "weights_only=False" not in err
    assert not marker.exists(), "the state's code ran"


def test_a_state_of_any_other_kind_is_refused_in_one_line_and_a_real_one_loads(tmp_path):
    from interp.training.checkpoints import load_state, save_state

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    save_state(tmp_path / "state.pt", model, opt, {"config": {"seed": 0}, "train": [{"loss": 1.5}]}, 7)
    assert load_state(tmp_path / "state.pt", model, opt, "cpu") == (
        {"config": {"seed": 0}, "train": [{"loss": 1.5}]},
        7,
    )
    import numpy as np

    torch.save({"model": {}, "opt": {}, "log": {"x": np.float64(1.0)}, "step": 1}, tmp_path / "numpy.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save([1, 2], tmp_path / "list.pt")
    for name, words in (
        ("numpy.pt", "holds an object"),
        ("empty.pt", "not a readable torch file"),
        ("list.pt", "not a"),
    ):
        with pytest.raises(ValueError) as err:
            load_state(tmp_path / name, model, opt, "cpu")
        assert str(err.value).startswith("out: ") and name in str(err.value) and words in str(err.value), err.value
        assert "--no-resume" in str(err.value) and "weights_only" not in str(err.value)


def test_a_pickled_pytorch_model_bin_is_refused_naming_the_file_and_never_suggesting_weights_only_false(
    tmp_path, prompts
):
    marker = tmp_path / "ran"
    folder = tmp_path / "bin_model"
    shutil.copytree(embedded_model_dir(), folder)
    (folder / "model.safetensors").unlink()
    torch.save({"transformer.wte.weight": RunsCode(marker_code(marker))}, folder / "pytorch_model.bin")
    with pytest.raises(UnsafeFileError) as err:
        load_model(str(folder), device="cpu")
    assert_refused(err, folder / "pytorch_model.bin", "holds an object (exec)", marker, prompts)
    assert "weights_only" not in str(err.value)


def test_a_plain_pytorch_model_bin_still_loads(tmp_path):
    from safetensors.torch import load_file

    folder = tmp_path / "bin_model"
    shutil.copytree(embedded_model_dir(), folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    assert load_model(str(folder), device="cpu").cfg.n_layers == 4


def test_load_torch_file_and_refuse_custom_code_name_the_file(tmp_path):
    torch.save({"x": RunsCode("raise SystemExit")}, tmp_path / "x.pt")
    with pytest.raises(UnsafeFileError, match=r"x\.pt: holds an object \(exec\)"):
        load_torch_file(tmp_path / "x.pt")
    (tmp_path / "generation_config.json").write_text(json.dumps({"custom_pipelines": {}}))
    with pytest.raises(UnsafeFileError, match=r"generation_config\.json asks to run code of its own"):
        refuse_custom_code(tmp_path)
    refuse_custom_code(embedded_model_dir())  # the shipped model asks for nothing


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name
    ]


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
        if (
            kw.arg is None
            and isinstance(kw.value, ast.Name)
            and kw.value.id == "NO_REMOTE_CODE"
            and name != "weights_only"
        ):
            return False
    return "absent"


def test_every_loader_in_the_code_passes_no_remote_code_and_weights_only():
    """The class, not the instances: every ``from_pretrained`` / ``boot_transformers`` call in interp/, experiments/
    and benchmarks/ says ``trust_remote_code=False`` (or ``**NO_REMOTE_CODE``), ``torch.load`` appears only in
    :mod:`interp.safe_load` with ``weights_only=True``, and nothing unpickles."""
    found = 0
    for path in [*ROOT.glob("interp/**/*.py"), *ROOT.glob("experiments/**/*.py"), *ROOT.glob("benchmarks/**/*.py")]:
        tree = ast.parse(path.read_text())
        for call in _calls(tree, "from_pretrained") + _calls(tree, "boot_transformers"):
            found += 1
            assert _keyword(call, "trust_remote_code") is False, f"{path}:{call.lineno} may run a folder's code"
        for call in _calls(tree, "load"):
            if isinstance(call.func.value, ast.Name) and call.func.value.id in ("torch", "pickle", "dill", "joblib"):
                assert path.name == "safe_load.py" and _keyword(call, "weights_only") is True, f"{path}:{call.lineno}"
        for call in _calls(tree, "loads"):
            assert not (isinstance(call.func.value, ast.Name) and call.func.value.id == "pickle"), path
        for call in _calls(tree, "load"):
            if isinstance(call.func.value, ast.Name) and call.func.value.id in ("np", "numpy"):
                assert _keyword(call, "allow_pickle") is not True, f"{path}:{call.lineno}"
    assert found >= 4  # config, model, tokenizer, bridge


def test_the_nnsight_engine_refuses_the_same_folders(tmp_path, prompts):
    """The second engine's loader (issue 38) is held to the same rules: no folder code, no pickled weights."""
    pytest.importorskip("nnsight", reason="the nnsight engine's optional extra is not installed")
    marker = tmp_path / "ran"
    folder = hostile_model_folder(tmp_path, marker)
    with pytest.raises(UnsafeFileError) as err:
        load_model(str(folder), device="cpu", engine="nnsight")
    assert_refused(err, folder, "auto_map", marker, prompts)
    pickled = tmp_path / "bin_model"
    shutil.copytree(embedded_model_dir(), pickled)
    (pickled / "model.safetensors").unlink()
    torch.save({"transformer.wte.weight": RunsCode(marker_code(marker))}, pickled / "pytorch_model.bin")
    with pytest.raises(UnsafeFileError) as err:
        load_model(str(pickled), device="cpu", engine="nnsight")
    assert_refused(err, pickled / "pytorch_model.bin", "holds an object (exec)", marker, prompts)
