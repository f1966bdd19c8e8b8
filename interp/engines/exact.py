"""When each engine is exact: the one place that says which model can take which route.

Every route gives the numbers of a plain forward pass of each (prompt + answer) sequence (``interp.reference``), up to
float rounding, but only for the models it is exact on:

- :func:`absolute_positions`: positions enter through a learned position table and attention is causal and global
  (GPT-2 style). A token's computation then depends only on the tokens it attends to and its position index, so a
  prompt and all its answers can share one *packed* row (:mod:`interp.engines.packed`).
- :func:`fused_forward_exact`: additionally plain attention (one key/value head per query head, no score
  modifiers), one device and no hook attached: PyTorch's fused attention (:mod:`interp.engines.fused`) computes what
  TransformerLens's forward computes.
- :func:`cache_exact`: answers may run from the prompt's key-value cache (:mod:`interp.engines.kv_cache`): not for
  sliding-window attention, whose cached path in TransformerLens does not match a full forward (measured on Mistral:
  several nats), and not while the caller has hooks attached (a hook of theirs, e.g. a
  :func:`interp.patching.patch`, must see every position of every sequence, as in a full forward).
"""

from __future__ import annotations

from interp.hooks import attached_hooks


def absolute_positions(model) -> bool:
    """Learned absolute positions (a position table) and causal attention over the whole context."""
    cfg = model.cfg
    return (
        cfg.positional_embedding_type == "standard"
        and cfg.attention_dir == "causal"
        and not getattr(cfg, "use_local_attn", False)
    )


def fused_forward_exact(model) -> bool:
    """Whether :func:`fused_resid` computes exactly what ``model``'s own forward computes (up to float rounding)."""
    cfg = model.cfg
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
    """Whether answers may run from the prompt's key-value cache (see the module's docstring)."""
    return not getattr(model.cfg, "use_local_attn", False) and attached_hooks(model) == 0
