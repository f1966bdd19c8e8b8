"""Training batches: single-task prompts built from :mod:`interp.tasks`, padded by the one helper, generated ahead.

Batch ``s`` comes from the generator ``[seed, s]`` alone, so its content never depends on who generates it
(the loop itself, a background thread or worker processes) nor on where a resumed run starts.

>>> from interp.training.config import TrainConfig
>>> data = SingleTaskBatches(TrainConfig(families={"bias_add": 1.0}, n_examples={"bias_add": 4}, batch_size=2))
>>> x, y = data.batch(0)
>>> x.shape == y.shape, int(y[0, 0])
(True, -100)
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict

import numpy as np
import torch

from interp.tasks import get_family, resolve_tasks
from interp.tokenization import BOS, PAD, UNK, char_vocab, right_pad
from interp.training.config import TrainConfig


class SingleTaskBatches:
    """Deterministic batches of ``Int[Tensor, "batch pos"]`` ids and labels (``-100`` where no loss is taken)."""

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
        """One prompt of ONE task: its text and, per character, whether the loss is taken on it."""
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
        """Ids and labels of batch ``step`` (BOS first; loss on answers and the newline after each)."""
        rng = np.random.default_rng([self.cfg.seed, step])
        unk, bos, pad = self.vocab[UNK], self.vocab[BOS], self.vocab[PAD]
        rows, labels = [], []
        family = self.pick_family(rng) if self.cfg.batch_by_family else None
        for _ in range(self.cfg.batch_size):
            text, mask = self.text_and_mask(rng, family, step)
            ids = ([bos] + [self.vocab.get(c, unk) for c in text])[: self.cfg.n_ctx]
            rows.append(ids)
            labels.append([-100] + [i if m else -100 for i, m in zip(ids[1:], mask, strict=False)])
        return right_pad(rows, pad), right_pad(labels, pad, fill=-100)


_WORKER_DATA: SingleTaskBatches | None = None


def _init_worker(cfg: dict) -> None:
    global _WORKER_DATA
    torch.set_num_threads(1)
    _WORKER_DATA = SingleTaskBatches(TrainConfig(**cfg))


def _worker_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    assert _WORKER_DATA is not None
    return _WORKER_DATA.batch(step)


class Prefetcher:
    """Yield ``(step, ids, labels)`` for ``start <= step < stop`` in order, generated ``depth`` batches ahead.

    ``workers == 0``: one background thread; ``workers > 0``: that many worker processes (spawned, so safe
    beside CUDA). Use as a context manager (or call :meth:`close`) so the generators stop with the loop.

    >>> from interp.training.config import TrainConfig
    >>> cfg = TrainConfig(families={"bias_add": 1.0}, n_examples={"bias_add": 4}, batch_size=2)
    >>> with Prefetcher(SingleTaskBatches(cfg), 0, 3) as batches:
    ...     [step for step, x, y in batches]
    [0, 1, 2]
    """

    def __init__(self, data: SingleTaskBatches, start: int, stop: int, *, workers: int = 0, depth: int = 4):
        self.data, self.start, self.stop = data, start, stop
        self.workers, self.depth = workers, max(1, depth)
        self._stop = threading.Event()
        self._pool = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        return self._from_processes() if self.workers else self._from_thread()

    def _from_thread(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        q: queue.Queue = queue.Queue(maxsize=self.depth)

        def produce() -> None:
            try:
                for step in range(self.start, self.stop):
                    item = (step, *self.data.batch(step))
                    while not self._stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if self._stop.is_set():
                        return
            except BaseException as e:  # handed to the consumer, raised there
                q.put(e)

        self._thread = threading.Thread(target=produce, name="interp-batches", daemon=True)
        self._thread.start()
        for _ in range(self.start, self.stop):
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    def _from_processes(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        ctx = multiprocessing.get_context("spawn")
        self._pool = ctx.Pool(self.workers, initializer=_init_worker, initargs=(asdict(self.data.cfg),))
        pending: deque = deque()
        ahead = max(self.depth, self.workers)
        nxt = self.start
        while nxt < self.stop and len(pending) < ahead:
            pending.append((nxt, self._pool.apply_async(_worker_batch, (nxt,))))
            nxt += 1
        while pending:
            step, result = pending.popleft()
            x, y = result.get()
            if nxt < self.stop:
                pending.append((nxt, self._pool.apply_async(_worker_batch, (nxt,))))
                nxt += 1
            yield step, x, y

    def close(self) -> None:
        """Stop generating (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
