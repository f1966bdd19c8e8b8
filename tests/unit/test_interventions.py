"""Interventions as values: the batched form equals the one-row form, and bad fields are named."""

from __future__ import annotations

import pytest
import torch

from interp.interventions import Intervention, add, apply_rowwise, replace, replace_in_subspace, steer


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_apply_rowwise_equals_apply_row_by_row_in_every_dtype(dtype):
    """Issue 36: apply_rowwise formed α·v in float32 before casting, Intervention.apply in the residual's dtype
    (1.2e-7 apart in float64); both now form it alike, so they agree to the bit."""
    g = torch.Generator().manual_seed(0)
    d = 16
    ivs = [
        add(torch.randn(d, generator=g), 0, alpha=0.7),
        steer(torch.randn(d, generator=g), torch.randn(d, generator=g), 0, alpha=-1.3),
        add(torch.randn(d, generator=g), 0, alpha=1 / 3),
    ]
    x = torch.randn(6, d, generator=g, dtype=torch.float64).to(dtype)
    which = torch.tensor([0, 1, 2, 2, 1, 0])
    got = apply_rowwise(ivs, which, x)
    want = torch.stack([ivs[int(k)].apply(x[i]) for i, k in enumerate(which)])
    assert got.dtype == dtype
    assert torch.equal(got, want)
    mixed = [*ivs, replace(torch.randn(d, generator=g), 0)]  # the mode-by-mode path
    got = apply_rowwise(mixed, torch.tensor([3, 0, 1]), x[:3])
    assert torch.equal(got, torch.stack([mixed[k].apply(x[i]) for i, k in enumerate([3, 0, 1])]))


def test_bad_vectors_bases_and_dicts_are_named():
    """Issue 36: an empty, list or NaN basis, a complex or meta-device vector, vectors of two widths, and a dict with
    a missing or bad field raised raw errors (RuntimeError, AttributeError, KeyError) or none; each now names it."""
    d, nan = 8, float("nan")
    cases = [
        (lambda: replace_in_subspace(torch.ones(d), 0, torch.zeros(0, d)), r"^basis: need a \[k >= 1, d_model\]"),
        (lambda: replace_in_subspace(torch.ones(d), 0, torch.zeros(2, d)), "^basis: spans nothing"),
        (lambda: replace_in_subspace(torch.ones(d), 0, torch.full((1, d), nan)), "^basis: holds NaN"),
        (lambda: Intervention(0, "subspace", torch.ones(d), basis=[[1.0] + [0.0] * (d - 1)]), "^basis: need a"),
        (lambda: add(torch.ones(d, dtype=torch.complex64), 0), "^v: need a real floating-point tensor"),
        (lambda: add(torch.ones(d, device="meta"), 0), "^v: is on the 'meta' device"),
        (lambda: Intervention(0, "add", torch.ones(d, device="meta")), "^vector: is on the 'meta' device"),
        (lambda: steer(torch.ones(d), torch.ones(d + 1), 0), "^v_b: width 9 differs from v_a's 8"),
        (lambda: Intervention.from_dict({"layer": 1, "mode": "add"}), r"^d: missing fields \['vector'\]"),
        (lambda: Intervention.from_dict({"layer": "x", "mode": "add", "vector": [1.0]}), "^layer: must be an integer"),
        (lambda: Intervention.from_dict({"layer": 0, "mode": "add", "vector": "abc"}), "^vector: need a list of"),
        (lambda: Intervention.from_dict({"layer": 0, "mode": "add", "vector": [1.0], "colour": 1}), "^d: unknown"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
    iv = replace_in_subspace(torch.ones(d), 2, torch.eye(d)[:3])
    assert Intervention.from_dict(iv.to_dict()) == iv  # what to_dict writes still reads back
