"""The batched cell driver: both routes equal the reference method (interp.reference), for every intervention mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from versions import bridge_only, tl3_only

from interp import reference
from interp.engines import score
from interp.hooks import attached_hooks
from interp.interventions import MODES, Intervention, orthonormal_basis
from interp.prompts import zero_shot_prompts
from interp.sweeps import last_positions, score_cells

TOL = 1e-5


def random_cells(model, layers, per_layer: int, seed: int, *, mode="replace", hook="resid_post", position=None):
    """``per_layer`` interventions of ``mode`` per layer with random vectors (and a random 2-d span for subspace)."""
    g = torch.Generator().manual_seed(seed)
    d = model.cfg.d_head if hook == "z" else model.cfg.d_model  # "z": a head's output, each cell a random head
    out = []
    for la in layers:
        for _ in range(per_layer):
            v = torch.randn(d, generator=g)
            kw = {"alpha": 0.7} if mode in ("add", "steer") else {}
            if mode == "subspace":
                kw = {"basis": orthonormal_basis(torch.randn(2, d, generator=g))}
            if hook == "z":
                kw["head"] = int(torch.randint(model.cfg.n_heads, (1,), generator=g))
            out.append(Intervention(la, mode, v, hook=hook, position=position, **kw))
    return out


def route_of(model, prompts, cells=None, positions=None) -> str:
    texts, answers = [p.text for p in prompts], [list(p.answers) for p in prompts]
    cells = cells if cells is not None else [Intervention(0, "add", torch.zeros(model.cfg.d_model))]
    return score(model, texts, answers, cells, positions=positions).route


def per_cell(model, prompts, cells, batch_size=4) -> np.ndarray:
    """The per-cell route, forced: prompts replicated per cell, each cell a prompt-pass hook."""
    import interp.engines as engines

    texts, answers = [p.text for p in prompts], [list(p.answers) for p in prompts]
    real = engines.shared_prefix_plan
    engines.shared_prefix_plan = lambda *a: None
    try:
        return score(model, texts, answers, cells, batch_size=batch_size).log_probs
    finally:
        engines.shared_prefix_plan = real


def reference_cells(model, prompts, cells) -> np.ndarray:
    """The oracle: one unbatched forward per (cell, prompt, candidate) through :mod:`interp.reference`."""
    return np.stack([reference.answer_log_probs(model, prompts, [iv]) for iv in cells])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("hook", ["resid_post", "resid_pre"])
def test_shared_route_equals_the_reference_for_every_mode_tiny(tiny_char_model, mode, hook):
    model = tiny_char_model
    zs = zero_shot_prompts("bias_add", ["add1", "add3", "add7"], n_prompts=12, seed=3)
    assert route_of(model, zs) == "shared_prefix"
    cells = random_cells(model, [0, 1], per_layer=3, seed=1, mode=mode, hook=hook)
    got = score_cells(model, zs, cells, batch_size=5)
    ref = reference_cells(model, zs, cells)
    assert got.shape == ref.shape == (6, 12, 3)
    np.testing.assert_allclose(got, ref, atol=TOL, rtol=0)
    assert np.ptp(got, axis=0).max() > 1e-3  # the cells really differ


@pytest.mark.parametrize("mode", ["replace", "add", "subspace"])
def test_shared_route_equals_the_reference_on_the_embedded_model(embedded_model, mode):
    model = embedded_model
    zs = zero_shot_prompts("bias_add", ["add1", "add7"], n_prompts=8, seed=0)
    cells = random_cells(model, range(model.cfg.n_layers), per_layer=1, seed=2, mode=mode)
    np.testing.assert_allclose(score_cells(model, zs, cells), reference_cells(model, zs, cells), atol=TOL, rtol=0)


def test_shared_route_handles_prompts_of_different_lengths_and_repeats(tiny_char_model):
    """``letters`` queries differ in length (right padding in the shared cache) and repeat a prompt."""
    model = tiny_char_model
    zs = zero_shot_prompts("letters", ["first", "last"], n_prompts=10, seed=4)
    zs = zs + zs[:3]
    pos = last_positions(model, zs)
    assert len(set(pos)) > 1
    assert route_of(model, zs) == "shared_prefix"
    cells = random_cells(model, [0, 1], per_layer=2, seed=5, mode="add")
    got = score_cells(model, zs, cells, batch_size=4)
    ref = per_cell(model, zs, cells)
    np.testing.assert_allclose(got, ref, atol=TOL, rtol=0)
    np.testing.assert_array_equal(got[:, -3:], got[:, :3])


@pytest.mark.parametrize("mode", ["replace", "steer"])
def test_multi_token_answers_take_the_per_cell_path_and_equal_the_reference(tiny_char_model, mode):
    """``operands`` answers are two characters: the answer pass needs per-cell caches, so the per-cell path runs."""
    model = tiny_char_model
    zs = zero_shot_prompts("operands", n_prompts=6, seed=2)
    assert route_of(model, zs) == "per_cell"
    cells = random_cells(model, [0, 1], per_layer=2, seed=6, mode=mode)
    assert max(len(a) for p in zs for a in p.answers) > 1
    np.testing.assert_allclose(score_cells(model, zs, cells, batch_size=8), reference_cells(model, zs, cells), atol=TOL)


def test_route_choice(tiny_char_model, monkeypatch):
    """The shared route only where it is exact: not with the newline, resid_mid or a patch at BOS; before the last
    token only on the fused forward (TransformerLens's cache continues the last token only). Heads' outputs (z)
    take it too (issue 40). The route says why."""
    import interp.engines as engines

    model = tiny_char_model
    zs = zero_shot_prompts("bias_add", ["add1", "add2"], n_prompts=4, seed=0)
    pos = last_positions(model, zs)
    d = model.cfg.d_model
    assert route_of(model, zs) == "shared_prefix"
    assert route_of(model, zs, [Intervention(1, "replace", torch.zeros(model.cfg.d_head), hook="z", head=0)]) == (
        "shared_prefix"
    )
    newline = [p.__class__(**{**p.__dict__, "answers": tuple(a + "\n" for a in p.answers)}) for p in zs]
    assert route_of(model, newline) == "per_cell"
    assert route_of(model, zs, [Intervention(0, "add", torch.zeros(d), hook="resid_mid")]) == "per_cell"
    assert route_of(model, zs, [Intervention(0, "add", torch.zeros(d), position=0)]) == "per_cell"
    earlier = [Intervention(0, "add", torch.zeros(d), position=1)]
    assert route_of(model, zs, earlier) == "shared_prefix"  # the fused forward: the tail from position 1 per cell
    assert route_of(model, zs, positions=[p - 1 for p in pos]) == "shared_prefix"
    texts, answers = [p.text for p in zs], [list(p.answers) for p in zs]
    assert "the tokens from the earliest patch on" in score(model, texts, answers, earlier).reason
    monkeypatch.setattr(engines, "fused_forward_exact", lambda m: False)  # TransformerLens's cache (3.x) or none
    assert route_of(model, zs, earlier) == "per_cell"
    assert route_of(model, zs, positions=[p - 1 for p in pos]) == "per_cell"
    reason = score(model, texts, answers, earlier).reason
    assert "last token only" in reason or "no exact key-value cache" in reason, reason


def test_resid_mid_and_fixed_positions_equal_the_reference(tiny_char_model):
    model = tiny_char_model
    zs = zero_shot_prompts("bias_add", ["add1", "add2"], n_prompts=4, seed=0)
    for cells in (
        random_cells(model, [1], per_layer=2, seed=7, hook="resid_mid"),
        random_cells(model, [0, 1], per_layer=1, seed=8, mode="add", position=1),  # a fixed position, not the last
    ):
        got = score_cells(model, zs, cells, batch_size=4)
        np.testing.assert_allclose(got, reference_cells(model, zs, cells), atol=TOL, rtol=0)


@pytest.mark.parametrize("route", ["fused", pytest.param("transformer_lens", marks=tl3_only)])
def test_shared_route_attaches_no_hooks(tiny_char_model, monkeypatch, route):
    """The shared route patches tensors directly: no hook is attached, even mid-run (on both of its forwards)."""
    import interp.engines as engines
    import interp.engines.shared_prefix as sweeps

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
        monkeypatch.setattr(sweeps, "fused_forward_exact", lambda m: False)
        monkeypatch.setattr(model, "forward", spying(model.forward))
    assert engines  # the route is chosen by the door; the shared route's module is spied on
    zs = zero_shot_prompts("bias_add", ["add1", "add2"], n_prompts=4, seed=0)
    score_cells(model, zs, random_cells(model, [0], 1, 0, mode="add"), batch_size=4)
    assert seen and max(seen) == 0


@tl3_only
@pytest.mark.parametrize(
    ("hook", "dead_layer"), [("resid_post", None), ("resid_pre", None), ("resid_pre", 0), ("z", None), ("z", 0)]
)
def test_fused_and_transformer_lens_caches_give_the_same_cells(tiny_char_model, monkeypatch, hook, dead_layer):
    """The shared route on the fused forward's own keys and values equals it on TransformerLens's cache (prompts of
    different lengths, so right padding in the cache, and every split layer including the last; also with a layer
    whose heads all write nothing, so that it stores no keys and values; and on heads' outputs, which a patch makes
    write again)."""
    import copy

    import interp.engines.shared_prefix as sweeps

    model = tiny_char_model
    if dead_layer is not None:
        model = copy.deepcopy(model)
        with torch.no_grad():
            model.blocks[dead_layer].attn.W_O.zero_()
    zs = zero_shot_prompts("letters", ["first", "last"], n_prompts=9, seed=4)
    assert len(set(last_positions(model, zs))) > 1 and sweeps.fused_forward_exact(model)
    cells = random_cells(model, range(model.cfg.n_layers), per_layer=2, seed=8, hook=hook)
    fused = score_cells(model, zs, cells, batch_size=4)
    monkeypatch.setattr(sweeps, "fused_forward_exact", lambda m: False)
    tl = score_cells(model, zs, cells, batch_size=4)
    np.testing.assert_allclose(fused, tl, atol=TOL, rtol=0)
    assert np.ptp(fused, axis=0).max() > 1e-3


def test_no_cells_gives_an_empty_result(tiny_char_model):
    zs = zero_shot_prompts("bias_add", ["add1", "add2"], n_prompts=3, seed=0)
    assert score_cells(tiny_char_model, zs, [], batch_size=4).shape == (0, 3, 2)


def test_a_vector_of_another_task_warns_and_its_own_does_not(tiny_char_model):
    """Issue 24: a retrieval vector passed as a bias-add task's vector was accepted silently."""
    import warnings

    from interp.sweeps import lambda_sweep
    from interp.vectors import task_vector

    kw = dict(n_prompts=2, n_examples=3, seed=0)
    own_a, own_b = (task_vector(tiny_char_model, "bias_add", t, **kw) for t in ("add1", "add7"))
    other = task_vector(tiny_char_model, "retrieval", "pos1", **kw)
    sweep_kw = dict(lambdas=[0.0, 1.0], layers=[1], n_prompts=2, n_examples=3, mixed_reference=False, seed=1)
    with pytest.warns(UserWarning, match=r"vectors\[1\]: a vector of retrieval:pos1 is used as the vector of bias_add"):
        lambda_sweep(tiny_char_model, "bias_add", "add1", "add7", own_a, other, **sweep_kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        lambda_sweep(tiny_char_model, "bias_add", "add1", "add7", own_a, own_b, **sweep_kw)


@bridge_only
def test_a_bridge_without_the_fused_forward_is_refused_the_shared_route(tiny_char_model, monkeypatch):
    """A ``TransformerBridge`` takes no TransformerLens key-value cache: forced onto the shared route without the fused
    forward, it is refused with a clear error rather than given logits for residuals."""
    import interp.engines.shared_prefix as sweeps

    monkeypatch.setattr(sweeps, "fused_forward_exact", lambda m: False)
    zs = zero_shot_prompts("bias_add", ["add1", "add2"], n_prompts=2, seed=0)
    with pytest.raises(ValueError, match="TransformerBridge"):
        score_cells(tiny_char_model, zs, random_cells(tiny_char_model, [0], 1, 0, mode="add"), batch_size=4)


@pytest.mark.parametrize("hook", ["resid_post", "resid_pre", "z"])
def test_cells_split_over_several_passes_equal_the_reference(tiny_char_model, monkeypatch, hook):
    """Two cells per pass: the later passes start from the unpatched tail kept by the first at their start layer,
    cells of several start layers share a pass, and a late position makes the tail longer than one token."""
    import interp.engines.shared_prefix as sweeps

    model = tiny_char_model
    zs = zero_shot_prompts("bias_add", ["add1", "add3"], n_prompts=3, seed=2)
    late = min(last_positions(model, zs)) - 1
    cells = random_cells(model, range(model.cfg.n_layers), per_layer=2, seed=9, mode="replace", hook=hook)
    cells += random_cells(model, [1], per_layer=1, seed=10, mode="add", hook=hook, position=late)
    monkeypatch.setattr(sweeps, "PASS_ROWS", 2 * len(zs))
    passes = []
    real = sweeps.fused_continue_joining
    spy = lambda *a, **k: passes.append(k["start_at_layer"]) or real(*a, **k)  # noqa: E731
    monkeypatch.setattr(sweeps, "fused_continue_joining", spy)
    got = score_cells(model, zs, cells, batch_size=len(zs))
    assert len(passes) >= 3 and len(set(passes)) > 1, passes
    np.testing.assert_allclose(got, reference_cells(model, zs, cells), atol=TOL, rtol=0)
    assert np.ptp(got, axis=0).max() > 1e-3
