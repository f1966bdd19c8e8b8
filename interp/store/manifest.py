"""A store's manifest: what was captured (the configuration, compared field by field) and which shards are finished.

``manifest.json`` holds three things:

- ``config``: everything that decides the numbers in the shards — the model (its id and a SHA-256 of its weights,
  weight processing, width), the prompts (their generator and seed, or a SHA-256 of their texts), the labels, hook
  points, layers, positions, storage dtype, shard size, the capture engine and its batching, the toolkit's version.
  A store reopened with another configuration is refused, naming each field that differs (:func:`differences`);
- ``environment``: torch's and TransformerLens's versions (recorded, not compared);
- ``shards``: one record per *finished* shard (file name, prompt range, bytes, SHA-256), in index order. A shard is
  listed only once it is renamed into place, so the manifest never names a half-written file.

The file is deterministic (no clock, no path, sorted keys): two runs of the same capture write the same bytes.

>>> cfg = {"model_id": "embedded", "dtype": "float32", "layers": [0, 1]}
>>> differences(cfg, cfg | {"dtype": "bfloat16", "layers": [0]})
['dtype (float32 in the store, bfloat16 asked for)', 'layers ([0, 1] in the store, [0] asked for)']
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from interp.export import atomic_write_bytes

FORMAT = "interp.ActivationStore/1"
MANIFEST = "manifest.json"
#: Storage dtypes a store accepts (the manifest records the one used).
DTYPES = ("float32", "bfloat16", "float16")


class StoreError(ValueError):
    """A store that cannot be used as asked: another configuration, a missing or corrupt shard, a broken manifest.
    The message names the store, the field or the shard, and what to do."""


@dataclass(frozen=True)
class ShardRecord:
    """One finished shard: ``file`` holds prompts ``start .. stop - 1``; ``sha256`` and ``bytes`` of the file."""

    index: int
    file: str
    start: int
    stop: int
    bytes: int
    sha256: str

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Manifest:
    """``config`` (compared on reopening), ``environment`` (recorded only) and the finished ``shards``."""

    config: dict[str, Any]
    environment: dict[str, Any] = field(default_factory=dict)
    shards: tuple[ShardRecord, ...] = ()

    @property
    def n_shards(self) -> int:
        """Shards a complete store holds: ``ceil(n_prompts / shard_size)``."""
        return -(-int(self.config["n_prompts"]) // int(self.config["shard_size"]))

    @property
    def complete(self) -> bool:
        return len(self.shards) == self.n_shards

    def with_shard(self, record: ShardRecord) -> Manifest:
        """This manifest with ``record`` listed (replacing a record of the same index)."""
        kept = [s for s in self.shards if s.index != record.index]
        return Manifest(self.config, self.environment, tuple(sorted([*kept, record], key=lambda s: s.index)))

    def without(self, indices: set[int]) -> Manifest:
        return Manifest(self.config, self.environment, tuple(s for s in self.shards if s.index not in indices))

    def to_json(self) -> str:
        body = {"format": FORMAT, "config": self.config, "environment": self.environment}
        body["shards"] = [asdict(s) for s in self.shards]
        return json.dumps(body, indent=1, sort_keys=True) + "\n"

    def write(self, folder: str | Path) -> Path:
        """Write ``folder/manifest.json`` atomically (beside, then renamed)."""
        return atomic_write_bytes(Path(folder) / MANIFEST, self.to_json().encode())

    @classmethod
    def read(cls, folder: str | Path) -> Manifest:
        """The manifest of the store in ``folder`` (:class:`StoreError` naming the file when it is not one)."""
        path = Path(folder) / MANIFEST
        try:
            body = json.loads(path.read_text())
        except FileNotFoundError:
            raise StoreError(f"store: {folder} holds no {MANIFEST}; it is not an activation store") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise StoreError(f"store: {path} is unreadable or not JSON ({err})") from None
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            found = body.get("format") if isinstance(body, dict) else type(body).__name__
            raise StoreError(f"store: {path} has format {found!r}; this version reads {FORMAT!r}")
        try:
            shards = tuple(ShardRecord(**s) for s in body["shards"])
            return cls(dict(body["config"]), dict(body.get("environment", {})), shards)
        except (KeyError, TypeError) as err:
            raise StoreError(f"store: {path} is not a complete manifest ({err})") from None


#: Fields derived from others (the prompts): compared through those, not named again.
DERIVED = ("provenance",)


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested fields as dotted names: ``{"prompts": {"seed": 0}}`` → ``{"prompts.seed": 0}``."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def differences(stored: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    """Each configuration field whose value differs (nested fields by dotted name), as ``'name (value in the store,
    value asked for)'``."""
    a_flat = _flat({k: v for k, v in stored.items() if k not in DERIVED})
    b_flat = _flat({k: v for k, v in asked.items() if k not in DERIVED})
    out = []
    for key in sorted(set(a_flat) | set(b_flat)):
        a, b = a_flat.get(key, "absent"), b_flat.get(key, "absent")
        if a != b:
            out.append(f"{key} ({_short(a)} in the store, {_short(b)} asked for)")
    if not out and stored != asked:  # only a derived field differs
        out = [f"{k} (derived from the prompts)" for k in DERIVED if stored.get(k) != asked.get(k)]
    return out


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_same_config(folder: str | Path, stored: dict[str, Any], asked: dict[str, Any]) -> None:
    """:class:`StoreError` naming every field that differs between the store's configuration and the one asked for."""
    diffs = differences(stored, asked)
    if diffs:
        raise StoreError(
            f"store: {folder} was captured with another configuration; it differs in " + "; ".join(diffs)
            + ". Use another folder, or the store's own settings to resume it"
        )  # fmt: skip
