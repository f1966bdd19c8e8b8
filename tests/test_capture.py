"""Residual capture: oracle against HF ``output_hidden_states``, padding, positions, validation."""

import pytest
import torch

from interp.capture import capture_resid, resolve_positions
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


def test_resid_matches_hf_hidden_states_gpt2_small(gpt2_small_pair):
    hf, model = gpt2_small_pair
    check_against_hf(hf, model, mixed_length_prompts()[1:3], atol=1e-4)


def test_resid_matches_hf_hidden_states_tiny(tiny_char_pair):
    hf, model = tiny_char_pair
    check_against_hf(hf, model, mixed_length_prompts(), atol=1e-5)


def test_resid_mid_and_explicit_positions_match_full_cache(tiny_gpt2_model):
    prompts = mixed_length_prompts()
    ids = [encode(tiny_gpt2_model.tokenizer, p.text) for p in prompts]
    positions = [1, -2, 0, len(ids[3]) - 3]
    got = capture_resid(tiny_gpt2_model, prompts, hook="resid_mid", layers=[1], positions=positions)
    for i, x in enumerate(ids):
        _, cache = tiny_gpt2_model.run_with_cache(torch.tensor([x]))
        torch.testing.assert_close(got[0, i], cache[hook_name(1, "resid_mid")][0, positions[i]], atol=1e-6, rtol=0)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_padded_capture_equals_unpadded(tiny_char_model, padding_side):
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
