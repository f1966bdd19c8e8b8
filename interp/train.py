"""Train a GPT-2-architecture model from scratch on single-task in-context prompts.

Every training prompt holds examples of ONE task (families and tasks vary across prompts, never within
one); the loss is on answer characters and the newline after each answer. The model is a plain Hugging
Face ``GPT2LMHeadModel`` (scaled-dot-product attention: much faster on CPU than a hooked model) with the
project's character-level tokenizer; checkpoints are standard HF GPT-2 directories that
:func:`interp.models.load_model` reads.

>>> cfg = TrainConfig(families={"bias_add": 1.0}, n_layers=1, d_model=32, n_heads=2, n_ctx=64,
...                   n_examples={"bias_add": 8}, batch_size=4, steps=2, eval_every=0, checkpoint_every=0)
>>> cfg.steps
2
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from interp.export import atomic_path, write_json
from interp.prompts import build_prompts
from interp.tasks import get_family, resolve_tasks
from interp.tokenization import BOS, PAD, UNK, build_char_tokenizer, char_vocab


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved next to every checkpoint)."""

    families: dict[str, float] = field(default_factory=lambda: {"retrieval": 1.0, "bias_add": 1.0})
    tasks: dict[str, list[str]] = field(default_factory=dict)  # optional subset per family
    n_examples: dict[str, int] = field(default_factory=lambda: {"retrieval": 24, "bias_add": 24})
    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 4
    n_ctx: int = 320
    batch_size: int = 32
    steps: int = 1000
    lr: float = 1e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 200
    eval_prompts: int = 100
    eval_n_examples: int = 20
    checkpoint_every: int = 0
    batch_by_family: bool = True  # one family per batch (prompts still hold one task each): no padding waste
    seed: int = 0
    threads: int = 2
    #: "random" (GPT-2's N(0, 0.02)) or "sinusoidal": the learned position embeddings start as sinusoids
    #: (Vaswani et al. 2017) at the same per-coordinate scale, so attending a fixed offset back is easy from step 0.
    #: "periodic": sinusoidal, with the first coordinates replaced by sines and cosines whose periods are the
    #: trained families' example lengths (e.g. 11 for ``qWeRtYuI>e\n``), so a token's index inside its example is a
    #: linear feature from step 0 (needs families whose examples all have one length). Still learned embeddings.
    position_init: str = "random"
    #: Task curriculum (0 = off): a family's active tasks grow from ``curriculum_start_tasks`` (the first ones of a
    #: seeded permutation) to all of them by step ``curriculum_steps``; every prompt still holds ONE task. With all
    #: tasks equally likely from step 0 nothing short of the whole in-context circuit lowers the loss (for bias_add,
    #: reading x alone says nothing about the answer); a few tasks first give partial credit.
    curriculum_steps: int = 0
    curriculum_start_tasks: int = 2

    def example_periods(self) -> list[int]:
        """Length in characters (newline included) of one example of each family, for ``position_init='periodic'``."""
        periods = []
        for name in self.families:
            fam = get_family(name)
            rng = np.random.default_rng(0)
            lengths = {
                len(fam.example(fam.sample_input(rng), task)) + 1
                for task in resolve_tasks(fam, self.tasks.get(name))
                for _ in range(20)
            }
            if len(lengths) != 1:
                raise ValueError(
                    f"position_init: 'periodic' needs examples of one length; {name} has lengths {sorted(lengths)}"
                )
            periods.append(lengths.pop())
        return sorted(set(periods))

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        data = json.loads(Path(path).read_text())
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"config: unknown keys {sorted(unknown)}; valid: {sorted(cls.__dataclass_fields__)}")
        return cls(**data)

    def validate(self) -> None:
        for name in self.families:
            fam = get_family(name)
            resolve_tasks(fam, self.tasks.get(name))
            if name not in self.n_examples:
                raise ValueError(f"n_examples: missing an entry for family {name!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model: {self.d_model} must be divisible by n_heads={self.n_heads}")
        if self.curriculum_steps < 0 or self.curriculum_start_tasks < 1:
            raise ValueError(
                f"curriculum_steps/curriculum_start_tasks: {self.curriculum_steps}/{self.curriculum_start_tasks}; "
                "need curriculum_steps >= 0 and curriculum_start_tasks >= 1"
            )
        if self.position_init not in POSITION_INITS:
            raise ValueError(f"position_init: {self.position_init!r}; valid: {', '.join(POSITION_INITS)}")
        if self.position_init == "periodic":
            periods = self.example_periods()
            n_features = sum(2 * (period // 2) for period in periods)
            if n_features > self.d_model // 2:
                raise ValueError(
                    f"position_init: 'periodic' needs {n_features} coordinates for periods {periods};"
                    f" d_model={self.d_model} allows at most {self.d_model // 2}"
                )
        # held-out evaluation prompts (with query and answer) must fit the context and sit at trained positions
        for name in self.families if self.eval_every else ():
            longest = max(
                len(p.text) + max(len(a) for a in p.answers) + 1
                for p in build_prompts(
                    name,
                    resolve_tasks(get_family(name), self.tasks.get(name))[:1],
                    n_examples=self.eval_n_examples,
                    n_prompts=8,
                    seed=0,
                )
            )
            if longest > self.n_ctx:
                raise ValueError(
                    f"n_ctx: {self.n_ctx} is shorter than a {name} evaluation prompt with eval_n_examples="
                    f"{self.eval_n_examples} (up to {longest} tokens); raise n_ctx or lower eval_n_examples"
                )
            if self.n_examples[name] <= self.eval_n_examples:
                # the query and answer of an evaluation prompt sit after eval_n_examples examples: positions a
                # training prompt with no more examples never reaches, whose embeddings stay untrained
                raise ValueError(
                    f"n_examples: {name} has {self.n_examples[name]} examples per training prompt; it must exceed"
                    f" eval_n_examples={self.eval_n_examples} so evaluation queries sit at trained positions"
                )


POSITION_INITS = ("random", "sinusoidal", "periodic")


def sinusoidal_positions(n_ctx: int, d_model: int, rms: float = 0.02) -> torch.Tensor:
    """Sinusoidal position table ``[n_ctx, d_model]`` scaled to root-mean-square ``rms`` per coordinate.

    >>> t = sinusoidal_positions(16, 8)
    >>> tuple(t.shape), round(float(t.pow(2).mean().sqrt()), 3)
    ((16, 8), 0.02)
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


def init_model(cfg: TrainConfig):
    """A freshly initialised ``GPT2LMHeadModel`` for ``cfg`` (seeded by the caller)."""
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel(_model_config(cfg))
    if cfg.position_init == "sinusoidal":
        with torch.no_grad():
            model.transformer.wpe.weight.copy_(sinusoidal_positions(cfg.n_ctx, cfg.d_model))
    elif cfg.position_init == "periodic":
        with torch.no_grad():
            model.transformer.wpe.weight.copy_(periodic_positions(cfg.n_ctx, cfg.d_model, cfg.example_periods()))
    return model


def _model_config(cfg: TrainConfig):
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


class SingleTaskBatches:
    """Deterministic batches: batch ``s`` comes from generator ``[seed, s]`` (so resuming is exact)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.vocab = char_vocab()
        self.families = [get_family(f) for f in cfg.families]
        w = np.array([cfg.families[f.name] for f in self.families], dtype=float)
        self.weights = w / w.sum()
        self.tasks = {f.name: resolve_tasks(f, cfg.tasks.get(f.name)) for f in self.families}
        if cfg.curriculum_steps:
            order = np.random.default_rng([cfg.seed, 7919])
            self.tasks = {name: [t[i] for i in order.permutation(len(t))] for name, t in self.tasks.items()}

    def active_tasks(self, family: str, step: int) -> list[str]:
        """The tasks prompts of ``family`` are drawn from at ``step`` (all of them without a curriculum)."""
        tasks = self.tasks[family]
        cfg = self.cfg
        if not cfg.curriculum_steps or step >= cfg.curriculum_steps:
            return tasks
        start = min(cfg.curriculum_start_tasks, len(tasks))
        return tasks[: start + (len(tasks) - start + 1) * step // cfg.curriculum_steps]

    def pick_family(self, rng: np.random.Generator):
        return self.families[int(rng.choice(len(self.families), p=self.weights))]

    def text_and_mask(self, rng: np.random.Generator, family=None, step: int | None = None) -> tuple[str, list[bool]]:
        fam = family if family is not None else self.pick_family(rng)
        tasks = self.tasks[fam.name] if step is None else self.active_tasks(fam.name, step)
        task = tasks[int(rng.integers(len(tasks)))]
        text, mask = [], []
        for _ in range(self.cfg.n_examples[fam.name]):
            x = fam.sample_input(rng)
            q, a = fam.query(x), fam.task(task).answer(x)
            text.append(q + a + "\n")
            mask.extend([False] * len(q) + [True] * (len(a) + 1))
        return "".join(text), mask

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.cfg.seed, step])
        unk, bos, pad = self.vocab[UNK], self.vocab[BOS], self.vocab[PAD]
        rows, labels = [], []
        family = self.pick_family(rng) if self.cfg.batch_by_family else None
        for _ in range(self.cfg.batch_size):
            text, mask = self.text_and_mask(rng, family, step)
            ids = [bos] + [self.vocab.get(c, unk) for c in text]
            ids = ids[: self.cfg.n_ctx]
            lab = [-100] + [i if m else -100 for i, m in zip(ids[1:], mask, strict=False)]
            rows.append(ids)
            labels.append(lab)
        width = max(len(r) for r in rows)
        x = torch.full((len(rows), width), pad, dtype=torch.long)
        y = torch.full((len(rows), width), -100, dtype=torch.long)
        for i, (r, lab) in enumerate(zip(rows, labels, strict=True)):
            x[i, : len(r)] = torch.tensor(r)
            y[i, : len(lab)] = torch.tensor(lab)
        return x, y


@torch.inference_mode()
def icl_accuracy(hf_model, tokenizer, family: str, task: str, *, n_examples: int, n_prompts: int, seed: int) -> float:
    """Greedy (teacher-forced argmax) accuracy of the full answer on single-task prompts, HF model (on its device)."""
    from interp.tokenization import encode_batch, pad_id

    prompts = build_prompts(family, [task], n_examples=n_examples, n_prompts=n_prompts, seed=seed)
    full = encode_batch(tokenizer, [p.text + p.answers[0] for p in prompts])
    plen = [len(x) for x in encode_batch(tokenizer, [p.text for p in prompts])]
    width = max(len(f) for f in full)
    x = torch.full((len(full), width), pad_id(tokenizer), dtype=torch.long)
    for i, f in enumerate(full):
        x[i, : len(f)] = torch.tensor(f)
    pred = hf_model(input_ids=x.to(hf_model.device)).logits.argmax(-1).cpu()
    correct = [all(int(pred[i, j - 1]) == f[j] for j in range(plen[i], len(f))) for i, f in enumerate(full)]
    return float(np.mean(correct))


def evaluate(hf_model, tokenizer, cfg: TrainConfig, n_examples: int | None = None, seed: int = 10**6) -> dict:
    """Single-task ICL accuracy for every trained task on held-out prompts (seed stream apart from training)."""
    was_training = hf_model.training
    hf_model.eval()
    out: dict[str, dict[str, float]] = {}
    for fam in cfg.families:
        for task in resolve_tasks(get_family(fam), cfg.tasks.get(fam)):
            out.setdefault(fam, {})[task] = icl_accuracy(
                hf_model,
                tokenizer,
                fam,
                task,
                n_examples=n_examples or cfg.eval_n_examples,
                n_prompts=cfg.eval_prompts,
                seed=seed,
            )
    hf_model.train(was_training)
    return out


def save_checkpoint(hf_model, tokenizer, path: Path, meta: dict[str, Any]) -> None:
    """Write an HF GPT-2 directory atomically (temp dir + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        hf_model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "training.json").write_text(json.dumps(meta, indent=2))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _lr_factor(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


TRAIN_DEVICES = ("cpu", "cuda")


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = True,
    progress: bool = True,
    until: int | None = None,
    device: str = "cpu",
) -> Path:
    """Run (or resume) training; write ``out_dir/final`` (HF dir), ``out_dir/log.json`` and checkpoints.

    ``until`` stops early after that step (state saved, so a later call resumes exactly). Returns the
    path of the final model directory (or of the run directory when stopped early). ``device`` "cpu"
    (default: bit-reproducible for a given seed and thread count) or "cuda" (fast, not bit-reproducible;
    for exploring configs); batches are the same on both, and the device is recorded in ``log.json``.
    """
    if device not in TRAIN_DEVICES:
        raise ValueError(f"device: {device!r}; valid: {', '.join(TRAIN_DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was asked for but torch sees no CUDA device; use device='cpu'")
    cfg.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    tokenizer = build_char_tokenizer()
    model = init_model(cfg).to(device)
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98), fused=device == "cuda"
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg))
    log: dict[str, Any] = {"config": asdict(cfg), "train": [], "eval": [], "wall_s": 0.0, "tokens": 0}
    start_step = 0
    state_path = out / "state.pt"
    if resume and state_path.exists():
        state = torch.load(state_path, weights_only=False, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        log = state["log"]
        start_step = state["step"]
    if device != "cpu":
        log["device"] = device  # absent on CPU runs, so their logs match earlier ones
    data = SingleTaskBatches(cfg)
    model.train()
    t0 = time.time() - log["wall_s"]
    bar = tqdm(range(start_step, cfg.steps), disable=not progress, desc="train", initial=start_step, total=cfg.steps)
    for step in bar:
        if until is not None and step >= until:
            _save_state(state_path, model, opt, sched, log, step)
            write_json(out / "log.json", log)
            return out
        x, y = data.batch(step)
        loss = model(input_ids=x.to(device), labels=y.to(device)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        log["tokens"] += int(x.numel())
        log["wall_s"] = time.time() - t0
        if step % 10 == 0 or step == cfg.steps - 1:
            log["train"].append({"step": step + 1, "loss": loss.item(), "lr": sched.get_last_lr()[0]})
            bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{log['tokens'] / max(log['wall_s'], 1e-9):.0f}")
        done = step + 1
        if cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.steps):
            acc = evaluate(model, tokenizer, cfg)
            log["eval"].append({"step": done, "accuracy": acc, "wall_s": time.time() - t0})
            flat = [v for fam in acc.values() for v in fam.values()]
            bar.write(f"step {done}: mean acc {np.mean(flat):.3f}, min acc {np.min(flat):.3f}")
        if cfg.checkpoint_every and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            save_checkpoint(model, tokenizer, out / "checkpoints" / f"step{done:06d}", {"step": done, **log})
            _save_state(state_path, model, opt, sched, log, done)
        if done % 50 == 0:
            write_json(out / "log.json", log)
    write_json(out / "log.json", log)
    save_checkpoint(model, tokenizer, out / "final", {"step": cfg.steps, **log})
    return out / "final"


def _save_state(path: Path, model, opt, sched, log: dict, step: int) -> None:
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}
    state.update(log=log, step=step)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
