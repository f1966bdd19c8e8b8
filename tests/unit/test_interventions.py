"""Interventions as values: the batched form equals the one-row form, and bad fields are named."""

from __future__ import annotations

import pytest
import torch

from interp.interventions import Intervention, add, apply_rowwise, orthonormal_basis, replace, steer


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
