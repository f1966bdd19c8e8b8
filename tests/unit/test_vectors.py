"""TaskVector: construction from captures, arithmetic, compatibility, convex(), save/load."""

import dataclasses
import os

import pytest
import torch

from interp.capture import capture_resid
from interp.prompts import build_prompts
from interp.vectors import Provenance, TaskVector, check_compatible, convex, task_vector


def synthetic(seed: int, *, model_id="m", hook="resid_post", layers=(0, 1, 2), d=8, task="t") -> TaskVector:
    g = torch.Generator().manual_seed(seed)
    return TaskVector(
        mean=torch.randn(len(layers), d, generator=g),
        std=torch.rand(len(layers), d, generator=g),
        model_id=model_id,
        processing={"fold_ln": False, "center_writing_weights": False},
        hook=hook,
        layers=tuple(layers),
        terms=((1.0, Provenance("operands", (task,), (1.0,), 10, 5, seed)),),
    )


@pytest.fixture(scope="module")
def real_vector(tiny_char_model):
    return task_vector(tiny_char_model, "operands", "sum", n_prompts=4, n_examples=3, seed=3)


def test_task_vector_is_mean_and_std_of_captures(tiny_char_model, real_vector):
    prompts = build_prompts("operands", ["sum"], n_examples=3, n_prompts=4, seed=3)
    acts = capture_resid(tiny_char_model, prompts)
    torch.testing.assert_close(real_vector.mean, acts.mean(dim=1), atol=1e-6, rtol=0)
    torch.testing.assert_close(real_vector.std, acts.std(dim=1), atol=1e-6, rtol=0)
    torch.testing.assert_close(real_vector.std_norm, acts.std(dim=1).norm(dim=1), atol=1e-5, rtol=0)
    assert real_vector.model_id == "tiny-char" and real_vector.hook == "resid_post"
    assert real_vector.layers == (0, 1) and real_vector.processing_dict["fold_ln"] is False
    ((w, prov),) = real_vector.terms
    ids = tuple((3, i) for i in range(4))  # (seed, index) of every prompt averaged: what held-out checks read
    assert w == 1.0 and prov == Provenance("operands", ("sum",), (1.0,), 4, 3, 3, prompt_ids=ids)
    torch.testing.assert_close(real_vector.at(1), real_vector.mean[1])
    with pytest.raises(ValueError, match="layer: 5 not captured"):
        real_vector.at(5)


def test_arithmetic_reads_like_the_paper():
    va, vb = synthetic(1, task="a"), synthetic(2, task="b")
    mix = 0.3 * va + 0.7 * vb
    torch.testing.assert_close(mix.mean, 0.3 * va.mean + 0.7 * vb.mean)
    torch.testing.assert_close(mix.std, torch.sqrt((0.3 * va.std) ** 2 + (0.7 * vb.std) ** 2))
    assert [w for w, _ in mix.terms] == [0.3, 0.7] and "0.3·operands:a" in mix.describe()
    torch.testing.assert_close((va - vb).mean, va.mean - vb.mean)
    torch.testing.assert_close((va + vb).mean, va.mean + vb.mean)
    torch.testing.assert_close((va * 2).mean, (va / 0.5).mean)
    torch.testing.assert_close((-va).mean, -va.mean)
    with pytest.raises(TypeError):
        va + 1.0  # noqa: B018
    with pytest.raises(TypeError):
        va * va  # noqa: B018


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model_id": "other"}, "model_id"),
        ({"hook": "resid_pre"}, "hook"),
        ({"layers": (0, 1, 3)}, "layers"),
        ({"d": 9}, "d_model"),
    ],
)
def test_incompatible_vectors_are_refused(change, field):
    va, vb = synthetic(1), synthetic(2, **change)
    with pytest.raises(ValueError, match=f"differ in {field}"):
        va + vb
    with pytest.raises(ValueError, match=field):
        convex([0.5, 0.5], [va, vb])


def test_processing_mismatch_is_refused():
    va = synthetic(1)
    vb = dataclasses.replace(synthetic(2), processing={"fold_ln": True, "center_writing_weights": False})
    with pytest.raises(ValueError, match="processing"):
        check_compatible(va, vb)


def test_convex_endpoints_are_exact_and_weights_checked():
    va, vb, vc = synthetic(1), synthetic(2), synthetic(3)
    assert torch.equal(convex([1.0, 0.0], [va, vb]).mean, va.mean)
    assert torch.equal(convex([0.0, 1.0], [va, vb]).mean, vb.mean)
    expected = 0.2 * va.mean + 0.3 * vb.mean + 0.5 * vc.mean
    torch.testing.assert_close(convex([0.2, 0.3, 0.5], [va, vb, vc]).mean, expected)
    convex([0.5, 0.5 + 5e-7], [va, vb])  # within tolerance
    for weights, match in [
        ([0.5, 0.6], "sum to 1"),
        ([1.5, -0.5], ">= 0"),
        ([1.0], "expected 2"),
        ([float("nan"), 1.0], "finite"),
    ]:
        with pytest.raises(ValueError, match=f"weights: .*{match}"):
            convex(weights, [va, vb])


def test_save_load_round_trip_is_exact(tmp_path, real_vector):
    mix = 0.25 * real_vector + 0.75 * synthetic_like(real_vector)
    for v in (real_vector, mix):
        path = v.save(tmp_path / "sub" / "v.safetensors")
        back = TaskVector.load(path)
        assert back == v
        assert torch.equal(back.mean, v.mean) and torch.equal(back.std, v.std)
        assert back.terms == v.terms and back.processing == v.processing and back.layers == v.layers
    assert os.listdir(tmp_path / "sub") == ["v.safetensors"]  # the temp file was renamed into place
    assert back != real_vector


def test_load_refuses_other_files(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(ValueError, match="not a TaskVector file"):
        TaskVector.load(tmp_path / "x.safetensors")


def synthetic_like(v: TaskVector) -> TaskVector:
    g = torch.Generator().manual_seed(7)
    return dataclasses.replace(v, mean=torch.randn(v.mean.shape, generator=g))


def test_task_vector_validates_before_forward(tiny_char_model, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("forward ran before validation")

    monkeypatch.setattr(tiny_char_model, "forward", boom)
    with pytest.raises(ValueError, match="hook:"):
        task_vector(tiny_char_model, "operands", "sum", hook="resid_x", n_prompts=2)
    with pytest.raises(ValueError, match="layers:"):
        task_vector(tiny_char_model, "operands", "sum", layers=[7], n_prompts=2)
    with pytest.raises(ValueError, match="tasks: unknown task"):
        task_vector(tiny_char_model, "operands", "product", n_prompts=2)
    with pytest.raises(ValueError, match="proportions:"):
        task_vector(tiny_char_model, "operands", ["sum", "copy_first"], proportions=[0.5, 0.6], n_prompts=2)


def test_non_finite_vectors_and_weights_are_refused():
    """Issue 24: ``nan * v`` was accepted and patching it gave all-NaN probabilities."""
    v = synthetic(0)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="^weight: a task vector's weight must be finite"):
            bad * v
    mean = v.mean.clone()
    mean[1, 3] = float("nan")
    with pytest.raises(ValueError, match="^mean: holds NaN or infinite values"):
        dataclasses.replace(v, mean=mean)
    assert torch.isfinite((0.5 * v + 0.5 * synthetic(1)).mean).all()  # finite arithmetic still works


def test_single_task_knows_its_task_and_a_mixture_does_not():
    v, w = synthetic(0, task="sum"), synthetic(1, task="copy_first")
    assert v.single_task() == ("operands", "sum")
    assert (0.5 * v + 0.5 * w).single_task() is None
