"""A capture into a store by a synthetic engine, run as a child process by tests/acceptance/test_store_resume.py.

    python tests/capture_child.py FOLDER N_PROMPTS SHARD_SIZE

No model is loaded (the child starts in the time torch takes to import): the "model" is a stand-in with a config and
weights to hash, and the engine derives each prompt's activations from its text (a generator seeded by the text's
SHA-256), so every run gives the same numbers. Shards are a few MB, so that writing them (bytes, fsync, SHA-256,
rename, manifest) is much of the run and random kills land in every step. Prints ``capturing`` once the imports are
done, then captures; a rerun continues the store.
"""

from __future__ import annotations

import hashlib
import sys
from types import SimpleNamespace

import torch

from interp.store.writer import capture_to

LAYERS, WIDTH = 2, 1024


class StandIn:
    """What ``capture_to`` reads of a model: ``cfg`` and ``state_dict()``."""

    cfg = SimpleNamespace(n_layers=LAYERS, d_model=WIDTH, dtype=torch.float32, model_name="synthetic")

    def state_dict(self):
        return {"w": torch.arange(8, dtype=torch.float32)}

    def __call__(self, *args, **kwargs):  # a model is callable; this one is never run (TextEngine captures)
        raise AssertionError("the stand-in model was run")


class TextEngine:
    config = {"engine": "tests/capture_child.py"}

    def __call__(self, prompts, positions):
        rows = []
        for text in prompts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            rows.append(torch.randn(LAYERS, WIDTH, generator=torch.Generator().manual_seed(seed)))
        return {"resid_post": torch.stack(rows, dim=1)}


def main(folder: str, n_prompts: int, shard_size: int) -> None:
    texts = [f"prompt {i}" for i in range(n_prompts)]
    print("capturing", flush=True)
    capture_to(folder, StandIn(), texts, capture=TextEngine(), shard_size=shard_size)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
