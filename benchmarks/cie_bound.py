"""The least arithmetic any exact head CIE does, and the speed-up it allows (issue 40, ``make bench`` section heads).

Every head's exact causal indirect effect (its mean clean ``z`` at the last token patched into corrupted prompts)
needs, whatever the method, at least these products with the model's weights (attention scores, norms and
activations not counted, so the count is a lower bound):

* the clean prompts up to the last layer's ``z`` at their last tokens: every block but the last in full at every
  token, the last block's keys and values at every token and its queries at the last one (:func:`clean_pass_flops`);
* the corrupted prompts' tokens before the last, whose keys and values every patched run reads: every block but the
  last in full, the last block's keys and values (:func:`corrupted_prefix_flops`);
* per patched head and prompt, the last token from that head's block on: the head's changed output through its
  ``W_O`` rows, the block's MLP, every later block in full and the unembedding (log-softmax needs the whole
  vocabulary), and the unpatched last token once per prompt (:func:`cells_flops`).

Divided by the fastest rate this CPU multiplies matrices of the model's own shapes (:func:`best_matmul_rate`,
measured in the same run), that is the fewest seconds an exact method could take in float32 here; the per-head
loop's seconds over it bound every exact method's speed-up from above.

>>> from types import SimpleNamespace
>>> cfg = SimpleNamespace(n_layers=2, d_model=4, n_heads=2, d_head=2, d_mlp=8, d_vocab=10)
>>> corrupted_prefix_flops(cfg, 3)  # 3 tokens: one whole block (3 · 256), the last block's keys and values (3 · 64)
960
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode


def _block_flops_per_token(cfg) -> int:
    """A whole block's weight products for one token: queries, keys, values, output, MLP in and out."""
    a = cfg.n_heads * cfg.d_head
    return 2 * (4 * cfg.d_model * a + 2 * cfg.d_model * cfg.d_mlp)


def clean_pass_flops(cfg, tokens: int, prompts: int) -> int:
    """Weight-product FLOPs to every layer's ``z`` at the last token of ``prompts`` clean prompts of ``tokens`` tokens
    in all: blocks ``0 … L-2`` at every token, the last block's keys and values at every token, its queries at the
    last tokens."""
    a = cfg.n_heads * cfg.d_head
    return (cfg.n_layers - 1) * tokens * _block_flops_per_token(cfg) + 2 * cfg.d_model * a * (2 * tokens + prompts)


def corrupted_prefix_flops(cfg, tokens: int) -> int:
    """Weight-product FLOPs of the keys and values of every layer at ``tokens`` corrupted tokens (all but each
    prompt's last): blocks ``0 … L-2`` in full, the last block's keys and values."""
    a = cfg.n_heads * cfg.d_head
    return (cfg.n_layers - 1) * tokens * _block_flops_per_token(cfg) + 2 * cfg.d_model * 2 * a * tokens


def cells_flops(cfg, prompts: int, layers: Sequence[int]) -> int:
    """Weight-product FLOPs of every head of ``layers`` patched at the last token of ``prompts`` prompts, and of
    their unpatched last tokens: per (head, prompt) the head's output change through its ``W_O`` rows, its block's
    MLP, the later blocks and the unembedding; the unpatched last token through every block and the unembedding."""
    d, per_block = cfg.d_model, _block_flops_per_token(cfg)
    unembed = 2 * d * cfg.d_vocab
    per_row = [2 * cfg.d_head * d + 4 * d * cfg.d_mlp + (cfg.n_layers - 1 - la) * per_block + unembed for la in layers]
    return prompts * (cfg.n_heads * sum(per_row) + cfg.n_layers * per_block + unembed)


def exact_cie_flops(cfg, clean_tokens: int, corrupted_tokens: int, prompts: int, layers: Sequence[int]) -> int:
    """The least weight-product FLOPs of every head's exact CIE over ``layers`` (see the module's docstring):
    ``clean_tokens`` and ``corrupted_tokens`` count every token of the ``prompts`` clean and corrupted prompts."""
    return (
        clean_pass_flops(cfg, clean_tokens, prompts)
        + corrupted_prefix_flops(cfg, corrupted_tokens - prompts)
        + cells_flops(cfg, prompts, layers)
    )


def best_matmul_rate(cfg, rows: int, repeats: int = 20) -> float:
    """FLOP/s: the fastest float32 rate over the model's weight products (``rows`` tokens times each of
    ``d_model × 3·heads·d_head``, ``heads·d_head × d_model``, ``d_model × d_mlp``, ``d_mlp × d_model``), each the best
    of ``repeats`` calls into a kept output."""
    a, d, m = cfg.n_heads * cfg.d_head, cfg.d_model, cfg.d_mlp
    gen = torch.Generator().manual_seed(0)
    best = 0.0
    for k, n in ((d, 3 * a), (a, d), (d, m), (m, d)):
        x, w = torch.randn(rows, k, generator=gen), torch.randn(k, n, generator=gen)
        out = torch.empty(rows, n)
        torch.mm(x, w, out=out)  # warm
        fastest = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(x, w, out=out)
            fastest = min(fastest, time.perf_counter() - start)
        best = max(best, 2 * rows * k * n / fastest)
    return best


def _addmm_inplace_flops(self_shape, mat1_shape, mat2_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * mat1_shape[0] * mat1_shape[1] * mat2_shape[1]


#: The products counted by :func:`matmul_flops` (attention's own kernel is not: its scores are not weight products).
MATMUL_OPS = ("aten.mm", "aten.addmm", "aten.addmm_", "aten.bmm", "aten.baddbmm")


def matmul_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matrix products ``fn()`` runs (:data:`MATMUL_OPS`, in-place ``addmm_`` included, which
    PyTorch's counter leaves out), counted by ``torch.utils.flop_counter`` under inference mode."""
    counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.addmm_: _addmm_inplace_flops})
    with torch.inference_mode(), counter:
        fn()
    return sum(v for k, v in counter.get_flop_counts()["Global"].items() if str(k) in MATMUL_OPS)
