"""Streaming statistics: the same bits whatever the chunking, and the textbook (numpy, scikit-learn) numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from interp.decomposition import project_2d
from interp.streaming import InMemory, blocks, class_scatter, moments, project_2d_streaming, weighted_sums


def clustered(seed: int = 0, layers: int = 3, n: int = 90, d: int = 12, classes: int = 4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(layers, n, d, generator=g, dtype=torch.float64) + 5  # a common offset, as residual streams have
    labels = [f"c{i % classes}" for i in range(n)]
    for k in range(classes):
        x[:, k::classes] += 2 * torch.randn(layers, 1, d, generator=g, dtype=torch.float64)
    return x.float(), labels


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), st.integers(1, 50))
def test_blocks_and_moments_do_not_depend_on_the_chunking(cuts, rows):
    x, _ = clustered(n=sum(cuts))
    chunks, lo = [], 0
    for c in cuts:
        chunks.append(x[:, lo : lo + c])
        lo += c
    whole = list(blocks([x], rows))
    pieces = list(blocks(chunks, rows))
    assert len(whole) == len(pieces) and all(torch.equal(a, b) for a, b in zip(whole, pieces, strict=True))
    a, b = moments(InMemory(x)), moments(Chunks(chunks))
    assert a.n == b.n and torch.equal(a.mean, b.mean) and torch.equal(a.m2, b.m2)


class Chunks:
    """Chunks of any sizes as a source."""

    def __init__(self, parts):
        self.parts = parts

    def __iter__(self):
        return iter(self.parts)

    def __len__(self):
        return sum(p.shape[1] for p in self.parts)


def test_moments_equal_the_textbook_mean_and_std_across_many_blocks(monkeypatch):
    import interp.streaming as streaming

    monkeypatch.setattr(streaming, "BLOCK_ELEMENTS", 3 * 12 * 7)  # blocks of 7 rows: Chan's merge runs 13 times
    x, _ = clustered(n=90)
    m = moments(x)
    assert m.n == 90
    torch.testing.assert_close(m.mean, x.double().mean(1), atol=1e-13, rtol=0)
    torch.testing.assert_close(m.std(), x.double().std(1), atol=1e-13, rtol=0)
    assert torch.equal(moments(x[:, :1]).std(), torch.zeros(3, 12))  # one row: std 0, as TaskVector wants


def test_class_scatter_gives_numpys_covariance_and_the_class_means(monkeypatch):
    import interp.streaming as streaming

    monkeypatch.setattr(streaming, "BLOCK_ELEMENTS", 3 * 12 * 11)
    x, labels = clustered()
    s = class_scatter(InMemory(x, chunk_rows=13), labels)
    assert s.classes == ("c0", "c1", "c2", "c3") and s.counts.tolist() == [23, 23, 22, 22]
    for la in range(3):
        np.testing.assert_allclose(s.covariance()[la].numpy(), np.cov(x[la].double().numpy().T), atol=1e-12)
        within = sum(np.cov(x[la, k::4].double().numpy().T) * (len(x[la, k::4]) - 1) for k in range(4))
        np.testing.assert_allclose(s.within[la].numpy(), within, atol=1e-11)
    np.testing.assert_allclose(s.means[:, 1].numpy(), x[:, 1::4].double().mean(1).numpy(), atol=1e-13)


@pytest.mark.parametrize("method", ["pca", "lda"])
def test_streamed_projection_equals_scikit_learns_on_the_whole_matrix(method, monkeypatch):
    import interp.streaming as streaming

    monkeypatch.setattr(streaming, "BLOCK_ELEMENTS", 3 * 12 * 10)
    x, labels = clustered()
    x[2] = x[2, :1]  # one layer where every prompt is the same: the origin, as project_2d gives it
    streamed = project_2d_streaming(InMemory(x, chunk_rows=17), labels, method=method, layers=[4, 5, 6])
    whole = project_2d(x, labels, method=method, layers=[4, 5, 6])
    np.testing.assert_allclose(streamed.coords, whole.coords, atol=1e-10 * np.abs(whole.coords).max(), rtol=0)
    np.testing.assert_allclose(streamed.explained, whole.explained, atol=1e-12)
    assert not streamed.coords[2].any() and streamed.layers == (4, 5, 6)


def test_streamed_projection_refuses_what_project_2d_refuses():
    x, labels = clustered(classes=2)
    with pytest.raises(ValueError, match="LDA gives 2 components only with >= 3 classes"):
        project_2d_streaming(x, labels, method="lda")
    with pytest.raises(ValueError, match="method: 'tsne' not supported; valid: lda, pca"):
        project_2d_streaming(x, labels, method="tsne")
    with pytest.raises(ValueError, match="labels: expected 90 labels"):
        project_2d_streaming(x, labels[:-1], method="pca")


def test_weighted_sums_equal_the_matrix_product_in_runs_and_blocks(monkeypatch):
    import interp.streaming as streaming

    monkeypatch.setattr(streaming, "BLOCK_ELEMENTS", 40)  # runs of 8 rows for 5 weight rows: many pieces
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(23, 4, generator=g), torch.randn(9, 4, generator=g)
    w = torch.randn(5, 32, generator=g, dtype=torch.float64)
    got = weighted_sums([a, InMemory(b, 4)], lambda s, lo, hi: w[:, lo + 23 * s : hi + 23 * s], 5)
    torch.testing.assert_close(got, w @ torch.cat([a, b]).double(), atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match=r"weights: expected a \[5, 8\] tensor"):
        weighted_sums([a], lambda s, lo, hi: w[:2, lo:hi], 5)
