"""Loader tests on the real GPT-2-small architecture with seeded weights, plus real-weight acceptance tests."""

import math
from types import SimpleNamespace

import pytest
import torch

from interp.bridge import is_bridge
from interp.hooks import hooked
from interp.models import (
    WeightProcessing,
    WeightsNotFoundError,
    load_model,
    model_info,
    resolve_weights_dir,
)
from interp.tokenization import encode_batch, pad_id


def test_gpt2_small_architecture(gpt2_small_pair):
    _, model = gpt2_small_pair
    cfg = model.cfg
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_vocab, cfg.n_ctx) == (12, 768, 12, 50257, 1024)
    info = model_info(model)
    assert info.processing == WeightProcessing() and not info.processing.center_writing_weights


def test_oracle_logits_and_residual_stream_match_hf_on_padded_batch(gpt2_small_pair):
    hf, model = gpt2_small_pair
    tok = model.tokenizer
    texts = ["Hello world!", "\n34@57=91\n12@40=", "France->Paris\nJapan->"]
    ids = encode_batch(tok, texts)
    width = max(map(len, ids))
    x = torch.full((len(ids), width), pad_id(tok))
    mask = torch.zeros_like(x)
    for i, row in enumerate(ids):
        x[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    with torch.no_grad():
        ref = hf(x, attention_mask=mask, output_hidden_states=True)
        logits, cache = model.run_with_cache(
            x, names_filter=lambda n: n.endswith("hook_resid_post") or n == "ln_final.hook_normalized"
        )
    final = model.ln_final.w * cache["ln_final.hook_normalized"] + model.ln_final.b
    for i, row in enumerate(ids):
        n = len(row)
        torch.testing.assert_close(logits[i, :n], ref.logits[i, :n], atol=1e-4, rtol=0)
        for layer in range(11):  # HF's last hidden state has ln_f applied: compared below
            torch.testing.assert_close(
                cache[f"blocks.{layer}.hook_resid_post"][i, :n],
                ref.hidden_states[layer + 1][i, :n],
                atol=1e-4,
                rtol=1e-5,
            )
        torch.testing.assert_close(final[i, :n], ref.hidden_states[12][i, :n], atol=1e-4, rtol=1e-5)
    assert model.tokenizer.padding_side == "right"


def test_padded_and_unpadded_last_token_logits_equal(gpt2_small_pair):
    _, model = gpt2_small_pair
    tok = model.tokenizer
    ids = encode_batch(tok, ["a", "12@34=46\n50@61="])
    x = torch.full((2, len(ids[1])), pad_id(tok))
    for i, row in enumerate(ids):
        x[i, : len(row)] = torch.tensor(row)
    with torch.no_grad():
        batched = model(x)
        alone = model(torch.tensor([ids[0]]))
    torch.testing.assert_close(batched[0, len(ids[0]) - 1], alone[0, -1], atol=1e-4, rtol=0)


def test_missing_gpt2_fails_fast_and_names_both_ways(monkeypatch, tmp_path):
    """Fails fast, judged by what ran, not by seconds (issue 36): nothing is read or loaded before the refusal."""
    import interp.models

    monkeypatch.delenv("INTERP_GPT2_PATH", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(interp.models, "_hf_from_dir", _never)
    monkeypatch.setattr(interp.models, "load_tokenizer", _never)
    with pytest.raises(WeightsNotFoundError) as err:
        load_model("gpt2")
    assert "INTERP_GPT2_PATH" in str(err.value) and "Hugging Face cache" in str(err.value)
    assert "`hf download openai-community/gpt2`" in str(err.value) and "huggingface-cli" not in str(err.value)


def _never(*args, **kwargs):
    raise AssertionError("a model or tokenizer was read before the refusal")


def test_env_path_and_path_argument_load_gpt2(monkeypatch, gpt2_small_dir):
    monkeypatch.setenv("INTERP_GPT2_PATH", str(gpt2_small_dir))
    assert resolve_weights_dir("gpt2-small") == ("gpt2", gpt2_small_dir)
    monkeypatch.delenv("INTERP_GPT2_PATH")
    assert resolve_weights_dir("gpt2", path=gpt2_small_dir)[1] == gpt2_small_dir


def test_bad_specs_and_arguments(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="has no config.json"):
        load_model(str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match="no such directory"):
        load_model("./not/here")
    with pytest.raises(WeightsNotFoundError, match="unknown model 'no-such-model'"):
        load_model("no-such-model")
    with pytest.raises(ValueError, match="dtype: 'int8' not supported; valid: float32, float16, bfloat16, float64"):
        load_model("embedded", dtype="int8")
    with pytest.raises(WeightsNotFoundError, match="INTERP_GPT2_PATH points to"):
        import os

        os.environ["INTERP_GPT2_PATH"] = str(tmp_path)
        try:
            load_model("gpt2")
        finally:
            del os.environ["INTERP_GPT2_PATH"]


def test_processing_flags_are_recorded(tiny_char_pair, char_tokenizer):
    from interp.models import hooked_from_hf

    hf, _ = tiny_char_pair
    folded = hooked_from_hf(hf, char_tokenizer, model_id="tiny-char", processing=WeightProcessing(fold_ln=True))
    assert model_info(folded).processing.fold_ln
    x = torch.tensor([[1, 20, 21, 22]])
    with torch.no_grad():
        torch.testing.assert_close(folded(x), hf(x).logits, atol=1e-4, rtol=0)  # folding keeps the function


def test_building_a_hooked_model_leaves_the_hf_model_as_it_was(char_tokenizer, tmp_path):
    """Training evaluates the HF model it is still training: building the hooked model must not rearrange it (a
    TransformerBridge takes over the module it wraps; once it did, the next checkpoint could not be saved)."""
    from conftest import seeded_gpt2

    from interp.models import hooked_from_hf

    hf = seeded_gpt2(3, n_layer=2, n_embd=64, n_head=4, n_positions=64, vocab_size=len(char_tokenizer))
    before = {k: (v.clone(), v.stride()) for k, v in hf.state_dict().items()}
    modules = [type(m).__name__ for m in hf.modules()]
    model = hooked_from_hf(hf, char_tokenizer, model_id="kept")
    after = hf.state_dict()
    assert after.keys() == before.keys() and [type(m).__name__ for m in hf.modules()] == modules
    assert all(torch.equal(after[k], v) and after[k].stride() == st for k, (v, st) in before.items())
    hf.save_pretrained(tmp_path, safe_serialization=True)  # what training does next
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(1.0)  # training moves on; the hooked model keeps the weights it was built from
    x = torch.tensor([[1, 20, 21, 22]])
    with torch.no_grad():
        assert not torch.allclose(model(x), hf(x).logits, atol=1e-3)


def test_hooks_context_removes_exactly_what_it_added(tiny_char_model):
    calls = []
    name = "blocks.0.hook_resid_post"
    tiny_char_model.hook_dict[name].add_hook(lambda act, hook: calls.append("user"))
    try:
        with pytest.raises(RuntimeError):
            with hooked(tiny_char_model, [(name, lambda act, hook: calls.append("ours"))]):
                tiny_char_model(torch.tensor([[1, 5, 6]]))
                raise RuntimeError("boom")
        assert len(tiny_char_model.hook_dict[name].fwd_hooks) == 1  # the user's hook survives
        tiny_char_model(torch.tensor([[1, 5, 6]]))
        assert calls == ["user", "ours", "user"]
    finally:
        tiny_char_model.reset_hooks()
    with pytest.raises(ValueError, match="unknown hook point"):
        with hooked(tiny_char_model, [("blocks.99.hook_resid_post", lambda a, hook: None)]):
            pass


# --- acceptance tests on the real GPT-2 small (skipped without local weights) --------------------------


@pytest.mark.gpt2_weights
def test_real_gpt2_golden_loss(real_gpt2):
    # TransformerLens's published golden value for GPT-2 small (its test suite): loss on "Hello world!".
    loss = real_gpt2(real_gpt2.to_tokens("Hello world!"), return_type="loss")
    assert float(loss) == pytest.approx(5.331855773925781, abs=1e-4)


@pytest.mark.gpt2_weights
def test_real_gpt2_superposition_smoke(real_gpt2):
    from interp.prompts import build_prompts
    from interp.scoring import score_answers

    prompts = build_prompts("operands", ["copy_first", "copy_second"], n_examples=20, n_prompts=10, seed=0)
    probs = score_answers(real_gpt2, prompts).probs
    assert probs.mean(axis=0).min() > 0.05  # both tasks get real mass on 50/50 prompts


def test_model_metadata_is_one_dataclass(embedded_model):
    from interp.models import trained_examples

    info = model_info(embedded_model)
    assert info.trained_examples == trained_examples(embedded_model) and info.trained_examples["bias_add"] > 1
    assert info.architecture == "GPT2LMHeadModel" and info.dtype == "float32"
    assert not hasattr(embedded_model, "interp_trained_examples")  # no loose attributes besides interp_info
    assert info.to_dict()["trained_examples"] == info.trained_examples


def _gelu_new_reference(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's ``gelu_new`` written out, operation by operation, as TransformerLens and Hugging Face write it."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def _model_activation(model):
    """The activation a GPT-2 model's first MLP runs (3.x: ``act_fn``; a bridge: its Hugging Face module's ``act``)."""
    mlp = model.blocks[0].mlp
    return mlp.original_component.act if is_bridge(model) else mlp.act_fn


def test_gelu_new_runs_as_the_fused_kernel_with_the_same_values(tiny_gpt2_model):
    """Both model kinds are built with the one-pass gelu (a HookedTransformer's ``act_fn``, a bridge's HF ``act``)."""
    from interp.activations import gelu_tanh, gelu_tanh_module_class
    from interp.models import fuse_activation

    act = _model_activation(tiny_gpt2_model)
    assert act is gelu_tanh or isinstance(act, gelu_tanh_module_class())  # fused at load time
    x = torch.randn(4, 7, tiny_gpt2_model.cfg.d_mlp, generator=torch.Generator().manual_seed(0)) * 3
    assert (act(x) - _gelu_new_reference(x)).abs().max() < 1e-6
    relu_cfg = SimpleNamespace(cfg=SimpleNamespace(act_fn="relu"), blocks=[SimpleNamespace(mlp=SimpleNamespace())])
    fuse_activation(relu_cfg)  # other activations are left alone
    assert not hasattr(relu_cfg.blocks[0].mlp, "act_fn")


def test_gelu_new_every_route_matches_the_formula_and_leaves_its_input_alone(tiny_gpt2_model):
    """In-place sigmoid form (CPU float32/float64, no autograd), torch's kernel otherwise: same values, same
    gradients, the input untouched."""
    act = _model_activation(tiny_gpt2_model)
    x = torch.randn(3, 5, 64, generator=torch.Generator().manual_seed(1)) * 4
    for dtype, tol in ((torch.float32, 1e-6), (torch.float64, 1e-12)):
        xd = x.to(dtype)
        before = xd.clone()
        with torch.inference_mode():
            got = act(xd)
        assert torch.equal(xd, before)
        assert (got - _gelu_new_reference(xd)).abs().max() < tol
    leaf = x.double().requires_grad_()
    act(leaf).sum().backward()
    ref = leaf.detach().clone().requires_grad_()
    _gelu_new_reference(ref).sum().backward()
    assert (leaf.grad - ref.grad).abs().max() < 1e-12
    half = act(x.bfloat16())
    assert half.dtype == torch.bfloat16 and (half.float() - _gelu_new_reference(x)).abs().max() < 0.1


def test_a_model_path_names_what_is_actually_missing(tmp_path):
    """Issue 24: a weights file given as the model, a directory with config but no weights, a corrupt config.json:
    each gets its own one-line reason, before torch loads anything."""
    weights = tmp_path / "some.safetensors"
    weights.write_bytes(b"\0")
    cases = {}
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text('{"model_type": "gpt2"}')
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text('{"model_type": "gpt2",')
    (corrupt / "model.safetensors").write_bytes(b"\0")
    cases[str(weights)] = f"spec: {weights} is a file; give the directory that holds it"
    cases[str(no_weights)] = f"spec: directory {no_weights} has config.json but no weights (model.safetensors or"
    cases[str(corrupt)] = f"spec: {corrupt / 'config.json'} is not valid JSON (Expecting"
    for spec, message in cases.items():
        with pytest.raises(WeightsNotFoundError) as err:
            resolve_weights_dir(spec)
        assert str(err.value).startswith(message) and "\n" not in str(err.value), str(err.value)


def test_two_digit_model_is_shipped_and_answers_two_characters(tmp_path):
    from interp.models import TWO_DIGIT_DIR, WeightsNotFoundError, load_model, model_info
    from interp.prompts import build_prompts
    from interp.scoring import score_answers

    model = load_model("two_digit")
    info = model_info(model)
    assert info.model_id == "two_digit" and info.source == "package:interp/checkpoints/two_digit_shift"
    assert (TWO_DIGIT_DIR / "README.md").is_file()
    prompts = build_prompts("two_digit_shift", ["shift7"], n_examples=12, n_prompts=8, seed=0)
    assert all(len(p.answers[0]) == 2 for p in prompts)
    assert score_answers(model, prompts).probs.mean() > 0.9  # it learned the family in context
    with pytest.raises(WeightsNotFoundError, match="experiments/two_digit_shift.py train"):
        load_model("two_digit", path=tmp_path)
