"""Packed rows (prompt + every answer in one block-masked row) equal separate forwards, and leave no hook behind."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import interp.engines as engines
import interp.engines.packed as packing
from interp.engines.exact import absolute_positions as packable
from interp.engines.packed import PackedBatch, block_mask, layout, pack, packed_forward
from interp.engines.plan import candidates_batch
from interp.hooks import attached_hooks
from interp.prompts import build_prompts
from interp.scoring import score_answers


def test_pack_places_suffixes_after_their_prefix_at_their_own_positions():
    rows = pack([(1, 2), (5,)], [(7, 8), (9,), (6,)], [0, 0, 1], n_ctx=8)
    assert rows.tokens == [(1, 2, 7, 8, 9), (5, 6)]
    assert rows.positions == [(0, 1, 2, 3, 2), (0, 1)]
    assert rows.segments == [(0, 0, 1, 1, 2), (0, 1)]
    assert rows.prefix_row.tolist() == [0, 1]
    assert rows.suffix_row.tolist() == [0, 0, 1] and rows.suffix_start.tolist() == [2, 4, 1]


def test_pack_repeats_the_prefix_when_the_row_would_pass_n_ctx():
    rows = pack([(1, 2, 3)], [(7, 8), (9,), (6, 6)], [0, 0, 0], n_ctx=6)
    assert rows.tokens == [(1, 2, 3, 7, 8, 9), (1, 2, 3, 6, 6)]
    assert rows.suffix_row.tolist() == [0, 0, 1] and rows.suffix_start.tolist() == [3, 5, 3]
    assert all(len(t) <= 6 for t in rows.tokens)
    with pytest.raises(ValueError, match="suffixes: prefix \\+ suffix has 7 tokens, more than n_ctx=6"):
        pack([(1, 2, 3)], [(1, 2, 3, 4)], [0], n_ctx=6)


def test_block_mask_hides_other_answers_but_not_the_prompt():
    seg = torch.tensor([[0, 0, 1, 1, 2, -1]])
    visible = block_mask(seg)[0]
    assert visible[4].tolist() == [True, True, False, False, True, False]  # answer 2 sees the prompt and itself
    assert visible[3].tolist() == [True, True, True, True, False, False]  # answer 1 sees its own earlier token
    assert visible[1, :2].all()


def test_packable_only_for_learned_positions_and_global_causal_attention(tiny_gpt2_model):
    assert packable(tiny_gpt2_model)
    cfg = dict(positional_embedding_type="standard", attention_dir="causal", use_local_attn=False)
    assert not packable(SimpleNamespace(cfg=SimpleNamespace(**cfg | {"positional_embedding_type": "rotary"})))
    assert not packable(SimpleNamespace(cfg=SimpleNamespace(**cfg | {"use_local_attn": True})))
    assert not packable(SimpleNamespace(cfg=SimpleNamespace(**cfg | {"attention_dir": "bidirectional"})))


@pytest.mark.parametrize("n_ctx_slack", [None, 2])
@pytest.mark.parametrize("attention", ["fused", "hooks"])
def test_packed_scores_equal_the_key_value_cache_route(tiny_gpt2_model, monkeypatch, n_ctx_slack, attention):
    """Multi-token BPE answers; with ``n_ctx_slack`` the context is so short that every prompt needs several rows.
    ``attention``: the fused-attention forward, or TransformerLens's forward with the packing done by hooks."""
    if attention == "hooks":
        monkeypatch.setattr(packing, "fused_forward_exact", lambda model: False)
    prompts = build_prompts("add_translate", n_examples=4, n_prompts=5, seed=3)
    if n_ctx_slack is not None:
        texts, answers = [p.text for p in prompts], [p.answers for p in prompts]
        cands = candidates_batch(tiny_gpt2_model.tokenizer, texts, answers)
        longest = max(c.n_fed for g in cands for c in g)
        monkeypatch.setattr(packing, "context_length", lambda model: longest + n_ctx_slack)
    packed = score_answers(tiny_gpt2_model, prompts, include_newline=True, batch_size=2)
    monkeypatch.setattr(engines, "absolute_positions", lambda model: False)
    cached = score_answers(tiny_gpt2_model, prompts, include_newline=True, batch_size=2)
    np.testing.assert_allclose(packed.log_probs, cached.log_probs, atol=1e-5, rtol=0)
    assert (packed.log_probs < -0.0).all()


def test_packed_forward_removes_its_hooks_on_error(tiny_gpt2_model):
    tokens = torch.tensor([[1, 2, 3]])
    bad_positions = torch.tensor([[0, 1]])  # wrong width: the position hook fails mid-forward
    batch = PackedBatch(tokens, bad_positions, torch.zeros_like(tokens), None, np.array([3]), fused=False)  # hooks
    with pytest.raises(RuntimeError):
        packed_forward(tiny_gpt2_model, batch)
    assert attached_hooks(tiny_gpt2_model) == 0


def test_split_layout_puts_prefixes_in_one_causal_block(tiny_char_model):
    rows = pack([(1, 2, 3), (4,)], [(7,), (8, 9), (5,)], [0, 0, 1], n_ctx=16)
    batch = layout(tiny_char_model, rows, [0, 1], pad=0)
    assert batch.prefix_width == 3
    assert batch.tokens.tolist() == [[1, 2, 3, 7, 8, 9], [4, 0, 0, 5, 0, 0]]
    assert batch.positions[1].tolist()[:4] == [0, 0, 0, 1] and batch.segments[1].tolist() == [0, -1, -1, 1, -1, -1]
    assert batch.columns(np.array([0, 1, 1]), np.array([4, 0, 1])).tolist() == [4, 0, 3]


def test_attached_hooks_keep_the_two_pass_route(tiny_gpt2_model, monkeypatch):
    """A hook attached by the caller keeps its documented semantics: prompt pass only (answers run from the cache)."""
    from interp.hooks import hooked

    monkeypatch.setattr(packing, "packed_forward", lambda *a, **k: pytest.fail("packed route ran with a hook"))
    prompts = build_prompts("operands", n_examples=3, n_prompts=2, seed=0)
    with hooked(tiny_gpt2_model, [("blocks.0.hook_resid_post", lambda act, hook: act)]):
        scores = score_answers(tiny_gpt2_model, prompts, include_newline=True)
    assert np.isfinite(scores.log_probs).all()
