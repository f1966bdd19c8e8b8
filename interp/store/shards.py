"""Shard files: safetensors written beside their final name and renamed into place; read back memory-mapped.

A shard holds prompts ``start .. stop - 1`` of a store: one ``Float[Tensor, "layer prompt d_model"]`` per hook point
(named by the hook, in the store's dtype), ``prompt_index`` (``Int64[Tensor, "prompt"]``, the prompts' indices) and,
when the store has labels, ``label`` (``Int32[Tensor, "prompt"]``, an index into the manifest's label names). Its
safetensors metadata holds one JSON string (``{"index", "start", "stop"}``): the file's bytes depend on its
contents only.

Writing (:func:`write_shard`): ``.shard-NNNNNN.safetensors.XXXX.tmp`` in the store's folder, flushed to the disk
(``fsync``), renamed to ``shard-NNNNNN.safetensors``, the folder synced; an error (a full disk) removes the
temporary file. Reading (:func:`map_shard`): the header is parsed and every tensor is a view of the file mapped
copy-on-write (``numpy.memmap`` mode ``"c"``): nothing is read until used, and pages are dropped once the views go.

>>> import tempfile, torch
>>> folder = Path(tempfile.mkdtemp())
>>> rec = write_shard(folder, 0, 0, {"resid_post": torch.ones(2, 3, 4)}, torch.arange(3))
>>> rec.file, rec.rows, map_shard(folder / rec.file)["resid_post"].shape
('shard-000000.safetensors', 3, torch.Size([2, 3, 4]))
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from interp.export import atomic_path
from interp.store.manifest import ShardRecord, StoreError

SHARD_GLOB = "shard-*.safetensors"
#: Temporary files a killed writer may leave: removed when the store is opened for writing. ``.tmpXXXXXX``: the file
#: safetensors' ``save_file`` (Rust, the ``tempfile`` crate) writes before renaming it to our temporary name (a
#: SIGKILL test found one left behind).
TEMP_GLOBS = (".shard-*.safetensors.*.tmp", ".manifest.json.*.tmp", ".tmp??????")
_NUMPY = {"F32": np.float32, "F16": np.float16, "BF16": np.int16, "I64": np.int64, "I32": np.int32}
_TORCH = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32}


def shard_name(index: int) -> str:
    """``shard-000012.safetensors`` for shard 12."""
    return f"shard-{index:06d}.safetensors"


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write ``tensors`` to ``path`` (the one place a shard's bytes are written: tests replace it to fill the disk)."""
    save_file(tensors, str(path), metadata=metadata)


def file_sha256(path: str | Path, block: int = 1 << 22) -> str:
    """SHA-256 of a file, read in blocks of 4 MiB."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_shard(
    folder: str | Path,
    index: int,
    start: int,
    acts: dict[str, torch.Tensor],
    prompt_index: torch.Tensor,
    labels: torch.Tensor | None = None,
) -> ShardRecord:
    """Write shard ``index`` (prompts ``start ..``): beside, synced, renamed into place; its :class:`ShardRecord`."""
    folder = Path(folder)
    rows = len(prompt_index)
    tensors = {hook: t.contiguous() for hook, t in acts.items()}
    tensors["prompt_index"] = prompt_index.to(torch.int64).contiguous()
    if labels is not None:
        tensors["label"] = labels.to(torch.int32).contiguous()
    meta = {"interp": json.dumps({"index": index, "start": start, "stop": start + rows}, sort_keys=True)}
    path = folder / shard_name(index)
    with atomic_path(path) as tmp:
        save_tensors(tensors, tmp, meta)
        _fsync(tmp)
        digest, size = file_sha256(tmp), tmp.stat().st_size
    _fsync(folder, directory=True)
    return ShardRecord(index, path.name, start, start + rows, size, digest)


def read_header(path: str | Path) -> tuple[int, dict]:
    """``(data offset, header)`` of a safetensors file (:class:`StoreError` naming it when it is not one)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            (n,) = struct.unpack("<Q", head) if len(head) == 8 else (None,)
            if n is None or n > path.stat().st_size - 8:
                raise ValueError("truncated header")
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError, struct.error) as err:
        raise StoreError(f"store: shard {path.name} is corrupt: not a safetensors file ({err})") from None
    return 8 + n, header


def map_shard(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a shard as a view of the file mapped copy-on-write (read lazily, never written back)."""
    path = Path(path)
    offset, header = read_header(path)
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        begin, end = spec["data_offsets"]
        shape = tuple(spec["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if count == 0:
            out[name] = torch.empty(shape, dtype=_TORCH[spec["dtype"]])
            continue
        try:
            array = np.memmap(path, dtype=_NUMPY[spec["dtype"]], mode="c", offset=offset + begin, shape=(count,))
        except (OSError, ValueError, KeyError) as err:
            raise StoreError(f"store: shard {path.name} is corrupt: tensor {name} cannot be mapped ({err})") from None
        if array.nbytes != end - begin:
            raise StoreError(f"store: shard {path.name} is corrupt: tensor {name} has the wrong size")
        tensor = torch.from_numpy(array)
        out[name] = (tensor.view(torch.bfloat16) if spec["dtype"] == "BF16" else tensor).view(shape)
    return out


def shard_metadata(path: str | Path) -> dict:
    """The ``{"index", "start", "stop"}`` a shard records about itself."""
    _, header = read_header(path)
    return json.loads(header.get("__metadata__", {}).get("interp", "{}"))
