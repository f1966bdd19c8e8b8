"""Hugging Face config → TransformerLens config, per architecture (offline; no hub call ever).

One table, :data:`ARCHITECTURES`: for each HF ``architectures[0]`` the TransformerLens config fields built from the
directory's own ``config.json`` and the name of TransformerLens's weight converter
(``transformer_lens.pretrained.weight_conversions``). TransformerLens's ``convert_hf_model_config`` is not used: it
resolves names on the hub and picks Llama/Gemma layouts from substrings of the model's *name*.

Supported (oracle-tested against the HF model in ``tests/equivalence/test_architectures.py``): GPT-2, Llama (Llama-2
and Llama-3 incl. its ``llama3`` rope scaling and grouped-query attention), Mistral (incl. sliding-window attention),
Qwen2 (Qwen1.5 and Qwen2), GPT-NeoX (Pythia), Gemma.

>>> from transformers import LlamaConfig
>>> fields, converter = tl_fields(LlamaConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128,
...     num_attention_heads=4, num_key_value_heads=2, architectures=["LlamaForCausalLM"]))
>>> fields["n_key_value_heads"], fields["d_head"], converter
(2, 16, 'convert_llama_weights')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: TransformerLens activation names accepted from ``hidden_act`` / ``activation_function``.
ACTIVATIONS = ("silu", "gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "relu")


def _get(c: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        v = getattr(c, n, None)
        if v is not None:
            return v
    return default


def _act(c: Any) -> str:
    act = _get(c, "hidden_act", "activation_function")
    if act not in ACTIVATIONS:
        raise ValueError(f"config.json: activation {act!r} not supported; valid: {', '.join(ACTIVATIONS)}")
    return act


def _rope(c: Any) -> dict[str, Any]:
    """Rotary fields: base and (Llama-3) NTK-by-parts scaling; other rope scalings are refused."""
    params = dict(_get(c, "rope_parameters", default={}) or {})
    scaling = dict(_get(c, "rope_scaling", default={}) or {})
    params = {**scaling, **params}
    base = params.get("rope_theta", _get(c, "rope_theta", "rotary_emb_base", default=10000.0))
    rope_type = (params.get("rope_type") or params.get("type") or "default").lower()
    out: dict[str, Any] = {"positional_embedding_type": "rotary", "rotary_base": float(base)}
    if rope_type == "llama3":
        out.update(
            use_NTK_by_parts_rope=True,
            NTK_original_ctx_len=int(params.get("original_max_position_embeddings", c.max_position_embeddings)),
            NTK_by_parts_low_freq_factor=float(params.get("low_freq_factor", 1.0)),
            NTK_by_parts_high_freq_factor=float(params.get("high_freq_factor", 4.0)),
            NTK_by_parts_factor=float(params.get("factor", 1.0)),
        )
    elif rope_type != "default":
        raise ValueError(f"config.json: rope scaling {rope_type!r} not supported; valid: default, llama3")
    return out


def _d_head(c: Any) -> int:
    return int(_get(c, "head_dim", default=c.hidden_size // c.num_attention_heads))


def _gpt2(c: Any) -> dict[str, Any]:
    if getattr(c, "scale_attn_by_inverse_layer_idx", False) or getattr(c, "reorder_and_upcast_attn", False):
        raise ValueError("config.json: scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported")
    return {
        "d_model": c.n_embd,
        "d_head": c.n_embd // c.n_head,
        "n_heads": c.n_head,
        "d_mlp": c.n_inner or 4 * c.n_embd,
        "n_layers": c.n_layer,
        "n_ctx": c.n_positions,
        "d_vocab": c.vocab_size,
        "act_fn": _act(c),
        "eps": c.layer_norm_epsilon,
        "normalization_type": "LN",
        "positional_embedding_type": "standard",
    }


def _llama_like(c: Any) -> dict[str, Any]:
    """Llama, Mistral, Qwen2, Gemma: RMSNorm, rotary (rotate-half), gated MLP, optional grouped-query attention."""
    if getattr(c, "attention_bias", False) or getattr(c, "mlp_bias", False):
        raise ValueError("config.json: attention_bias / mlp_bias are not supported for this architecture")
    d_head = _d_head(c)
    kv = int(_get(c, "num_key_value_heads", default=c.num_attention_heads))
    return {
        "d_model": c.hidden_size,
        "d_head": d_head,
        "n_heads": c.num_attention_heads,
        "n_key_value_heads": kv if kv != c.num_attention_heads else None,
        "d_mlp": c.intermediate_size,
        "n_layers": c.num_hidden_layers,
        "n_ctx": c.max_position_embeddings,
        "eps": c.rms_norm_eps,
        "d_vocab": c.vocab_size,
        "act_fn": _act(c),
        "normalization_type": "RMS",
        "final_rms": True,
        "gated_mlp": True,
        "rotary_dim": d_head,
        "rotary_adjacent_pairs": False,
        **_rope(c),
    }


def _llama(c: Any) -> dict[str, Any]:
    return _llama_like(c)


def _mistral(c: Any) -> dict[str, Any]:
    out = _llama_like(c)
    out["n_key_value_heads"] = int(_get(c, "num_key_value_heads", default=c.num_attention_heads))
    window = getattr(c, "sliding_window", None)
    if window:
        out.update(use_local_attn=True, window_size=int(window), attn_types=["local"] * c.num_hidden_layers)
    return out


def _qwen2(c: Any) -> dict[str, Any]:
    if getattr(c, "use_sliding_window", False):
        raise ValueError("config.json: use_sliding_window=true is not supported for Qwen2")
    out = _llama_like(c)  # attention_bias is not a Qwen2 field: q/k/v always carry biases (the converter loads them)
    out["n_key_value_heads"] = int(_get(c, "num_key_value_heads", default=c.num_attention_heads))
    return out


def _gemma(c: Any) -> dict[str, Any]:
    out = _llama_like(c)
    out["n_key_value_heads"] = int(_get(c, "num_key_value_heads", default=c.num_attention_heads))
    return out


def _neox(c: Any) -> dict[str, Any]:
    from transformer_lens.utilities.hf_utils import get_rotary_pct_from_config

    if not getattr(c, "attention_bias", True):
        raise ValueError("config.json: GPT-NeoX without attention_bias is not supported")
    d_head = c.hidden_size // c.num_attention_heads
    return {
        "d_model": c.hidden_size,
        "d_head": d_head,
        "n_heads": c.num_attention_heads,
        "d_mlp": c.intermediate_size,
        "n_layers": c.num_hidden_layers,
        "n_ctx": c.max_position_embeddings,
        "eps": c.layer_norm_eps,
        "d_vocab": c.vocab_size,
        "act_fn": _act(c),
        "parallel_attn_mlp": bool(getattr(c, "use_parallel_residual", True)),
        "normalization_type": "LN",
        "rotary_dim": round(get_rotary_pct_from_config(c) * d_head),
        "rotary_adjacent_pairs": False,
        **_rope(c),
    }


#: HF ``architectures[0]`` → (TransformerLens config fields from the HF config, TransformerLens converter name).
ARCHITECTURES: dict[str, tuple[Callable[[Any], dict[str, Any]], str]] = {
    "GPT2LMHeadModel": (_gpt2, "convert_gpt2_weights"),
    "LlamaForCausalLM": (_llama, "convert_llama_weights"),
    "MistralForCausalLM": (_mistral, "convert_mistral_weights"),
    "Qwen2ForCausalLM": (_qwen2, "convert_qwen2_weights"),
    "GPTNeoXForCausalLM": (_neox, "convert_neox_weights"),
    "GemmaForCausalLM": (_gemma, "convert_gemma_weights"),
}


def architecture_of(hf_config: Any) -> str:
    """The HF architecture name of a config (``architectures[0]``, else inferred from ``model_type``)."""
    names = getattr(hf_config, "architectures", None) or []
    if names:
        return str(names[0])
    by_type = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM"}
    by_type |= {"qwen2": "Qwen2ForCausalLM", "gpt_neox": "GPTNeoXForCausalLM", "gemma": "GemmaForCausalLM"}
    return by_type.get(getattr(hf_config, "model_type", ""), str(getattr(hf_config, "model_type", "unknown")))


def tl_fields(hf_config: Any) -> tuple[dict[str, Any], str]:
    """``(HookedTransformerConfig fields, converter name)`` for an HF config; ``ValueError`` when unsupported."""
    arch = architecture_of(hf_config)
    if arch not in ARCHITECTURES:
        raise ValueError(f"config.json: architecture {arch!r} not supported; valid: {', '.join(ARCHITECTURES)}")
    build, converter = ARCHITECTURES[arch]
    fields = build(hf_config)
    fields["original_architecture"] = arch
    return fields, converter


def convert_weights(hf_model: Any, cfg: Any, converter: str) -> dict[str, Any]:
    """TransformerLens state dict from an in-memory HF model with TransformerLens's own converter."""
    from transformer_lens.pretrained import weight_conversions

    return getattr(weight_conversions, converter)(hf_model, cfg)
