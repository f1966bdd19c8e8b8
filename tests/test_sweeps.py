"""The batched cell driver: the shared-prefix route equals one patched forward per cell (issue 17, target 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.hooks import attached_hooks
from interp.patching import patch
from interp.prompts import zero_shot_prompts
from interp.scoring import candidates_for, score_answers
from interp.sweeps import _shared_prefix_plan, last_positions, score_cells, score_cells_per_cell
from interp.tokenization import encode_batch

TOL = 1e-5


def random_cells(model, layers, per_layer: int, seed: int) -> list[tuple[int, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(la, torch.randn(model.cfg.d_model, generator=g)) for la in layers for _ in range(per_layer)]


def per_cell_reference(model, prompts, cells, *, mode: str, hook: str) -> np.ndarray:
    """One patched forward per cell through the public primitives (``patch`` + ``score_answers``).

    ``score_answers`` orders rows by length, so one position (the common last token) must fit every row.
    """
    lengths = {len(x) for x in encode_batch(model.tokenizer, [p.text for p in prompts])}
    assert len(lengths) == 1, "reference needs queries of one token length"
    pos = lengths.pop() - 1
    out = []
    for la, value in cells:
        with patch(model, value, la, pos, mode=mode, hook=hook):
            out.append(score_answers(model, prompts).log_probs)
    return np.stack(out)


@torch.inference_mode()
def full_sequence_reference(model, prompts, cells, *, mode: str, hook: str) -> np.ndarray:
    """One patched forward of prompt + answer per (cell, prompt, candidate), patch at the prompt's last token: the
    exact reference for multi-token answers (``patch`` around ``score_answers`` would also patch its answer pass)."""
    out = np.zeros((len(cells), len(prompts), len(prompts[0].tasks)))
    for c, (la, value) in enumerate(cells):
        for i, p in enumerate(prompts):
            for k, cand in enumerate(candidates_for(model.tokenizer, p.text, p.answers)):
                assert not cand.merged
                with patch(model, value, la, cand.prompt_len - 1, mode=mode, hook=hook):
                    logits = model(torch.tensor([cand.ids]))[0, cand.start - 1 : len(cand.ids) - 1]
                logp = torch.log_softmax(logits, dim=-1).double()
                out[c, i, k] = float(logp[torch.arange(len(logits)), torch.tensor(cand.ids[cand.start :])].sum())
    return out


@pytest.mark.parametrize("mode", ["replace", "add"])
@pytest.mark.parametrize("hook", ["resid_post", "resid_pre"])
def test_shared_route_equals_one_patched_forward_per_cell_tiny(tiny_char_model, mode, hook):
    model = tiny_char_model
    zs = zero_shot_prompts("bias_add", ["add1", "add3", "add7"], n_prompts=12, seed=3)
    assert _shared_prefix_plan(model, zs, last_positions(model, zs), hook, False) is not None
    cells = random_cells(model, [0, 1], per_layer=3, seed=1)
    got = score_cells(model, zs, cells, last_positions(model, zs), mode=mode, hook=hook, batch_size=5)
    ref = per_cell_reference(model, zs, cells, mode=mode, hook=hook)
    assert got.shape == ref.shape == (6, 12, 3)
    np.testing.assert_allclose(got, ref, atol=TOL, rtol=0)
    assert np.ptp(got, axis=0).max() > 1e-3  # the cells really differ


@pytest.mark.parametrize("mode", ["replace", "add"])
def test_shared_route_equals_one_patched_forward_per_cell_embedded(embedded_model, mode):
    model = embedded_model
    zs = zero_shot_prompts("bias_add", ["add1", "add7"], n_prompts=16, seed=0)
    layers = list(range(model.cfg.n_layers))
    cells = random_cells(model, layers, per_layer=2, seed=2)
    got = score_cells(model, zs, cells, last_positions(model, zs), mode=mode, hook="resid_post", batch_size=32)
    ref = per_cell_reference(model, zs, cells, mode=mode, hook="resid_post")
    np.testing.assert_allclose(got, ref, atol=TOL, rtol=0)


def test_shared_route_handles_prompts_of_different_lengths_and_repeats(tiny_char_model):
    """``letters`` queries differ in length (right padding in the shared cache) and repeat a prompt."""
    model = tiny_char_model
    zs = zero_shot_prompts("letters", ["first", "last"], n_prompts=10, seed=4)
    zs = zs + zs[:3]
    pos = last_positions(model, zs)
    assert len(set(pos)) > 1
    assert _shared_prefix_plan(model, zs, pos, "resid_post", False) is not None
    cells = random_cells(model, [0, 1], per_layer=2, seed=5)
    got = score_cells(model, zs, cells, pos, mode="add", hook="resid_post", batch_size=4)
    ref = score_cells_per_cell(model, zs, cells, pos, mode="add", hook="resid_post", batch_size=4)
    np.testing.assert_allclose(got, ref, atol=TOL, rtol=0)
    np.testing.assert_array_equal(got[:, -3:], got[:, :3])


@pytest.mark.parametrize("mode", ["replace", "add"])
def test_multi_token_answers_take_the_exact_per_cell_path(tiny_char_model, mode):
    """``operands`` answers are two characters: the answer pass needs per-cell caches, so the per-cell path runs."""
    model = tiny_char_model
    zs = zero_shot_prompts("operands", n_prompts=6, seed=2)
    pos = last_positions(model, zs)
    assert _shared_prefix_plan(model, zs, pos, "resid_post", False) is None
    cells = random_cells(model, [0, 1], per_layer=2, seed=6)
    got = score_cells(model, zs, cells, pos, mode=mode, hook="resid_post", batch_size=8)
    ref = full_sequence_reference(model, zs, cells, mode=mode, hook="resid_post")
    assert max(len(a) for p in zs for a in p.answers) > 1
    np.testing.assert_allclose(got, ref, atol=TOL, rtol=0)


def test_route_choice(tiny_char_model):
    """The shared route only where it is exact: not with the newline, resid_mid, or a patch before the last token."""
    model = tiny_char_model
    zs = zero_shot_prompts("bias_add", ["add1", "add2"], n_prompts=4, seed=0)
    pos = last_positions(model, zs)
    assert _shared_prefix_plan(model, zs, pos, "resid_post", False) is not None
    assert _shared_prefix_plan(model, zs, pos, "resid_post", True) is None
    assert _shared_prefix_plan(model, zs, pos, "resid_mid", False) is None
    assert _shared_prefix_plan(model, zs, [p - 1 for p in pos], "resid_post", False) is None


def test_fallback_routes_agree_for_resid_mid_and_earlier_positions(tiny_char_model):
    model = tiny_char_model
    zs = zero_shot_prompts("bias_add", ["add1", "add2"], n_prompts=4, seed=0)
    cells = random_cells(model, [1], per_layer=2, seed=7)
    earlier = [p - 1 for p in last_positions(model, zs)]
    for hook, pos in (("resid_mid", last_positions(model, zs)), ("resid_post", earlier)):
        a = score_cells(model, zs, cells, pos, mode="replace", hook=hook, batch_size=4)
        b = score_cells_per_cell(model, zs, cells, pos, mode="replace", hook=hook, batch_size=4)
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("route", ["fused", "transformer_lens"])
def test_shared_route_attaches_no_hooks(tiny_char_model, monkeypatch, route):
    """The shared route patches tensors directly: no hook is attached, even mid-run (on both of its forwards)."""
    import interp.sweeps as sweeps

    model = tiny_char_model
    seen = []

    def spying(fn):
        def spy(*args, **kwargs):
            seen.append(attached_hooks(model))
            return fn(*args, **kwargs)

        return spy

    if route == "fused":
        monkeypatch.setattr(sweeps, "fused_continue", spying(sweeps.fused_continue))
    else:
        monkeypatch.setattr(sweeps, "fused_ok", lambda m: False)
        monkeypatch.setattr(model, "forward", spying(model.forward))
    zs = zero_shot_prompts("bias_add", ["add1", "add2"], n_prompts=4, seed=0)
    score_cells(
        model,
        zs,
        random_cells(model, [0], 1, 0),
        last_positions(model, zs),
        mode="add",
        hook="resid_post",
        batch_size=4,
    )
    assert seen and max(seen) == 0


@pytest.mark.parametrize(("hook", "dead_layer"), [("resid_post", None), ("resid_pre", None), ("resid_pre", 0)])
def test_fused_and_transformer_lens_caches_give_the_same_cells(tiny_char_model, monkeypatch, hook, dead_layer):
    """The shared route on the fused forward's own keys and values equals it on TransformerLens's cache (prompts of
    different lengths, so right padding in the cache, and every split layer including the last; also with a layer
    whose heads all write nothing, so that it stores no keys and values)."""
    import copy

    import interp.sweeps as sweeps

    model = tiny_char_model
    if dead_layer is not None:
        model = copy.deepcopy(model)
        with torch.no_grad():
            model.blocks[dead_layer].attn.W_O.zero_()
    zs = zero_shot_prompts("letters", ["first", "last"], n_prompts=9, seed=4)
    pos = last_positions(model, zs)
    assert len(set(pos)) > 1 and sweeps.fused_ok(model)
    cells = random_cells(model, range(model.cfg.n_layers), per_layer=2, seed=8)
    fused = score_cells(model, zs, cells, pos, mode="replace", hook=hook, batch_size=4)
    monkeypatch.setattr(sweeps, "fused_ok", lambda m: False)
    tl = score_cells(model, zs, cells, pos, mode="replace", hook=hook, batch_size=4)
    np.testing.assert_allclose(fused, tl, atol=TOL, rtol=0)
    assert np.ptp(fused, axis=0).max() > 1e-3


def test_no_cells_gives_an_empty_result(tiny_char_model):
    zs = zero_shot_prompts("bias_add", ["add1", "add2"], n_prompts=3, seed=0)
    out = score_cells(
        tiny_char_model, zs, [], last_positions(tiny_char_model, zs), mode="add", hook="resid_post", batch_size=4
    )
    assert out.shape == (0, 3, 2)


def test_a_vector_of_another_task_warns_and_its_own_does_not(tiny_char_model):
    """Issue 24: a retrieval vector passed as a bias-add task's vector was accepted silently."""
    import warnings

    from interp.sweeps import lambda_sweep
    from interp.vectors import task_vector

    kw = dict(n_prompts=2, n_examples=3, seed=0)
    own_a, own_b = (task_vector(tiny_char_model, "bias_add", t, **kw) for t in ("add1", "add7"))
    other = task_vector(tiny_char_model, "retrieval", "pos1", **kw)
    sweep_kw = dict(lambdas=[0.0, 1.0], layers=[1], n_prompts=2, n_examples=3, real=False)
    with pytest.warns(UserWarning, match=r"vectors\[1\]: a vector of retrieval:pos1 is used as the vector of bias_add"):
        lambda_sweep(tiny_char_model, "bias_add", "add1", "add7", own_a, other, **sweep_kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        lambda_sweep(tiny_char_model, "bias_add", "add1", "add7", own_a, own_b, **sweep_kw)
