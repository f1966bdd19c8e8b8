"""Decomposition (pure maths) and what feeds it: known coefficients, control prompts, projections, cosines."""

import numpy as np
import pytest
import torch

from interp.decomposition import (
    control_decompositions,
    cosine_matrix,
    decompose,
    layer_cosines,
    project_2d,
    task_cosines,
    unit,
)
from interp.prompts import build_prompts, mixture_groups, random_answer_prompts, random_string_prompts
from interp.sweeps import proportion_sweep
from interp.vectors import capture_groups, null_vectors, task_vector

FAMILY, A, B, C = "operands", "copy_first", "sum", "copy_second"


def basis(seed=0, layers=3, d=64):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(2, layers, d))


def test_least_squares_recovers_coefficients_and_intercept():
    a, b = basis()
    y = 0.7 * a + 0.2 * b + 0.5
    d = decompose(y, [a, b], normalize=False, intercept=True)
    np.testing.assert_allclose(d.coefs, np.tile([0.7, 0.2], (3, 1)), atol=1e-10)
    np.testing.assert_allclose(d.intercept, 0.5, atol=1e-10)
    assert d.residual_norm.max() < 1e-9 and d.layers == (0, 1, 2) and d.names == ("x0", "x1")
    no_icpt = decompose(y, [a, b], normalize=False, intercept=False)
    assert (no_icpt.intercept == 0).all() and no_icpt.residual_norm.min() > 1.0  # the offset is left over


def test_nnls_clamps_negative_coefficients_and_keeps_intercept():
    a, b = basis(1)
    y = 0.8 * a - 0.3 * b + 0.2
    ls = decompose(y, [a, b], normalize=False, method="lstsq")
    nn = decompose(y, [a, b], normalize=False, method="nnls")
    np.testing.assert_allclose(ls.coefs[:, 1], -0.3, atol=1e-10)
    assert (nn.coefs >= 0).all() and np.allclose(nn.coefs[:, 1], 0)
    assert (nn.residual_norm > ls.residual_norm + 1e-3).all()
    y_pos = 0.8 * a + 0.3 * b + 0.2
    nn_pos = decompose(y_pos, [a, b], normalize=False, method="nnls", intercept=True)
    np.testing.assert_allclose(nn_pos.coefs, np.tile([0.8, 0.3], (3, 1)), atol=1e-8)
    np.testing.assert_allclose(nn_pos.intercept, 0.2, atol=1e-8)


def test_normalized_decomposition_and_residual_of_orthogonal_part():
    a, b = basis(2)
    ua, ub = unit(a), unit(b)
    rng = np.random.default_rng(3)
    noise = rng.normal(size=a.shape)
    q, _ = np.linalg.qr(np.stack([ua[0], ub[0], noise[0]], axis=1))  # a unit direction orthogonal to ua, ub
    ortho = q[:, 2]
    y = 0.6 * ua + 0.4 * ub
    n0 = np.linalg.norm(y[0])
    y[0] = y[0] + 0.5 * n0 * ortho
    d = decompose(torch.tensor(y * 7.0), [torch.tensor(a * 3.0), torch.tensor(b)], intercept=False)
    scale = 1.0 / np.linalg.norm(y, axis=1)  # the target is unit-normalised before the fit
    np.testing.assert_allclose(d.coefs, np.stack([0.6 * scale, 0.4 * scale], axis=1), atol=1e-9)
    np.testing.assert_allclose(d.residual_norm[0], 0.5 * n0 * scale[0], atol=1e-9)  # = 0.5 / sqrt(1.25)
    assert d.residual_norm[1:].max() < 1e-9 and np.allclose(d.target_norm, 1.0)


def test_decompose_validates_arguments():
    a, b = basis()
    with pytest.raises(ValueError, match="method:"):
        decompose(a, [b], method="ridge")
    with pytest.raises(ValueError, match="basis:"):
        decompose(a, [b[:, :10]])
    with pytest.raises(ValueError, match="names:"):
        decompose(a, [b], names=["x", "y"])


def test_random_answer_and_random_string_prompts():
    base = build_prompts(FAMILY, [A, B], n_examples=6, n_prompts=5, seed=4)
    ra = random_answer_prompts(FAMILY, [A, B], n_examples=6, n_prompts=5, seed=4)
    rs = random_string_prompts(FAMILY, [A, B], n_examples=6, n_prompts=5, seed=4)
    assert ra == random_answer_prompts(FAMILY, [A, B], n_examples=6, n_prompts=5, seed=4)  # seeded
    consistent = 0
    for p, r, s in zip(base, ra, rs, strict=True):
        assert r.query == s.query == p.query and r.answers == p.answers
        assert r.text.endswith("\n" + p.query) and s.text.endswith("\n" + p.query)
        lines_r, lines_s, lines_p = (x.text.split("\n")[:-1] for x in (r, s, p))
        assert len(lines_r) == len(lines_s) == 6 and r.example_tasks == ("random",) * 6
        assert [len(x) for x in lines_s] == [len(x) for x in lines_p] and all(x.isalnum() for x in lines_s)
        for line in lines_r:
            (x1, x2), y = map(int, line.split("=")[0].split("@")), line.split("=")[1]
            consistent += y in (str(x1), str(x1 + x2))
    assert consistent < 6  # the answers do not follow the tasks


@pytest.fixture(scope="module")
def controls(tiny_char_model):
    return null_vectors(tiny_char_model, FAMILY, A, B, C, n_prompts=3, n_examples=4, seed=1)


def test_control_vectors_and_decompositions(controls):
    assert set(controls) == {"a", "b", "mixed", "random_answers", "random_strings", "third_task"}
    assert controls["random_answers"].terms[0][1].label == "random_answers"
    decs = control_decompositions(controls)
    assert set(decs) == {"mixed", "random_answers", "random_strings", "third_task"}
    for d in decs.values():
        assert d.coefs.shape == (2, 2) and d.residual_norm.shape == (2,) and d.names == ("a", "b")
        assert (d.residual_norm <= 1 + 1e-9).all()
    self_fit = decompose(controls["a"].mean, [controls["a"].mean, controls["b"].mean], intercept=False)
    np.testing.assert_allclose(self_fit.coefs, [[1, 0], [1, 0]], atol=1e-6)
    with pytest.raises(ValueError, match=r"^target: made from 3 prompts that basis vector 0 .* held-out prompts"):
        decompose(controls["a"], [controls["a"], controls["b"]])  # a vector decomposed on itself: refused
    seeds = {name: {s for _, p in v.terms for s, _ in p.prompt_ids} for name, v in controls.items()}
    assert seeds["a"] == seeds["b"] == {1} and all(seeds[k] == {10001} for k in decs)  # targets held out


def test_proportion_sweep_decomposes_held_out_prompts(tiny_char_model):
    kw = dict(n_prompts=3, n_examples=4, seed=2)
    va = task_vector(tiny_char_model, FAMILY, A, **kw)
    vb = task_vector(tiny_char_model, FAMILY, B, **kw)
    with pytest.raises(ValueError, match=r"^seed: 3 of 3 prompts share \(seed, index\) with the prompts va was made"):
        proportion_sweep(tiny_char_model, FAMILY, A, B, proportions=[0.0, 1.0], va=va, vb=vb, **kw)
    sweep = proportion_sweep(
        tiny_char_model, FAMILY, A, B, proportions=[0.0, 0.5, 1.0], va=va, vb=vb, intercept=False, n_prompts=3,
        n_examples=4, seed=3,
    )  # fmt: skip
    assert sweep.coefs.shape == (3, 2, 2) and sweep.residual_norm.shape == (3, 2)
    np.testing.assert_allclose(sweep.fractions, [0.0, 0.5, 1.0])
    default = proportion_sweep(tiny_char_model, FAMILY, A, B, proportions=[0.0, 1.0], n_prompts=3, n_examples=4, seed=2)
    assert default.coefs.shape == (2, 2, 2)  # its basis comes from held_out_seed(2): no overlap
    with pytest.raises(ValueError, match="proportions:"):
        proportion_sweep(tiny_char_model, FAMILY, A, B, proportions=[1.5])


def test_projections_shapes_and_checks(tiny_char_model):
    groups = mixture_groups(FAMILY, [A, B, C], n_prompts=3, n_examples=4, seed=0)
    assert list(groups) == [A, B, C, f"{A}+{B}", f"{A}+{C}", f"{B}+{C}", "uniform"]
    acts, labels = capture_groups(tiny_char_model, groups)
    assert acts.shape == (2, 21, 64) and len(labels) == 21
    lda = project_2d(acts, labels, method="lda")
    pca = project_2d(acts, labels, method="pca")
    assert lda.coords.shape == pca.coords.shape == (2, 21, 2) and pca.explained.shape == (2, 2)
    assert (np.diff(pca.explained, axis=1) <= 0).all()
    np.testing.assert_allclose(project_2d(acts[0], labels, method="pca").coords[0], pca.coords[0])
    with pytest.raises(ValueError, match="LDA gives 2 components only with >= 3 classes"):
        project_2d(acts, [A, B] * 10 + [A], method="lda")
    with pytest.raises(ValueError, match="labels: expected 21"):
        project_2d(acts, labels[:-1])
    with pytest.raises(ValueError, match="method:"):
        project_2d(acts, labels, method="tsne")


def test_cosine_matrices(controls):
    vs = [controls["a"], controls["b"], controls["third_task"]]
    m = task_cosines(vs)
    assert m.shape == (2, 3, 3)
    np.testing.assert_allclose(np.diagonal(m, axis1=1, axis2=2), 1.0, atol=1e-6)
    np.testing.assert_allclose(m, m.transpose(0, 2, 1), atol=1e-12)
    a0, b0 = controls["a"].mean[0].double(), controls["b"].mean[0].double()
    np.testing.assert_allclose(m[0, 0, 1], float(a0 @ b0 / (a0.norm() * b0.norm())), atol=1e-9)
    lc = layer_cosines(controls["a"])
    assert lc.shape == (2, 2) and np.allclose(np.diag(lc), 1.0)
    np.testing.assert_allclose(cosine_matrix(np.array([[1.0, 0.0], [1.0, 1.0]])), [[1, 2**-0.5], [2**-0.5, 1]])
    with pytest.raises(ValueError, match="differ in layers"):
        task_cosines([controls["a"], controls["a"] * 1.0 + controls["b"], _one_layer(controls["a"])])


def _one_layer(v):
    import dataclasses

    return dataclasses.replace(v, mean=v.mean[:1], std=v.std[:1], layers=(0,))


def test_projection_of_identical_vectors_is_the_origin_not_an_error():
    acts = np.ones((1, 6, 4))
    for method in ("lda", "pca"):
        proj = project_2d(acts, list("aabbcc"), method=method)
        assert proj.coords.shape == (1, 6, 2) and not proj.coords.any() and not proj.explained.any()


def test_condition_number_flags_nearly_collinear_task_vectors():
    """Nearly collinear basis vectors: the residual stays small and stable, the coefficients swing with float noise,
    and the decomposition says so (condition number per layer, ``ill_conditioned``)."""
    from interp.decomposition import decompose
    from interp.results import ILL_CONDITIONED, Decomposition

    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 64))
    b = a.copy()
    b[0] = a[0] + 1e-6 * rng.normal(size=64)  # layer 0: v_B ≈ v_A; layer 1: independent
    b[1] = rng.normal(size=64)
    y = 0.5 * a + 0.5 * b
    d = decompose(y, [a, b])
    noisy = decompose(y + 1e-7 * rng.normal(size=y.shape), [a, b])
    assert d.condition_number[0] > ILL_CONDITIONED > d.condition_number[1]
    assert d.ill_conditioned.tolist() == [True, False]
    assert np.abs(noisy.coefs[0] - d.coefs[0]).max() > 1e-2  # layer 0's coefficients are noise-driven
    assert (
        np.abs(noisy.coefs[1] - d.coefs[1]).max() < 1e-5 and np.abs(noisy.residual_norm - d.residual_norm).max() < 1e-5
    )
    assert Decomposition.from_dict(d.to_dict()).condition_number.tolist() == d.condition_number.tolist()
