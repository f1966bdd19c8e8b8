"""The activation store: shards and manifest, resuming after a failure at every write step, a full disk, corrupt and
missing shards, other configurations refused, storage dtypes, and results from a store equal to the in-memory ones."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import interp.store.shards as shards
from interp.capture import capture_hooks, capture_resid
from interp.decomposition import decompose, project_2d
from interp.heldout import held_out_seed
from interp.nulls import projection_null, residual_noise_floor
from interp.prompts import PromptSpec, build_prompts, mixture_groups
from interp.store import ActivationStore, DiskFullError, StoreError, capture_to, export_hf
from interp.store.manifest import Manifest
from interp.streaming import project_2d_streaming
from interp.vectors import vector_from_prompts

N, SHARD = 23, 5  # five shards, the last one short


def store_files(folder: Path) -> dict[str, bytes]:
    """Every file of a store folder by name, with its bytes (what "equal bit for bit" compares)."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


@pytest.fixture(scope="module")
def prompts():
    return build_prompts("bias_add", ["add2", "add5"], n_examples=4, n_prompts=N, seed=0)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_char_model, prompts):
    """An uninterrupted capture (two hooks, both layers) and its files."""
    folder = tmp_path_factory.mktemp("reference") / "store"
    capture_to(folder, tiny_char_model, prompts, hooks=["resid_mid", "resid_post"], shard_size=SHARD)
    return folder, store_files(folder)


def capture(folder, model, prompts, **kw):
    return capture_to(folder, model, prompts, hooks=["resid_mid", "resid_post"], shard_size=SHARD, **kw)


def test_a_store_holds_the_in_memory_capture_in_shards_and_a_manifest(reference, tiny_char_model, prompts):
    folder, files = reference
    assert sorted(files) == ["manifest.json"] + [f"shard-{i:06d}.safetensors" for i in range(5)]
    store = ActivationStore.open(folder)
    assert store.complete and len(store) == N and store.layers == (0, 1)
    whole = capture_hooks(tiny_char_model, prompts, hooks=["resid_mid", "resid_post"])
    for hook in ("resid_mid", "resid_post"):
        assert torch.equal(store.load(hook), whole[hook])  # each shard captured alone: the same bits
        assert [c.shape[1] for c in store.source(hook)] == [5, 5, 5, 5, 3]
    assert torch.equal(store.prompt_indices(), torch.arange(N))
    manifest = json.loads(files["manifest.json"])
    cfg = manifest["config"]
    assert cfg["model_id"] == "tiny-char" and len(cfg["weights_sha256"]) == 64 and cfg["dtype"] == "float32"
    assert cfg["hooks"] == ["resid_mid", "resid_post"] and cfg["positions"] == "last_token"
    assert cfg["prompts"]["generator"] == "given" and cfg["interp_version"]
    assert [s["sha256"] for s in manifest["shards"]] == [shards.file_sha256(folder / f) for f in sorted(files)[1:]]


def test_a_prompt_spec_builds_one_shard_at_a_time_and_gives_the_same_store(tmp_path, tiny_char_model):
    spec = PromptSpec("bias_add", ("add2", "add5"), n_examples=4, n_prompts=12, seed=1)
    built = []
    real_build = PromptSpec.build

    def build(self, start=0, stop=None):
        built.append((start, stop))
        return real_build(self, start, stop)

    PromptSpec.build = build
    try:
        from_spec = capture_to(tmp_path / "spec", tiny_char_model, spec, shard_size=5)
    finally:
        PromptSpec.build = real_build
    assert (0, 5) in built and (10, 12) in built and (0, 12) not in built  # never all the prompts at once
    listed = capture_to(tmp_path / "list", tiny_char_model, spec.build(), shard_size=5)
    assert torch.equal(from_spec.load(), listed.load())
    assert from_spec.config["prompts"]["generator"] == "build_prompts" and from_spec.config["prompts"]["seed"] == 1


class Fault(Exception):
    """Raised by a test at one step of writing a shard."""


def _fail_once(monkeypatch, target, name, when):
    calls = {"n": 0}
    real = getattr(target, name)

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if when(calls["n"], args):
            raise Fault(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapped)


@pytest.mark.parametrize("step", ["shard bytes", "shard rename", "manifest bytes", "manifest rename"])
def test_a_failure_at_any_write_step_leaves_finished_shards_only_and_a_rerun_ends_bit_for_bit_equal(
    step, tmp_path, monkeypatch, reference, tiny_char_model, prompts
):
    """The deterministic twin of the SIGKILL test (tests/acceptance/test_store_resume.py): an exception at each I/O
    step of the third shard. The rerun continues, and the folder ends with the bytes of an uninterrupted run."""
    import interp.export as export
    import interp.store.manifest as manifest_module

    folder = tmp_path / "store"
    is_shard = lambda args: ".shard-000002" in str(args[0])  # noqa: E731
    if step == "shard bytes":
        _fail_once(monkeypatch, shards, "save_tensors", lambda n, args: ".shard-000002" in str(args[1]))
    elif step == "shard rename":
        _fail_once(monkeypatch, export.os, "replace", lambda n, args: is_shard(args))
    elif step == "manifest bytes":  # the manifest listing shard 2 is never written
        _fail_once(monkeypatch, manifest_module, "atomic_write_bytes", lambda n, args: n == 4)
    else:
        _fail_once(monkeypatch, export.os, "replace", lambda n, args: ".manifest.json" in str(args[0]) and n > 6)
    with pytest.raises(Fault):
        capture(folder, tiny_char_model, prompts)
    monkeypatch.undo()
    listed = Manifest.read(folder).shards
    assert [s.index for s in listed] == [0, 1]  # the manifest lists finished shards only
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(StoreError, match="2 of 5 shards"):
        ActivationStore.open(folder).source("resid_post")
    capture(folder, tiny_char_model, prompts)
    assert store_files(folder) == reference[1]


def test_what_a_killed_writer_leaves_is_removed_by_the_rerun(tmp_path, reference, tiny_char_model, prompts):
    folder = tmp_path / "store"
    with pytest.raises(Fault):
        capture(folder, tiny_char_model, prompts, progress=lambda done, n: _raise(Fault) if done == 2 else None)
    left = [".shard-000002.safetensors.abc.tmp", ".manifest.json.xyz.tmp", ".tmpA1b2C3", "shard-000003.safetensors"]
    for name in left:  # a temporary shard, manifest and safetensors file, and a renamed shard never listed
        (folder / name).write_bytes(b"half")
    (folder / ".interp-write-probe.q1w2e3").mkdir()
    capture(folder, tiny_char_model, prompts)
    assert store_files(folder) == reference[1]


def _raise(exc: type[Exception]):
    raise exc()


def test_a_rerun_of_a_finished_store_changes_nothing(tmp_path, reference, tiny_char_model, prompts):
    folder = tmp_path / "store"
    capture(folder, tiny_char_model, prompts)
    calls = []
    store = capture(folder, tiny_char_model, prompts, progress=lambda *a: calls.append(a))
    assert calls == [] and store.complete and store_files(folder) == reference[1]


def test_a_full_disk_stops_with_one_line_and_the_store_resumes(tmp_path, monkeypatch, reference, tiny_char_model,
                                                               prompts):  # fmt: skip
    folder = tmp_path / "store"

    def full(tensors, path, metadata):  # half a shard reaches the disk, then it is full
        if ".shard-000003" in str(path):
            Path(path).write_bytes(b"\0" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tensors, path, metadata)

    real = shards.save_tensors
    monkeypatch.setattr(shards, "save_tensors", full)
    with pytest.raises(DiskFullError) as err:
        capture(folder, tiny_char_model, prompts)
    message = str(err.value)
    assert "\n" not in message and "disk full while writing shard 3" in message
    assert "3 finished shard(s) of 5" in message and err.value.errno == errno.ENOSPC
    kept = ["manifest.json"] + [f"shard-{i:06d}.safetensors" for i in range(3)]
    assert sorted(p.name for p in folder.iterdir()) == kept  # no temporary file left
    assert ActivationStore.open(folder).n_finished == 15
    monkeypatch.undo()
    capture(folder, tiny_char_model, prompts)
    assert store_files(folder) == reference[1]


def test_a_full_disk_while_writing_the_manifest_removes_the_shard_it_would_have_listed(
    tmp_path, monkeypatch, reference, tiny_char_model, prompts
):
    import interp.store.manifest as manifest_module

    folder = tmp_path / "store"

    def full(path, data):
        if json.loads(data)["shards"][-1:] and json.loads(data)["shards"][-1]["index"] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    real = manifest_module.atomic_write_bytes
    monkeypatch.setattr(manifest_module, "atomic_write_bytes", full)
    with pytest.raises(DiskFullError, match="manifest.json.*1 finished shard"):
        capture(folder, tiny_char_model, prompts)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "shard-000000.safetensors"]
    monkeypatch.undo()
    capture(folder, tiny_char_model, prompts)
    assert store_files(folder) == reference[1]


def _corrupt(folder: Path, how: str) -> str:
    path = folder / "shard-000002.safetensors"
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:-10])
    else:  # one flipped byte in the data: same size, same header
        data = bytearray(path.read_bytes())
        data[-5] ^= 0xFF
        path.write_bytes(bytes(data))
    return path.name


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("missing", "is missing"),
        ("truncated", "is corrupt: .* bytes, the manifest says"),
        ("flipped", "is corrupt: its SHA-256 differs"),
    ],
)
def test_a_missing_or_corrupt_shard_is_named_on_open_and_captured_again_on_rerun(
    how, says, tmp_path, reference, tiny_char_model, prompts
):
    folder = tmp_path / "store"
    capture(folder, tiny_char_model, prompts)
    name = _corrupt(folder, how)
    with pytest.raises(StoreError, match=f"{name} {says}") as err:
        ActivationStore.open(folder)
    assert "\n" not in str(err.value) and "Rerun the capture" in str(err.value)
    if how != "flipped":  # sizes and headers are checked without reading the data
        with pytest.raises(StoreError, match=name):
            ActivationStore.open(folder, verify=False)
    with pytest.warns(UserWarning, match=f"{name}.*captured again"):
        capture(folder, tiny_char_model, prompts)
    assert store_files(folder) == reference[1]


def test_another_configuration_is_refused_naming_the_field(tmp_path, tiny_char_model, tiny_gpt2_model, prompts):
    folder = tmp_path / "store"
    capture(folder, tiny_char_model, prompts)
    before = store_files(folder)
    other = build_prompts("bias_add", ["add2", "add5"], n_examples=4, n_prompts=N, seed=1)
    cases = [
        (dict(dtype="bfloat16"), r"dtype \(float32 in the store, bfloat16 asked for\)"),
        (dict(layers=[1]), r"layers \(\[0, 1\] in the store, \[1\] asked for\)"),
        (dict(hooks=["resid_post"]), "hooks"),
        (dict(shard_size=4), "shard_size"),
        (dict(positions=-2), "positions"),
        (dict(labels=["x"] * N), "labels"),
        (dict(prompts=other), "prompts.texts_sha256"),
        (dict(model=tiny_gpt2_model), "weights_sha256"),
    ]
    for change, says in cases:
        kw = dict(hooks=["resid_mid", "resid_post"], shard_size=SHARD) | change
        model, ps = kw.pop("model", tiny_char_model), kw.pop("prompts", prompts)
        with pytest.raises(StoreError, match=says):
            capture_to(folder, model, ps, **kw)
    assert store_files(folder) == before


def test_bad_arguments_are_refused_before_any_capture(tmp_path, tiny_char_model, prompts):
    class Engine:
        config = {"engine": "never"}

        def __call__(self, prompts, positions):
            raise AssertionError("the engine ran")

    cases = [
        (dict(hooks=["resid_out"]), "^hooks: 'resid_out' is not a residual hook point"),
        (dict(dtype="int8"), "^dtype: 'int8' not supported for storage; valid: float32, bfloat16, float16"),
        (dict(shard_size=0), "^shard_size: must be an integer >= 1"),
        (dict(layers=[5]), "^layers"),
        (dict(labels=["a"]), "^labels: expected 23 labels"),
        (dict(positions=[0, 1]), "^positions: expected 23 positions"),
    ]
    for kw, says in cases:
        with pytest.raises(ValueError, match=says):
            capture_to(tmp_path / "s", tiny_char_model, prompts, capture=Engine(), **kw)
    assert not (tmp_path / "s").exists()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty and holds no manifest.json"):
        capture_to(tmp_path / "notes", tiny_char_model, prompts)


def test_one_writer_at_a_time(tmp_path, tiny_char_model, prompts):
    from interp.store.writer import _FolderLock

    folder = tmp_path / "store"
    folder.mkdir()
    lock = _FolderLock(folder)
    try:
        with pytest.raises(StoreError, match="being written by another process"):
            capture(folder, tiny_char_model, prompts)
    finally:
        lock.release()
    capture(folder, tiny_char_model, prompts[:3])


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_storage_dtype_is_recorded_and_holds_the_rounded_capture(dtype, tmp_path, tiny_char_model, prompts):
    store = capture_to(tmp_path / dtype, tiny_char_model, prompts, shard_size=SHARD, dtype=dtype)
    store = ActivationStore.open(store.folder)
    assert store.config["dtype"] == dtype and store.dtype == getattr(torch, dtype)
    full = capture_resid(tiny_char_model, prompts)
    assert torch.equal(store.load(), full.to(getattr(torch, dtype)))
    assert os.path.getsize(store.folder / "shard-000000.safetensors") < 0.6 * os.path.getsize(
        capture_to(tmp_path / "f32", tiny_char_model, prompts[:SHARD], shard_size=SHARD).folder
        / "shard-000000.safetensors"
    )


def test_custom_engine_feeds_the_store_and_its_config_is_recorded(tmp_path, tiny_char_model, prompts):
    class Remote:  # what an engine returning tensors from elsewhere looks like to the store
        config = {"engine": "remote-test", "batch_size": 8}

        def __call__(self, ps, positions):
            return {"resid_post": capture_resid(tiny_char_model, ps, positions=positions, batch_size=8)}

    store = capture_to(tmp_path / "s", tiny_char_model, prompts, capture=Remote(), shard_size=SHARD, positions=-2)
    assert store.config["engine"] == Remote.config and store.config["positions"] == {"every_prompt": -2}
    assert torch.equal(store.load(), capture_resid(tiny_char_model, prompts, positions=[-2] * N))

    class Wrong(Remote):
        def __call__(self, ps, positions):
            return {"resid_post": torch.zeros(2, len(ps), 3)}

    with pytest.raises(ValueError, match=r"capture: the engine's resid_post has shape \(2, 5, 3\); expected"):
        capture_to(tmp_path / "w", tiny_char_model, prompts, capture=Wrong(), shard_size=SHARD)


# ---- results from a store equal the in-memory ones ----------------------------------------------------------------


@pytest.fixture(scope="module")
def grouped(tmp_path_factory, tiny_char_model):
    """Single-task, mixed and third-task groups (the basis's and the targets' queries each shared) in one labelled
    store, and their in-memory capture."""
    groups = {
        "a": build_prompts("bias_add", ["add2"], n_examples=4, n_prompts=12, seed=3),
        "b": build_prompts("bias_add", ["add5"], n_examples=4, n_prompts=12, seed=3),
        # the targets held out from the basis (interp.heldout), with the same queries as each other
        "mixed": build_prompts("bias_add", ["add2", "add5"], n_examples=4, n_prompts=12, seed=held_out_seed(3)),
        "third": build_prompts("bias_add", ["add7"], n_examples=4, n_prompts=12, seed=held_out_seed(3)),
    }
    prompts = [p for ps in groups.values() for p in ps]
    labels = [name for name, ps in groups.items() for _ in ps]
    folder = tmp_path_factory.mktemp("grouped") / "store"
    capture_to(folder, tiny_char_model, prompts, labels=labels, shard_size=7)
    return ActivationStore.open(folder), groups


def test_task_vectors_and_the_decomposition_from_a_store_equal_the_in_memory_ones(grouped, tiny_char_model):
    store, groups = grouped
    vectors = {name: store.task_vector(label=name) for name in groups}
    memory = {name: vector_from_prompts(tiny_char_model, ps) for name, ps in groups.items()}
    for name in groups:
        assert vectors[name] == memory[name], name  # tensors bit for bit, and every field
    streamed = decompose(vectors["mixed"], [vectors["a"], vectors["b"]])
    in_memory = decompose(memory["mixed"], [memory["a"], memory["b"]])
    assert np.array_equal(streamed.coefs, in_memory.coefs) and np.array_equal(streamed.residual_norm,
                                                                              in_memory.residual_norm)  # fmt: skip


def test_nulls_from_a_store_equal_the_in_memory_ones(grouped):
    store, groups = grouped
    rows = {name: store.source(layers=[1], label=name) for name in groups}
    memory = {name: store.load(layers=[1], label=name)[0] for name in groups}
    a = projection_null(rows["mixed"], rows["a"], rows["b"], rows["third"], n_permutations=50, seed=0)
    b = projection_null(memory["mixed"], memory["a"], memory["b"], memory["third"], n_permutations=50, seed=0)
    assert a.statistic == b.statistic and np.array_equal(a.null, b.null) and a.p_value == b.p_value
    a = residual_noise_floor(rows["mixed"], rows["a"], rows["b"], n_splits=30, seed=1)
    b = residual_noise_floor(memory["mixed"], memory["a"], memory["b"], n_splits=30, seed=1)
    assert a.statistic == b.statistic and np.array_equal(a.null, b.null) and a.note == b.note
    # power: simulated from the rows in memory; from the null shifted by the planted effect where the rows stream
    assert "null shifted" in a.power.unit and "null shifted" not in b.power.unit
    assert a.power.false_positive_rate <= 0.1 and a.power.rejection[-1] == 1.0 and a.mde is not None


def test_a_projection_from_a_store_equals_project_2d(tmp_path, tiny_char_model):
    groups = mixture_groups("bias_add", ["add2", "add5", "add7"], n_prompts=10, n_examples=4, seed=0)
    prompts = [p for ps in groups.values() for p in ps]
    labels = [name for name, ps in groups.items() for _ in ps]
    store = capture_to(tmp_path / "s", tiny_char_model, prompts, labels=labels, shard_size=9)
    acts = store.load()  # the same numbers in memory
    assert store.labels() == labels
    # LDA: scikit-learn takes the SVD of the data, the stream the eigen-decomposition of its Gram matrix, whose
    # condition number is the square of the data's (7e4 here): 5e-8 relative measured, 1e-6 allowed; PCA: 1e-15
    for method, tol in (("pca", 1e-12), ("lda", 1e-6)):
        streamed = project_2d_streaming(store.source(), store.labels(), method=method, layers=store.layers)
        in_memory = project_2d(acts, labels, method=method, layers=[0, 1])
        scale = np.abs(in_memory.coords).max()
        np.testing.assert_allclose(streamed.coords, in_memory.coords, atol=tol * scale, rtol=0)
        np.testing.assert_allclose(streamed.explained, in_memory.explained, atol=tol)
        assert streamed.labels == in_memory.labels and streamed.layers == in_memory.layers


def test_export_to_a_hugging_face_datasets_folder(tmp_path, grouped):
    datasets = pytest.importorskip("datasets", reason="datasets (a TransformerLens dependency) is not installed")
    store, _ = grouped
    out = export_hf(store, tmp_path / "arrow")
    ds = datasets.load_from_disk(str(out)).with_format("torch")
    assert len(ds) == len(store) and [int(i) for i in ds["prompt_index"]] == list(range(len(store)))
    assert torch.equal(torch.stack(list(ds["resid_post"]), dim=1), store.load())
    assert list(ds["label"]) == store.labels()
    with pytest.raises(ValueError, match="exists"):
        export_hf(store, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrow"]  # nothing left beside it
