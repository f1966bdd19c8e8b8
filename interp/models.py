"""Model loading: the ONE module that knows how a model is built (a move to TransformerBridge edits only this file).

Specs accepted by :func:`load_model`:

- ``"embedded"``: the project's own checkpoint shipped in ``interp/checkpoints/embedded``.
- ``"gpt2"`` / ``"gpt2-small"``: real GPT-2 small from ``path=``, from ``$INTERP_GPT2_PATH``, or from the local
  Hugging Face cache (never the network).
- a path to a local Hugging Face GPT-2-architecture directory (``config.json`` + weights + tokenizer).
- any other TransformerLens model name whose weights are already in the local HF cache.

Weights go HF ``GPT2LMHeadModel`` → TransformerLens's GPT-2 weight conversion →
``HookedTransformer.load_and_process_state_dict`` with the recorded :class:`WeightProcessing` flags. The
default applies no processing that moves residual-stream coordinates, so captured vectors equal HF
``output_hidden_states``.

Gotcha: the model's tokenizer is attached as-is (no BOS added by the tokenizer). The toolkit's BOS
convention lives in :func:`interp.tokenization.encode`; ``model.to_tokens(text)`` gives the same ids.

>>> model = load_model("embedded")            # doctest: +SKIP
>>> model_info(model).processing.fold_ln      # doctest: +SKIP
False
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

GPT2_NAMES = ("gpt2", "gpt2-small")
GPT2_HF_REPOS = ("openai-community/gpt2", "gpt2")
GPT2_ENV = "INTERP_GPT2_PATH"
EMBEDDED = "embedded"
DTYPES = ("float32", "float16", "bfloat16")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


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
    """What a loaded model is: its id, where its weights came from, how they were processed."""

    model_id: str
    source: str
    processing: WeightProcessing = field(default_factory=WeightProcessing)
    weights_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def resolve_weights_dir(spec: str, path: str | Path | None = None) -> tuple[str, Path]:
    """Map a spec to ``(model_id, local directory)`` without importing torch; raise if absent.

    Cheap on purpose: a missing model fails fast, before any heavy import or work.
    """
    if not isinstance(spec, str | os.PathLike) or not str(spec):
        raise ValueError(
            f"spec: expected 'embedded', 'gpt2', a local directory or a TransformerLens name, got {spec!r}"
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
    if spec in GPT2_NAMES:
        candidates = [("path argument", path), (f"${GPT2_ENV}", os.environ.get(GPT2_ENV))]
        for label, value in candidates:
            if value:
                d = Path(value).expanduser()
                if not _has_weights(d):
                    raise WeightsNotFoundError(
                        f"gpt2: {label} points to {d}, which lacks config.json and model.safetensors "
                        "(or pytorch_model.bin) of a Hugging Face GPT-2 checkpoint"
                    )
                return "gpt2", d
        d = _cached_snapshot(GPT2_HF_REPOS)
        if d is not None:
            return "gpt2", d
        raise WeightsNotFoundError(
            "gpt2: GPT-2 small weights not found locally and nothing is downloaded. Provide them either by "
            f"(1) setting {GPT2_ENV} (or passing path=) to a directory with the Hugging Face GPT-2 files "
            "(config.json, model.safetensors, tokenizer.json or vocab.json + merges.txt), or (2) placing "
            "'openai-community/gpt2' in the local Hugging Face cache (HF_HOME / ~/.cache/huggingface) "
            "on a machine with internet, e.g. `huggingface-cli download openai-community/gpt2`."
        )
    d = Path(spec).expanduser()
    if d.exists():
        if not _has_weights(d):
            raise WeightsNotFoundError(f"spec: directory {d} lacks config.json and model.safetensors/pytorch_model.bin")
        return str(d), d
    if "/" in spec or spec.startswith("."):
        raise WeightsNotFoundError(f"spec: no such directory {d}")
    repo = _official_hf_name(spec)
    snap = _cached_snapshot((repo,)) if repo else None
    if snap is None:
        raise WeightsNotFoundError(
            f"spec: unknown model {spec!r}. Valid: 'embedded', 'gpt2'/'gpt2-small' (local weights), a local HF "
            "GPT-2 directory, or a TransformerLens model name already in the local Hugging Face cache"
            + (f" (looked for {repo!r} there)" if repo else "")
        )
    return spec, snap


def _official_hf_name(name: str) -> str | None:
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


def _hooked_config(hf_config, model_id: str, device: str, dtype, n_devices: int):
    from transformer_lens import HookedTransformerConfig

    acts = {"gelu_new": "gelu_new", "gelu": "gelu", "relu": "relu", "gelu_pytorch_tanh": "gelu_pytorch_tanh"}
    if hf_config.activation_function not in acts:
        raise ValueError(
            f"config.json: activation_function {hf_config.activation_function!r} not supported; valid: {list(acts)}"
        )
    if getattr(hf_config, "scale_attn_by_inverse_layer_idx", False) or getattr(
        hf_config, "reorder_and_upcast_attn", False
    ):
        raise ValueError("config.json: scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported")
    return HookedTransformerConfig(
        model_name=model_id,
        d_model=hf_config.n_embd,
        d_head=hf_config.n_embd // hf_config.n_head,
        n_heads=hf_config.n_head,
        d_mlp=hf_config.n_inner or 4 * hf_config.n_embd,
        n_layers=hf_config.n_layer,
        n_ctx=hf_config.n_positions,
        d_vocab=hf_config.vocab_size,
        act_fn=acts[hf_config.activation_function],
        eps=hf_config.layer_norm_epsilon,
        normalization_type="LN",
        positional_embedding_type="standard",
        original_architecture="GPT2LMHeadModel",
        default_prepend_bos=True,
        device=device,
        dtype=dtype,
        n_devices=n_devices,
    )


def _load_tokenizer(d: Path, vocab_size: int):
    from transformers import AutoTokenizer

    from interp.tokenization import build_gpt2_tokenizer

    if any((d / f).is_file() for f in ("tokenizer.json", "vocab.json")):
        tok = AutoTokenizer.from_pretrained(str(d), local_files_only=True)
    elif vocab_size == 50257:
        tok = build_gpt2_tokenizer()
    else:
        raise WeightsNotFoundError(f"tokenizer: {d} has no tokenizer.json or vocab.json + merges.txt")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


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
) -> HookedTransformer:
    """Convert an in-memory HF ``GPT2LMHeadModel`` to a ``HookedTransformer`` (no network)."""
    import torch
    from transformer_lens import HookedTransformer
    from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights

    processing = processing or WeightProcessing()
    torch_dtype = getattr(torch, dtype)
    cfg = _hooked_config(hf_model.config, model_id, device, torch_dtype, n_devices)
    state = convert_gpt2_weights(hf_model, cfg)
    model = HookedTransformer(cfg, move_to_device=False)
    model.load_and_process_state_dict({k: v.detach().to(torch_dtype) for k, v in state.items()}, **asdict(processing))
    tokenizer.padding_side = "right"  # the toolkit right-pads: causal attention needs no mask then
    model.tokenizer = tokenizer  # attached directly: TransformerLens's set_tokenizer may reach the hub
    model.cfg.tokenizer_prepends_bos = False
    if n_devices > 1:
        model.move_model_modules_to_device()
    else:
        model.to(device, print_details=False)
    model.eval()
    model.interp_info = ModelInfo(model_id, source, processing, weights_sha256)
    LOADED_MODELS.add(model)
    return model


def load_model(
    spec: str = EMBEDDED,
    *,
    path: str | Path | None = None,
    device: str = "auto",
    dtype: str = "float32",
    processing: WeightProcessing | None = None,
    n_devices: int = 1,
) -> HookedTransformer:
    """Load a model as a TransformerLens ``HookedTransformer``, offline.

    Args:
        spec: ``"embedded"``, ``"gpt2"``/``"gpt2-small"``, a local HF GPT-2 directory, or a TransformerLens
            model name present in the local HF cache.
        path: directory of GPT-2 weights (overrides ``$INTERP_GPT2_PATH`` and the cache).
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        dtype: one of ``"float32"`` (default), ``"float16"``, ``"bfloat16"`` (half precision: GPU).
        processing: weight-processing flags (default: none that change residual coordinates).
        n_devices: split layers over this many GPUs (TransformerLens ``n_devices``).

    Raises:
        WeightsNotFoundError: the weights are not available locally (the message says how to provide them).
        ValueError: a bad argument (the message names it and the allowed values).

    >>> m = load_model("embedded")                  # doctest: +SKIP
    >>> m.cfg.n_layers, model_info(m).model_id      # doctest: +SKIP
    (4, 'embedded')
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype: {dtype!r} not supported; valid: {', '.join(DTYPES)}")
    if not isinstance(n_devices, int) or n_devices < 1:
        raise ValueError(f"n_devices: must be an integer >= 1, got {n_devices!r}")
    model_id, d = resolve_weights_dir(spec, path)
    device = pick_device(device)
    processing = processing or WeightProcessing()
    if json.loads((d / "config.json").read_text()).get("model_type") != "gpt2":
        return _load_transformer_lens(model_id, d, device, dtype, processing, n_devices)
    from transformers import GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar for a local directory
    try:
        hf = GPT2LMHeadModel.from_pretrained(str(d), local_files_only=True, dtype="float32")
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    weights = next(d / w for w in _WEIGHT_FILES if (d / w).is_file())
    sha = sha256_file(weights) if model_id == EMBEDDED else None
    tok = _load_tokenizer(d, hf.config.vocab_size)
    source = "package:interp/checkpoints/embedded" if d == embedded_model_dir() else str(d)
    model = hooked_from_hf(
        hf,
        tok,
        model_id=model_id,
        source=source,
        device=device,
        dtype=dtype,
        processing=processing,
        n_devices=n_devices,
        weights_sha256=sha,
    )
    model.interp_trained_examples = _trained_examples(d)
    return model


def _trained_examples(d: Path) -> dict[str, int] | None:
    """Examples per training prompt by family, for checkpoints written by ``interp train`` (else ``None``)."""
    path = d / "training.json"
    if not path.is_file():
        return None
    n_examples = json.loads(path.read_text()).get("config", {}).get("n_examples")
    return {str(k): int(v) for k, v in n_examples.items()} if isinstance(n_examples, dict) else None


def trained_examples(model) -> dict[str, int] | None:
    """For a model trained by ``interp train``: family → examples per training prompt (``None`` otherwise).

    A prompt with that many examples or more puts its query at positions no training prompt reached.

    >>> trained_examples(load_model("embedded"))          # doctest: +SKIP
    {'retrieval': 24, 'bias_add': 24}
    """
    return getattr(model, "interp_trained_examples", None)


def _load_transformer_lens(
    model_id: str, d: Path, device: str, dtype: str, processing: WeightProcessing, n_devices: int
):
    """Non-GPT-2 architectures: TransformerLens's own loader, with the hub switched off."""
    import torch
    from transformer_lens import HookedTransformer

    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        model = HookedTransformer.from_pretrained(
            model_id, device=device, dtype=getattr(torch, dtype), n_devices=n_devices, **asdict(processing)
        )
    finally:
        if old is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old
    model.interp_info = ModelInfo(model_id, str(d), processing, None)
    LOADED_MODELS.add(model)
    return model


def model_info(model) -> ModelInfo:
    """The :class:`ModelInfo` recorded by :func:`load_model` (a generic one for models built elsewhere)."""
    info = getattr(model, "interp_info", None)
    if info is None:
        name = getattr(getattr(model, "cfg", None), "model_name", "unknown")
        return ModelInfo(str(name), "", WeightProcessing(), None)
    return info


def tokenizer_of(model):
    """The tokenizer attached to ``model`` (``ValueError`` when it has none)."""
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        raise ValueError("model: has no tokenizer attached; load it with interp.models.load_model")
    return tok
