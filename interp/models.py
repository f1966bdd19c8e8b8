"""Model loading: the ONE place that knows how a model is built (with its table :mod:`interp.architectures`).

Specs accepted by :func:`load_model`:

- ``"embedded"``: the project's own checkpoint shipped in ``interp/checkpoints/embedded``.
- ``"two_digit"``: a smaller one with two-character answers (family ``two_digit_shift``), shipped in
  ``interp/checkpoints/two_digit_shift``: what generation collapse is taught on.
- ``"gpt2"`` / ``"gpt2-small"``: real GPT-2 small from ``path=``, from ``$INTERP_GPT2_PATH``, or from the local
  Hugging Face cache (never the network).
- a path to a local Hugging Face directory (``config.json`` + weights, sharded or not + tokenizer) of GPT-2, Llama
  (incl. Llama-3), Mistral, Qwen2 (Qwen1.5), GPT-NeoX (Pythia) or Gemma (:mod:`interp.architectures`).
- a Hugging Face repo id (``"Qwen/Qwen1.5-0.5B"``) or TransformerLens alias (``"pythia-14m"``) already in the local
  HF cache (``snapshot_download(local_files_only=True)``).

Weights go HF ``AutoModelForCausalLM`` (local files only) → on TransformerLens 4.x a ``TransformerBridge`` around that
module (:mod:`interp.bridge`), on 3.9 TransformerLens's own converter for the architecture →
``HookedTransformer.load_and_process_state_dict``; either way with the recorded :class:`WeightProcessing` flags and a
config built from the directory's ``config.json`` (never from the hub). The default applies no processing that moves
residual-stream coordinates, so captured vectors equal HF ``output_hidden_states``.

Gotcha: the model's tokenizer is attached as-is (no BOS added by the tokenizer). The toolkit's BOS convention lives in
:func:`interp.tokenization.encode` (per family: :func:`interp.tokenization.bos_id`); ``model.to_tokens(text)`` gives
the same ids.

>>> model = load_model("embedded")            # doctest: +SKIP
>>> model_info(model).processing.fold_ln      # doctest: +SKIP
False
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import os
import re
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.activations import fuse_hf_activations, gelu_tanh
from interp.architectures import convert_weights, tl_fields
from interp.bridge import bridge_from_hf, check_bridge_architecture, is_bridge, native_bridge, tl_major
from interp.model_files import check_loading_info, check_weight_files, read_trained_examples
from interp.safe_load import NO_REMOTE_CODE, refuse_custom_code
from interp.tokenization import bos_id, build_gpt2_tokenizer
from interp.validate import ArgumentError, ArgumentTypeError, check_choice, check_count, check_model, check_name

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

GPT2_NAMES = ("gpt2", "gpt2-small")
GPT2_HF_REPOS = ("openai-community/gpt2", "gpt2")
GPT2_ENV = "INTERP_GPT2_PATH"
EMBEDDED = "embedded"
#: Accepted ``dtype`` values. ``float64`` is CPU-only; ``float16``/``bfloat16`` are meant for GPUs (CPU works, slowly).
DTYPES = ("float32", "float16", "bfloat16", "float64")
#: How a model runs (:func:`load_model`'s ``engine``): TransformerLens hooks, or nnsight traces
#: (:mod:`interp.engines.nn_model`; the same names as ``interp.engines.nn_model.ENGINES``).
ENGINES = ("transformer_lens", "nnsight")
_WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)


#: Every model this module built (weakly held): the test suite checks none is left with a hook attached.
LOADED_MODELS: weakref.WeakSet = weakref.WeakSet()


class WeightsNotFoundError(FileNotFoundError):
    """Raised when a model's weights are not available locally (nothing is ever downloaded)."""


@dataclass(frozen=True)
class WeightProcessing:
    """TransformerLens weight-processing flags. The defaults keep HF residual-stream coordinates."""

    fold_ln: bool = False
    center_writing_weights: bool = False
    center_unembed: bool = False
    fold_value_biases: bool = False
    refactor_factored_attn_matrices: bool = False


@dataclass(frozen=True)
class ModelInfo:
    """Everything the toolkit records about a loaded model (one object: ``model_info(model)``).

    Attributes:
        model_id: the spec's id (``"embedded"``, ``"gpt2"``, a directory, a repo id).
        source: where the weights came from (a directory, or ``package:...`` for the embedded model).
        processing: the TransformerLens weight-processing flags applied.
        weights_sha256: SHA-256 of the weights file (the embedded model only; ``None`` otherwise).
        architecture: the Hugging Face architecture (``"LlamaForCausalLM"``, ...).
        dtype: the parameters' dtype name.
        trained_examples: for checkpoints written by ``interp train``, family → examples per training prompt.
    """

    model_id: str
    source: str
    processing: WeightProcessing = field(default_factory=WeightProcessing)
    weights_sha256: str | None = None
    architecture: str = ""
    dtype: str = "float32"
    trained_examples: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The two-digit model (family ``two_digit_shift``, two-token answers; trained by experiments/two_digit_shift.py),
#: what generation collapse (claim 5) is taught on: ``load_model("two_digit")``.
TWO_DIGIT = "two_digit"
TWO_DIGIT_DIR = Path(__file__).parent / "checkpoints" / "two_digit_shift"


def embedded_model_dir() -> Path:
    """Directory of the shipped embedded checkpoint (inside the installed package)."""
    return Path(__file__).parent / "checkpoints" / EMBEDDED


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _has_weights(d: Path) -> bool:
    return (d / "config.json").is_file() and any((d / w).is_file() for w in _WEIGHT_FILES)


def model_dir_problem(d: Path) -> str | None:
    """What keeps ``d`` from being a model directory, in words (``None``: nothing). Cheap: reads config.json only.

    >>> model_dir_problem(Path("/no/such/dir"))
    'no such directory /no/such/dir'
    """
    if d.is_file() or (d.exists() and not d.is_dir()):
        return f"{d} is a file; give the directory that holds it (config.json, the weights and the tokenizer files)"
    if not d.exists():
        return f"no such directory {d}"
    config = d / "config.json"
    weights = " or ".join(_WEIGHT_FILES)
    if not config.is_file():
        has = "" if any((d / w).is_file() for w in _WEIGHT_FILES) else f", nor weights ({weights})"
        return f"directory {d} has no config.json{has}"
    try:
        parsed = json.loads(config.read_text())
    except (OSError, UnicodeDecodeError) as err:
        return f"cannot read {config} ({getattr(err, 'strerror', None) or err})"
    except json.JSONDecodeError as err:
        return f"{config} is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
    if not isinstance(parsed, dict):
        return f"{config} is not a JSON object"
    if not any((d / w).is_file() for w in _WEIGHT_FILES):
        return f"directory {d} has config.json but no weights ({weights})"
    return None


def _cached_snapshot(repo_ids: tuple[str, ...]) -> Path | None:
    """A local HF-cache snapshot of any of ``repo_ids`` holding config + weights (offline lookup only)."""
    try:
        from huggingface_hub import snapshot_download
    except ModuleNotFoundError:  # pragma: no cover
        return None
    for repo in repo_ids:
        try:
            path = Path(snapshot_download(repo_id=repo, local_files_only=True))
        except Exception:  # noqa: BLE001 - any miss in the cache means "not here"
            continue
        if _has_weights(path):
            return path
    return None


def _looks_like_path(spec: str) -> bool:
    """A spec written as a filesystem path (not a ``org/name`` repo id)."""
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or spec.endswith("/") or "\\" in spec


def resolve_weights_dir(spec: str, path: str | Path | None = None) -> tuple[str, Path]:
    """Map a spec to ``(model_id, local directory)`` without importing torch; raise if absent.

    Cheap on purpose: a missing model fails fast, before any heavy import or work. An existing directory wins over a
    repo id of the same spelling; ``org/name`` that is no directory is looked up in the local HF cache. A folder
    that asks to run code of its own (``auto_map``) is refused here already
    (:func:`interp.safe_load.refuse_custom_code`).
    """
    model_id, d = _resolve_weights_dir(spec, path)
    refuse_custom_code(d, known_types=False)  # JSON only: the unknown model_type check imports transformers
    return model_id, d


def _resolve_weights_dir(spec: str, path: str | Path | None) -> tuple[str, Path]:
    if not isinstance(spec, str | os.PathLike) or not str(spec):
        raise ValueError(
            "spec: expected 'embedded', 'two_digit', 'gpt2', a local directory or a Hugging Face model name, "
            f"got {spec!r}"
        )
    spec = str(spec)
    if spec == EMBEDDED:
        d = Path(path) if path else embedded_model_dir()
        if not _has_weights(d):
            raise WeightsNotFoundError(
                f"embedded model: no checkpoint at {d}; train it with `interp train --config "
                "experiments/configs/embedded.json` and copy the chosen checkpoint there"
            )
        return EMBEDDED, d
    if spec == TWO_DIGIT:
        d = Path(path) if path else TWO_DIGIT_DIR
        if not _has_weights(d):
            raise WeightsNotFoundError(
                f"two_digit model: no checkpoint at {d}; train it with `python experiments/two_digit_shift.py train`"
            )
        return TWO_DIGIT, d
    if spec in GPT2_NAMES:
        return "gpt2", _resolve_gpt2(path)
    try:
        d = Path(spec).expanduser()
    except RuntimeError:  # "~name" of a user that does not exist: not a directory either
        d = Path(spec)
    if d.exists():
        problem = model_dir_problem(d)
        if problem:
            raise WeightsNotFoundError(f"spec: {problem}")
        return str(d), d
    if _looks_like_path(spec):
        raise WeightsNotFoundError(f"spec: no such directory {d}")
    repos = tuple(dict.fromkeys(r for r in (spec if "/" in spec else None, _official_hf_name(spec)) if r))
    snap = _cached_snapshot(repos) if repos else None
    if snap is None:
        repo = repos[0] if repos else "ORG/NAME"
        raise WeightsNotFoundError(
            f"spec: unknown model {spec!r}: not found locally and nothing is downloaded. Provide it either as "
            "(1) a local directory with config.json, the weights and the tokenizer files (pass its path), or (2) the "
            f"local Hugging Face cache (HF_HOME / ~/.cache/huggingface): `hf download {repo}` on a machine with "
            "internet. Built-in: 'embedded', 'two_digit', 'gpt2'/'gpt2-small'"
        )
    return spec, snap


def _resolve_gpt2(path: str | Path | None) -> Path:
    candidates = [("path argument", path), (f"${GPT2_ENV}", os.environ.get(GPT2_ENV))]
    for label, value in candidates:
        if value:
            d = Path(value).expanduser()
            problem = model_dir_problem(d)
            if problem:
                raise WeightsNotFoundError(f"gpt2: {label} points to {d}: {problem} (a Hugging Face GPT-2 checkpoint)")
            return d
    d = _cached_snapshot(GPT2_HF_REPOS)
    if d is not None:
        return d
    raise WeightsNotFoundError(
        "gpt2: GPT-2 small weights not found locally and nothing is downloaded. Provide them either by "
        f"(1) setting {GPT2_ENV} (or passing path=) to a directory with the Hugging Face GPT-2 files "
        "(config.json, model.safetensors, tokenizer.json or vocab.json + merges.txt), or (2) placing "
        "'openai-community/gpt2' in the local Hugging Face cache (HF_HOME / ~/.cache/huggingface) "
        "on a machine with internet, e.g. `hf download openai-community/gpt2`."
    )


def _official_hf_name(name: str) -> str | None:
    try:  # TransformerLens 4.x keeps the alias table in supported_models; 3.x in loading_from_pretrained
        from transformer_lens.supported_models import get_official_model_name
    except ImportError:
        try:
            from transformer_lens.loading_from_pretrained import get_official_model_name
        except ImportError:  # pragma: no cover
            return None
    try:
        return get_official_model_name(name)
    except Exception:  # noqa: BLE001 - unknown names raise ValueError in TransformerLens
        return None


def pick_device(device: str = "auto") -> str:
    """``"auto"`` → ``"cuda"`` when available else ``"cpu"``; anything else passes through."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check_device(device: str) -> str:
    """``device`` if it names one: ``"auto"``, ``"cpu"``, ``"mps"``, ``"cuda"`` or ``"cuda:N"``."""
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
        error = ArgumentError if isinstance(device, str) else ArgumentTypeError
        raise error("device", f"{device!r} is not a device; valid: auto, cpu, cuda, cuda:N, mps")
    return device


def check_load_args(device: str, dtype: str, n_devices: int) -> None:
    """Validate ``device`` (resolved, not ``"auto"``), ``dtype`` and ``n_devices`` before any weights are read.

    Cheap, so a command line can call it before any other work. Raises ``ValueError`` naming the argument.

    >>> check_load_args("cpu", "float64", 1)
    >>> check_load_args("cpu", "int8", 1)
    Traceback (most recent call last):
    interp.validate.ArgumentError: dtype: 'int8' not supported; valid: float32, float16, bfloat16, float64
    """
    import torch

    check_choice(dtype, "dtype", DTYPES, "not supported")
    check_count(n_devices, "n_devices")
    on_gpu = str(device).startswith("cuda")
    if dtype == "float64" and on_gpu:
        raise ArgumentError(
            "dtype", "float64 is CPU-only here (use device cpu); on a GPU use bfloat16, float16 or float32"
        )
    if n_devices > 1 and not on_gpu:
        raise ArgumentError(
            "n_devices", f"{n_devices} needs device 'cuda' (layers are split over GPUs), got {device!r}"
        )
    if on_gpu and not torch.cuda.is_available():
        raise ArgumentError(
            "device", f"{device!r} requested but CUDA is not available to this torch; use 'cpu' or 'auto'"
        )
    if n_devices > 1 and torch.cuda.device_count() < n_devices:
        raise ArgumentError("n_devices", f"{n_devices} requested but {torch.cuda.device_count()} GPU(s) visible")


def load_tokenizer(d: Path, vocab_size: int):
    """The tokenizer of model directory ``d`` (local files only; GPT-2's own files where the directory has none and
    the vocabulary is GPT-2's), with a pad token."""
    from transformers import AutoTokenizer

    files = ("tokenizer.json", "vocab.json", "tokenizer.model", "tokenizer_config.json")
    if any((d / f).is_file() for f in files):
        refuse_custom_code(d)  # before transformers reads the folder: it would ask to run a custom tokenizer's code
        tok = AutoTokenizer.from_pretrained(str(d), **NO_REMOTE_CODE)
    elif vocab_size == 50257:
        tok = build_gpt2_tokenizer()
    else:
        raise WeightsNotFoundError(f"tokenizer: {d} has no tokenizer.json, tokenizer.model or vocab.json + merges.txt")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def attach_tokenizer(model, tokenizer) -> None:
    """Attach ``tokenizer`` under the toolkit's conventions: right padding, BOS from :func:`bos_id` (also for
    TransformerLens's ``to_tokens``), no special tokens added by the tokenizer itself."""
    tokenizer.padding_side = "right"  # the toolkit right-pads: causal attention needs no mask then
    if tokenizer.bos_token is None:  # e.g. Qwen: the document separator becomes the BOS (see bos_id)
        tokenizer.bos_token = tokenizer.convert_ids_to_tokens(bos_id(tokenizer))
    if is_bridge(model):  # its setter would re-normalise the tokenizer (reloading it by name: the hub)
        model.__dict__["_tokenizer"] = tokenizer
    else:
        model.tokenizer = tokenizer  # attached directly: TransformerLens's set_tokenizer may reach the hub
    probe = "Hello world"
    plain = list(tokenizer(probe, add_special_tokens=False)["input_ids"])
    # Llama/Gemma/Mistral tokenizers prepend their BOS themselves: TransformerLens then adds none as text (which
    # would lose a SentencePiece tokenizer's leading "▁" or double a BOS).
    model.cfg.tokenizer_prepends_bos = list(tokenizer(probe)["input_ids"]) == [bos_id(tokenizer)] + plain
    model.cfg.default_prepend_bos = True


def hooked_from_hf(
    hf_model,
    tokenizer,
    *,
    model_id: str,
    source: str = "",
    device: str = "cpu",
    dtype: str = "float32",
    processing: WeightProcessing | None = None,
    n_devices: int = 1,
    weights_sha256: str | None = None,
    trained_examples: dict[str, int] | None = None,
    source_dir: str | Path | None = None,
):
    """The hooked model of an in-memory HF causal LM (no network): on TransformerLens 4.x a ``TransformerBridge``
    around a copy of it (:mod:`interp.bridge`; the bridge rearranges the module it wraps, and ``hf_model`` may still
    be training), on 3.x a ``HookedTransformer`` converted by TransformerLens's converter for its architecture
    (:mod:`interp.architectures`). Either way ``hf_model`` is left as it was, the residual stream equals HF's
    ``hidden_states`` unless ``processing`` asks otherwise, and the model carries the tokenizer and
    :class:`ModelInfo` the toolkit reads."""
    if tl_major() >= 4:
        hf_model = copy.deepcopy(hf_model)
    return _hooked_from_own_hf(
        hf_model,
        tokenizer,
        model_id=model_id,
        source=source,
        device=device,
        dtype=dtype,
        processing=processing,
        n_devices=n_devices,
        weights_sha256=weights_sha256,
        trained_examples=trained_examples,
        source_dir=source_dir,
    )


def _hooked_from_own_hf(
    hf_model,
    tokenizer,
    *,
    model_id: str,
    source: str,
    device: str,
    dtype: str,
    processing: WeightProcessing | None,
    n_devices: int,
    weights_sha256: str | None,
    trained_examples: dict[str, int] | None,
    source_dir: str | Path | None,
):
    """:func:`hooked_from_hf` on an HF model nobody else holds (the bridge may take it over as it is)."""
    processing = processing or WeightProcessing()
    if tl_major() >= 4:
        model = bridge_from_hf(
            hf_model,
            tokenizer,
            source_dir=str(source_dir or model_id),
            device=device,
            dtype=dtype,
            processing=processing,
            n_devices=n_devices,
        )
        fuse_activation(model)
        arch = str((getattr(hf_model.config, "architectures", None) or [type(hf_model).__name__])[0])
    else:
        model, arch = _hooked_transformer(hf_model, model_id, device, dtype, processing, n_devices)
    attach_tokenizer(model, tokenizer)
    model.interp_info = ModelInfo(model_id, source, processing, weights_sha256, arch, dtype, trained_examples)
    LOADED_MODELS.add(model)
    return model


def hooked_from_tl_weights(fields: dict[str, Any], weights: dict, *, device: str = "cpu", dtype: str = "float32"):
    """A GPT-2-style hooked model (learned positions, LayerNorm, plain MLP) built in code from weights in
    TransformerLens's layout (``embed.W_E``, ``blocks.L.attn.W_Q`` ``[head, d_model, d_head]``, ...): a
    ``HookedTransformer`` on TransformerLens 3.x, a ``TransformerBridge`` around a TL-native model on 4.x
    (:func:`interp.bridge.native_bridge`). ``fields``: ``n_layers, d_model, d_head, n_heads, d_mlp, d_vocab, n_ctx,
    eps, act_fn`` and optionally ``model_name``. The caller attaches the tokenizer."""
    import torch

    fields = dict(fields)
    name = fields.pop("model_name", "built")
    if tl_major() >= 4:
        return native_bridge({**fields, "model_name": name}, weights, device=device, dtype=dtype)
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        model_name=name,
        normalization_type="LN",
        positional_embedding_type="standard",
        original_architecture="GPT2LMHeadModel",
        default_prepend_bos=True,
        device=device,
        dtype=getattr(torch, dtype),
        seed=0,
        **fields,
    )
    model = HookedTransformer(cfg, move_to_device=False)
    params = dict(model.named_parameters())
    if set(params) != set(weights):
        raise RuntimeError(f"weights: names differ from TransformerLens's: {sorted(set(params) ^ set(weights))}")
    with torch.no_grad():
        for key, value in weights.items():
            params[key].copy_(torch.as_tensor(value).to(params[key].dtype))
    model.to(device, print_details=False)
    return model.eval()


def _hooked_transformer(hf_model, model_id: str, device: str, dtype: str, processing: WeightProcessing, n_devices):
    """TransformerLens 3.x: ``hf_model`` converted to a ``HookedTransformer``; returns it and its architecture."""
    import torch
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    torch_dtype = getattr(torch, dtype)
    fields, converter = tl_fields(hf_model.config)
    cfg = HookedTransformerConfig(
        model_name=model_id,
        default_prepend_bos=True,
        device=device,
        dtype=torch_dtype,
        n_devices=n_devices,
        init_weights=False,
        **fields,
    )
    state = convert_weights(hf_model, cfg, converter)
    model = HookedTransformer(cfg, move_to_device=False)
    model.load_and_process_state_dict({k: v.detach().to(torch_dtype) for k, v in state.items()}, **asdict(processing))
    del state
    if n_devices > 1:
        model.move_model_modules_to_device()
    else:
        model.to(device, print_details=False)
    model.eval()
    fuse_activation(model)
    return model, fields["original_architecture"]


def fuse_activation(model) -> None:
    """Compute GPT-2's ``gelu_new`` with fewer passes (:mod:`interp.activations`; part of building the model).

    A ``HookedTransformer``'s MLPs get :func:`interp.activations.gelu_tanh` as ``act_fn``; a bridge's wrapped Hugging
    Face MLPs get :func:`interp.activations.gelu_tanh_module_class`'s module in place of ``NewGELUActivation``
    (:func:`interp.activations.fuse_hf_activations`).
    The MLPs' hooks are unchanged. Other activations are left alone.
    """
    if is_bridge(model):
        for block in model.blocks:
            inner = getattr(block.mlp, "original_component", None)
            if inner is not None:
                fuse_hf_activations(inner)
        return
    if model.cfg.act_fn != "gelu_new":
        return
    for block in model.blocks:
        if hasattr(block.mlp, "act_fn"):
            block.mlp.act_fn = gelu_tanh


#: Spec prefixes served by models built in code rather than loaded from weights: prefix → (module, loader). The
#: module is imported when such a spec is first loaded (it sits above this one: it builds on the loading layer).
SPEC_PLUGINS: dict[str, tuple[str, str]] = {"constructed": ("interp.construction", "load_constructed")}
#: Engines other than TransformerLens: engine → (module, loader), imported when a model is loaded on it.
ENGINE_PLUGINS: dict[str, tuple[str, str]] = {"nnsight": ("interp.engines.nn_model", "load_nnsight")}


def spec_plugin(spec: Any):
    """The loader of a plugin spec (``"constructed:..."``), or ``None`` for a spec served by weights.

    >>> spec_plugin("embedded") is None, spec_plugin("constructed:retrieval:K=2").__name__
    (True, 'load_constructed')
    """
    if not isinstance(spec, str) or ":" not in spec or spec.split(":", 1)[0] not in SPEC_PLUGINS:
        return None
    module, name = SPEC_PLUGINS[spec.split(":", 1)[0]]
    return getattr(importlib.import_module(module), name)


def load_model(
    spec: str = EMBEDDED,
    *,
    path: str | Path | None = None,
    device: str = "auto",
    dtype: str = "float32",
    processing: WeightProcessing | None = None,
    n_devices: int = 1,
    engine: str = "transformer_lens",
    remote: bool | str = False,
    host: str | None = None,
) -> HookedTransformer:
    """Load a model as a TransformerLens model, offline: a ``TransformerBridge`` on TransformerLens 4.x, a
    ``HookedTransformer`` on 3.9.

    Args:
        spec: ``"embedded"``, ``"gpt2"``/``"gpt2-small"``, a local HF directory of a causal LM (README "Your own
            model"), a Hugging Face repo id / TransformerLens alias present in the local HF cache, or a
            built model such as ``"constructed:retrieval:K=4"`` (:data:`SPEC_PLUGINS`; no weights involved).
        path: directory of GPT-2 weights (overrides ``$INTERP_GPT2_PATH`` and the cache).
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        dtype: ``"float32"`` (default), ``"bfloat16"``/``"float16"`` (big models on a GPU), ``"float64"`` (CPU only).
        processing: weight-processing flags (default: none that change residual coordinates).
        n_devices: place the layers over this many GPUs (4.x: Hugging Face ``device_map="auto"``; 3.9:
            TransformerLens ``n_devices``; needs ``device="cuda"``).
        engine: ``"transformer_lens"`` (default) or ``"nnsight"``: the Hugging Face model wrapped by nnsight
            (:mod:`interp.engines.nn_model`; needs ``pip install -e ".[nnsight]"``); every study runs on either.
        remote: nnsight engine only: ``False`` (here), ``"local"`` (nnsight's simulation of a remote request) or
            ``True`` (NDIF; ``spec`` a Hugging Face repo id it serves, the key from ``NDIF_API_KEY``).
        host: the NDIF host for ``remote=True`` (default ``NDIF_HOST``, else nnsight's own).

    Raises:
        WeightsNotFoundError: the weights are not available locally (the message says how to provide them).
        ValueError: a bad argument or an unsupported architecture (the message names it and the allowed values).

    >>> m = load_model("embedded")                  # doctest: +SKIP
    >>> m.cfg.n_layers, model_info(m).model_id      # doctest: +SKIP
    (4, 'embedded')
    """
    check_name(spec, "spec")
    if path is not None and not isinstance(path, str | Path):
        raise ArgumentTypeError("path", f"a directory (str or Path), got {type(path).__name__}")
    if processing is not None and not isinstance(processing, WeightProcessing):
        raise ArgumentTypeError("processing", f"a WeightProcessing or None, got {type(processing).__name__}")
    check_device(device)
    check_choice(dtype, "dtype", DTYPES)
    check_choice(engine, "engine", ENGINES)
    if not any(remote is v for v in (False, True)) and remote != "local":
        raise ArgumentError(
            "remote", f"{remote!r} not supported; valid: False (here), 'local' (nnsight's simulation), True (NDIF)"
        )
    if engine != "nnsight" and remote is not False:
        raise ArgumentError("remote", "only the nnsight engine runs remotely; pass engine='nnsight'")
    if host is not None and (not isinstance(host, str) or not host):
        raise ArgumentTypeError("host", f"need an NDIF host name (a non-empty string) or None, got {host!r}")
    device = pick_device(device)
    check_load_args(device, dtype, n_devices)
    if engine in ENGINE_PLUGINS:  # the engine's module sits above this one: imported when asked for
        module, name = ENGINE_PLUGINS[engine]
        load = getattr(importlib.import_module(module), name)
        return load(spec, path=path, device=device, dtype=dtype, n_devices=n_devices, remote=remote, host=host)
    plugin = spec_plugin(spec)
    if plugin is not None:
        return plugin(spec, device=device, dtype=dtype)
    model_id, d = resolve_weights_dir(spec, path)
    read_trained_examples(d)  # a broken training.json fails before the weights are read
    hf = _hf_from_dir(d, dtype, n_devices)
    tok = load_tokenizer(d, hf.config.vocab_size)
    record = weights_record(model_id, d, dtype, "")
    return _hooked_from_own_hf(  # the HF model was read for this model alone: no copy
        hf,
        tok,
        model_id=model_id,
        source=record.source,
        device=device,
        dtype=dtype,
        processing=processing,
        n_devices=n_devices,
        weights_sha256=record.weights_sha256,
        trained_examples=record.trained_examples,
        source_dir=d,
    )


def weights_record(model_id: str, d: Path, dtype: str, architecture: str) -> ModelInfo:
    """The :class:`ModelInfo` of weights read from directory ``d`` (no processing): the source (``package:...`` for
    a shipped checkpoint), the embedded model's weights hash, and what ``interp train`` recorded. Every engine records
    a model loaded from ``d`` alike."""
    weights = next(d / w for w in _WEIGHT_FILES if (d / w).is_file())
    sha = sha256_file(weights) if model_id == EMBEDDED else None
    shipped = {embedded_model_dir(): "embedded", TWO_DIGIT_DIR: "two_digit_shift"}
    source = f"package:interp/checkpoints/{shipped[d]}" if d in shipped else str(d)
    return ModelInfo(model_id, source, WeightProcessing(), sha, architecture, dtype, read_trained_examples(d))


def context_length(spec: str, path: str | Path | None = None) -> int | None:
    """The model's context length from its ``config.json`` alone (``None`` for a built model, or a config without
    one): cheap (no torch, no tokenizer), so a command line can bound its sizes before building anything.

    >>> context_length("embedded")
    288
    """
    if spec_plugin(spec) is not None:
        return None
    _, d = resolve_weights_dir(spec, path)
    config = json.loads((d / "config.json").read_text())
    n_ctx = config.get("n_positions") or config.get("max_position_embeddings")
    return n_ctx if isinstance(n_ctx, int) and not isinstance(n_ctx, bool) else None


def context_and_tokenizer(spec: str, path: str | Path | None = None) -> tuple[int, Any] | None:
    """``(context length, tokenizer)`` of a model spec read from its directory, without loading the weights
    (``None`` for a built model such as ``"constructed:..."``): a command line checks that its prompts fit before
    paying for the model.

    >>> n_ctx, tokenizer = context_and_tokenizer("embedded"); n_ctx > 0
    True
    """
    n_ctx = context_length(spec, path)
    if n_ctx is None:
        return None
    _, d = resolve_weights_dir(spec, path)
    config = json.loads((d / "config.json").read_text())
    return n_ctx, load_tokenizer(d, config.get("vocab_size"))


def check_architecture(config) -> None:
    """``ValueError`` naming the architecture when the installed TransformerLens cannot run it."""
    if tl_major() >= 4:
        check_bridge_architecture(config)
    else:
        tl_fields(config)


def _hf_from_dir(d: Path, dtype: str, n_devices: int = 1):
    """The HF causal LM in ``d`` on the CPU (local files only, no code from the folder: :mod:`interp.safe_load`),
    after checking its architecture is supported and its weight files are whole (:mod:`interp.model_files`); with
    ``n_devices > 1`` (TransformerLens 4.x) its layers are placed over that many GPUs (``device_map="auto"``).
    A ``config.json`` whose sizes do not match the weights is refused (never filled in with random numbers)."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    refuse_custom_code(d)  # before transformers reads the folder: it would ask to run the folder's own code
    config = AutoConfig.from_pretrained(str(d), **NO_REMOTE_CODE)
    check_architecture(config)  # an unsupported architecture fails here, before the weights are read
    check_weight_files(d)  # a truncated, empty or unsafe weight file: one line naming it
    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar for a local directory
    hf_logging.set_verbosity_error()  # no load report: a mismatch is refused below in one line
    try:
        # float32 weights for float32/float64 models; half-precision models are read in their dtype (memory).
        load_dtype = dtype if dtype in ("float16", "bfloat16") else "float32"
        placement = {}
        if n_devices > 1 and tl_major() >= 4:
            placement = {"device_map": "auto", "max_memory": {i: "1000GiB" for i in range(n_devices)}}
        hf, info = AutoModelForCausalLM.from_pretrained(
            str(d),
            **NO_REMOTE_CODE,
            dtype=load_dtype,
            output_loading_info=True,
            ignore_mismatched_sizes=True,  # reported by check_loading_info in one line instead of a page
            **placement,
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    check_loading_info(d, info)
    return hf.eval()


def trained_examples(model) -> dict[str, int] | None:
    """For a model trained by ``interp train``: family → examples per training prompt (``None`` otherwise).

    A prompt with that many examples or more puts its query at positions no training prompt reached.

    >>> trained_examples(load_model("embedded"))          # doctest: +SKIP
    {'retrieval': 24, 'bias_add': 24}
    """
    return model_info(model).trained_examples


def model_info(model) -> ModelInfo:
    """The :class:`ModelInfo` recorded by :func:`load_model` (a generic one for models built elsewhere)."""
    info = getattr(check_model(model), "interp_info", None)
    if info is None:
        cfg = getattr(model, "cfg", None)
        name = getattr(cfg, "model_name", "unknown")
        return ModelInfo(str(name), "", WeightProcessing(), None, str(getattr(cfg, "original_architecture", "") or ""))
    return info


def tokenizer_of(model):
    """The tokenizer attached to ``model`` (``ValueError`` when it has none)."""
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        raise ValueError("model: has no tokenizer attached; load it with interp.models.load_model")
    return tok
