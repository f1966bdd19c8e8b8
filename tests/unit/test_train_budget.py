"""The wall-clock budget: schedule by elapsed fraction, periodic evaluation + checkpoints, usable when cut short."""

import json

import numpy as np
import pytest
import torch

from interp.training import TrainConfig, time_lr_factor, train


class FakeClock:
    """Advances ``tick`` seconds per reading, so a run's timing is deterministic whatever the machine."""

    def __init__(self, tick: float, stop_after: float | None = None):
        self.t, self.tick, self.stop_after = 0.0, tick, stop_after

    def __call__(self) -> float:
        self.t += self.tick
        if self.stop_after is not None and self.t > self.stop_after:
            raise KeyboardInterrupt  # the device call's time limit, say
        return self.t


def budget_config(**overrides) -> TrainConfig:
    cfg = TrainConfig.from_json("experiments/configs/tiny.json")
    cfg.eval_every = cfg.checkpoint_every = 0
    cfg.time_budget_s, cfg.eval_every_s, cfg.checkpoint_every_s = 20.0, 5.0, 5.0
    cfg.steps, cfg.warmup_fraction, cfg.checkpoint_dtype = 10_000, 0.1, "float16"
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def test_time_schedule_warms_up_then_decays_by_elapsed_fraction():
    cfg = TrainConfig(lr=1.0, time_budget_s=100, warmup_fraction=0.1, min_lr_ratio=0.1)
    f = [time_lr_factor(x, cfg) for x in np.linspace(0, 1, 101)]
    assert f[5] == pytest.approx(0.5) and f[10] == pytest.approx(1.0) and f[100] == pytest.approx(0.1)
    assert all(a <= b for a, b in zip(f[:10], f[1:11], strict=True))  # warm-up rises
    assert all(a >= b for a, b in zip(f[10:-1], f[11:], strict=True))  # cosine falls


def test_time_budgeted_run_stops_inside_the_budget_evaluated_and_saved(tmp_path):
    from interp.models import load_model

    clock = FakeClock(0.05)
    final = train(budget_config(), tmp_path / "run", progress=False, clock=clock)
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    assert log["wall_s"] <= 20.0 and clock.t <= 20.0 + 1.0  # the final evaluation and save fit (about) inside
    done = log["steps_done"]
    assert 10 < done < 10_000  # stopped by time, not by the step cap
    lrs = [r["lr"] for r in log["train"]]
    peak = int(np.argmax(lrs))
    assert lrs[0] < 0.3 * max(lrs) and lrs[-1] < 0.3 * max(lrs) and 0 < peak < len(lrs) - 1
    # evaluations every 5 s of (fake) time and one at the last step; checkpoints every 5 s
    assert len(log["eval"]) >= 3 and log["eval"][-1]["step"] == done
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("step*"))
    assert len(ckpts) >= 3
    for path in (ckpts[0], final):
        model = load_model(str(path), device="cpu")  # half precision on disk, float32 loaded
        assert next(model.parameters()).dtype == torch.float32
    meta = json.loads((final / "training.json").read_text())
    assert meta["step"] == done and meta["config"]["time_budget_s"] == 20.0
    from safetensors import safe_open

    with safe_open(str(final / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}


def test_a_run_cut_short_leaves_complete_evaluated_checkpoints(tmp_path):
    from interp.models import load_model
    from interp.scoring import greedy_correct

    with pytest.raises(KeyboardInterrupt):
        train(budget_config(), tmp_path / "run", progress=False, clock=FakeClock(0.05, stop_after=12.0))
    assert not (tmp_path / "run" / "final").exists()
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("step*"))
    assert ckpts and not list((tmp_path / "run" / "checkpoints").glob(".*"))  # no half-written directory
    meta = json.loads((ckpts[-1] / "training.json").read_text())
    assert meta["eval"] and meta["eval"][-1]["step"] == meta["step"]  # evaluated when saved
    model = load_model(str(ckpts[-1]), device="cpu")
    from interp.prompts import build_prompts

    prompts = build_prompts("bias_add", ["add3"], n_examples=10, n_prompts=4, seed=1)
    assert greedy_correct(model, prompts, "add3").shape == (4,)


def test_checkpoint_dtype_float32_keeps_the_weights_exact(tmp_path):
    from interp.models import load_model
    from interp.tokenization import build_char_tokenizer
    from interp.training import init_model, save_checkpoint

    cfg = TrainConfig.from_json("experiments/configs/tiny.json")
    hf = init_model(cfg)
    tok = build_char_tokenizer()
    save_checkpoint(hf, tok, tmp_path / "f32", {"config": {}}, dtype="float32")
    save_checkpoint(hf, tok, tmp_path / "bf16", {"config": {}}, dtype="bfloat16")
    exact = load_model(str(tmp_path / "f32"), device="cpu").W_E
    approx = load_model(str(tmp_path / "bf16"), device="cpu").W_E
    assert torch.equal(exact, hf.transformer.wte.weight.detach())
    assert approx.dtype == torch.float32 and torch.allclose(approx, exact, rtol=1e-2, atol=1e-4)
    assert not torch.equal(approx, exact)
