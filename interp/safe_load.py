"""Reading files someone else made (a run folder, a model folder) without ever running code from them.

Every loader in the toolkit goes through here (``tests/unit/test_safe_load.py`` reads the source and fails on a
``torch.load`` elsewhere or a ``from_pretrained`` without ``trust_remote_code=False``):

- :func:`load_torch_file`: ``torch.load`` with ``weights_only=True`` (tensors, numbers, strings, lists, dicts); a
  file that needs anything else is refused in one line naming the file, never with advice to turn the check off.
- :func:`refuse_custom_code`: a model folder whose ``config.json`` (or tokenizer, generation or processor config)
  asks for code of its own (``auto_map``, ``custom_pipelines``, or a ``model_type`` transformers does not know) is
  refused before transformers reads it, naming the folder and the field; nothing prompts.
- :data:`NO_REMOTE_CODE`: the keyword arguments of every ``from_pretrained`` call (local files, no custom code).

>>> NO_REMOTE_CODE
{'trust_remote_code': False, 'local_files_only': True}
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

#: Passed to every Hugging Face ``from_pretrained``: no code from the folder, nothing from the network.
NO_REMOTE_CODE: dict[str, bool] = {"trust_remote_code": False, "local_files_only": True}
#: The JSON files of a Hugging Face folder that transformers reads and that can name code of the folder's own.
CONFIG_FILES = (
    "config.json",
    "tokenizer_config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "processor_config.json",
)
#: Fields by which such a file asks transformers to import Python files (its own ``*.py``, or a hub repo's).
CODE_FIELDS = ("auto_map", "custom_pipelines")


class UnsafeFileError(ValueError):
    """A file that could only be read by running code from it (refused; the message names the file)."""


def load_torch_file(path: str | Path, *, map_location: Any = "cpu", mmap: bool = False, fix: str = "") -> Any:
    """``torch.load(path, weights_only=True)``: tensors, numbers, strings, lists and dicts only, no code run.

    A file that holds anything else (a pickled object whose loading would call a function) raises
    :class:`UnsafeFileError` in one line naming the file and the object, followed by ``fix`` (what to do instead).
    A file that is not a torch file at all (truncated, empty, garbage) raises :class:`UnsafeFileError` too.

    >>> load_torch_file("/no/such/state.pt")
    Traceback (most recent call last):
    FileNotFoundError: [Errno 2] No such file or directory: '/no/such/state.pt'
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found:  # a pickle naming a function or class: what a file that runs code needs
            raise UnsafeFileError(
                f"{path}: holds an object ({found.group(1)}), which only a pickle that runs code could restore; it is "
                f"not read{'; ' + fix if fix else ''}"
            ) from None
        raise UnsafeFileError(
            f"{path}: not a readable torch file (not a pickle of tensors); it is truncated or damaged"
            f"{'; ' + fix if fix else ''}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError, TypeError) as err:
        reason = " ".join(str(err).split()).split(". ")[0][:160] or type(err).__name__
        raise UnsafeFileError(
            f"{path}: not a readable torch file ({reason}); it is truncated or damaged{'; ' + fix if fix else ''}"
        ) from None


def refuse_custom_code(folder: str | Path, *, known_types: bool = True) -> None:
    """``UnsafeFileError`` when ``folder`` asks transformers to run code of its own; nothing is imported or run.

    Checks the JSON files transformers reads (:data:`CONFIG_FILES`) for :data:`CODE_FIELDS`, and, with
    ``known_types``, that ``config.json``'s ``model_type`` is one transformers itself implements (an unknown one is
    how a folder points at its own modelling code). Unreadable JSON is left to the caller's own checks.

    >>> import tempfile, json, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "config.json").write_text(json.dumps({"auto_map": {}}))
    >>> refuse_custom_code(d)                                     # doctest: +ELLIPSIS
    Traceback (most recent call last):
    interp.safe_load.UnsafeFileError: ...config.json asks to run code of its own (auto_map); ...
    """
    folder = Path(folder)
    for name in CONFIG_FILES:
        data = _json_object(folder / name)
        fields = [f for f in CODE_FIELDS if f in data]
        if fields:
            raise UnsafeFileError(
                f"{folder / name} asks to run code of its own ({', '.join(fields)}); the toolkit never runs code "
                f"from a model folder: remove the field{'s' if len(fields) > 1 else ''} if the model is one "
                "transformers implements, or use another model"
            )
    model_type = _json_object(folder / "config.json").get("model_type")
    if known_types and model_type is not None and model_type not in known_model_types():
        raise UnsafeFileError(
            f"{folder / 'config.json'}: model_type {model_type!r} is not one transformers implements, so loading "
            "it would need code of the folder's own, which the toolkit never runs; use a model of a supported "
            "architecture (README: Your own model)"
        )


def known_model_types() -> frozenset[str]:
    """The ``model_type`` values the installed transformers implements itself (no code from a folder)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return frozenset(CONFIG_MAPPING_NAMES)


def _json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}
