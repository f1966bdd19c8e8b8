"""The nnsight engine's side of logit attribution (:func:`interp.heads.logit_components`): the parts of the residual
stream at each prompt's last token, and the final norm read as a linear map at a frozen scale.

The parts come from the points the engine already reads (:mod:`interp.engines.nn_points`): the input of block 0 (the
embeddings), each head's ``z`` (written as ``z @ W_O``), the stream where the MLP side reads it (``resid_mid``) and each
block's output. A block's attention output is ``resid_mid − resid_pre`` (its heads' writes plus the output
projection's bias) and its MLP's output ``resid_post − resid_mid``. A model whose attention and MLP read the same input
(GPT-NeoX with parallel residual) has no ``resid_mid``: there the attention's rest is its output projection's bias and
the MLP's output what the block adds beside the attention, ``resid_post − resid_pre − heads − bias``.

The final norm of a Hugging Face model is ``γ' ⊙ P x / s + β`` with ``P`` the centring of a LayerNorm (the identity for
an RMS norm), ``s`` the scale of the final residual and ``γ' = γ`` (``1 + γ`` in Gemma's RMS norm); a model the
toolkit wrapped from TransformerLens runs its own ``ln_final`` (:func:`interp.heads.final_norm_linear`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interp.engines import nn_traces
from interp.engines.nn_model import NNsightModel

#: Module path of the final norm per family (others: ``model.norm``).
FINAL_NORM = {"gpt2": "transformer.ln_f", "gpt_neox": "gpt_neox.final_layer_norm", "transformer_lens": "ln_final"}
#: Families whose sublayers' outputs are normalised before they reach the residual stream (a head's write is then not
#: its direct contribution to the logits).
NORMED_SUBLAYERS = ("gemma2", "gemma3", "gemma3_text", "olmo2")


def normed_sublayers(model: NNsightModel) -> bool:
    """Whether the model's blocks normalise their sublayers' outputs before adding them (Gemma 2/3, OLMo 2)."""
    return model.paths.family in NORMED_SUBLAYERS


def residual_parts(
    model: NNsightModel, ids: Sequence[Sequence[int]], *, pad: int, batch_size: int, heads_only: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(parts, final)`` at each prompt's last token, float64 on the CPU: ``parts`` ``Float[Tensor, "prompt part
    d_model"]`` in the order embeddings, then per layer its heads' writes, its attention's rest (the bias) and its MLP
    (only the heads' writes with ``heads_only``); ``final`` ``Float[Tensor, "prompt d_model"]``, the last block's
    output (the final norm's input)."""
    cfg = model.cfg
    n_layers = cfg.n_layers
    layers = list(range(n_layers))
    last = [len(x) - 1 for x in ids]

    def read(hook: str, at: list[int]) -> torch.Tensor:
        return nn_traces.capture(model, ids, at, hook, last, pad=pad, batch_size=batch_size, max_tokens=None).double()

    z = read("z", layers).reshape(n_layers, len(ids), cfg.n_heads, cfg.d_head)
    post = read("resid_post", layers)  # [layer, prompt, d_model]
    writes = [torch.einsum("phd,hdm->phm", z[la], nn_traces.out_proj_weights(model, la).double()) for la in layers]
    if heads_only:
        return torch.cat(writes, dim=1), post[-1]
    pre0 = read("resid_pre", [0])[0]
    parallel = model.paths.mid is None  # attention and MLP read the same input and both add to the block's input
    mid = None if parallel else read("resid_mid", layers)
    parts = [pre0[:, None]]
    for la in layers:
        before = pre0 if la == 0 else post[la - 1]
        if parallel:  # the attention's rest is its output bias; the MLP is what the block adds beside the attention
            rest = out_proj_bias(model, la)[None].expand_as(before)
            mid_la = before + writes[la].sum(1) + rest
        else:
            mid_la = mid[la]
            rest = mid_la - before - writes[la].sum(1)
        parts += [writes[la], rest[:, None], (post[la] - mid_la)[:, None]]
    return torch.cat(parts, dim=1), post[-1]


def out_proj_bias(model: NNsightModel, layer: int) -> torch.Tensor:
    """``Float[Tensor, "d_model"]`` float64: the bias of ``layer``'s attention output projection (zeros without)."""
    path = model.paths.at(model.paths.z, layer)
    if getattr(model.nn.get(path)._module, "bias", None) is None:
        return torch.zeros(model.cfg.d_model, dtype=torch.float64)
    return nn_traces.module_weight(model, path, attr="bias").double()


def final_scale(model: NNsightModel, final: torch.Tensor) -> torch.Tensor:
    """``Float[Tensor, "prompt"]``: the final norm's scale of the residual ``final`` ``Float[Tensor, "prompt
    d_model"]``, as the norm computes it (ones for a model without a final norm)."""
    kind = model.cfg.normalization_type
    if kind is None:
        return torch.ones(len(final), dtype=torch.float64)
    x = final - final.mean(dim=-1, keepdim=True) if kind.startswith("LN") else final
    return (x.pow(2).mean(dim=-1) + model.cfg.eps).sqrt()


def norm_linear_and_bias(
    model: NNsightModel, x: torch.Tensor, scale: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A Hugging Face model's ``(γ' ⊙ P x / scale, β)`` for residual parts ``x`` ``Float[Tensor, "prompt part
    d_model"]`` and ``scale`` ``Float[Tensor, "prompt"]``, float64; ``β`` ``Float[Tensor, "prompt d_model"]`` (zeros
    without a bias). A TransformerLens model runs its own ``ln_final`` instead."""
    kind = model.cfg.normalization_type
    zeros = torch.zeros(len(x), x.shape[-1], dtype=torch.float64)
    if kind is None:
        return x, zeros
    path = FINAL_NORM.get(model.paths.family, "model.norm")
    gamma = nn_traces.module_weight(model, path).double()
    if model.paths.family.startswith("gemma"):
        gamma = gamma + 1.0
    centred = x - x.mean(dim=-1, keepdim=True) if kind.startswith("LN") else x
    linear = gamma * centred / scale[:, None, None]
    has_bias = getattr(model.nn.get(path)._module, "bias", None) is not None
    beta = nn_traces.module_weight(model, path, attr="bias").double()[None].expand_as(zeros) if has_bias else zeros
    return linear, beta


def unembedding_bias(model: NNsightModel) -> torch.Tensor | None:
    """``Float[Tensor, "vocab"]`` float64, or ``None`` where the unembedding has no bias."""
    if model.paths.point_outputs:
        b = getattr(model.module, "b_U", None)
        return None if b is None else b.detach().double().cpu()
    if getattr(model.nn.get("lm_head")._module, "bias", None) is None:
        return None
    return nn_traces.module_weight(model, "lm_head", attr="bias").double()
