"""Patching: identity on self-patch, exact λ endpoints, hook hygiene on errors, validation before forward."""

import dataclasses
from math import comb

import numpy as np
import pytest
import torch

from interp.capture import capture_resid
from interp.hooks import attached_hooks, forward_logits, hooked
from interp.patching import add_patch, patch
from interp.prompts import build_prompts, zero_shot_prompts
from interp.scoring import score_answers
from interp.sweeps import best_layer, lambda_sweep, patched_scores, simplex_grid, simplex_sweep
from interp.tokenization import encode
from interp.vectors import TaskVector, convex, task_vector

FAMILY, A, B, C = "operands", "copy_first", "sum", "copy_second"


@pytest.fixture(scope="module")
def vectors(tiny_char_model):
    kw = dict(n_prompts=4, n_examples=4, seed=11)
    return {t: task_vector(tiny_char_model, FAMILY, t, **kw) for t in (A, B, C)}


def one_prompt(model):
    p = build_prompts(FAMILY, n_examples=4, n_prompts=1, seed=2)[0]
    return p, torch.tensor([encode(model.tokenizer, p.text)])


@pytest.mark.parametrize("hook", ["resid_pre", "resid_mid", "resid_post"])
def test_self_patch_leaves_logits_unchanged(tiny_char_model, hook):
    p, ids = one_prompt(tiny_char_model)
    last = ids.shape[1] - 1
    acts = capture_resid(tiny_char_model, [p], hook=hook)
    with torch.inference_mode():
        base = forward_logits(tiny_char_model, ids)
        for layer in range(tiny_char_model.cfg.n_layers):
            with patch(tiny_char_model, acts[layer, 0], layer, last, hook=hook):
                same = forward_logits(tiny_char_model, ids)
            assert (same - base).abs().max() <= 1e-5
            with patch(tiny_char_model, acts[layer, 0] * 2, layer, last, hook=hook):
                moved = forward_logits(tiny_char_model, ids)
            assert (moved[0, last] - base[0, last]).abs().max() > 1e-3  # the patch does act
            torch.testing.assert_close(moved[0, :last], base[0, :last])  # earlier positions untouched


def test_add_mode_equals_replace_with_sum(tiny_char_model):
    p, ids = one_prompt(tiny_char_model)
    last = ids.shape[1] - 1
    acts = capture_resid(tiny_char_model, [p])
    delta = torch.randn(acts.shape[-1], generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        with patch(tiny_char_model, delta, 0, last, mode="add"):
            added = forward_logits(tiny_char_model, ids)
        with patch(tiny_char_model, acts[0, 0] + delta, 0, [last]):
            replaced = forward_logits(tiny_char_model, ids)
    torch.testing.assert_close(added, replaced, atol=1e-5, rtol=0)


def test_handle_remove_is_explicit_and_idempotent(tiny_char_model, vectors):
    h = add_patch(tiny_char_model, vectors[A], 1, 3)
    assert h.active and attached_hooks(tiny_char_model) == 1
    h.remove()
    h.remove()
    assert not h.active and attached_hooks(tiny_char_model) == 0


def test_no_hook_left_after_exceptions(tiny_char_model, vectors):
    _, ids = one_prompt(tiny_char_model)
    with pytest.raises(RuntimeError, match="inside the block"):
        with patch(tiny_char_model, vectors[A], 1, 2):
            assert attached_hooks(tiny_char_model) == 1
            raise RuntimeError("inside the block")
    assert attached_hooks(tiny_char_model) == 0
    with pytest.raises(ValueError, match="positions: 999 lies beyond"):  # raised by the patch hook itself
        with patch(tiny_char_model, vectors[A], 0, 999):
            forward_logits(tiny_char_model, ids)
    assert attached_hooks(tiny_char_model) == 0

    def failing_hook(act, hook):
        raise KeyError("inside a hook")

    failing = [("blocks.1.hook_attn_out", failing_hook)]
    with pytest.raises(KeyError, match="inside a hook"):
        with patch(tiny_char_model, vectors[A], 0, 2), hooked(tiny_char_model, failing):
            forward_logits(tiny_char_model, ids)
    assert attached_hooks(tiny_char_model) == 0


def test_lambda_endpoints_equal_single_vectors(tiny_char_model, vectors):
    va, vb = vectors[A], vectors[B]
    zs = zero_shot_prompts(FAMILY, [A, B], n_prompts=3, seed=5)
    for layer in (0, 1):
        for lam, v in ((0.0, va), (1.0, vb)):
            mixed = convex([1 - lam, lam], [va, vb])
            assert torch.equal(mixed.at(layer), v.at(layer))
            np.testing.assert_array_equal(
                patched_scores(tiny_char_model, zs, mixed, layer).log_probs,
                patched_scores(tiny_char_model, zs, v, layer).log_probs,
            )
    sweep = lambda_sweep(
        tiny_char_model, FAMILY, A, B, va, vb, lambdas=[0.0, 0.5, 1.0], n_prompts=3, n_examples=4, seed=5
    )
    assert sweep.probs.shape == (3, 2, 3) and sweep.real_probs.shape == (3, 3)
    np.testing.assert_allclose(sweep.lambdas, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(sweep.probs.sum(axis=-1), 1.0, atol=1e-9)
    for i, v in ((0, vb), (2, va)):  # λ is the weight of task A: λ = 0 patches v_B, λ = 1 patches v_A
        for j, layer in enumerate(sweep.layers):
            p = patched_scores(tiny_char_model, zs, v, layer).probs.mean(axis=0)
            np.testing.assert_allclose(sweep.probs[i, j, :2], p, rtol=1e-5, atol=1e-12)
    # the real curve at λ = 1 is the single-task-A in-context prompts on the same queries
    real1 = score_answers(
        tiny_char_model, build_prompts(FAMILY, [A, B], proportions=[1, 0], n_examples=4, n_prompts=3, seed=5)
    )
    np.testing.assert_allclose(sweep.real_probs[2, :2], real1.probs.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(sweep.real_fractions, [[0, 1], [0.5, 0.5], [1, 0]])


def test_patched_scores_differ_from_unpatched(tiny_char_model, vectors):
    zs = zero_shot_prompts(FAMILY, [A, B], n_prompts=3, seed=5)
    base = score_answers(tiny_char_model, zs).log_probs
    patched = patched_scores(tiny_char_model, zs, vectors[B] * 3, 1).log_probs
    assert np.abs(base - patched).max() > 1e-3


def test_best_layer_reports_per_layer_and_references(tiny_char_model, vectors):
    res = best_layer(tiny_char_model, FAMILY, B, vectors[B], n_prompts=3, seed=4, n_examples=4)
    assert res.layers == (0, 1) and res.best in res.layers
    assert res.p_correct.shape == res.candidate_accuracy.shape == res.p_correct_sem.shape == (2,)
    assert res.best == res.layers[int(np.argmax(res.p_correct))]
    zs = zero_shot_prompts(FAMILY, n_prompts=3, seed=4)
    k = zs[0].tasks.index(B)
    for j, layer in enumerate(res.layers):
        s = patched_scores(tiny_char_model, zs, vectors[B], layer)
        np.testing.assert_allclose(res.p_correct[j], s.probs[:, k].mean(), rtol=1e-5)
        assert res.candidate_accuracy[j] == np.mean(s.log_probs.argmax(axis=1) == k)
        np.testing.assert_allclose(res.p_correct_sem[j], s.probs[:, k].std(ddof=1) / np.sqrt(3), rtol=1e-5)
    assert 0 <= res.zero_shot_p <= 1 and 0 <= res.icl_candidate_accuracy <= 1
    assert res.chance == 1 / len(zs[0].tasks)


def test_simplex_grid_and_sweep(tiny_char_model, vectors):
    g = simplex_grid(3, 4)
    assert g.shape == (comb(4 + 2, 2), 3) and np.allclose(g.sum(axis=1), 1) and (g >= 0).all()
    sweep = simplex_sweep(
        tiny_char_model,
        FAMILY,
        [A, B, C],
        [vectors[A], vectors[B], vectors[C]],
        resolution=1,
        layers=[1],
        n_prompts=2,
        n_examples=3,
        seed=0,
    )
    assert sweep.probs.shape == (3, 1, 4) and sweep.real_probs.shape == (3, 4)
    zs = zero_shot_prompts(FAMILY, [A, B, C], n_prompts=2, seed=0)
    for i, w in enumerate(sweep.weights):  # the grid's vertices are the single vectors
        v = vectors[(A, B, C)[int(np.argmax(w))]]
        np.testing.assert_allclose(
            sweep.probs[i, 0, :3], patched_scores(tiny_char_model, zs, v, 1).probs.mean(0), rtol=1e-5, atol=1e-12
        )


@pytest.fixture
def no_forward(tiny_char_model, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a forward pass ran before the arguments were validated")

    monkeypatch.setattr(tiny_char_model, "forward", boom)
    return tiny_char_model


def test_bad_inputs_fail_before_forward(no_forward, vectors):
    m, va, vb = no_forward, vectors[A], vectors[B]
    zs = zero_shot_prompts(FAMILY, [A, B], n_prompts=2, seed=0)
    other_model = dataclasses.replace(va, model_id="gpt2")
    other_proc = dataclasses.replace(va, processing={**va.processing_dict, "fold_ln": True})
    cases = [
        (lambda: lambda_sweep(m, FAMILY, A, B, va, vb, lambdas=[0.0, 1.2], n_prompts=2), "lambdas: .*\\[0, 1\\]"),
        (lambda: lambda_sweep(m, FAMILY, A, B, va, vb, lambdas=[-0.1], n_prompts=2), "lambdas:"),
        (lambda: lambda_sweep(m, FAMILY, A, B, va, vb, layers=[2], n_prompts=2), "layers: 2 out of range"),
        (lambda: lambda_sweep(m, FAMILY, A, B, va, other_model, n_prompts=2), "model_id"),
        (lambda: simplex_sweep(m, FAMILY, [A, B], [va, vb], weights=[[0.5, 0.6]], n_prompts=2), "weights: .*sum to 1"),
        (lambda: patched_scores(m, zs, va, 2), "layer: 2 out of range"),
        (lambda: patched_scores(m, zs, va, -1), "layer:"),
        (lambda: patched_scores(m, zs, other_model, 0), "vector: .*model_id"),
        (lambda: patched_scores(m, zs, other_proc, 0), "vector: .*processing"),
        (lambda: patched_scores(m, zs, va, 0, positions=[1, 50]), "positions: position 50 of prompt 1"),
        (lambda: patched_scores(m, zs, va, 0, mode="swap"), "mode:"),
        (lambda: best_layer(m, FAMILY, "product", va, n_prompts=2), "^task: unknown task"),
        (lambda: patch(m, va, 5, 0).__enter__(), "layer: 5 out of range"),
        (lambda: patch(m, torch.zeros(3), 0, 0).__enter__(), "what: expected shape"),
        (lambda: patch(m, va, 0).__enter__(), "positions: needed"),
        (lambda: patch(m, va, 0, -1).__enter__(), "positions: must be >= 0"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
    assert attached_hooks(m) == 0


def test_vector_from_other_width_is_refused(tiny_char_model):
    v = TaskVector(torch.zeros(2, 8), torch.zeros(2, 8), "tiny-char", {}, "resid_post", (0, 1))
    with pytest.raises(ValueError, match="d_model"):
        add_patch(tiny_char_model, v, 0, 0)
