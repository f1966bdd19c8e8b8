"""Position-table initialisations and the freshly initialised model (HF ``GPT2LMHeadModel``, SDPA attention).

>>> t = sinusoidal_positions(16, 8)
>>> tuple(t.shape), round(float(t.pow(2).mean().sqrt()), 3)
((16, 8), 0.02)
"""

from __future__ import annotations

import math

import torch

from interp.tokenization import BOS, PAD, char_vocab
from interp.training.config import TrainConfig


def sinusoidal_positions(n_ctx: int, d_model: int, rms: float = 0.02) -> torch.Tensor:
    """Sinusoidal position table ``Float[Tensor, "n_ctx d_model"]`` scaled to root-mean-square ``rms`` per coordinate.

    >>> tuple(sinusoidal_positions(4, 6).shape)
    (4, 6)
    """
    pos = torch.arange(n_ctx, dtype=torch.float64)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    table = torch.zeros(n_ctx, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d_model // 2])
    return (table * rms / table.pow(2).mean().sqrt()).float()


def periodic_positions(n_ctx: int, d_model: int, periods: list[int], rms: float = 0.02) -> torch.Tensor:
    """Sinusoidal table whose first coordinates are cos/sin of ``2*pi*k*(p - 1)/period`` (k = 1..period//2).

    Position 0 holds BOS, so ``(p - 1) mod period`` is a token's index inside its example. Every coordinate has
    root-mean-square about ``rms``.

    >>> t = periodic_positions(45, 16, [11])
    >>> bool(torch.allclose(t[1, :10], t[12, :10], atol=1e-6)), bool(torch.allclose(t[1], t[12]))
    (True, False)
    """
    table = sinusoidal_positions(n_ctx, d_model, rms)
    pos = torch.arange(n_ctx, dtype=torch.float64) - 1
    col = 0
    for period in periods:
        for k in range(1, period // 2 + 1):
            angle = 2 * math.pi * k * pos / period
            table[:, col] = (torch.cos(angle) * rms * math.sqrt(2)).float()
            table[:, col + 1] = (torch.sin(angle) * rms * math.sqrt(2)).float()
            col += 2
    return table


def model_config(cfg: TrainConfig):
    """The HF ``GPT2Config`` of ``cfg``: character vocabulary, no dropout, SDPA (flash/memory-efficient) attention."""
    from transformers import GPT2Config

    vocab = char_vocab()
    config = GPT2Config(
        vocab_size=len(vocab),
        n_positions=cfg.n_ctx,
        n_embd=cfg.d_model,
        n_layer=cfg.n_layers,
        n_head=cfg.n_heads,
        bos_token_id=vocab[BOS],
        eos_token_id=vocab["<|eos|>"],
        pad_token_id=vocab[PAD],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    config._attn_implementation = "sdpa"
    return config


def init_model(cfg: TrainConfig):
    """A freshly initialised ``GPT2LMHeadModel`` for ``cfg`` (seeded by the caller through ``torch.manual_seed``)."""
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel(model_config(cfg))
    model.loss_type = "ForCausalLM"  # GPT2LMHeadModel's name maps to no loss: transformers would say so mid-run
    if cfg.position_init == "sinusoidal":
        with torch.no_grad():
            model.transformer.wpe.weight.copy_(sinusoidal_positions(cfg.n_ctx, cfg.d_model))
    elif cfg.position_init == "periodic":
        with torch.no_grad():
            model.transformer.wpe.weight.copy_(periodic_positions(cfg.n_ctx, cfg.d_model, cfg.example_periods()))
    return model
