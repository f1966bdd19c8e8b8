"""Residual capture: oracle against HF ``output_hidden_states``, padding, positions, validation."""

import pytest
import torch

from interp.capture import capture_hooks, capture_resid, resolve_positions
from interp.hooks import hook_name
from interp.prompts import build_prompts
from interp.tokenization import encode


def hf_hidden(hf, tok, text: str) -> tuple[torch.Tensor, ...]:
    """HF hidden states of one unpadded sequence: entry l = input of block l; the last has ln_f applied."""
    with torch.no_grad():
        return hf(torch.tensor([encode(tok, text)]), output_hidden_states=True).hidden_states


def check_against_hf(hf, model, prompts, atol: float) -> None:
    n = model.cfg.n_layers
    post = capture_resid(model, prompts, hook="resid_post", batch_size=len(prompts))
    pre = capture_resid(model, prompts, hook="resid_pre", batch_size=len(prompts))
    assert post.shape == (n, len(prompts), model.cfg.d_model)
    for i, p in enumerate(prompts):
        hs = hf_hidden(hf, model.tokenizer, p.text)
        for la in range(n):
            torch.testing.assert_close(pre[la, i], hs[la][0, -1], atol=atol, rtol=0)
            if la < n - 1:
                torch.testing.assert_close(post[la, i], hs[la + 1][0, -1], atol=atol, rtol=0)
        with torch.no_grad():  # HF's last hidden state is after the final LayerNorm
            torch.testing.assert_close(hf.transformer.ln_f(post[n - 1, i]), hs[n][0, -1], atol=atol, rtol=0)


def mixed_length_prompts():
    prompts = build_prompts("operands", ["sum"], n_examples=2, n_prompts=2, seed=1) + build_prompts(
        "country", ["capital"], n_examples=3, n_prompts=2, seed=2
    )
    assert len({len(p.text) for p in prompts}) > 1  # a padded batch
    return prompts


@pytest.fixture(params=["fused", "hooks"])
def route(request, monkeypatch):
    """Both capture routes: the fused-attention forward read as it goes, and TransformerLens's forward with hooks."""
    import interp.capture as capture

    if request.param == "hooks":
        monkeypatch.setattr(capture, "fused_forward_exact", lambda model: False)
    return request.param


def test_resid_matches_hf_hidden_states_gpt2_small(gpt2_small_pair):
    hf, model = gpt2_small_pair
    check_against_hf(hf, model, mixed_length_prompts()[1:3], atol=1e-4)


def test_resid_matches_hf_hidden_states_tiny(tiny_char_pair, route):
    hf, model = tiny_char_pair
    check_against_hf(hf, model, mixed_length_prompts(), atol=1e-5)


def test_resid_mid_and_explicit_positions_match_full_cache(tiny_gpt2_model, route):
    prompts = mixed_length_prompts()
    ids = [encode(tiny_gpt2_model.tokenizer, p.text) for p in prompts]
    positions = [1, -2, 0, len(ids[3]) - 3]
    got = capture_resid(tiny_gpt2_model, prompts, hook="resid_mid", layers=[1], positions=positions)
    for i, x in enumerate(ids):
        _, cache = tiny_gpt2_model.run_with_cache(torch.tensor([x]))
        torch.testing.assert_close(got[0, i], cache[hook_name(1, "resid_mid")][0, positions[i]], atol=1e-6, rtol=0)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_padded_capture_equals_unpadded(tiny_char_model, padding_side, route):
    prompts = mixed_length_prompts()
    alone = capture_resid(tiny_char_model, prompts, batch_size=1)
    padded = capture_resid(tiny_char_model, prompts, batch_size=4, padding_side=padding_side)
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=0)
    sub = capture_resid(tiny_char_model, prompts, layers=[1, 0], padding_side=padding_side)
    torch.testing.assert_close(sub, alone[[1, 0]], atol=1e-5, rtol=0)


def test_positions_are_resolved_and_checked():
    assert resolve_positions([3, 5], None) == [2, 4]
    assert resolve_positions([3, 5], [-3, 4]) == [0, 4]
    with pytest.raises(ValueError, match="positions: position 5 of prompt 1"):
        resolve_positions([3, 5], [0, 5])
    with pytest.raises(ValueError, match="positions: expected 2"):
        resolve_positions([3, 5], [0])
    with pytest.raises(ValueError, match="one int per prompt"):
        resolve_positions([3, 5], 1)


@pytest.fixture
def no_forward(tiny_char_model, monkeypatch):
    """The tiny model with a forward that fails the test if called."""

    def boom(*args, **kwargs):
        raise AssertionError("a forward pass ran before the arguments were validated")

    monkeypatch.setattr(tiny_char_model, "forward", boom)
    return tiny_char_model


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hook": "resid"}, "hook:"),
        ({"layers": [2]}, "layers: 2 out of range"),
        ({"layers": [0, 0]}, "layers: duplicate"),
        ({"positions": [0, 99]}, "positions: position 99"),
        ({"padding_side": "middle"}, "padding_side:"),
        ({"batch_size": 0}, "batch_size:"),
    ],
)
def test_bad_arguments_fail_before_forward(no_forward, kwargs, match):
    prompts = build_prompts("operands", n_examples=3, n_prompts=2, seed=0)
    with pytest.raises(ValueError, match=match):
        capture_resid(no_forward, prompts, **kwargs)


def test_token_budget_splits_batches_without_changing_results(tiny_gpt2_model, monkeypatch, route):
    import interp.capture as capture

    prompts = mixed_length_prompts()
    widths = []
    name = "fused_resid" if route == "fused" else "forward_logits"
    original = getattr(capture, name)

    def recording(model, tokens, *args, **kwargs):
        widths.append(tuple(tokens.shape))
        return original(model, tokens, *args, **kwargs)

    whole = capture_resid(tiny_gpt2_model, prompts, batch_size=8, max_tokens=None)
    monkeypatch.setattr(capture, name, recording)
    budget = max(len(encode(tiny_gpt2_model.tokenizer, p.text)) for p in prompts) * 2
    split = capture_resid(tiny_gpt2_model, prompts, batch_size=8, max_tokens=budget)
    assert len(widths) >= 2 and all(rows * width <= budget for rows, width in widths)
    torch.testing.assert_close(split, whole, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="max_tokens: must be an integer >= 1 or None"):
        capture_resid(tiny_gpt2_model, prompts, max_tokens=0)


def test_token_batches_respects_both_caps():
    from interp.capture import token_batches

    lengths = [3, 3, 4, 9, 9, 10]
    batches = token_batches(range(6), lengths, batch_size=2, max_tokens=20)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(len(b) <= 2 and (len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 20) for b in batches)
    assert token_batches([0], [50], batch_size=4, max_tokens=10) == [[0]]  # a long prompt still runs, alone


def test_several_hooks_in_one_pass_equal_each_hook_alone(tiny_char_model, route):
    prompts = mixed_length_prompts()
    kw = dict(layers=[1, 0], positions=[1, -2, 0, -1], batch_size=3)
    got = capture_hooks(tiny_char_model, prompts, hooks=["resid_post", "resid_pre", "resid_mid"], **kw)
    assert list(got) == ["resid_post", "resid_pre", "resid_mid"]
    for hook, acts in got.items():
        alone = capture_resid(tiny_char_model, prompts, hook=hook, **kw)
        assert torch.equal(acts, alone), hook
    with pytest.raises(ValueError, match="hooks: duplicate hook points"):
        capture_hooks(tiny_char_model, prompts, hooks=["resid_pre", "resid_pre"])
    with pytest.raises(ValueError, match="hook: 'resid_out' is not a residual hook point"):
        capture_hooks(tiny_char_model, prompts, hooks=["resid_out"])
