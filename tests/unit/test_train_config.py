"""TrainConfig: every numeric field has a range; config files fail with messages naming the file."""

import json

import pytest
from scripts import load_script

from interp.training import TrainConfig, train
from interp.training.config import RANGES


def tiny(**overrides) -> TrainConfig:
    cfg = TrainConfig.from_json("experiments/configs/tiny.json")
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("steps", -3, "an integer >= 1"),
        ("steps", 0, "an integer >= 1"),
        ("steps", 2.5, "an integer >= 1"),
        ("steps", True, "an integer >= 1"),
        ("batch_size", 0, "an integer >= 1"),
        ("n_layers", 0, "an integer >= 1"),
        ("n_ctx", 1, "an integer >= 2"),
        ("lr", 0.0, "a number > 0 and <= 1"),
        ("lr", float("nan"), "a number > 0 and <= 1"),
        ("lr", 3.0, "a number > 0 and <= 1"),
        ("min_lr_ratio", 1.5, "a number >= 0 and <= 1"),
        ("warmup_steps", -1, "an integer >= 0"),
        ("grad_clip", 0, "a number > 0"),
        ("eval_prompts", 0, "an integer >= 1"),
        ("threads", 0, "an integer >= 1 and <= 1024"),
        ("seed", -1, "an integer >= 0"),
        ("time_budget_s", -1.0, "a number >= 0"),
        ("warmup_fraction", 2, "a number >= 0 and <= 1"),
        ("data_workers", -1, "an integer >= 0 and <= 256"),
        ("grad_accum", 0, "an integer >= 1"),
    ],
)
def test_out_of_range_fields_name_the_field_and_the_range(field, value, allowed):
    with pytest.raises(ValueError, match=f"^{field}: .* is out of range; must be {allowed}$"):
        tiny(**{field: value}).validate()


def test_every_numeric_field_has_a_range():
    numeric = {
        name
        for name, f in TrainConfig.__dataclass_fields__.items()
        if f.type in ("int", "float") and name not in ("batch_by_family", "compile")
    }
    assert numeric == set(RANGES)


def test_family_weights_and_example_counts_are_checked():
    with pytest.raises(ValueError, match=r"families\['bias_add'\]: 0 is out of range; must be a number > 0"):
        tiny(families={"bias_add": 0}).validate()
    with pytest.raises(ValueError, match=r"n_examples\['bias_add'\]: -2 is out of range"):
        tiny(n_examples={"bias_add": -2}).validate()
    with pytest.raises(ValueError, match="grad_accum: 32 must be at most batch_size=16"):
        tiny(grad_accum=32).validate()
    with pytest.raises(ValueError, match="precision: 'fp8'; valid: float32, bfloat16"):
        tiny(precision="fp8").validate()
    with pytest.raises(ValueError, match="checkpoint_dtype: 'int8'; valid: float32, float16, bfloat16"):
        tiny(checkpoint_dtype="int8").validate()


def test_zero_steps_write_nothing(tmp_path):
    with pytest.raises(ValueError, match="steps: 0 is out of range"):
        train(tiny(steps=0), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("", r"is not valid JSON \(Expecting value, line 1 column 1\)"),
        ("{", "is not valid JSON"),
        ("[1, 2]", r"must be a JSON object .* not list"),
        ('"steps"', r"must be a JSON object .* not str"),
        ('{"widht": 3}', r"unknown keys \['widht'\]"),
    ],
)
def test_from_json_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "cfg.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=f"^config: {path}:? .*{message}"):
        TrainConfig.from_json(path)


def test_from_json_refuses_a_directory(tmp_path):
    with pytest.raises(ValueError, match=f"^config: {tmp_path} is a directory, not a JSON file$"):
        TrainConfig.from_json(tmp_path)


def load_gpu_train():
    return load_script("experiments/gpu_train.py")


def test_shipped_configs_and_plans_are_valid():
    from pathlib import Path

    gpu_train = load_gpu_train()
    for path in sorted(Path("experiments/configs").glob("*.json")):
        data = json.loads(path.read_text())
        if "base" in data:  # a gpu_train.py plan: every candidate and every size
            assert len(gpu_train.plan_configs(data, "candidates")) >= 2
            assert len(gpu_train.plan_configs(data, "family")) >= 4
        elif path.stem != "two_digit_shift":  # its family is registered by experiments/two_digit_shift.py
            TrainConfig.from_json(path).validate()


def test_check_reproducible_accepts_the_shipped_record_despite_new_fields():
    module = load_script("experiments/check_reproducible.py")
    recorded = json.loads(open("interp/checkpoints/embedded/training.json").read())["config"]
    cfg = TrainConfig.from_json("experiments/configs/embedded.json")
    assert set(TrainConfig.__dataclass_fields__) - set(recorded)  # fields were added since the recording
    assert module.same_config(recorded, cfg)
    cfg.precision = "bfloat16"  # a new field away from its default: not the recorded run
    assert not module.same_config(recorded, cfg)
    cfg.precision, cfg.lr = "float32", 2e-3
    assert not module.same_config(recorded, cfg)
