"""Oracle: the fused-attention forward equals TransformerLens's own forward on every model kind the toolkit ships."""

import pytest
import torch

from interp.construction import load_constructed
from interp.fused import fused_ok, fused_resid
from interp.hooks import hooks
from interp.packing import block_mask
from interp.prompts import build_prompts
from interp.tokenization import encode_batch, pad_id, right_pad


def tokens_for(model, family: str, n: int = 5, n_examples: int = 10) -> torch.Tensor:
    texts = [p.text for p in build_prompts(family, n_examples=n_examples, n_prompts=n, seed=2)]
    return right_pad(encode_batch(model.tokenizer, texts), pad_id(model.tokenizer))


@pytest.mark.parametrize(
    ("model_fixture", "family"),
    [("tiny_gpt2_model", "add_translate"), ("tiny_char_model", "operands"), ("embedded_model", "retrieval")],
)
def test_fused_forward_equals_transformer_lens(model_fixture, family, request):
    model = request.getfixturevalue(model_fixture)
    assert fused_ok(model)
    x = tokens_for(model, family)
    with torch.inference_mode():
        ref = model(x, stop_at_layer=model.cfg.n_layers)
        got = fused_resid(model, x)
    scale = ref.abs().max().item()
    assert (got - ref).abs().max().item() <= 1e-5 * max(scale, 1.0)


def test_fused_forward_equals_transformer_lens_on_the_constructed_model():
    model = load_constructed("constructed:retrieval:K=2")
    assert fused_ok(model)
    x = tokens_for(model, "retrieval", n=3, n_examples=10)
    with torch.inference_mode():
        ref = model(x, stop_at_layer=model.cfg.n_layers)
        got = fused_resid(model, x)
    assert (got - ref).abs().max().item() <= 1e-5 * max(ref.abs().max().item(), 1.0)


def test_positions_and_visibility_are_honoured(tiny_char_model):
    """Row ``[a b c | d]`` with ``d`` at position 2 seeing only ``a b`` equals the plain forward of ``[a b d]``."""
    model = tiny_char_model
    x = tokens_for(model, "operands", n=1)[:, :6]
    alone = torch.cat([x[:, :5], x[:, 5:6]], dim=1)
    packed = torch.cat([x[:, :5], x[:, 4:5], x[:, 5:6]], dim=1)  # a decoy token in its own segment before d
    positions = torch.tensor([[0, 1, 2, 3, 4, 5, 5]])
    segments = torch.tensor([[0, 0, 0, 0, 0, 1, 2]])
    with torch.inference_mode():
        ref = model(alone, stop_at_layer=model.cfg.n_layers)
        got = fused_resid(model, packed, positions=positions, visible=block_mask(segments))
    assert (got[0, -1] - ref[0, -1]).abs().max().item() < 1e-5
    assert (got[0, :5] - ref[0, :5]).abs().max().item() < 1e-5


def test_not_used_where_it_would_differ(tiny_char_model):
    with hooks(tiny_char_model, [("blocks.0.hook_resid_post", lambda act, hook: act)]):
        assert not fused_ok(tiny_char_model)  # a user's hook must run: TransformerLens's forward is used
    assert fused_ok(tiny_char_model)
