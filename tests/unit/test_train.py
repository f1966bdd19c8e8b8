import json
from pathlib import Path

import numpy as np
import pytest
from time_limits import limit_s

from interp.training import SingleTaskBatches, TrainConfig, train


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


def test_curriculum_grows_the_task_set_and_keeps_one_task_per_prompt():
    cfg = TrainConfig(
        families={"bias_add": 1.0}, n_examples={"bias_add": 12}, curriculum_steps=100, curriculum_start_tasks=2
    )
    data = SingleTaskBatches(cfg)
    sizes = [len(data.active_tasks("bias_add", s)) for s in range(0, 120, 10)]
    assert sizes[0] == 2 and sizes[-1] == 10 and sizes == sorted(sizes)
    early = set(data.active_tasks("bias_add", 0))
    for step in (0, 1, 2):
        x, _ = data.batch(step)
        for row in x.tolist():
            text = "".join(_decode(data, row))
            lines = [line for line in text.split("\n") if ">" in line]
            shifts = {(int(line[2]) - int(line[0])) % 10 for line in lines}
            assert len(shifts) == 1  # one task per prompt
            assert {f"add{shifts.pop()}"} <= early  # drawn from the curriculum's first tasks
    # without a curriculum every task is active from step 0
    plain = SingleTaskBatches(TrainConfig(families={"bias_add": 1.0}, n_examples={"bias_add": 12}))
    assert len(plain.active_tasks("bias_add", 0)) == 10


def _decode(data: SingleTaskBatches, row: list[int]) -> list[str]:
    inverse = {i: c for c, i in data.vocab.items()}
    return [inverse[i] for i in row if len(inverse[i]) == 1]


def test_sinusoidal_position_init_sets_the_position_table():
    from interp.training import init_model, sinusoidal_positions

    cfg = tiny_config(position_init="sinusoidal")
    model = init_model(cfg)
    assert torch_allclose(model.transformer.wpe.weight, sinusoidal_positions(cfg.n_ctx, cfg.d_model))
    random_init = init_model(tiny_config())
    assert not torch_allclose(random_init.transformer.wpe.weight, sinusoidal_positions(cfg.n_ctx, cfg.d_model))


def torch_allclose(a, b) -> bool:
    import torch

    return bool(torch.allclose(a.detach(), b, atol=1e-7))


def test_new_config_errors():
    with pytest.raises(ValueError, match="position_init: 'learned'; valid: random, sinusoidal, periodic"):
        TrainConfig(position_init="learned").validate()
    with pytest.raises(ValueError, match="curriculum_steps"):
        TrainConfig(curriculum_steps=-1).validate()


def test_evaluation_prompts_must_fit_and_sit_at_trained_positions():
    base = dict(families={"retrieval": 1.0}, eval_n_examples=20)
    with pytest.raises(ValueError, match="n_ctx: 224 is shorter than a retrieval evaluation prompt"):
        TrainConfig(**base, n_examples={"retrieval": 24}, n_ctx=224).validate()
    with pytest.raises(ValueError, match="n_examples: retrieval has 20 examples per training prompt; it must exceed"):
        TrainConfig(**base, n_examples={"retrieval": 20}, n_ctx=288).validate()
    TrainConfig(**base, n_examples={"retrieval": 24}, n_ctx=288).validate()
    TrainConfig(**base, n_examples={"retrieval": 20}, n_ctx=224, eval_every=0).validate()  # no evaluation: no check


def test_periodic_position_init_encodes_the_index_inside_an_example():
    from interp.training import init_model

    cfg = tiny_config(position_init="periodic", families={"retrieval": 1.0, "bias_add": 1.0})
    cfg.n_examples = {"retrieval": 6, "bias_add": 16}
    assert cfg.example_periods() == [4, 11]  # "3>5\n" and "qWeRtYuI>e\n"
    table = init_model(cfg).transformer.wpe.weight.detach()
    n_periodic = 2 * (4 // 2) + 2 * (11 // 2)
    # the first example starts at position 1 (after BOS): positions one period apart share the periodic features
    assert torch_allclose(table[1, :4], table[5, :4]) and torch_allclose(
        table[1, 4:n_periodic], table[12, 4:n_periodic]
    )
    assert not torch_allclose(table[1, 4:n_periodic], table[5, 4:n_periodic])
    assert not torch_allclose(table[1], table[12])  # the sinusoidal rest still tells positions apart


def test_periodic_position_init_errors():
    with pytest.raises(ValueError, match="position_init: 'periodic' needs examples of one length; operands"):
        TrainConfig(families={"operands": 1.0}, n_examples={"operands": 24}, position_init="periodic").validate()
    with pytest.raises(ValueError, match="d_model=16 allows at most 8"):
        TrainConfig(families={"retrieval": 1.0}, d_model=16, n_heads=2, position_init="periodic").validate()


def test_train_refuses_an_unknown_or_missing_device(tmp_path):
    import torch

    with pytest.raises(ValueError, match="device: 'tpu'; valid: cpu, cuda"):
        train(tiny_config(), tmp_path / "run", device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device: 'cuda' was asked for but torch sees no CUDA device"):
            train(tiny_config(), tmp_path / "run", device="cuda")
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_train_sweep_runs_variants_side_by_side_and_summarises(tmp_path):
    import subprocess
    import sys

    variants = {"base": {}, "wider": {"d_model": 48}}
    cmd = [sys.executable, "experiments/train_sweep.py", "--base", "experiments/configs/tiny.json"]
    cmd += ["--variants", json.dumps(variants), "--out-dir", str(tmp_path / "runs"), "--out-json"]
    subprocess.run([*cmd, str(tmp_path / "summary.json")], check=True, capture_output=True, timeout=limit_s(300))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["runs"]) == {"base", "wider"}
    for run in summary["runs"].values():
        assert run["returncode"] == 0 and run["steps_done"] == 60
        assert run["eval"][-1]["step"] == 60 and 0 <= run["eval"][-1]["bias_add"]["min"] <= 1
    assert json.loads((tmp_path / "runs/wider/config.json").read_text())["d_model"] == 48
    bad_cmd = [*cmd[:4], "--variants", '{"x": {"widht": 3}}', *cmd[6:], str(tmp_path / "s2.json")]
    bad = subprocess.run(bad_cmd, capture_output=True, text=True, timeout=limit_s(120))
    assert bad.returncode != 0 and "unknown keys ['widht']" in bad.stderr
    assert not (tmp_path / "s2.json").exists()


def test_training_time_accuracy_is_scoring_greedy_correct(tmp_path):
    """The ONE accuracy: what training logs equals scoring.greedy_correct's mean on the same prompts."""
    from interp.models import load_model
    from interp.prompts import build_prompts
    from interp.scoring import greedy_correct
    from interp.training import evaluate
    from interp.training.evaluate import EVAL_SEED

    cfg = tiny_config(steps=40, eval_every=40, checkpoint_every=0, eval_prompts=12)
    final = train(cfg, tmp_path / "run", progress=False)
    logged = json.loads((tmp_path / "run" / "log.json").read_text())["eval"][-1]["accuracy"]["bias_add"]
    model = load_model(str(final), device="cpu")
    for task, acc in logged.items():
        prompts = build_prompts("bias_add", [task], n_examples=cfg.eval_n_examples, n_prompts=12, seed=EVAL_SEED)
        assert acc == float(greedy_correct(model, prompts, task).mean())
    # evaluating the HF model directly gives the same numbers again
    from transformers import GPT2LMHeadModel

    from interp.tokenization import build_char_tokenizer

    hf = GPT2LMHeadModel.from_pretrained(str(final))
    assert evaluate(hf, build_char_tokenizer(), cfg)["bias_add"] == logged


def test_training_time_accuracy_equals_greedy_correct_on_the_shipped_model():
    """On a model with accuracies strictly between 0 and 1 (the shipped one's retrieval tasks)."""
    from transformers import GPT2LMHeadModel

    from interp.models import embedded_model_dir, load_model
    from interp.prompts import build_prompts
    from interp.scoring import greedy_correct
    from interp.tokenization import build_char_tokenizer
    from interp.training import evaluate

    recorded = json.loads((embedded_model_dir() / "training.json").read_text())["config"]
    tasks = {"retrieval": ["pos1", "pos2", "pos6"], "bias_add": ["add3"]}
    cfg = TrainConfig(**{**recorded, "eval_prompts": 24, "tasks": tasks})
    hf = GPT2LMHeadModel.from_pretrained(str(embedded_model_dir()))
    acc = evaluate(hf, build_char_tokenizer(), cfg, n_examples=10, seed=3)
    model = load_model("embedded", device="cpu")
    flat = []
    for family, tasks in acc.items():
        for task, value in tasks.items():
            prompts = build_prompts(family, [task], n_examples=10, n_prompts=24, seed=3)
            assert value == float(greedy_correct(model, prompts, task).mean()), (family, task)
            flat.append(value)
    assert min(flat) < 0.5 and max(flat) == 1.0  # not all-or-nothing: the comparison can fail


@pytest.mark.parametrize("workers", [0, 2])
def test_prefetched_batches_equal_direct_ones(workers):
    from interp.training import Prefetcher

    data = SingleTaskBatches(tiny_config(batch_size=4))
    with Prefetcher(data, 3, 9, workers=workers, depth=2) as batches:
        got = list(batches)
    assert [s for s, _, _ in got] == list(range(3, 9))
    for step, x, y in got:
        x0, y0 = data.batch(step)
        assert torch_equal(x, x0) and torch_equal(y, y0)


def test_prefetcher_stops_early_without_hanging():
    from interp.training import Prefetcher

    data = SingleTaskBatches(tiny_config(batch_size=2))
    with Prefetcher(data, 0, 10**6, depth=2) as batches:
        for step, _, _ in batches:
            if step == 3:
                break
    assert batches._thread is not None and not batches._thread.is_alive()


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_gradient_accumulation_matches_the_full_batch():
    import torch

    from interp.training import init_model, train_step
    from interp.training.loop import make_optimizer

    cfg = tiny_config(batch_size=8)
    x, y = SingleTaskBatches(cfg).batch(0)
    grads = []
    for accum in (1, 4):
        cfg.grad_accum = accum
        torch.manual_seed(0)
        model = init_model(cfg)
        opt = make_optimizer(model, cfg, "cpu")
        opt.step = lambda: None  # keep the gradient, skip the update
        loss = train_step(model, model, opt, x, y, cfg, "cpu")
        grads.append((float(loss), torch.cat([p.grad.flatten() for p in model.parameters()])))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5)
    assert torch.allclose(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-6)


def test_bf16_autocast_trains_on_cpu_and_is_recorded(tmp_path):
    cfg = tiny_config(steps=20, eval_every=0, checkpoint_every=0, precision="bfloat16")
    final = train(cfg, tmp_path / "run", progress=False)
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    assert log["config"]["precision"] == "bfloat16" and np.isfinite(log["train"][-1]["loss"])
    assert (final / "model.safetensors").is_file()


def test_the_model_uses_sdpa_attention():
    from interp.training import init_model

    assert init_model(tiny_config()).config._attn_implementation == "sdpa"


def test_train_command_into_a_run_of_another_config_is_one_line_and_outputs_follow_the_umask(tmp_path, capsys):
    """Issue 24: a different config into an existing run directory gave a 43-line size-mismatch traceback; the final
    weights were written 0600; transformers' ``loss_type=None`` notice landed inside the progress bar."""
    import os
    import stat

    from interp.cli import main

    cfg = json.loads((Path(__file__).resolve().parents[2] / "experiments/configs/tiny.json").read_text())
    small, wide = tmp_path / "small.json", tmp_path / "wide.json"
    small.write_text(json.dumps({**cfg, "steps": 10, "eval_every": 10, "checkpoint_every": 5}))
    wide.write_text(json.dumps({**cfg, "steps": 10, "eval_every": 10, "checkpoint_every": 5, "d_model": 64}))
    old = os.umask(0o022)
    try:
        assert main(["train", "--config", str(small), "--out", str(tmp_path / "run")]) == 0
    finally:
        os.umask(old)
    said = capsys.readouterr()
    assert "loss_type" not in said.out + said.err
    for file in (tmp_path / "run" / "final").iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o644, file
    assert main(["train", "--config", str(wide), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("interp: error: --out: "), err
    assert "holds a run of a different model (d_model 32 vs 64)" in err and "--no-resume" in err
