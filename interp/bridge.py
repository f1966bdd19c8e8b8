"""Building a model on TransformerLens 4.x: a ``TransformerBridge`` around the Hugging Face model itself.

TransformerLens 4.0 removed ``HookedTransformer``; its ``TransformerBridge`` wraps the HF module, keeps HF numerics
(no folding or centering unless asked), and exposes the hook names this toolkit uses (``blocks.L.hook_resid_post``
is an alias of ``blocks.L.hook_out``). :func:`interp.models.load_model` calls :func:`bridge_from_hf` when
TransformerLens 4.x is installed and :func:`interp.models.hooked_from_hf` on 3.x; nothing else in the toolkit
imports either builder.

>>> tl_major() in (3, 4)
True
"""

from __future__ import annotations

import copy
from importlib import metadata
from typing import Any


def tl_version() -> str:
    """The installed TransformerLens version (``"0"`` when it is not installed)."""
    try:
        return metadata.version("transformer-lens")
    except metadata.PackageNotFoundError:  # pragma: no cover - a required dependency
        return "0"


def tl_major() -> int:
    """TransformerLens's major version: 3 (``HookedTransformer``) or 4 (``TransformerBridge``)."""
    return int(tl_version().split(".")[0])


def is_bridge(model: Any) -> bool:
    """Whether ``model`` is a TransformerLens 4.x ``TransformerBridge`` (``False`` for a ``HookedTransformer``)."""
    return any(cls.__name__ == "TransformerBridge" for cls in type(model).__mro__)


#: The toolkit scores next-token answers: decoder-only causal LMs only (no encoders, seq2seq or vision heads).
CAUSAL_LM_SUFFIXES = ("ForCausalLM", "LMHeadModel")
#: Architectures whose scores and residuals are tested against a plain Hugging Face loop
#: (tests/equivalence/test_architectures.py), first in every error message.
ORACLE_TESTED = (
    "GPT2LMHeadModel",
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "GPTNeoXForCausalLM",
    "GemmaForCausalLM",
    "Qwen3ForCausalLM",
    "Gemma3ForCausalLM",
    "Olmo2ForCausalLM",
    "Llama4ForCausalLM",
)


def check_bridge_architecture(config) -> None:
    """``ValueError`` when TransformerLens 4.x has no adapter for ``config``'s architecture (before any weights)."""
    from transformer_lens.factories.architecture_adapter_factory import SUPPORTED_ARCHITECTURES

    arch = (getattr(config, "architectures", None) or [None])[0]
    causal = sorted(a for a in SUPPORTED_ARCHITECTURES if a.endswith(CAUSAL_LM_SUFFIXES))
    if arch not in causal:
        tested = [a for a in ORACLE_TESTED if a in causal]
        rest = [a for a in causal if a not in tested]
        raise ValueError(
            f"config.json: architecture {arch!r} not supported; valid: {', '.join(tested)} (oracle-tested here), "
            f"and {len(rest)} more causal LMs of TransformerLens {tl_version()}'s TransformerBridge: "
            f"{', '.join(rest)}"
        )


def bridge_from_hf(
    hf_model,
    tokenizer,
    *,
    source_dir: str,
    device: str = "cpu",
    dtype: str = "float32",
    processing=None,
    n_devices: int = 1,
):
    """A ``TransformerBridge`` around ``hf_model`` (already read from ``source_dir``, nothing downloaded).

    ``processing`` (:class:`interp.models.WeightProcessing`): the default keeps HF's residual coordinates; any flag
    set is applied by the bridge's ``process_weights``. With ``n_devices > 1`` the HF model arrives already placed
    over the GPUs (``device_map="auto"``, accelerate), the way the bridge takes a pre-loaded model. The bridge gets a
    copy of ``tokenizer`` (it may switch the tokenizer's own BOS on); the caller attaches the original.
    """

    import torch
    from transformer_lens.model_bridge import TransformerBridge

    torch_dtype = getattr(torch, dtype)
    if n_devices > 1:  # already placed over the GPUs by interp.models (device_map="auto")
        placement: dict[str, Any] = {"device": None}
    else:
        hf_model = hf_model.to(device=device, dtype=torch_dtype)
        placement = {"device": device}
    own = copy.deepcopy(tokenizer)
    # the bridge reads name_or_path (a tokenizer built in code lacks it), and without add_bos_token it reloads the
    # tokenizer by that name (from the hub, for a model built in memory); the toolkit adds BOS itself (bos_id)
    own.init_kwargs.setdefault("name_or_path", str(source_dir))
    own.init_kwargs["add_bos_token"] = True
    bridge = TransformerBridge.boot_transformers(  # nothing is read from source_dir: model and tokenizer are given
        str(source_dir), hf_model=hf_model, tokenizer=own, dtype=torch_dtype, trust_remote_code=False, **placement
    )
    if processing is not None and any(vars(processing).values()):
        bridge.process_weights(**vars(processing))
    keep_rotated_qk_in_model_dtype(bridge, torch_dtype)
    bridge.eval()
    return bridge


def keep_rotated_qk_in_model_dtype(bridge, dtype) -> None:
    """Cast queries and keys back to ``dtype`` after RoPE, where Hugging Face does.

    Some families (OLMo 2) hand their attention float32 ``cos``/``sin`` tables and rely on their own RoPE function
    to cast the rotated q and k back to the model's dtype. TransformerLens 4.3's reconstructed attention applies
    Llama's RoPE function instead, which does not cast, so in bfloat16 or float16 the float32 queries met half-precision
    values and the forward failed ("expected m1 and m2 to have the same dtype"). A forward hook on each
    ``hook_rot_q``/``hook_rot_k`` (registered with torch, not TransformerLens, so ``reset_hooks`` keeps it, and first,
    so user hooks see what Hugging Face computes) casts them back. In float32 and float64 nothing is added.
    """
    import torch

    if dtype in (torch.float32, torch.float64):
        return

    def to_model_dtype(_module, _inputs, output):
        return output.to(dtype) if torch.is_tensor(output) and output.dtype != dtype else output

    for name, module in bridge.named_modules():
        if name.endswith(("attn.hook_rot_q", "attn.hook_rot_k")):
            module.register_forward_hook(to_model_dtype, prepend=True)


#: The hand-set weights' names (TransformerLens 3.x layout) → the TL-native model's parameters, and how each is laid
#: out there: ``W_Q[h, i, j]`` is ``q.weight[h·d_head + j, i]``, ``W_O[h, j, k]`` is ``o.weight[k, h·d_head + j]``.
def _native_state(w: dict, n_layers: int) -> dict:
    """TransformerLens-layout weights ``w`` (numpy or torch) as the state of a TL-native model (``boot_native``)."""
    import torch

    t = {k: torch.as_tensor(v) for k, v in w.items()}
    out = {
        "tok_embed.weight": t["embed.W_E"],
        "pos.weight": t["pos_embed.W_pos"],
        "ln_out.weight": t["ln_final.w"],
        "ln_out.bias": t["ln_final.b"],
        "head.weight": t["unembed.W_U"].T,
    }
    for la in range(n_layers):
        src, dst = f"blocks.{la}.", f"layers.{la}."
        for x in "QKV":
            wx = t[src + f"attn.W_{x}"]  # [head, d_model, d_head]
            out[dst + f"attn.{x.lower()}.weight"] = wx.permute(0, 2, 1).reshape(-1, wx.shape[1])
            out[dst + f"attn.{x.lower()}.bias"] = t[src + f"attn.b_{x}"].reshape(-1)
        wo = t[src + "attn.W_O"]  # [head, d_head, d_model]
        out[dst + "attn.o.weight"] = wo.reshape(-1, wo.shape[-1]).T
        out[dst + "attn.o.bias"] = t[src + "attn.b_O"]
        for ln in ("ln1", "ln2"):
            out[dst + f"{ln}.weight"], out[dst + f"{ln}.bias"] = t[src + f"{ln}.w"], t[src + f"{ln}.b"]
        out[dst + "mlp.fc_in.weight"], out[dst + "mlp.fc_in.bias"] = t[src + "mlp.W_in"].T, t[src + "mlp.b_in"]
        out[dst + "mlp.fc_out.weight"], out[dst + "mlp.fc_out.bias"] = t[src + "mlp.W_out"].T, t[src + "mlp.b_out"]
    return out


def native_bridge(fields: dict, weights: dict, *, device: str = "cpu", dtype: str = "float32"):
    """A TransformerLens 4.x ``TransformerBridge`` around a TL-native GPT-2-style model (learned positions,
    LayerNorm, plain MLP) with the given weights in TransformerLens 3.x layout (``blocks.L.attn.W_Q`` ...), built
    in code (nothing read or downloaded). ``fields``: ``d_model, d_head, n_heads, d_mlp, d_vocab, n_ctx, n_layers,
    act_fn`` (``d_head`` need not be ``d_model / n_heads``).

    The native model's unembedding has no bias: ``unembed.b_U`` must be the same for every token (a constant shift of
    the logits, which no probability sees); anything else is refused.
    """
    import torch
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    b_u = torch.as_tensor(weights["unembed.b_U"])
    if bool((b_u != b_u.flatten()[0]).any()):
        raise ValueError("weights: unembed.b_U differs between tokens; a TL-native model has no unembedding bias")
    cfg = TransformerBridgeConfig(
        **fields, normalization_type="LN", positional_embedding_type="standard", default_prepend_bos=True
    )
    bridge = TransformerBridge.boot_native(cfg, device=device, dtype=getattr(torch, dtype))
    state = _native_state(weights, fields["n_layers"])
    module = bridge.original_model
    own = {name.replace("._original_component", ""): p for name, p in module.named_parameters()}
    if set(own) != set(state):
        raise RuntimeError(f"native model: parameter names differ: {sorted(set(own) ^ set(state))}")
    with torch.no_grad():
        for name, value in state.items():
            own[name].copy_(value.to(own[name].dtype))
    return bridge.eval()
