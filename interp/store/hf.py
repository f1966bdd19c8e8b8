"""A store as a Hugging Face ``datasets`` folder (Arrow), for users who want one.

One row per stored prompt: ``prompt_index`` (int64), ``label`` (string; stores with labels only) and one column per
hook, an ``Array2D`` of shape ``(layer, d_model)``. float32 and float16 stores keep their dtype; bfloat16, which
Arrow lacks, is written as float32 (exactly: every bfloat16 is a float32). Rows stream from the shards into the
dataset's Arrow files (the store is never loaded whole); the folder is written beside and renamed into place.

>>> import datasets                                                   # doctest: +SKIP
>>> ds = datasets.load_from_disk(str(export_hf(store, "runs/add2-arrow")))   # doctest: +SKIP
>>> ds.with_format("torch")[0]["resid_post"].shape                    # doctest: +SKIP
torch.Size([4, 128])
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from interp.store.reader import ActivationStore

ARROW_DTYPE = {"float32": "float32", "float16": "float16", "bfloat16": "float32"}


def _rows(folder: str, hooks: tuple[str, ...], labels: tuple[str, ...] | None):
    """The store's rows one by one (a module-level generator: ``datasets`` fingerprints it)."""
    store = ActivationStore.open(folder, verify=False)
    for tensors in store.shard_tensors():
        acts = {h: tensors[h].to(torch.float32 if store.config["dtype"] == "bfloat16" else store.dtype) for h in hooks}
        for i, index in enumerate(tensors["prompt_index"].tolist()):
            row = {"prompt_index": index} | {h: acts[h][:, i].numpy() for h in hooks}
            if labels is not None:
                row["label"] = labels[int(tensors["label"][i])]
            yield row


def export_hf(store: ActivationStore, path: str | Path, *, hooks: Sequence[str] | None = None) -> Path:
    """Write ``store`` (an :class:`~interp.store.reader.ActivationStore`, complete) to ``path`` as a ``datasets``
    folder (``datasets.load_from_disk`` reads it); ``hooks`` default all. ``path`` must not exist yet."""
    import datasets

    path = Path(path)
    if path.exists():
        raise ValueError(f"path: {path} exists; give a new folder for the dataset")
    hooks = list(store.hooks if hooks is None else hooks)
    for h in hooks:
        store._check_hook(h)
    store._shards(partial=False)
    shape = (len(store.layers), store.d_model)
    features = {"prompt_index": datasets.Value("int64")}
    features |= {h: datasets.Array2D(shape=shape, dtype=ARROW_DTYPE[store.config["dtype"]]) for h in hooks}
    labels = store.label_names
    if labels is not None:
        features["label"] = datasets.Value("string")
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    bars_were_on = datasets.utils.logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        ds = datasets.Dataset.from_generator(
            _rows,
            features=datasets.Features(features),
            # tuples, not lists: ``datasets`` splits list arguments into one generator run per element
            gen_kwargs={"folder": str(store.folder), "hooks": tuple(hooks), "labels": labels},
            cache_dir=str(work / "cache"),
        )
        ds.save_to_disk(str(work / "dataset"))
        del ds
        os.replace(work / "dataset", path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if bars_were_on:
            datasets.enable_progress_bars()
    return path
