"""Opening a store: the manifest, every listed shard checked, and the captures read back shard by shard.

:meth:`ActivationStore.open` refuses a store whose manifest is broken and names each listed shard that is missing,
truncated, of the wrong shape or (``verify=True``, the default) whose SHA-256 differs from the manifest's. Reading
never loads a store whole: :meth:`ActivationStore.source` is a re-iterable of memory-mapped
``Float[Tensor, "layer rows d_model"]`` chunks (one per shard, optionally one label's rows), what every streaming
statistic of :mod:`interp.streaming` takes.

>>> store = ActivationStore.open("runs/store")                         # doctest: +SKIP
>>> store                                                              # doctest: +SKIP
ActivationStore('runs/store', 1000 of 1000 prompts, 1 shards, hooks=['resid_post'], layers=[0, 1, 2, 3], ...)
>>> v = store.task_vector("resid_post")                                # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from interp.store.manifest import Manifest, ShardRecord, StoreError
from interp.store.shards import file_sha256, map_shard, read_header, shard_metadata
from interp.vectors import vector_from_store

_SAFETENSORS_DTYPE = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}


def shard_problems(folder: Path, manifest: Manifest, *, verify: bool = True) -> dict[int, str]:
    """Shard index → what is wrong with it (missing, truncated, wrong shape or dtype, checksum), for every listed
    shard that cannot be used; empty when all are sound. ``verify`` also compares each file's SHA-256."""
    cfg = manifest.config
    problems = {}
    for rec in manifest.shards:
        path = folder / rec.file
        if not path.is_file():
            problems[rec.index] = f"shard {rec.file} is missing"
            continue
        size = path.stat().st_size
        if size != rec.bytes:
            problems[rec.index] = f"shard {rec.file} is corrupt: {size} bytes, the manifest says {rec.bytes}"
            continue
        try:
            problem = _header_problem(path, rec, cfg)
        except StoreError as err:
            problem = str(err).removeprefix("store: ")
        if problem is None and verify and file_sha256(path) != rec.sha256:
            problem = f"shard {rec.file} is corrupt: its SHA-256 differs from the manifest's"
        if problem is not None:
            problems[rec.index] = problem
    return problems


def _header_problem(path: Path, rec: ShardRecord, cfg: dict[str, Any]) -> str | None:
    _, header = read_header(path)
    meta = shard_metadata(path)
    if meta != {"index": rec.index, "start": rec.start, "stop": rec.stop}:
        return f"shard {rec.file} is corrupt: it records {meta}, the manifest prompts {rec.start}..{rec.stop - 1}"
    want = {h: ([len(cfg["layers"]), rec.rows, cfg["d_model"]], _SAFETENSORS_DTYPE[cfg["dtype"]]) for h in cfg["hooks"]}
    want["prompt_index"] = ([rec.rows], "I64")
    if cfg.get("labels") is not None:
        want["label"] = ([rec.rows], "I32")
    for name, (shape, dtype) in want.items():
        spec = header.get(name)
        if spec is None or spec.get("shape") != shape or spec.get("dtype") != dtype:
            found = None if spec is None else (spec.get("shape"), spec.get("dtype"))
            return f"shard {rec.file} is corrupt: tensor {name} is {found}, expected {(shape, dtype)}"
    return None


class ActivationStore:
    """A store opened for reading (see the module). Attributes: ``folder``, ``manifest``; the configuration's fields
    are properties (``hooks``, ``layers``, ``d_model``, ``dtype``, ``n_prompts``)."""

    def __init__(self, folder: str | Path, manifest: Manifest) -> None:
        self.folder = Path(folder)
        self.manifest = manifest

    @classmethod
    def open(cls, folder: str | Path, *, verify: bool = True) -> ActivationStore:
        """Open the store in ``folder``; :class:`StoreError` naming every listed shard that is missing or corrupt.

        ``verify=False`` skips the SHA-256 of each file (a full read of the store); sizes, headers and shapes are
        still checked."""
        folder = Path(folder)
        manifest = Manifest.read(folder)
        problems = shard_problems(folder, manifest, verify=verify)
        if problems:
            raise StoreError(
                f"store: {folder}: " + "; ".join(problems.values())
                + ". Rerun the capture with the same arguments to write those shards again"
            )  # fmt: skip
        return cls(folder, manifest)

    # ---- what it holds --------------------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        return self.manifest.config

    @property
    def hooks(self) -> tuple[str, ...]:
        return tuple(self.config["hooks"])

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(self.config["layers"])

    @property
    def d_model(self) -> int:
        return int(self.config["d_model"])

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.config["dtype"])

    @property
    def n_prompts(self) -> int:
        """Prompts of the whole capture (finished or not)."""
        return int(self.config["n_prompts"])

    @property
    def n_finished(self) -> int:
        """Prompts in finished shards."""
        return sum(s.rows for s in self.manifest.shards)

    @property
    def complete(self) -> bool:
        return self.manifest.complete

    @property
    def label_names(self) -> tuple[str, ...] | None:
        names = self.config.get("labels")
        return None if names is None else tuple(names)

    def __repr__(self) -> str:
        return (
            f"ActivationStore({str(self.folder)!r}, {self.n_finished} of {self.n_prompts} prompts, "
            f"{len(self.manifest.shards)} shards, hooks={list(self.hooks)}, layers={list(self.layers)}, "
            f"d_model={self.d_model}, dtype={self.config['dtype']}, model={self.config['model_id']!r})"
        )

    def __len__(self) -> int:
        return self.n_finished

    # ---- reading ----------------------------------------------------------------------------------------------
    def _shards(self, partial: bool) -> tuple[ShardRecord, ...]:
        if not partial and not self.complete:
            raise StoreError(
                f"store: {self.folder} holds {len(self.manifest.shards)} of {self.manifest.n_shards} shards; rerun "
                "the capture with the same arguments to finish it (or pass partial=True to read the finished ones)"
            )
        return self.manifest.shards

    def shard_tensors(self, partial: bool = False) -> Iterator[dict[str, torch.Tensor]]:
        """Each shard's tensors (memory-mapped), in prompt order."""
        for rec in self._shards(partial):
            yield map_shard(self.folder / rec.file)

    def _check_hook(self, hook: str) -> str:
        if hook not in self.hooks:
            raise ValueError(f"hook: {hook!r} is not in this store; valid: {', '.join(self.hooks)}")
        return hook

    def _check_label(self, label: str | None) -> int | None:
        if label is None:
            return None
        if self.label_names is None:
            raise ValueError("label: this store has no labels (capture_to(..., labels=...) records them)")
        if label not in self.label_names:
            raise ValueError(f"label: {label!r} is not a label of this store; valid: {', '.join(self.label_names)}")
        return self.label_names.index(label)

    def layer_rows(self, layers: Sequence[int] | None) -> list[int]:
        """Rows of the stored ``layer`` axis holding model ``layers`` (``None``: all)."""
        if layers is None:
            return list(range(len(self.layers)))
        missing = [la for la in layers if la not in self.layers]
        if missing:
            raise ValueError(f"layers: {missing} not captured in this store; valid: {list(self.layers)}")
        return [self.layers.index(la) for la in layers]

    def source(
        self, hook: str = "resid_post", *, layers: Sequence[int] | None = None, label: str | None = None,
        partial: bool = False,
    ) -> StoreSource:  # fmt: skip
        """The re-iterable chunks ``Float[Tensor, "layer rows d_model"]`` of ``hook`` (optionally some ``layers``
        and one ``label``'s rows) that :mod:`interp.streaming` reads; ``partial`` allows an unfinished store."""
        self._check_hook(hook)
        return StoreSource(self, hook, self.layer_rows(layers), self._check_label(label), partial)

    def prompt_indices(self, partial: bool = False) -> torch.Tensor:
        """``Int64[Tensor, "prompt"]``: the prompt index of every stored row, in order."""
        parts = [t["prompt_index"].clone() for t in self.shard_tensors(partial)]
        return torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64)

    def labels(self, partial: bool = False) -> list[str] | None:
        """Each stored row's label (``None`` for a store without labels)."""
        if self.label_names is None:
            return None
        names = self.label_names
        return [names[i] for t in self.shard_tensors(partial) for i in t["label"].tolist()]

    def load(self, hook: str = "resid_post", *, layers: Sequence[int] | None = None, label: str | None = None,
             partial: bool = False) -> torch.Tensor:  # fmt: skip
        """The whole ``Float[Tensor, "layer prompt d_model"]`` in memory (for stores that fit; the statistics never
        call this)."""
        parts = [chunk.clone() for chunk in self.source(hook, layers=layers, label=label, partial=partial)]
        if not parts:
            return torch.empty(len(self.layer_rows(layers)), 0, self.d_model, dtype=self.dtype)
        return torch.cat(parts, dim=1)

    # ---- results from it ------------------------------------------------------------------------------------
    def task_vector(self, hook: str = "resid_post", *, layers: Sequence[int] | None = None, label: str | None = None):
        """The :class:`~interp.vectors.TaskVector` of the stored prompts (or of one ``label``'s), streamed: equal bit
        for bit to :func:`interp.vectors.vector_from_prompts` on the same prompts with a float32 store."""
        return vector_from_store(self, hook, layers=layers, label=label)


class StoreSource:
    """Re-iterable memory-mapped chunks of one hook of a store (see :meth:`ActivationStore.source`); ``len`` is the
    number of rows it yields."""

    def __init__(self, store: ActivationStore, hook: str, layer_rows: list[int], label: int | None, partial: bool):
        self.store, self.hook, self.layer_rows, self.label, self.partial = store, hook, layer_rows, label, partial
        store._shards(partial)  # an unfinished store is refused here, before any statistic starts
        self.layers = tuple(store.layers[r] for r in layer_rows)
        self.dtype, self.d_model = store.dtype, store.d_model

    def __iter__(self) -> Iterator[torch.Tensor]:
        every = self.layer_rows == list(range(len(self.store.layers)))
        for tensors in self.store.shard_tensors(self.partial):
            x = tensors[self.hook]
            if not every:
                x = x[self.layer_rows]
            if self.label is not None:
                keep = tensors["label"] == self.label
                if not bool(keep.any()):
                    continue
                x = x[:, keep]
            yield x

    def __len__(self) -> int:
        if self.label is None:
            return sum(s.rows for s in self.store._shards(self.partial))
        return sum(int((t["label"] == self.label).sum()) for t in self.store.shard_tensors(self.partial))
