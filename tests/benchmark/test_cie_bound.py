"""benchmarks/cie_bound.py (issue 40): the least arithmetic of an exact head CIE is what the fused passes do, product
for product, and never more than the toolkit's whole exact route does; a count that charges the patched heads' own
blocks in full overshoots that route, so the check can tell a lower bound from a guess."""

from __future__ import annotations

import doctest
from types import SimpleNamespace

import pytest
import torch
from scripts import load_script

from interp.capture import token_ids
from interp.engines.fused import fused_resid
from interp.heads import causal_indirect_effects, cie_prompts

KW = dict(n_prompts=5, n_examples=4, seed=0)


@pytest.fixture(scope="module")
def bound():
    return load_script("benchmarks/cie_bound.py")


@pytest.fixture(params=["tiny_char_model", "embedded_model"])
def case(request):
    model = request.getfixturevalue(request.param)
    clean, corrupted, _ = cie_prompts("bias_add", "add1", **KW)
    return model, torch.tensor(token_ids(model, clean)), torch.tensor(token_ids(model, corrupted))


def test_the_docstring_example_holds(bound):
    assert doctest.testmod(bound).failed == 0


def test_the_passes_count_what_the_fused_forward_multiplies(bound, case):
    """The corrupted prefix's keys and values: exactly the fused pass's products. The clean pass: the fused pass
    computes the last block's queries at every token, the bound at the last tokens only: exactly that apart."""
    model, clean, corrupted = case
    cfg = model.cfg
    prefix = corrupted[:, :-1]
    counted = bound.matmul_flops(lambda: fused_resid(model, prefix, keys_values=[], through="keys_values"))
    assert counted == bound.corrupted_prefix_flops(cfg, prefix.numel())
    counted = bound.matmul_flops(lambda: fused_resid(model, clean, z_tap=lambda la, z: None, through="z"))
    queries_beyond_the_last = 2 * cfg.d_model * cfg.n_heads * cfg.d_head * (clean.numel() - len(clean))
    assert counted == bound.clean_pass_flops(cfg, clean.numel(), len(clean)) + queries_beyond_the_last


def test_the_bound_is_below_the_exact_route_and_a_looser_count_is_not(bound, case):
    model, clean, corrupted = case
    cfg, layers = model.cfg, range(model.cfg.n_layers)
    route = bound.matmul_flops(lambda: causal_indirect_effects(model, "bias_add", "add1", **KW))
    least = bound.exact_cie_flops(cfg, clean.numel(), corrupted.numel(), len(clean), layers)
    assert least <= route <= 1.5 * least
    # charging each patched head's own block in full (queries, keys, values of its last token again) overshoots
    a, n = cfg.n_heads * cfg.d_head, len(clean)
    whole_block_at_the_patch = n * cfg.n_heads * len(layers) * (2 * 4 * cfg.d_model * a - 2 * cfg.d_head * cfg.d_model)
    assert least + whole_block_at_the_patch > route


def test_the_rate_is_a_plausible_float32_rate(bound):
    cfg = SimpleNamespace(n_layers=1, d_model=32, n_heads=2, d_head=16, d_mlp=64, d_vocab=10)
    rate = bound.best_matmul_rate(cfg, rows=64, repeats=3)
    assert 1e6 < rate < 1e14


def test_the_attention_compared_in_cie_passes_is_the_same_attention():
    """benchmarks/cie_passes.py times PyTorch's fused kernel against plain batched attention: the two must agree, or
    the comparison times different work."""
    passes = load_script("benchmarks/cie_passes.py")
    timed = passes.attention_seconds(batch=2, heads=2, tokens=9, d_head=4, repeats=2)
    assert timed["max_abs_diff"] < 1e-5 and timed["fused_s"] > 0 and timed["plain_s"] > 0
