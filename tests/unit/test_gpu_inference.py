"""experiments/gpu_inference.py, the GPU check of issue 25, dry-run on the CPU: every step but the GPU ones."""

import json

import pytest
import torch
from scripts import load_script


def _script():
    return load_script("experiments/gpu_inference.py")


def test_dry_run_scores_both_models_in_both_dtypes_against_the_cpu_reference(tmp_path):
    out = tmp_path / "gpu_inference.json"
    args = ["--out", str(out), "--device", "cpu", "--big-params", "1e7", "--prompts", "4", "--repeats", "1"]
    assert _script().main(args) == 0
    got = json.loads(out.read_text())
    scored = [r for r in got["rows"] if "dtype" in r]
    assert [(r["model"].split()[0], r["dtype"]) for r in scored] == [
        ("trained", "float32"),
        ("trained", "bfloat16"),
        ("random", "float32"),
        ("random", "bfloat16"),
    ]
    # float32 on the same device is the reference itself: equal to rounding; bfloat16 measurably differs
    assert all(r["pass"] and r["prompt_tokens_per_s"] > 0 for r in scored)
    assert scored[0]["max_dlogp"] < 1e-5 and scored[1]["max_dlogp"] > 1e-4
    assert got["rows"][-1]["skipped"].endswith("GPU(s) visible")  # n_devices=2 needs two GPUs
    assert 5e6 < got["big_model"]["parameters"] < 2e7


def test_the_size_lands_near_the_request_and_bad_arguments_are_refused(capsys):
    script = _script()
    from interp.tokenization import build_gpt2_tokenizer

    vocab = len(build_gpt2_tokenizer())
    for family in script.FAMILIES:  # a config only: no weights built
        cfg = script.big_config(family, 1e9, vocab)
        d, layers = cfg.hidden_size, cfg.num_hidden_layers
        assert layers == 16 and 1536 <= d <= 2304, (family, d)
    for family in ("llama", "qwen2"):  # grouped-query attention: every query group the same size, at any size
        for params in (2e6, 1e7, 1e8, 5e8, 1e9, 1.5e9, 3e9):
            cfg = script.big_config(family, params, vocab)
            heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
            assert cfg.hidden_size % heads == 0 and heads % kv == 0, (params, heads, kv)
            assert 1 <= kv <= max(1, heads // 4), (params, heads, kv)
    assert [script.kv_heads(h) for h in (1, 2, 4, 8, 30, 32)] == [1, 1, 1, 2, 6, 8]
    with pytest.raises(ValueError, match="family: 'mamba' not supported; valid: llama, qwen2, gpt2"):
        script.big_config("mamba", 1e9, vocab)
    with pytest.raises(SystemExit):
        script.main(["--out", "x.json", "--family", "mamba"])
    assert "--family: 'mamba' not supported" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--out", "x.json", "--device", "tpu"])
    assert "--device: 'tpu'; valid: auto, cuda, cpu" in capsys.readouterr().err
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            script.main(["--out", "x.json"])
        assert "no GPU visible" in capsys.readouterr().err
