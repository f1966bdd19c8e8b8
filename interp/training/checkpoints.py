"""Checkpoint I/O: standard HF GPT-2 directories (weights only, optionally half precision) and resumable state.

Every write is atomic: a directory is assembled beside its final name and renamed into place, a file goes
through :func:`interp.export.atomic_path`. A run cut short at any moment leaves complete checkpoints only.

>>> save_checkpoint(hf_model, tok, "runs/x/checkpoints/step000100", {"step": 100}, dtype="float16")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from interp.export import atomic_path, write_json
from interp.safe_load import UnsafeFileError, load_torch_file


def save_checkpoint(hf_model, tokenizer, path: str | Path, meta: dict[str, Any], *, dtype: str = "float32") -> Path:
    """Write an HF GPT-2 directory (weights in ``dtype``, tokenizer, ``training.json`` = ``meta``) atomically.

    :func:`interp.models.load_model` reads it back as float32 whatever ``dtype`` was on disk.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        state = None
        if dtype != "float32":
            state = {k: v.detach().to(getattr(torch, dtype)) for k, v in hf_model.state_dict().items()}
        _quiet_save(hf_model, tmp, state)
        tokenizer.save_pretrained(tmp)
        (tmp / "training.json").write_text(json.dumps(meta, indent=2))
        for file in tmp.iterdir():  # safetensors writes its file 0600: every file gets the usual 0666 & ~umask
            os.chmod(file, 0o666 & ~_umask())
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


def _quiet_save(hf_model, folder: Path, state: dict | None) -> None:
    """``save_pretrained`` without its "Writing model shards" progress bar."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        hf_model.save_pretrained(folder, safe_serialization=True, state_dict=state)
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_state(path: str | Path, model, opt, log: dict, step: int) -> None:
    """Everything a resumed run needs (model, optimizer, log, next step), written atomically.

    Tensors, numbers, strings, lists and dicts only: :func:`load_state` reads it with ``weights_only=True``.
    """
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "log": log, "step": step}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: str | Path, model, opt, device: str, config: dict[str, Any] | None = None) -> tuple[dict, int]:
    """Restore ``model`` and ``opt`` from :func:`save_state`'s file; returns ``(log, step)``.

    A state of another model (the run directory was made with a different config) is refused with one line naming
    the config fields that differ (``config``: the new run's), not PyTorch's size-mismatch listing. The file is read
    with ``weights_only=True`` (:func:`interp.safe_load.load_torch_file`): a ``state.pt`` that holds anything but
    tensors, numbers, strings, lists and dicts is refused, and no code in it runs.
    """
    fix = "use --no-resume to start over there, or another --out"
    try:
        state = load_torch_file(path, map_location=device, fix=fix)
    except UnsafeFileError as err:
        raise UnsafeFileError(f"out: {err}") from None
    if not isinstance(state, dict) or not {"model", "opt", "log", "step"} <= set(state):
        raise ValueError(f"out: {path} is not a training state of `interp train` (model, opt, log, step); {fix}")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        old = state.get("log", {}).get("config", {})
        diffs = [f"{k} {old.get(k)!r} vs {v!r}" for k, v in (config or {}).items() if old.get(k) != v]
        raise ValueError(
            f"out: {Path(path).parent} holds a run of a different model ({'; '.join(diffs[:6]) or 'its weights differ'}"
            f"); {fix}"
        ) from None
    opt.load_state_dict(state["opt"])
    return state["log"], state["step"]


#: What a run writes in its folder (``interp train --out``): these folders, and these files.
RUN_FOLDERS, RUN_FILES = ("checkpoints", "final"), ("state.pt", "log.json")


def check_run_folder(out: str | Path) -> None:
    """``ValueError`` naming the path when something in ``out`` stands where a run writes (a file where its folder
    goes, or a folder where its file goes): checked before the model is built, not when the first checkpoint is due.

    >>> import tempfile; check_run_folder(tempfile.mkdtemp())
    """
    out = Path(out)
    for name in RUN_FOLDERS:
        path = out / name
        if (path.exists() or path.is_symlink()) and not path.is_dir():
            raise ValueError(
                f"out: {path} is a file, not a folder; a run writes its {name} there: move it or use another --out"
            )
    for name in RUN_FILES:
        if (out / name).is_dir():
            raise ValueError(
                f"out: {out / name} is a folder; a run writes its {name} file there: move it or use another --out"
            )


def write_log(out: Path, log: dict) -> None:
    """The run's ``log.json`` (atomic)."""
    write_json(out / "log.json", log)
