"""The gradient engine of attribution patching (issue 40): the last-token route on the fused forward equals the
hooked full forward, and both equal finite differences of the reference method (interp.reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import interp.engines.gradients as gradients
from interp import reference
from interp.attribution import answer_tokens, residual_attribution
from interp.capture import token_ids
from interp.engines.gradients import Variant, head_gradients
from interp.interventions import Intervention
from interp.models import load_model
from interp.prompts import build_prompts


@pytest.fixture(scope="module")
def embedded64():
    return load_model("embedded", device="cpu", dtype="float64")


def _prompts(model, n=4):
    prompts = build_prompts("bias_add", ["add1", "add7"], proportions=[0.5, 0.5], n_examples=5, n_prompts=n, seed=0)
    return prompts, token_ids(model, prompts), answer_tokens(model, prompts, 0)


def test_the_last_token_route_equals_the_hooked_forward_for_every_variant(embedded64, monkeypatch):
    """Gradients at the corrupted point, at a layer's far end and with a block dropped (GradDrop): the fused
    last-token continuation and hooks on the whole forward agree to float64 rounding."""
    model = embedded64
    _, ids, targets = _prompts(model)
    g = torch.Generator().manual_seed(0)
    far = 2 * torch.randn(model.cfg.n_heads, model.cfg.d_head, generator=g, dtype=torch.float64)
    variants = [Variant(), Variant(replace_z={1: far}), Variant(drop_grad_at=2)]
    assert gradients.fused_forward_exact(model)
    fused = head_gradients(model, ids, targets, variants, batch_size=3)
    monkeypatch.setattr(gradients, "fused_forward_exact", lambda m: False)
    hooked = head_gradients(model, ids, targets, variants, batch_size=3)
    for a, b in zip(fused, hooked, strict=True):
        for x, y in ((a.z, b.z), (a.grad, b.grad), (a.log_p, b.log_p)):
            torch.testing.assert_close(x, y, atol=1e-10, rtol=0)
    assert fused[0].grad.abs().max() > 0.1  # gradients with teeth
    assert (fused[2].grad - fused[0].grad).abs().max() > 1e-3  # dropping a block changes the gradient
    torch.testing.assert_close(fused[1].z[:, 1], far[None].expand(len(ids), -1, -1))


def test_head_gradients_are_finite_differences_of_the_reference(embedded64):
    """∂ log P / ∂ z of one head at the last token, against a central difference of the reference method with that
    head's z shifted (interp.reference: one plain forward per prompt)."""
    model = embedded64
    prompts, ids, targets = _prompts(model, n=2)
    (grads,) = head_gradients(model, ids, targets)
    u = torch.randn(model.cfg.d_head, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    eps = 1e-5
    for la, h in ((0, 1), (2, 3)):
        shifted = [
            reference.answer_log_probs(model, prompts, [Intervention(la, "add", s * u, hook="z", head=h)])[:, 0]
            for s in (eps, -eps)
        ]
        finite = (shifted[0] - shifted[1]) / (2 * eps)
        np.testing.assert_allclose((grads.grad[:, la, h] @ u).numpy(), finite, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grads.log_p.numpy(), reference.answer_log_probs(model, prompts)[:, 0], atol=1e-10)


def test_residual_attribution_is_the_gradient_times_the_patch(embedded64):
    """One layer and position at a time, a small step of the patch (ε (x_clean − x_corrupted), exact by the
    reference) changes P by ε times the estimate."""
    from interp.prompts import random_answer_prompts

    model = embedded64
    kw = dict(proportions=[1.0, 0.0], n_examples=5, n_prompts=1, seed=3)
    clean = build_prompts("bias_add", ["add1", "add7"], **kw)
    corrupted = random_answer_prompts("bias_add", ["add1", "add7"], **kw)
    est = residual_attribution(model, clean, corrupted, 0)  # [prompt, layer, position]
    n = len(token_ids(model, corrupted)[0])
    assert est.shape == (1, model.cfg.n_layers, n) and np.abs(est).max() > 1e-4
    captured = {name: reference.capture(model, ps, [1], hook="resid_pre")[0, 0] for name, ps in
                (("clean", clean), ("corrupted", corrupted))}  # fmt: skip
    # the last position (captured by the reference); a step along the patch there
    step = 1e-4 * (captured["clean"] - captured["corrupted"]).double()
    shifted = [Intervention(1, "add", s * step, hook="resid_pre") for s in (1, -1)]
    p = [np.exp(reference.answer_log_probs(model, corrupted, [iv])[0, 0]) for iv in shifted]
    np.testing.assert_allclose((p[0] - p[1]) / 2e-4, est[0, 1, n - 1], rtol=1e-4, atol=1e-8)


def test_bad_input_is_refused_before_any_pass(embedded64, monkeypatch):
    model = embedded64
    _, ids, targets = _prompts(model, n=2)
    monkeypatch.setattr(gradients, "fused_resid", lambda *a, **k: pytest.fail("a forward pass ran"))
    with pytest.raises(ValueError, match=r"^targets: need one per row"):
        head_gradients(model, ids, targets[:1])
    with pytest.raises(ValueError, match=r"^variants\[0\]\.drop_grad_at: a layer 0\.\.3"):
        head_gradients(model, ids, targets, [Variant(drop_grad_at=4)])
    with pytest.raises(ValueError, match=r"^variants\[0\]\.replace_z: layer 0 needs"):
        head_gradients(model, ids, targets, [Variant(replace_z={0: torch.zeros(3)})])
