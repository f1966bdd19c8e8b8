import json

import numpy as np
import pytest

from interp.train import SingleTaskBatches, TrainConfig, train


def tiny_config(**overrides) -> TrainConfig:
    cfg = TrainConfig.from_json("experiments/configs/tiny.json")
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def test_every_training_prompt_holds_one_task():
    cfg = TrainConfig(families={"operands": 1.0}, n_examples={"operands": 12}, batch_size=4)
    data = SingleTaskBatches(cfg)
    rng = np.random.default_rng(0)
    for _ in range(20):
        text, mask = data.text_and_mask(rng)
        lines = text.strip("\n").split("\n")
        tasks_fitting = [
            t
            for t in ("copy_first", "copy_second", "sum")
            if all(
                line == data.families[0].example(tuple(map(int, line.split("=")[0].split("@"))), t) for line in lines
            )
        ]
        assert len(tasks_fitting) == 1
        # the loss mask covers exactly the answers and the newline after each
        masked = "".join(c for c, m in zip(text, mask, strict=True) if m)
        assert masked == "".join(line.split("=")[1] + "\n" for line in lines)


def test_batches_are_deterministic_per_step():
    data = SingleTaskBatches(tiny_config())
    x1, y1 = data.batch(5)
    x2, y2 = data.batch(5)
    x3, _ = data.batch(6)
    assert (x1 == x2).all() and (y1 == y2).all() and not (x1.shape == x3.shape and (x1 == x3).all())


def test_tiny_training_run_loss_falls_and_loads(tmp_path):
    from interp.models import load_model

    final = train(tiny_config(), tmp_path / "run", progress=False)
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    first = np.mean([r["loss"] for r in log["train"][:2]])
    last = np.mean([r["loss"] for r in log["train"][-2:]])
    assert last < 0.6 * first
    assert log["eval"] and (tmp_path / "run" / "checkpoints").is_dir()
    model = load_model(str(final), device="cpu")
    assert model.cfg.n_layers == 1 and model.cfg.d_model == 32


def test_resume_continues_from_checkpoint(tmp_path):
    cfg = tiny_config(steps=30, checkpoint_every=15, eval_every=0)
    assert train(cfg, tmp_path / "a", progress=False, until=15) == tmp_path / "a"  # "interrupted" at step 15
    resumed = train(cfg, tmp_path / "a", progress=False)
    straight = train(cfg, tmp_path / "b", progress=False)
    a = (resumed / "model.safetensors").read_bytes()
    b = (straight / "model.safetensors").read_bytes()
    assert a == b  # resuming at step 15 gives bit-identical weights to an uninterrupted run


def test_config_errors():
    with pytest.raises(ValueError, match="unknown family"):
        TrainConfig(families={"nope": 1.0}).validate()
    with pytest.raises(ValueError, match="n_examples: missing an entry for family 'operands'"):
        TrainConfig(families={"operands": 1.0}, n_examples={}).validate()
