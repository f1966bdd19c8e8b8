"""When each engine is exact: the one place that says which model can take which route.

Every route gives the numbers of a plain forward pass of each (prompt + answer) sequence (``interp.reference``), up to
float rounding, but only for the models it is exact on:

- :func:`absolute_positions`: positions enter through a learned position table and attention is causal and global
  (GPT-2 style). A token's computation then depends only on the tokens it attends to and its position index, so a
  prompt and all its answers can share one *packed* row (:mod:`interp.engines.packed`).
- :func:`fused_forward_exact`: additionally plain attention (one key/value head per query head, no score
  modifiers), one device and no hook attached: PyTorch's fused attention (:mod:`interp.engines.fused`) computes what
  TransformerLens's forward computes.
On TransformerLens 4.x (a ``TransformerBridge``) the fused forward holds for GPT-2-style models
(:func:`bridge_gpt2_style`), so they take the packed, shared-prefix and fused-cache routes; every other bridge model
runs full rows (no TransformerLens key-value cache exists for it), with the same numbers.

- :func:`cache_exact`: answers may run from the prompt's key-value cache (:mod:`interp.engines.kv_cache`): not for
  sliding-window attention, whose cached path in TransformerLens does not match a full forward (measured on Mistral:
  several nats), and not while the caller has hooks attached (a hook of theirs, e.g. a
  :func:`interp.patching.patch`, must see every position of every sequence, as in a full forward).
"""

from __future__ import annotations

from interp.bridge import is_bridge
from interp.hooks import attached_hooks


def bridge_gpt2_style(model) -> bool:
    """A TransformerLens 4.x ``TransformerBridge`` whose maths the fused forward reproduces: Hugging Face's GPT-2
    (attention scaled by √d_head, no per-layer scaling, no reordered upcast) or a TL-native model with learned
    positions, LayerNorm and a plain MLP (what :func:`interp.models.hooked_from_tl_weights` builds)."""
    if not is_bridge(model):
        return False
    cfg = model.cfg
    arch = getattr(cfg, "architecture", None)
    if arch == "GPT2LMHeadModel":
        hf = getattr(model.original_model, "config", None)
        plain = (
            hf is not None
            and getattr(hf, "scale_attn_weights", True)
            and not getattr(hf, "scale_attn_by_inverse_layer_idx", False)
            and not getattr(hf, "reorder_and_upcast_attn", False)
        )
    elif arch == "TransformerLensNative":
        plain = (
            getattr(cfg, "normalization_type", None) == "LN"
            and not getattr(cfg, "gated_mlp", False)
            and (getattr(cfg, "attn_scale", -1.0) or -1.0) <= 0
            and (getattr(cfg, "output_logits_soft_cap", 0.0) or 0.0) <= 0
        )
    else:
        return False
    return bool(plain) and getattr(cfg, "n_key_value_heads", None) in (None, cfg.n_heads)


def absolute_positions(model) -> bool:
    """Learned absolute positions (a position table) and causal attention over the whole context."""
    cfg = model.cfg
    if is_bridge(model):
        return bridge_gpt2_style(model) and cfg.positional_embedding_type == "standard"
    return (
        cfg.positional_embedding_type == "standard"
        and cfg.attention_dir == "causal"
        and not getattr(cfg, "use_local_attn", False)
    )


def fused_forward_exact(model) -> bool:
    """Whether :func:`fused_resid` computes exactly what ``model``'s own forward computes (up to float rounding)."""
    cfg = model.cfg
    if is_bridge(model):  # the bridge's own modules run the layer norms and MLPs; the weights are read as views
        return absolute_positions(model) and getattr(cfg, "n_devices", 1) == 1 and attached_hooks(model) == 0
    plain_attention = (
        absolute_positions(model)
        and getattr(cfg, "attn_types", None) is None
        and getattr(cfg, "n_key_value_heads", None) in (None, cfg.n_heads)
        and not getattr(cfg, "use_qk_norm", False)
        and (getattr(cfg, "attn_scores_soft_cap", -1.0) or -1.0) <= 0
        and not getattr(cfg, "use_attention_sinks", False)
        and getattr(cfg, "clip_qkv", None) is None
        and not getattr(cfg, "use_logn_attn", False)
        and not getattr(cfg, "load_in_4bit", False)
    )
    return (
        plain_attention
        and not cfg.attn_only
        and not cfg.parallel_attn_mlp
        and cfg.n_devices == 1
        and all(type(b.attn).__name__ == "Attention" for b in model.blocks)
        and attached_hooks(model) == 0
    )


def cache_exact(model) -> bool:
    """Whether answers may run from the prompt's TransformerLens key-value cache (see the module's docstring; a
    ``TransformerBridge`` has none: it runs cached only where the fused forward holds, with the fused cache)."""
    return not is_bridge(model) and not getattr(model.cfg, "use_local_attn", False) and attached_hooks(model) == 0
