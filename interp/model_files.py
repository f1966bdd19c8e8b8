"""A model folder's files, checked where transformers would fail obscurely: each fault is one line naming the file.

- :func:`check_weight_files`, before the weights are read: every ``*.safetensors`` file (the single one, or each shard
  its index names) has a whole header and is as long as that header says; every ``pytorch_model*.bin`` is a torch
  file that loads with ``weights_only=True`` (:func:`interp.safe_load.load_torch_file`: no code in it runs).
- :func:`check_loading_info`, right after: ``config.json``'s sizes match the weights (no tensor missing, left over
  or of another shape; transformers would otherwise fill the gaps with random numbers, or raise a page of text).
- :func:`read_trained_examples`: ``training.json`` (written by ``interp train``) is JSON whose ``config.n_examples``
  maps families to positive integers.

>>> from interp.models import embedded_model_dir
>>> [p.name for p in weight_files(embedded_model_dir())]
['model.safetensors']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from interp.safe_load import UnsafeFileError, load_torch_file

#: What a user can do about damaged weights (never: turn a safety check off).
FETCH_AGAIN = "copy or download the model again"


class ModelFolderError(ValueError):
    """A model folder whose files cannot make the model it describes (the message names the file and the fault)."""


def weight_files(folder: str | Path) -> list[Path]:
    """The weight files transformers would read from ``folder``: ``model.safetensors``, the shards a
    ``model.safetensors.index.json`` names, ``pytorch_model.bin`` or the shards its index names (first found)."""
    folder = Path(folder)
    for single, index in (
        ("model.safetensors", "model.safetensors.index.json"),
        ("pytorch_model.bin", "pytorch_model.bin.index.json"),
    ):
        if (folder / single).is_file():
            return [folder / single]
        if (folder / index).is_file():
            return [folder / name for name in _shards(folder / index)]
    return []


def _shards(index: Path) -> list[str]:
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        names = sorted({str(v) for v in weight_map.values()})
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ModelFolderError(
            f"{index}: not a weight index (JSON with a weight_map of tensor → file; {type(err).__name__}); "
            f"{FETCH_AGAIN}"
        ) from None
    if not names:
        raise ModelFolderError(f"{index}: its weight_map names no file; {FETCH_AGAIN}")
    return names


def check_weight_files(folder: str | Path) -> None:
    """``ModelFolderError`` (or :class:`interp.safe_load.UnsafeFileError`) naming the first weight file of
    ``folder`` that is missing, truncated, empty, not a safetensors/torch file, or a pickle that would run code.

    Reads headers only (safetensors) or maps the file (torch ``.bin``); the weights are read later, once.
    """
    for path in weight_files(folder):
        if not path.is_file():
            raise ModelFolderError(f"{path}: missing (its index names it); {FETCH_AGAIN}")
        if path.stat().st_size == 0:
            raise ModelFolderError(f"{path}: empty file; {FETCH_AGAIN}")
        if path.suffix == ".safetensors":
            _check_safetensors(path)
        else:
            _check_torch_bin(path)


def _check_safetensors(path: Path) -> None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except (SafetensorError, OSError, ValueError) as err:
        reason = " ".join(str(err).split()).removeprefix("Error while deserializing header: ")
        raise ModelFolderError(
            f"{path}: not a whole safetensors file ({reason}); it is truncated or damaged: {FETCH_AGAIN}"
        ) from None


def _check_torch_bin(path: Path) -> None:
    fix = "the toolkit reads weights only as tensors: use a model.safetensors copy of this model, or copy it again"
    try:
        load_torch_file(path, mmap=True, fix=fix)
    except UnsafeFileError as err:
        if "mmap" not in str(err):
            raise
        load_torch_file(path, fix=fix)  # a torch file of the old (non-zip) format cannot be mapped: read it


def check_loading_info(folder: str | Path, info: dict[str, Any]) -> None:
    """``ModelFolderError`` when transformers' loading info (``output_loading_info=True``) shows that ``config.json``
    does not describe the weights: tensors of another shape, tensors the weights lack, or weights left over."""
    folder = Path(folder)
    files = ", ".join(p.name for p in weight_files(folder)) or "the weights"
    mismatched = sorted(info.get("mismatched_keys") or (), key=lambda m: str(m[0]))
    if mismatched:
        name, in_file, in_config = mismatched[0]
        raise ModelFolderError(
            f"{folder / 'config.json'}: its sizes do not match {files}: {len(mismatched)} tensor(s) differ, e.g. "
            f"{name} is {list(in_file)} in the weights but {list(in_config)} by config.json; use the config.json "
            "that came with these weights"
        )
    for key, words in (("missing_keys", "has no weights for"), ("unexpected_keys", "has no place for")):
        names = sorted(info.get(key) or ())
        if names:
            raise ModelFolderError(
                f"{folder / 'config.json'}: does not match {files}: the model it describes {words} {len(names)} "
                f"tensor(s) (e.g. {names[0]}); use the config.json that came with these weights"
            )


def read_trained_examples(folder: str | Path) -> dict[str, int] | None:
    """Examples per training prompt by family from ``training.json`` (``None`` when the folder has none, or the
    file records none); a file that is not JSON, or holds a bad value, raises ``ModelFolderError`` naming it."""
    path = Path(folder) / "training.json"
    if not path.is_file():
        return None
    fix = "restore it from `interp train`'s run folder, or delete it (the model then loads without its training record)"
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise ModelFolderError(f"{path}: cannot be read ({getattr(err, 'strerror', None) or err}); {fix}") from None
    except json.JSONDecodeError as err:
        raise ModelFolderError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno}); {fix}"
        ) from None
    except RecursionError:
        raise ModelFolderError(f"{path}: nested too deeply to be a training record; {fix}") from None
    config = data.get("config", {}) if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise ModelFolderError(f"{path}: expected a JSON object with a config object (written by interp train); {fix}")
    n_examples = config.get("n_examples")
    if n_examples is None:
        return None
    good = isinstance(n_examples, dict) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in n_examples.values()
    )
    if not good:
        raise ModelFolderError(
            f"{path}: config.n_examples must map each family to a positive integer, got "
            f"{json.dumps(n_examples)[:80]}; {fix}"
        )
    return {str(k): int(v) for k, v in n_examples.items()}
