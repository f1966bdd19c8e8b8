"""Capturing into a store: :func:`capture_to` writes shards of at most ``shard_size`` prompts, resumable after a kill.

The run, top to bottom: check every argument (before any forward pass); describe the capture as a configuration
(:mod:`interp.store.manifest`); open the folder (refused when it holds another configuration, or a capture running
in another process); drop the temporary files and the listed shards that are missing or corrupt (said in a warning:
they are captured again); then, for each shard not yet finished, build its prompts, capture them, write the shard
beside and rename it into place, and list it in the manifest. Shards are cut at fixed prompt indices and each is
captured alone, so a run killed at any moment and rerun with the same arguments ends with the same bytes as one
that was never interrupted (tested with SIGKILL at random moments). A full disk stops the run with one
:class:`DiskFullError` line; the store keeps its finished shards and resumes once there is room.

Any engine can feed the store: ``capture`` is a callable ``(prompts, positions) -> {hook: Float[Tensor, "layer
prompt d_model"]}`` with a ``config`` dict (recorded in the manifest); the default, :class:`HookCapture`, runs
:func:`interp.capture.capture_hooks`.

>>> store = capture_to("runs/add2", model, PromptSpec("bias_add", ("add2",), n_prompts=10_000), shard_size=1000)
...                                                                               # doctest: +SKIP
>>> store.task_vector("resid_post")                                               # doctest: +SKIP
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import torch

from interp.bridge import tl_version
from interp.capture import capture_hooks, texts_of
from interp.engines.plan import check_batch_size
from interp.export import package_version
from interp.hooks import HOOK_POINTS, check_layers
from interp.models import model_info
from interp.prompts import Prompt, PromptSpec
from interp.store.manifest import DTYPES, MANIFEST, Manifest, StoreError, check_same_config
from interp.store.reader import ActivationStore, shard_problems
from interp.store.shards import SHARD_GLOB, TEMP_GLOBS, write_shard
from interp.validate import (
    ArgumentError,
    ArgumentTypeError,
    check_choice,
    check_count,
    check_model,
    check_sequence,
)
from interp.vectors import Provenance

#: Default prompts per shard.
SHARD_SIZE = 1000
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """The disk filled up while a shard or the manifest was written; the store holds its finished shards only."""


class Capture(Protocol):
    """What feeds a store: ``capture(prompts, positions)`` → ``{hook: Float[Tensor, "layer prompt d_model"]}`` for the
    store's hooks and layers, ``positions`` one per prompt (``None``: each prompt's last token). ``config`` (JSON
    values) names the engine and every setting that changes its numbers; the manifest records it."""

    config: dict[str, Any]

    def __call__(
        self, prompts: Sequence[Prompt | str], positions: Sequence[int] | None
    ) -> Mapping[str, torch.Tensor]: ...


class HookCapture:
    """The default engine: :func:`interp.capture.capture_hooks` on the model (a TransformerLens model, or one loaded
    with ``engine="nnsight"``, whose traces save the same slices; the manifest records which)."""

    def __init__(self, model, layers: Sequence[int], hooks: Sequence[str], *, batch_size: int = 32,
                 max_tokens: int | None = 8192) -> None:  # fmt: skip
        self.model, self.layers, self.hooks = model, tuple(layers), tuple(hooks)
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self.config = {"engine": "interp.capture.capture_hooks", "batch_size": batch_size, "max_tokens": max_tokens}
        if getattr(model, "engine", None) == "nnsight":  # its traces, here or on a remote host (issue 39 item 5)
            self.config["model_engine"] = "nnsight"
            self.config["remote"] = model.remote if isinstance(model.remote, str) else bool(model.remote)

    def __call__(self, prompts, positions):
        return capture_hooks(self.model, prompts, layers=self.layers, hooks=self.hooks, positions=positions,
                             batch_size=self.batch_size, max_tokens=self.max_tokens)  # fmt: skip


def weights_sha256(model) -> str:
    """SHA-256 of a model's weights: the file's, recorded by :func:`interp.models.load_model`, where known (the
    embedded model); else of every parameter and buffer (name, dtype, shape, bytes) in name order, about 1 s per GB."""
    known = model_info(model).weights_sha256
    if known:
        return known
    if getattr(model, "engine", None) == "nnsight" and model.remote is True:  # the weights stay on the NDIF host
        return f"served by NDIF: {model_info(model).model_id}"
    state = getattr(model, "state_dict", None)
    if state is None and getattr(model, "engine", None) == "nnsight":  # the wrapped Hugging Face module's weights
        state = model.nn._module.state_dict
    if state is None:
        raise ValueError("model: has no state_dict() to hash its weights; give a torch module")
    h = hashlib.sha256()
    for name, t in sorted(state().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _sha256_lines(items: Sequence[Any]) -> str:
    h = hashlib.sha256()
    for x in items:
        h.update(str(x).encode())
        h.update(b"\x00")
    return h.hexdigest()


def _provenance(prompts: Sequence[Prompt | str]) -> dict[str, Any]:
    """What :func:`interp.vectors.vector_from_prompts` records about ``prompts`` (its first prompt, their number)."""
    p0 = prompts[0]
    if not isinstance(p0, Prompt):
        return asdict(Provenance("texts", (), (), len(prompts), 0, 0, ""))
    return asdict(Provenance(p0.family, tuple(p0.tasks), tuple(p0.proportions), len(prompts), p0.n_examples, p0.seed))


def _prompt_ids(prompts: Sequence[Prompt | str] | PromptSpec, rows) -> list[list[int]]:
    """``[seed, index]`` of every prompt of ``rows``, sorted, as :class:`~interp.vectors.Provenance` records them (the
    held-out checks of :mod:`interp.heldout` read them); none for texts. A spec's prompt ``i`` is ``(seed, i)``."""
    if isinstance(prompts, PromptSpec):
        return [[prompts.seed, int(i)] for i in rows]
    if not isinstance(prompts[rows[0]], Prompt):
        return []
    return sorted({(int(prompts[i].seed), int(prompts[i].index)) for i in rows})


def _check_args(store, model, prompts, layers, hooks, positions, labels, shard_size, dtype, batch_size, capture,
                progress) -> tuple:  # fmt: skip
    """Every argument of :func:`capture_to`, before any prompt is built or any weight read: a typed error naming it."""
    if not isinstance(store, str | Path) or not str(store):
        raise ArgumentTypeError("store", f"need a folder (str or Path), got {store!r}")
    check_model(model)
    if isinstance(hooks, str):
        hooks = (hooks,)
    hooks = tuple(check_sequence(hooks, "hooks", what="hook points", allow_empty=True))
    if not hooks:
        raise ArgumentError("hooks", f"need at least one hook point; valid: {', '.join(HOOK_POINTS)}")
    for h in hooks:
        check_choice(h, "hooks", HOOK_POINTS, "is not a residual hook point")
    if len(set(hooks)) != len(hooks):
        raise ArgumentError("hooks", f"duplicate hook points in {list(hooks)}")
    layers = check_layers(model, layers)
    check_choice(dtype, "dtype", DTYPES, "not supported for storage")
    shard_size = check_count(shard_size, "shard_size")
    check_batch_size(batch_size)
    if capture is not None and not callable(capture):
        raise ArgumentTypeError("capture", f"need a capture engine (see Capture) or None, got {type(capture).__name__}")
    if progress is not None and not callable(progress):
        raise ArgumentTypeError("progress", f"need a callable progress(done, total) or None, got {progress!r}")
    if not isinstance(prompts, PromptSpec):
        prompts = check_sequence(prompts, "prompts", what="prompts (Prompt values or strings)")
        bad = next((i for i, p in enumerate(prompts) if not isinstance(p, Prompt | str)), None)
        if bad is not None:
            raise ArgumentTypeError(
                "prompts", f"item {bad} is a {type(prompts[bad]).__name__}, not a Prompt or a string"
            )
        if len({isinstance(p, Prompt) for p in prompts}) > 1:
            raise ArgumentTypeError("prompts", "mixes Prompt values and strings; give one kind")
    n = len(prompts)
    if positions is not None and not (isinstance(positions, int) and not isinstance(positions, bool)):
        if isinstance(prompts, PromptSpec):
            raise ArgumentError("positions", "with a PromptSpec give None (last token) or one int for every prompt")
        positions = check_sequence(positions, "positions", what="positions (one int per prompt)")
        if any(isinstance(p, bool) or not isinstance(p, int) for p in positions):
            raise ArgumentTypeError("positions", "need integers (token positions, negatives from the end)")
        if len(positions) != n:
            raise ArgumentError("positions", f"expected {n} positions (one per prompt), got {len(positions)}")
    if labels is not None:
        labels = check_sequence(labels, "labels", what="labels (one name per prompt)")
        if any(not isinstance(x, str) for x in labels):
            raise ArgumentTypeError("labels", "need one string per prompt")
        if len(labels) != n:
            raise ArgumentError("labels", f"expected {n} labels (one per prompt), got {len(labels)}")
    return prompts, layers, hooks, positions, labels


def store_config(model, prompts, *, layers, hooks, positions, labels, shard_size, dtype, engine: dict) -> dict:
    """The manifest's ``config`` for a capture (see :mod:`interp.store.manifest`)."""
    info = model_info(model)
    if isinstance(prompts, PromptSpec):
        prompt_cfg = prompts.to_dict()
        first = lambda rows: prompts.build(rows[0], rows[0] + 1)  # noqa: E731 - built one prompt at a time
    else:
        prompt_cfg = {"generator": "given", "texts_sha256": _sha256_lines(texts_of(prompts))}
        first = lambda rows: [prompts[rows[0]]]  # noqa: E731
    groups = {"": range(len(prompts))}
    names = None
    if labels is not None:
        names = list(dict.fromkeys(labels))
        groups |= {name: [i for i, la in enumerate(labels) if la == name] for name in names}
    provenance = {
        key: _provenance(first(rows)) | {"n_prompts": len(rows), "prompt_ids": _prompt_ids(prompts, rows)}
        for key, rows in groups.items()
    }
    if positions is None:
        pos_cfg: Any = "last_token"
    elif isinstance(positions, int):
        pos_cfg = {"every_prompt": positions}
    else:
        pos_cfg = {"per_prompt_sha256": _sha256_lines(positions)}
    config = {
        "model_id": info.model_id,
        "weights_sha256": weights_sha256(model),
        "processing": asdict(info.processing),
        "model_dtype": str(model.cfg.dtype).removeprefix("torch."),
        "d_model": int(model.cfg.d_model),
        "prompts": prompt_cfg,
        "n_prompts": len(prompts),
        "provenance": provenance,
        "labels": names,
        "labels_sha256": None if labels is None else _sha256_lines(labels),
        "hooks": list(hooks),
        "layers": list(layers),
        "positions": pos_cfg,
        "dtype": dtype,
        "shard_size": shard_size,
        "engine": engine,
        "interp_version": package_version(),
    }
    return json.loads(json.dumps(config))  # as the manifest will hold it (tuples become lists)


def _environment() -> dict[str, str]:
    return {"torch": torch.__version__.split("+")[0], "transformer_lens": tl_version()}


class _FolderLock:
    """An exclusive ``flock`` on the store's folder: one writer at a time; the kernel releases it when the process
    dies, also by SIGKILL."""

    def __init__(self, folder: Path) -> None:
        self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise StoreError(f"store: {folder} is being written by another process; wait for it to finish") from None

    def release(self) -> None:
        os.close(self.fd)  # closing the last descriptor releases the lock


def _open_for_writing(folder: Path, config: dict) -> Manifest:
    """The manifest to continue from (a new one for a new store), after removing what a killed run left."""
    for pattern in TEMP_GLOBS:
        for tmp in folder.glob(pattern):
            tmp.unlink(missing_ok=True)
    for probe in folder.glob(".interp-write-probe.*"):  # interp.export.check_output_dir's, if killed in between
        if probe.is_dir():
            probe.rmdir()
    if not (folder / MANIFEST).exists():
        foreign = sorted(p.name for p in folder.iterdir() if not p.match(SHARD_GLOB))
        if foreign:
            raise StoreError(
                f"store: {folder} is not empty and holds no {MANIFEST} (found {', '.join(foreign[:3])}); give a new "
                "or empty folder"
            )
        manifest = Manifest(config, _environment())
        _record(folder, manifest)
        return manifest
    manifest = Manifest.read(folder)
    check_same_config(folder, manifest.config, config)
    problems = shard_problems(folder, manifest, verify=True)
    if problems:
        warnings.warn(
            f"store: {folder}: " + "; ".join(problems.values()) + ": captured again", stacklevel=3
        )  # fmt: skip
        manifest = manifest.without(set(problems))
        _record(folder, manifest)
    return manifest


def _disk_full(folder: Path, what: str, finished: Manifest, err: OSError) -> DiskFullError:
    """The one line a full disk gives; ``finished``: the manifest on disk (what the store keeps)."""
    return DiskFullError(
        err.errno,
        f"disk full while writing {what} of the store {folder}; it keeps its {len(finished.shards)} finished "
        f"shard(s) of {finished.n_shards}: free some space and rerun the same command to continue",
    )


def _record(folder: Path, manifest: Manifest, shard_file: str | None = None, before: Manifest | None = None) -> None:
    """Write the manifest; when that fails, remove the shard it would have listed (``before`` stays on disk)."""
    try:
        manifest.write(folder)
    except OSError as err:
        if shard_file is not None:
            (folder / shard_file).unlink(missing_ok=True)
        if err.errno in _DISK_FULL:
            raise _disk_full(folder, MANIFEST, before or manifest, err) from None
        raise


def _as_hooks(result: Mapping[str, torch.Tensor] | torch.Tensor, hooks: tuple[str, ...], shape: tuple) -> dict:
    """The engine's result checked: one tensor per hook, ``shape``."""
    if isinstance(result, torch.Tensor) and len(hooks) == 1:
        result = {hooks[0]: result}
    if not isinstance(result, Mapping) or set(result) != set(hooks):
        got = sorted(result) if isinstance(result, Mapping) else type(result).__name__
        raise ValueError(f"capture: the engine returned {got}; expected one tensor per hook {list(hooks)}")
    for h in hooks:
        if tuple(result[h].shape) != shape:
            raise ValueError(f"capture: the engine's {h} has shape {tuple(result[h].shape)}; expected {shape}")
    return {h: result[h] for h in hooks}


def capture_to(
    store: str | Path,
    model,
    prompts: Sequence[Prompt | str] | PromptSpec,
    layers: Sequence[int] | None = None,
    hooks: Sequence[str] | str = ("resid_post",),
    positions: Sequence[int] | int | None = None,
    *,
    labels: Sequence[str] | None = None,
    shard_size: int = SHARD_SIZE,
    dtype: str = "float32",
    batch_size: int = 32,
    capture: Capture | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ActivationStore:
    """Capture ``hooks`` at ``layers`` and ``positions`` of every prompt into the store folder ``store``; resume it
    when it exists (same arguments), refuse it when it was captured otherwise (naming the fields that differ).

    Args:
        store: the folder (created; a new folder, an empty one, or a store of this configuration).
        model: the model (its id and weights' SHA-256 go into the manifest; its width and layers are checked).
        prompts: :class:`~interp.prompts.Prompt` objects or texts, or a :class:`~interp.prompts.PromptSpec` whose
            prompts are built one shard at a time (memory then stays flat however many prompts).
        layers: default all; hooks: ``resid_pre`` / ``resid_mid`` / ``resid_post`` (several: one forward pass).
        positions: ``None`` (each prompt's last token), one int for every prompt, or one per prompt (unpadded
            token coordinates, negatives from the end; see :func:`interp.capture.capture_resid`).
        labels: one name per prompt (e.g. its group), stored with each row; ``source(label=...)`` reads one group.
        shard_size: prompts per shard; dtype: storage dtype, ``float32``, ``bfloat16`` or ``float16``.
        batch_size: sequences per forward pass of the default engine.
        capture: another engine (see :class:`Capture`); default :class:`HookCapture` on ``model``.
        progress: called as ``progress(finished_shards, n_shards)`` after each shard.

    Returns the :class:`~interp.store.reader.ActivationStore`. Raises :class:`DiskFullError` when the disk fills.

    Gotcha: each shard's prompts are batched among themselves, not with the whole list as one
    :func:`~interp.capture.capture_resid` call batches them. With right padding (the default) every row is computed
    alone, and the store holds the in-memory capture bit for bit (tested on the embedded and a seeded model); a
    model whose kernels round differently for other batch shapes would differ by float round-off only. Reopening a
    store hashes every finished shard (about 1 s per GB) and, for a model loaded from a directory, its weights.
    """
    prompts, layers, hooks, positions, labels = _check_args(
        store, model, prompts, layers, hooks, positions, labels, shard_size, dtype, batch_size, capture, progress
    )
    engine = capture or HookCapture(model, layers, hooks, batch_size=batch_size)
    kw = dict(layers=layers, hooks=hooks, positions=positions, labels=labels, shard_size=shard_size, dtype=dtype)
    config = store_config(model, prompts, **kw, engine=dict(engine.config))
    folder = Path(store)
    folder.mkdir(parents=True, exist_ok=True)
    lock = _FolderLock(folder)
    try:
        manifest = _open_for_writing(folder, config)
        done = {s.index for s in manifest.shards}
        label_index = {name: i for i, name in enumerate(config["labels"] or ())}
        n, storage = len(prompts), getattr(torch, dtype)
        for index in range(manifest.n_shards):
            if index in done:
                continue
            lo, hi = index * shard_size, min(n, (index + 1) * shard_size)
            chunk = prompts.build(lo, hi) if isinstance(prompts, PromptSpec) else prompts[lo:hi]
            pos = positions[lo:hi] if isinstance(positions, list) else positions
            pos = [pos] * (hi - lo) if isinstance(pos, int) else pos
            acts = _as_hooks(engine(chunk, pos), hooks, (len(layers), hi - lo, config["d_model"]))
            acts = {h: t.detach().to("cpu", storage) for h, t in acts.items()}
            lab = None if labels is None else torch.tensor([label_index[x] for x in labels[lo:hi]])
            try:
                record = write_shard(folder, index, lo, acts, torch.arange(lo, hi), lab)
            except OSError as err:
                if err.errno in _DISK_FULL:
                    raise _disk_full(folder, f"shard {index}", manifest, err) from None
                raise
            before, manifest = manifest, manifest.with_shard(record)
            _record(folder, manifest, record.file, before)
            if progress is not None:
                progress(len(manifest.shards), manifest.n_shards)
    finally:
        lock.release()
    return ActivationStore(folder, manifest)
