"""The toolkit's hook points (``resid_pre``, ``resid_mid``, ``resid_post``, a head's ``z``) as module paths of a
Hugging Face model, by family: where the nnsight engine (:mod:`interp.engines.nn_traces`) reads and writes.

=================  ===================  ======================  =================================  ===================
family             blocks               head outputs (``z``:    ``resid_mid`` (input of ...)       final norm
(``model_type``)                        input of ...)
=================  ===================  ======================  =================================  ===================
gpt2               ``transformer.h``    ``attn.c_proj``         ``ln_2``                           ``transformer.ln_f``
gpt_neox           ``gpt_neox.layers``  ``attention.dense``     none (parallel attention and MLP)  ``gpt_neox.
                                                                                                   final_layer_norm``
llama, mistral,    ``model.layers``     ``self_attn.o_proj``    ``post_attention_layernorm``       ``model.norm``
qwen2, qwen3,
gemma, llama4
gemma2, gemma3     ``model.layers``     ``self_attn.o_proj``    ``pre_feedforward_layernorm``      ``model.norm``
olmo2              ``model.layers``     ``self_attn.o_proj``    ``mlp`` (post-norm: the MLP reads  ``model.norm``
                                                                the residual itself)
=================  ===================  ======================  =================================  ===================

``resid_pre`` of block ``L`` is the block's input, ``resid_post`` its output (a tensor in transformers 5; the first
element where a block returns a tuple). ``z`` is the input of the attention's output projection, ``[batch, pos,
n_heads · d_head]``, viewed as ``[batch, pos, head, d_head]``. ``resid_mid`` is read where the MLP side reads it (as
TransformerLens's bridge does); a change written there is also added to the block's output, so that the residual
stream itself carries it (the same rule as :func:`interp.hooks._bridge_resid_mid`).

Why a hand-written map and not ``nnterp`` (standardised module names over nnsight): ``nnterp`` 1.3.0, the current
release, does not import under nnsight 0.8.1 (it imports ``nnsight.intervention.tracing.globals``, a module 0.8
removed); it renames blocks, attention, MLP and final norm, but not the output projection's input (``z``) nor the
norm in front of the MLP (``resid_mid``), which the toolkit needs, so a per-family table would be needed beside it
anyway; and on NDIF its wrapper class must be shipped by value with every request (its model key names
``nnterp.StandardizedTransformer``, a class the servers do not have installed). The table above is ten lines.

A model the toolkit built in code (the hand-built model, :mod:`interp.construction`) is no Hugging Face directory: the
engine wraps its TransformerLens module in ``nnsight.NNsight`` and maps every point to the ``HookPoint`` module the
TransformerLens model itself runs it at (:func:`tl_paths`).

>>> p = paths_for("llama"); p.at(p.z, 3)
'model.layers.3.self_attn.o_proj'
>>> paths_for("bert")  # doctest: +ELLIPSIS
Traceback (most recent call last):
ValueError: model_type: 'bert' has no hook-point map for the nnsight engine; valid: gemma, gemma2, ..., qwen3
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModulePaths:
    """Module paths of one model's hook points, as ``str.format`` templates with ``{layer}``.

    Hugging Face models: ``resid_pre``/``resid_post`` are the block's input/output, ``z`` the *input* of ``z``'s
    module, ``resid_mid`` the input of ``mid`` (plus the delta rule). TransformerLens models (``point_outputs``): every
    point is the *output* of a ``HookPoint`` module (``pre``, ``post``, ``z``, ``mid``), and ``mid_is_stream`` says
    whether ``mid`` carries the residual stream itself (a ``HookedTransformer``) or the MLP side's input (a bridge).
    ``pattern``: the module whose output is the attention pattern ``[batch, head, query, key]`` (TransformerLens);
    ``None``: the second output of ``attention`` (Hugging Face, eager attention)."""

    family: str
    block: str
    z: str
    mid: str | None
    attention: str
    norm: str = "RMS"
    pre: str | None = None
    post: str | None = None
    pattern: str | None = None
    point_outputs: bool = False
    mid_is_stream: bool = False

    def at(self, template: str | None, layer: int) -> str | None:
        """``template`` for ``layer`` (``None`` stays ``None``)."""
        return None if template is None else template.format(layer=layer)


def _hf(family: str, blocks: str, out_proj: str, mid: str | None, attention: str, norm: str) -> ModulePaths:
    block = blocks + ".{layer}"
    return ModulePaths(
        family, block, f"{block}.{out_proj}", None if mid is None else f"{block}.{mid}", f"{block}.{attention}", norm
    )


_LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen3", "gemma", "llama4_text")
FAMILY_PATHS: dict[str, ModulePaths] = {
    "gpt2": _hf("gpt2", "transformer.h", "attn.c_proj", "ln_2", "attn", "LN"),
    "gpt_neox": _hf("gpt_neox", "gpt_neox.layers", "attention.dense", None, "attention", "LN"),
    **{
        f: _hf(f, "model.layers", "self_attn.o_proj", "post_attention_layernorm", "self_attn", "RMS")
        for f in _LLAMA_LIKE
    },
    **{
        f: _hf(f, "model.layers", "self_attn.o_proj", "pre_feedforward_layernorm", "self_attn", "RMS")
        for f in ("gemma2", "gemma3", "gemma3_text")
    },
    "olmo2": _hf("olmo2", "model.layers", "self_attn.o_proj", "mlp", "self_attn", "RMS"),
}


def paths_for(model_type: str, *, parallel_residual: bool = True) -> ModulePaths:
    """The map of a Hugging Face ``config.model_type``; a GPT-NeoX model with ``use_parallel_residual=False`` has a
    ``resid_mid`` (its ``post_attention_layernorm``'s input)."""
    if model_type not in FAMILY_PATHS:
        raise ValueError(
            f"model_type: {model_type!r} has no hook-point map for the nnsight engine; valid: "
            f"{', '.join(sorted(FAMILY_PATHS))}"
        )
    if model_type == "gpt_neox" and not parallel_residual:
        return _hf("gpt_neox", "gpt_neox.layers", "attention.dense", "post_attention_layernorm", "attention", "LN")
    return FAMILY_PATHS[model_type]


def tl_paths(tl_model) -> ModulePaths:
    """The map of a TransformerLens model (``HookedTransformer`` or ``TransformerBridge``): each point is the module
    path of the ``HookPoint`` object ``tl_model.hook_dict`` holds for it (found by identity, since a bridge's names
    are aliases of modules nested under ``_original_component``)."""
    where = {id(module): name for name, module in tl_model.named_modules()}

    def template(name: str) -> str:
        path = where[id(tl_model.hook_dict[name])]
        return path.replace("blocks.0.", "blocks.{layer}.", 1)

    bridge = any(c.__name__ == "TransformerBridge" for c in type(tl_model).__mro__)
    return ModulePaths(
        "transformer_lens",
        "blocks.{layer}",
        template("blocks.0.attn.hook_z"),
        template("blocks.0.hook_resid_mid"),
        "blocks.{layer}.attn",
        "LN",
        pre=template("blocks.0.hook_resid_pre"),
        post=template("blocks.0.hook_resid_post"),
        pattern=template("blocks.0.attn.hook_pattern"),
        point_outputs=True,
        mid_is_stream=not bridge,
    )
