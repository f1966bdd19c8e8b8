"""The nnsight engine's model: a Hugging Face model (or the hand-built one) wrapped by nnsight, dressed as the toolkit
expects a model to look (``cfg``, ``tokenizer``, ``interp_info``), and run where the user says: in this process, in
nnsight's local simulation of a remote request, or on an NDIF server.

``load_model(spec, engine="nnsight")`` (:func:`interp.models.load_model`) returns an :class:`NNsightModel`. Every
function of the toolkit that runs a model (:func:`interp.engines.score`, :func:`interp.capture.capture_resid`,
:func:`interp.heads.head_outputs`, :class:`interp.generation.PromptCache`) sees ``model.engine == "nnsight"`` and runs
its traces (:mod:`interp.engines.nn_traces`) instead of TransformerLens hooks; studies, prompts, interventions and
results do not change.

Where a trace runs (``remote``):

- ``False``: here, on the wrapped module (``nnsight`` 0.8.1 ``Envoy.trace``/``session``, ``intervention/envoy.py``
  lines 396-530: a session is one block whose nested traces run as they are reached);
- ``"local"``: nnsight's local simulation of a remote request: the block is serialised exactly as for NDIF, then
  deserialised with this project's modules hidden (``intervention/backends/local.py`` lines 41-87), so whatever
  could not reach a server fails here too;
- ``True``: an NDIF server (``intervention/backends/remote.py`` lines 58-116: the model is named by its key, never
  sent; only values saved come back). The key comes from ``NDIF_API_KEY`` and the host from ``host=`` or
  ``NDIF_HOST`` (nnsight's own setting, ``schema/config.py`` lines 119-131). :func:`check_remote` says in one line,
  before any model is loaded, what is missing: the key, a reachable host, a host that serves the model.

Every engine call runs as one *request* (a session of traces, :meth:`NNsightModel.session`): many prompts per trace
(``batch_size`` rows), and only what the caller needs saved (answer log-probs, captured slices; never full logits).
:attr:`NNsightModel.ledger` counts traces, requests and the serialised request bytes (measured where a request is
serialised: ``remote`` set).

>>> check_engine("nnsight"), check_engine("transformer_lens")
('nnsight', 'transformer_lens')
>>> check_remote_mode("local")
'local'
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from interp.activations import fuse_hf_activations
from interp.engines.nn_points import paths_for, tl_paths
from interp.model_files import check_loading_info, check_weight_files
from interp.models import (
    ModelInfo,
    attach_tokenizer,
    load_tokenizer,
    resolve_weights_dir,
    spec_plugin,
    weights_record,
)
from interp.safe_load import NO_REMOTE_CODE, refuse_custom_code

ENGINES = ("transformer_lens", "nnsight")
#: The version the engine is tested with (the ``nnsight`` extra of pyproject.toml pins it).
NNSIGHT_VERSION = "0.8.1"
INSTALL_HINT = 'pip install -e ".[nnsight]"'
REMOTE_MODES = (False, True, "local")
#: Requests larger than this many traces are split (a server's job should not run for minutes).
TRACES_PER_REQUEST = 64


def check_engine(engine: str) -> str:
    """``engine`` if it is one of :data:`ENGINES`, else a ``ValueError`` naming the allowed values."""
    if engine not in ENGINES:
        raise ValueError(f"engine: {engine!r} not supported; valid: {', '.join(ENGINES)}")
    return engine


def check_remote_mode(remote: Any) -> bool | str:
    """``remote`` if it is ``False``, ``True`` or ``"local"``, else a ``ValueError``."""
    if not any(remote is m or (isinstance(m, str) and remote == m) for m in REMOTE_MODES):
        raise ValueError(f"remote: {remote!r} not supported; valid: False, True (NDIF), 'local' (nnsight's simulation)")
    return remote


def require_nnsight() -> Any:
    """The ``nnsight`` module, or a one-line ``ValueError`` saying how to install it."""
    try:
        import nnsight
    except ModuleNotFoundError:
        raise ValueError(
            f"engine: 'nnsight' needs the nnsight package, which is not installed; install it with {INSTALL_HINT} "
            f"(nnsight=={NNSIGHT_VERSION})"
        ) from None
    return nnsight


def is_nnsight(model: Any) -> bool:
    """Whether ``model`` runs on the nnsight engine (cheap: no import)."""
    return getattr(model, "engine", None) == "nnsight"


@dataclass
class EngineConfig:
    """What the toolkit reads of ``model.cfg`` (TransformerLens's names), filled from the Hugging Face config."""

    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    n_ctx: int
    d_vocab: int
    dtype: Any
    device: str
    normalization_type: str | None
    eps: float
    original_architecture: str
    model_name: str
    tokenizer_prepends_bos: bool = False
    default_prepend_bos: bool = True
    n_devices: int = 1
    positional_embedding_type: str = "nnsight"


@dataclass
class TraceLedger:
    """What the engine sent: traces run, requests (sessions of traces: one round trip each when remote), and the
    serialised size of the requests in bytes (zstd-compressed as nnsight sends them; ``None`` where nothing was
    serialised, i.e. ``remote=False``)."""

    traces: int = 0
    requests: int = 0
    request_bytes: int | None = None
    largest_request_bytes: int | None = None
    by_call: dict[str, int] = field(default_factory=dict)

    def add_request(self, call: str, traces: int, size: int | None) -> None:
        self.traces += traces
        self.requests += 1
        self.by_call[call] = self.by_call.get(call, 0) + traces
        if size is not None:
            self.request_bytes = (self.request_bytes or 0) + size
            self.largest_request_bytes = max(self.largest_request_bytes or 0, size)

    def reset(self) -> None:
        self.traces, self.requests, self.request_bytes, self.largest_request_bytes = 0, 0, None, None
        self.by_call = {}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class NNsightModel:
    """A model on the nnsight engine: ``nn`` (the nnsight wrapper), ``paths`` (its hook points,
    :class:`~interp.engines.nn_points.ModulePaths`), ``cfg``, ``tokenizer``, ``interp_info``, where its traces run
    (``remote``, ``host``) and what they cost (``ledger``)."""

    engine = "nnsight"
    #: No TransformerLens hook points: :func:`interp.hooks.attached_hooks` counts none.
    hook_dict: dict = {}

    def __init__(self, nn, paths, cfg: EngineConfig, *, remote: bool | str = False, host: str | None = None):
        self.nn, self.paths, self.cfg = nn, paths, cfg
        self.remote = check_remote_mode(remote)
        self.host = host
        self.ledger = TraceLedger()
        self.tokenizer = None
        self.interp_info = None

    @property
    def module(self):
        """The wrapped torch module (meta tensors when the weights live on a server)."""
        return self.nn._module

    def parameters(self):
        return self.module.parameters()

    def buffers(self):
        return self.module.buffers()

    def __repr__(self) -> str:
        mid = getattr(self.interp_info, "model_id", "?")
        return f"NNsightModel({mid}, family {self.paths.family}, remote={self.remote!r})"

    def session(self, call: str, n_traces: int):
        """One request of ``n_traces`` traces (``with model.session(...):`` at the call site, whose block nnsight
        captures: ``tracing/tracer.py`` ``Tracer.capture``, line 382): ``nn.session`` with the backend ``remote``
        asks for, its serialised size recorded in :attr:`ledger` (``call`` names the engine function, for
        ``by_call``)."""
        if self.remote is False:
            self.ledger.add_request(call, n_traces, None)
            return self.nn.session()
        return self.nn.session(backend=_MeasuredBackend(self, call, n_traces))


class _MeasuredBackend:
    """Serialises a request as nnsight sends it (``schema/request.py`` ``RequestModel.serialize``, line 38;
    compressed, as ``RemoteBackend`` sends with ``CONFIG.API.COMPRESS``), records its size, then hands it to
    nnsight's own backend: ``LocalSimulationBackend`` for ``remote="local"``, ``RemoteBackend`` for ``True``. A
    block that cannot be serialised fails here, before anything runs, in one line."""

    def __init__(self, model: NNsightModel, call: str, n_traces: int):
        self.model, self.call, self.n_traces = model, call, n_traces

    def __call__(self, tracer):
        from nnsight.schema.request import RequestModel

        try:
            blob = RequestModel.serialize(tracer, compress=True)
        except Exception as err:  # noqa: BLE001 - any failure to serialise is the user's one line
            raise ValueError(
                f"remote: this trace cannot be serialised for a remote run ({type(err).__name__}: "
                f"{' '.join(str(err).split())[:200]})"
            ) from err
        self.model.ledger.add_request(self.call, self.n_traces, len(blob))
        if self.model.remote == "local":
            from nnsight.intervention.backends.local import LocalSimulationBackend

            return LocalSimulationBackend(self.model.nn)(tracer)
        from nnsight.intervention.backends.remote import RemoteBackend

        key = self.model.nn.to_model_key()
        return RemoteBackend(key, host=self.model.host, api_key=ndif_api_key())(tracer)


def engine_record(model: NNsightModel) -> dict[str, Any]:
    """What a study's JSON records of the engine: its name, nnsight's version, where the traces ran, and the
    :class:`TraceLedger` (traces, requests, serialised request bytes)."""
    return {
        "name": "nnsight",
        "nnsight_version": metadata.version("nnsight"),
        "remote": {False: "no", True: "ndif", "local": "local"}[model.remote],
        "host": model.host,
        **model.ledger.to_dict(),
    }


# ---------------------------------------------------------------------------------------------------------------
# Remote: the checks that can be made before any work


def ndif_api_key() -> str | None:
    """The NDIF API key: ``NDIF_API_KEY``, else nnsight's own configuration (``schema/config.py`` lines 119-126)."""
    key = os.environ.get("NDIF_API_KEY")
    if key:
        return key
    try:
        from nnsight.schema.config import CONFIG
    except ModuleNotFoundError:
        return None
    return CONFIG.API.APIKEY or None


def ndif_host(host: str | None = None) -> str:
    """``host``, else ``NDIF_HOST``, else nnsight's configured default (``https://api.ndif.us``)."""
    if host:
        return host.rstrip("/")
    if os.environ.get("NDIF_HOST"):
        return os.environ["NDIF_HOST"].rstrip("/")
    from nnsight.schema.config import CONFIG

    return str(CONFIG.API.HOST).rstrip("/")


def served_models(host: str, timeout_s: float = 10.0) -> list[str]:
    """The repo ids the NDIF ``host`` reports as deployed (its ``/status``; the shape nnsight reads in ``ndif.py``
    ``is_model_running``, lines 324-367), or a one-line ``ValueError`` when the host cannot be reached."""
    import httpx

    try:
        response = httpx.get(f"{host}/status", timeout=httpx.Timeout(timeout_s, read=timeout_s))
        response.raise_for_status()
        status = response.json()
    except Exception as err:  # noqa: BLE001 - unreachable, refused, not JSON: all one line
        raise ValueError(
            f"remote: NDIF host {host} is unreachable ({type(err).__name__}: {' '.join(str(err).split())[:120]}); "
            "check --ndif-host / NDIF_HOST and the network"
        ) from None
    deployments = status.get("deployments", {}) if isinstance(status, dict) else {}
    values = deployments.values() if isinstance(deployments, dict) else deployments
    return sorted({str(v.get("repo_id")) for v in values if isinstance(v, dict) and v.get("repo_id")})


def check_remote(spec: str, remote: bool | str, host: str | None = None) -> str | None:
    """Before any model is loaded: for ``remote=True``, the key is set, ``spec`` names a Hugging Face repo id (not a
    local directory or a built model), the host answers and serves it; returns the host (``None`` when not remote).
    Each failure is one ``ValueError`` line."""
    check_remote_mode(remote)
    if remote is not True:
        return None
    if not ndif_api_key():
        raise ValueError("remote: no NDIF API key; set NDIF_API_KEY (an account at https://login.ndif.us gives one)")
    if ":" in spec or Path(spec).expanduser().exists() or spec.count("/") != 1:
        raise ValueError(
            f"remote: NDIF runs models by their Hugging Face repo id (e.g. meta-llama/Llama-3.1-70B); {spec!r} is "
            "a local directory or a model built here, which only run with remote=False or 'local'"
        )
    host = ndif_host(host)
    served = served_models(host)
    if spec not in served:
        shown = ", ".join(served[:8]) + (f", ... ({len(served)} in all)" if len(served) > 8 else "")
        raise ValueError(f"remote: {host} does not serve {spec!r}; it serves: {shown or 'nothing right now'}")
    return host


# ---------------------------------------------------------------------------------------------------------------
# Loading


def _engine_config(hf_config, *, dtype, device: str, family_norm: str) -> EngineConfig:
    c = hf_config.get_text_config() if hasattr(hf_config, "get_text_config") else hf_config
    d_model, n_heads = int(c.hidden_size), int(c.num_attention_heads)
    eps = next((getattr(c, k) for k in ("layer_norm_epsilon", "layer_norm_eps", "rms_norm_eps") if hasattr(c, k)), 1e-5)
    n_ctx = getattr(c, "n_positions", None) or getattr(c, "max_position_embeddings", None)
    return EngineConfig(
        n_layers=int(c.num_hidden_layers),
        d_model=d_model,
        n_heads=n_heads,
        d_head=int(getattr(c, "head_dim", None) or d_model // n_heads),
        n_ctx=int(n_ctx),
        d_vocab=int(c.vocab_size),
        dtype=dtype,
        device=device,
        normalization_type=family_norm,
        eps=float(eps),
        original_architecture=str((getattr(hf_config, "architectures", None) or [""])[0]),
        model_name=str(getattr(hf_config, "_name_or_path", "")),
    )


def load_nnsight(
    spec: str,
    *,
    path: str | Path | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    n_devices: int = 1,
    remote: bool | str = False,
    host: str | None = None,
) -> NNsightModel:
    """An :class:`NNsightModel` for ``spec``: a local Hugging Face directory (or ``"embedded"``, ``"gpt2"``, a repo id
    in the local cache: :func:`interp.models.resolve_weights_dir`), a built model (``"constructed:..."``), or, with
    ``remote=True``, a Hugging Face repo id that the NDIF host serves (loaded on the meta device: no weights here).
    Arguments are those of :func:`interp.models.load_model`, which calls this for ``engine="nnsight"``."""
    require_nnsight()
    check_remote_mode(remote)
    if spec_plugin(spec) is not None:
        if remote is not False:
            raise ValueError(
                f"remote: {spec!r} is built in code, not a Hugging Face checkpoint; nnsight's remote path (and its "
                "local simulation, which rebuilds the model's wrapper by its key) needs one: use remote=False"
            )
        return _wrap_built(spec_plugin(spec)(spec, device=device, dtype=dtype))
    host = check_remote(str(spec), remote, host)
    if remote is True:
        return _load_served(str(spec), host, dtype)
    return _load_local(spec, path, device, dtype, n_devices, remote)


def _load_local(spec, path, device: str, dtype: str, n_devices: int, remote) -> NNsightModel:
    import torch
    from nnsight import TransformersModel
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    model_id, d = resolve_weights_dir(spec, path)
    refuse_custom_code(d)  # before transformers reads the folder: it would ask to run the folder's own code
    config = AutoConfig.from_pretrained(str(d), **NO_REMOTE_CODE)
    paths = paths_for(config.model_type, parallel_residual=getattr(config, "use_parallel_residual", True))
    load_dtype = dtype if dtype in ("float16", "bfloat16") else "float32"
    placement = {"device_map": "auto"} if n_devices > 1 else {}
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    check_weight_files(d)  # a truncated, empty or unsafe weight file: one line naming it
    try:  # eager attention: its weights are the attention pattern (interp.heads.attention_scores)
        hf, info = AutoModelForCausalLM.from_pretrained(
            str(d),
            **NO_REMOTE_CODE,
            dtype=load_dtype,
            attn_implementation="eager",
            output_loading_info=True,
            ignore_mismatched_sizes=True,  # reported by check_loading_info in one line instead of a page
            **placement,
        )
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    check_loading_info(d, info)
    hf = hf.eval()
    fuse_hf_activations(hf)  # GPT-2's gelu_new in fewer passes, as the default engine builds it (interp.activations)
    if n_devices == 1:
        hf = hf.to(device=device, dtype=getattr(torch, dtype))
    tok = load_tokenizer(d, hf.config.vocab_size)
    # a pre-loaded module is wrapped as it is (modeling/transformers.py, TransformersModel.__init__ lines 262-300)
    nn = TransformersModel(hf, tokenizer=tok, task="text-generation")
    cfg = _engine_config(hf.config, dtype=getattr(torch, dtype), device=device, family_norm=paths.norm)
    cfg.n_devices = n_devices
    model = NNsightModel(nn, paths, cfg, remote=remote)
    attach_tokenizer(model, tok)
    model.interp_info = weights_record(model_id, d, dtype, cfg.original_architecture)
    return model


def _load_served(repo_id: str, host: str, dtype: str) -> NNsightModel:
    """A model NDIF serves: its architecture on the meta device (config and tokenizer from the Hub or the local
    cache; ``TransformersModel`` without ``dispatch`` loads no weights, ``modeling/transformers.py`` ``_load_meta``
    lines 401-486)."""
    import torch
    from nnsight import TransformersModel

    # no custom code: nnsight passes trust_remote_code to the config, tokenizer and model loads
    nn = TransformersModel(repo_id, task="text-generation", trust_remote_code=False)
    config = nn._module.config
    paths = paths_for(config.model_type, parallel_residual=getattr(config, "use_parallel_residual", True))
    cfg = _engine_config(config, dtype=getattr(torch, dtype), device="remote", family_norm=paths.norm)
    model = NNsightModel(nn, paths, cfg, remote=True, host=host)
    tok = nn.tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    attach_tokenizer(model, tok)
    model.interp_info = ModelInfo(repo_id, f"ndif:{host}", architecture=cfg.original_architecture, dtype=dtype)
    return model


def _wrap_built(tl_model) -> NNsightModel:
    """A model built in code (the hand-built model): its TransformerLens module wrapped by ``nnsight.NNsight`` (any
    ``torch.nn.Module``; ``modeling/base.py`` line 6), every hook point at the ``HookPoint`` module TransformerLens
    runs it at (:func:`interp.engines.nn_points.tl_paths`). It runs here only (``remote=False``): NDIF serves
    Hugging Face checkpoints, and nnsight's local simulation needs a wrapper with a remote identity (``Remotable``,
    ``modeling/mixins/remotable.py`` line 148), which ``NNsight`` around a plain module has not."""
    from nnsight import NNsight

    c = tl_model.cfg
    cfg = EngineConfig(
        n_layers=c.n_layers,
        d_model=c.d_model,
        n_heads=c.n_heads,
        d_head=c.d_head,
        n_ctx=c.n_ctx,
        d_vocab=c.d_vocab,
        dtype=c.dtype,
        device=str(c.device),
        normalization_type=c.normalization_type,
        eps=float(getattr(c, "eps", 1e-5)),
        original_architecture=str(getattr(c, "original_architecture", "") or ""),
        model_name=str(c.model_name),
        tokenizer_prepends_bos=bool(getattr(c, "tokenizer_prepends_bos", False)),
    )
    model = NNsightModel(NNsight(tl_model), tl_paths(tl_model), cfg)
    model.tokenizer = tl_model.tokenizer
    model.interp_info = tl_model.interp_info
    model.interp_construction = getattr(tl_model, "interp_construction", None)
    return model
