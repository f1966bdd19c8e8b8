"""The training loop: step- or time-budgeted, with evaluation and checkpoints on step or wall-clock triggers.

Efficient on CUDA (each switched by the config or the device): bf16 autocast (``precision``), fused AdamW, SDPA
attention (:func:`interp.training.positions.model_config`), TF32 matmuls, optional ``torch.compile``, pinned
host batches generated ahead by a thread or worker processes (``data_workers``), gradient accumulation for
large batches (``grad_accum``). On CPU with the defaults a run is bit-reproducible for a seed and thread count.

>>> from interp.training.config import TrainConfig
>>> cfg = TrainConfig(families={"bias_add": 1.0}, n_layers=1, d_model=32, n_heads=2, n_ctx=64,
...                   n_examples={"bias_add": 8}, batch_size=4, steps=2, eval_every=0)
>>> train(cfg, "runs/doc", progress=False)                     # doctest: +SKIP
PosixPath('runs/doc/final')
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from interp.tokenization import build_char_tokenizer
from interp.training.checkpoints import check_run_folder, load_state, save_checkpoint, save_state, write_log
from interp.training.config import TrainConfig
from interp.training.data import Prefetcher, SingleTaskBatches
from interp.training.evaluate import evaluate
from interp.training.positions import init_model
from interp.training.schedule import lr_factor

TRAIN_DEVICES = ("cpu", "cuda")


def check_device(device: str) -> None:
    """``ValueError`` for an unknown device, or CUDA asked of a torch that has none (before anything runs)."""
    if device not in TRAIN_DEVICES:
        raise ValueError(f"device: {device!r}; valid: {', '.join(TRAIN_DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was asked for but torch sees no CUDA device; use device='cpu'")


def make_optimizer(model, cfg: TrainConfig, device: str) -> torch.optim.AdamW:
    """AdamW (fused kernel on CUDA) with the config's learning rate and weight decay."""
    return torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98), fused=device == "cuda"
    )


def forward_context(cfg: TrainConfig, device: str):
    """bf16 autocast when ``cfg.precision`` asks for it, else nothing."""
    if cfg.precision == "bfloat16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(forward, model, opt, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, device: str) -> torch.Tensor:
    """One optimizer step on ``Int[Tensor, "batch pos"]`` ids/labels; returns the (detached) mean token loss.

    With ``grad_accum > 1`` the batch runs as micro-batches whose losses are weighted by their labelled tokens,
    so the gradient is the full batch's (up to rounding).
    """
    cuda = device == "cuda"
    x, y = x.to(device, non_blocking=cuda), y.to(device, non_blocking=cuda)
    opt.zero_grad(set_to_none=True)
    if cfg.grad_accum == 1:
        with forward_context(cfg, device):
            loss = forward(input_ids=x, labels=y).loss
        loss.backward()
    else:
        n_total = (y[:, 1:] != -100).sum().clamp(min=1)
        loss = torch.zeros((), device=device)
        for xs, ys in zip(x.chunk(cfg.grad_accum), y.chunk(cfg.grad_accum), strict=True):
            with forward_context(cfg, device):
                part = forward(input_ids=xs, labels=ys).loss * (ys[:, 1:] != -100).sum() / n_total
            part.backward()
            loss = loss + part.detach()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    return loss.detach()


class Run:
    """The state of one training run: model, optimizer, log, clock and the eval/checkpoint triggers."""

    def __init__(self, cfg: TrainConfig, out: Path, device: str, resume: bool, clock: Callable[[], float]):
        self.cfg, self.out, self.device, self.clock = cfg, out, device, clock
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        if device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.tokenizer = build_char_tokenizer()
        self.model = init_model(cfg).to(device)
        self.opt = make_optimizer(self.model, cfg, device)
        self.log: dict[str, Any] = {"config": asdict(cfg), "train": [], "eval": [], "wall_s": 0.0, "tokens": 0}
        self.start_step = 0
        self.state_path = out / "state.pt"
        if resume and self.state_path.exists():
            self.log, self.start_step = load_state(self.state_path, self.model, self.opt, device, asdict(cfg))
        if device != "cpu":
            self.log["device"] = device  # absent on CPU runs, so their logs match earlier ones
        self.forward = torch.compile(self.model) if cfg.compile else self.model
        self.t0 = clock() - self.log["wall_s"]
        self.last_eval_s = self.last_ckpt_s = self.elapsed()
        self.reserve_s = 0.05 * cfg.time_budget_s  # time kept for the last evaluation + checkpoint (re-measured)
        self._cost = 0.0  # seconds the evaluation + checkpoint of the current step took

    def elapsed(self) -> float:
        return self.clock() - self.t0

    def out_of_time(self) -> bool:
        """Time-budgeted runs stop when the rest of the budget is what the last evaluation + checkpoint need."""
        return bool(self.cfg.time_budget_s) and self.elapsed() + self.reserve_s >= self.cfg.time_budget_s

    def step(self, step: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        factor = lr_factor(step, self.elapsed(), self.cfg)
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.lr * factor
        self.model.train()
        loss = train_step(self.forward, self.model, self.opt, x, y, self.cfg, self.device)
        self.log["tokens"] += int(x.numel())
        self.log["wall_s"] = self.elapsed()
        return loss

    def record(self, step: int, loss: torch.Tensor, bar) -> None:
        """Append a loss record every 10 steps (and at the last step)."""
        if step % 10 == 0 or step == self.cfg.steps - 1:
            lr = self.cfg.lr * lr_factor(step + 1, self.elapsed(), self.cfg)  # the next step's, as always logged
            self.log["train"].append({"step": step + 1, "loss": loss.item(), "lr": lr})
            tok_s = self.log["tokens"] / max(self.log["wall_s"], 1e-9)
            bar.set_postfix(loss=f"{self.log['train'][-1]['loss']:.3f}", tok_s=f"{tok_s:.0f}")

    def evaluate(self, done: int, bar) -> None:
        start = self.clock()
        self.model.eval()
        acc = evaluate(self.model, self.tokenizer, self.cfg)
        self.log["eval"].append({"step": done, "accuracy": acc, "wall_s": self.elapsed()})
        flat = [v for fam in acc.values() for v in fam.values()]
        bar.write(f"step {done}: mean acc {np.mean(flat):.3f}, min acc {np.min(flat):.3f}")
        self.last_eval_s = self.elapsed()
        self._cost += self.clock() - start

    def checkpoint(self, done: int) -> None:
        start = self.clock()
        meta = {"step": done, **self.log}
        save_checkpoint(self.model, self.tokenizer, self.checkpoint_dir(done), meta, dtype=self.cfg.checkpoint_dtype)
        save_state(self.state_path, self.model, self.opt, self.log, done)
        self.last_ckpt_s = self.elapsed()
        self._cost += self.clock() - start

    def checkpoint_dir(self, done: int) -> Path:
        return self.out / "checkpoints" / f"step{done:06d}"

    def periodic(self, done: int, bar) -> None:
        """Evaluate / checkpoint when a step or time trigger fires (and at the last step of a step-budgeted run)."""
        cfg, now = self.cfg, self.elapsed()
        last = done == cfg.steps
        self._cost = 0.0
        ckpt_by_time = bool(cfg.checkpoint_every_s) and now - self.last_ckpt_s >= cfg.checkpoint_every_s
        if (
            (cfg.eval_every and (done % cfg.eval_every == 0 or last))
            or (cfg.eval_every_s and now - self.last_eval_s >= cfg.eval_every_s)
            or ckpt_by_time  # a time-triggered checkpoint carries its own evaluation
        ):
            self.evaluate(done, bar)
        if (cfg.checkpoint_every and (done % cfg.checkpoint_every == 0 or last)) or ckpt_by_time:
            self.checkpoint(done)
        if self._cost and cfg.time_budget_s:
            self.reserve_s = max(self.reserve_s, 1.5 * self._cost)
        if done % 50 == 0:
            write_log(self.out, self.log)

    def finish(self, done: int, bar) -> Path:
        """Final evaluation (time-budgeted runs, unless this step was just evaluated), ``log.json`` and ``final``."""
        if self.cfg.time_budget_s and not (self.log["eval"] and self.log["eval"][-1]["step"] == done):
            self.evaluate(done, bar)
        self.log["steps_done"] = done
        write_log(self.out, self.log)
        final = self.out / "final"
        save_checkpoint(self.model, self.tokenizer, final, {"step": done, **self.log}, dtype=self.cfg.checkpoint_dtype)
        return final


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = True,
    progress: bool = True,
    until: int | None = None,
    device: str = "cpu",
    clock: Callable[[], float] = time.perf_counter,
) -> Path:
    """Run (or resume) training; write ``out_dir/final`` (HF dir), ``out_dir/log.json`` and checkpoints.

    ``until`` stops early before that step (state saved, so a later call resumes exactly) and returns the run
    directory; otherwise returns the final model directory. ``device`` "cpu" (bit-reproducible for a seed and
    thread count) or "cuda" (fast, not bit-reproducible); batches are the same on both, and the device is
    recorded in ``log.json``. With ``cfg.time_budget_s`` the run stops inside that many seconds of ``clock``
    (evaluated and saved); ``clock`` is replaceable for tests.
    """
    check_device(device)
    cfg.validate()
    out = Path(out_dir)
    check_run_folder(out)  # before the model is built: a file where final/ goes failed only at the end
    out.mkdir(parents=True, exist_ok=True)
    run = Run(cfg, out, device, resume, clock)
    done = run.start_step
    bar = tqdm(disable=not progress, desc="train", initial=done, total=cfg.steps)
    with Prefetcher(SingleTaskBatches(cfg), done, cfg.steps, workers=cfg.data_workers, depth=cfg.prefetch) as data:
        for step, x, y in data:
            if until is not None and step >= until:
                save_state(run.state_path, run.model, run.opt, run.log, step)
                write_log(out, run.log)
                bar.close()
                return out
            if run.out_of_time():
                break
            loss = run.step(step, x.pin_memory() if device == "cuda" else x, y)
            run.record(step, loss, bar)
            done = step + 1
            bar.update(1)
            run.periodic(done, bar)
    bar.close()
    return run.finish(done, bar)
