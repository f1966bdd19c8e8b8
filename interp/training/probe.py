"""Throughput probe: train a config for a few seconds (nothing written) and measure tokens per second.

Used by ``experiments/gpu_train.py`` to choose a model size for a wall-clock budget. The first step (CUDA
warm-up, compilation) is excluded from the rate. Out of GPU memory is reported, not raised.

>>> from interp.training.config import TrainConfig
>>> cfg = TrainConfig(families={"bias_add": 1.0}, n_examples={"bias_add": 8}, n_layers=1, d_model=16,
...                   n_heads=2, n_ctx=40, batch_size=4, eval_every=0)
>>> probe(cfg, "cpu", seconds=0.5)["ok"]
True
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from interp.training.config import TrainConfig
from interp.training.data import Prefetcher, SingleTaskBatches
from interp.training.loop import check_device, make_optimizer, train_step
from interp.training.positions import init_model


def n_params(model) -> int:
    """Parameters counted once (tied embeddings once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def probe(cfg: TrainConfig, device: str, seconds: float, *, clock: Callable[[], float] = time.perf_counter) -> dict:
    """Run training steps of ``cfg`` for about ``seconds``; returns rate, step time, losses and peak memory.

    Keys: ``ok``, ``steps``, ``tokens_per_s`` (padded tokens, as ``log.json`` counts them), ``step_s``,
    ``loss_first``, ``loss_last``, ``peak_mem_gib`` (CUDA only), ``n_params``; or ``ok: False`` and ``error``.
    """
    check_device(device)
    cfg.validate()
    torch.manual_seed(cfg.seed)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model = opt = None
    try:
        model = init_model(cfg).to(device)
        opt = make_optimizer(model, cfg, device)
        forward = torch.compile(model) if cfg.compile else model
        return _timed_steps(cfg, device, seconds, clock, model, opt, forward)
    except torch.cuda.OutOfMemoryError as e:
        return {"ok": False, "error": f"out of memory: {str(e).splitlines()[0]}"}
    finally:
        del model, opt
        if device == "cuda":
            torch.cuda.empty_cache()


def _timed_steps(cfg, device, seconds, clock, model, opt, forward) -> dict:
    losses, tokens, steps = [], 0, 0
    start = clock()
    timed_from = None
    with Prefetcher(SingleTaskBatches(cfg), 0, 10**9, workers=cfg.data_workers, depth=cfg.prefetch) as data:
        for _step, x, y in data:
            losses.append(train_step(forward, model, opt, x, y, cfg, device))
            if device == "cuda":
                torch.cuda.synchronize()
            now = clock()
            if timed_from is None:
                timed_from = now  # the first step (warm-up, compilation) is not timed
            else:
                tokens += int(x.numel())
                steps += 1
            if now - start >= seconds and steps >= 1:
                break
    span = clock() - timed_from
    return {
        "ok": True,
        "steps": steps,
        "tokens_per_s": tokens / max(span, 1e-9),
        "step_s": span / steps,
        "first_step_s": timed_from - start,
        "loss_first": float(losses[0]),
        "loss_last": float(losses[-1]),
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
        "n_params": n_params(model),
    }
