"""Which attention heads carry each task: head-level measurements, batched and exact (hooks removed on every path).

A head's output at a prompt's last token is ``z`` (``blocks.L.attn.hook_z``, ``[d_head]``), written to the residual
stream as ``z @ W_O[L, h]``. On it:

- :func:`causal_indirect_effects` (Todd et al. 2024): each head's mean ``z`` over in-context prompts of a task,
  patched in at the last token of *corrupted* prompts (the same queries after examples with random answers); the rise
  of P(correct) over the corrupted run is the head's causal indirect effect (CIE). :func:`function_vector`: the sum of
  the top heads' mean outputs, a ``[d_model]`` vector to add to the residual stream.
- :func:`direct_logit_attribution`: each head's direct contribution to each candidate's logit, per prompt: its output
  through the final norm (weight ``γ``, centring and scale, the scale frozen at its value on the prompt) read by the
  unembedding; :func:`logit_components` gives every part of the final residual the same way, and the parts sum to
  the model's centred logits (``docs/science.md §4``).
- :func:`mean_ablation_effects`: each head's ``z`` at the last token replaced by its mean over the prompts; the change
  of each task's P(answer) on mixed prompts.
- :func:`attention_scores`: previous-token, duplicate-token and induction scores per head on repeated random tokens
  (Olsson et al. 2022).
- ``attribution_patching``, ``agreement``, ``residual_attribution`` (:mod:`interp.attribution`, reachable from here):
  every head's CIE estimated from one backward pass, with checks of where the estimate is unreliable;
  :mod:`interp.head_roles`: sufficient / necessary / specific and a label per head and task over prompt seeds.

Every per-head effect runs as cells of :func:`interp.engines.score` (all heads of a batch in the batch dimension, one
:class:`~interp.interventions.Intervention` on ``hook="z"`` per cell), equal to :mod:`interp.reference` (tested).
Results are :class:`~interp.results.HeadMap` values (``[layer, head]`` means with bootstrap CIs over prompts).

>>> cie = causal_indirect_effects(model, "bias_add", "add1", n_prompts=20)   # doctest: +SKIP
>>> cie.top(3)                                                                # doctest: +SKIP
[(1, 2), (2, 0), (1, 0)]
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from interp.capture import token_ids
from interp.engines import nn_logits, nn_traces
from interp.engines.block_weights import silent_heads_only
from interp.engines.exact import fused_forward_exact
from interp.engines.fused import fused_resid
from interp.engines.nn_model import is_nnsight
from interp.engines.plan import check_batch_size, pad_rows
from interp.hooks import check_layer, check_layers, forward_logits, hooked
from interp.interventions import Intervention
from interp.metrics import bootstrap_cis
from interp.models import tokenizer_of
from interp.prompts import Prompt, build_prompts, check_prompts, random_answer_prompts
from interp.results import HeadMap
from interp.scoring import family_candidates, score_answers
from interp.seeds import check_seed
from interp.sweeps import score_cells
from interp.tasks import get_family, resolve_tasks
from interp.tokenization import pad_id
from interp.validate import (
    ArgumentError,
    ArgumentTypeError,
    check_count,
    check_examples_fit,
    check_flag,
    check_int,
    check_model,
    check_tensor,
)


def head_outputs(model, prompts: Sequence[Prompt], *, layers: Sequence[int] | None = None, batch_size: int = 32):
    """``Float[Tensor, "layer prompt head d_head"]``: every head's ``z`` at each prompt's last token (the fused forward
    where :func:`interp.engines.exact.fused_forward_exact` holds and it reads every ``z`` exactly, see
    :data:`interp.engines.fused.ZTap`; else ``hook_z`` hooks on the model's forward)."""
    check_model(model)
    prompts = check_prompts(prompts)
    layers = check_layers(model, layers)
    check_batch_size(batch_size)
    ids = token_ids(model, prompts)
    pad = pad_id(tokenizer_of(model))
    if is_nnsight(model):
        last = [len(x) - 1 for x in ids]
        z = nn_traces.capture(model, ids, layers, "z", last, pad=pad, batch_size=batch_size, max_tokens=None)
        return z.reshape(len(layers), len(ids), model.cfg.n_heads, model.cfg.d_head)
    out = torch.empty(len(layers), len(ids), model.cfg.n_heads, model.cfg.d_head, dtype=model.cfg.dtype)
    fused = fused_forward_exact(model) and all(silent_heads_only(b.attn) for b in model.blocks[: max(layers) + 1])
    slot_of = {la: s for s, la in enumerate(layers)}
    for lo in range(0, len(ids), batch_size):
        chunk = list(range(lo, min(lo + batch_size, len(ids))))
        x, _ = pad_rows([ids[i] for i in chunk], pad)
        last = torch.tensor([len(ids[i]) - 1 for i in chunk])
        if fused:  # the fused forward hands each block's z over; it stops at the last layer's z

            def read(layer: int, z: torch.Tensor, rows=slice(lo, chunk[-1] + 1), last=last):
                if layer in slot_of:  # z: [batch, head, pos, d_head]
                    out[slot_of[layer], rows] = z[torch.arange(len(last)), :, last.to(z.device)].to(out.dtype).cpu()

            with torch.inference_mode():
                fused_resid(model, x, z_tap=read, stop_at_layer=max(layers) + 1, through="z")
            continue

        def keep(slot: int, rows: list[int], last=last):
            def fn(act, hook):
                out[slot, rows] = act[torch.arange(len(rows)), last.to(act.device)].detach().to(out.dtype).cpu()

            return fn

        fwd = [(f"blocks.{la}.attn.hook_z", keep(s, chunk)) for s, la in enumerate(layers)]
        with torch.inference_mode(), hooked(model, fwd):
            forward_logits(model, x)
    return out


def _check_prompt_counts(model, n_prompts: int, n_examples: int) -> None:
    """``n_prompts >= 1``; ``n_examples >= 1`` (in-context prompts) that can fit the model's context."""
    check_count(n_prompts, "n_prompts")
    check_examples_fit(model, check_count(n_examples, "n_examples"))


def _heads(model, layers: Sequence[int]) -> list[tuple[int, int]]:
    return [(la, h) for la in layers for h in range(model.cfg.n_heads)]


def _head_map(measure: str, family: str, task: str, layers, n_heads: int, per_prompt: np.ndarray, seed: int) -> HeadMap:
    """A :class:`HeadMap` from per-prompt values ``[layer * head, prompt]`` (mean and bootstrap CI per head)."""
    mean = per_prompt.mean(axis=1).reshape(len(layers), n_heads)
    ci = bootstrap_cis(per_prompt, seed=seed).reshape(len(layers), n_heads, 2)
    return HeadMap(measure, family, task, tuple(layers), mean, ci, per_prompt.shape[1], seed)


def cie_prompts(family: str, task: str, *, n_prompts: int, n_examples: int, seed: int):
    """``(clean, corrupted, k)`` of the causal-indirect-effect protocol: ``n_prompts`` prompts of ``n_examples``
    examples of ``task`` (every task of the family a candidate), the same queries after examples with random answers,
    and the index of ``task`` among the candidates."""
    seed = check_seed(seed)
    fam = get_family(family)
    resolve_tasks(fam, [task], name="task")
    n_prompts, n_examples = check_count(n_prompts, "n_prompts"), check_count(n_examples, "n_examples")
    tasks = fam.task_names
    one = [float(t == task) for t in tasks]
    kw = dict(n_examples=n_examples, n_prompts=n_prompts, seed=seed)
    return (
        build_prompts(fam, tasks, proportions=one, **kw),
        random_answer_prompts(fam, tasks, proportions=one, **kw),
        (tasks.index(task)),
    )


def causal_indirect_effects(
    model,
    family: str,
    task: str,
    *,
    n_prompts: int = 50,
    n_examples: int = 10,
    seed: int = 0,
    layers: Sequence[int] | None = None,
    batch_size: int = 32,
) -> HeadMap:
    """Per head: mean over corrupted prompts of P(correct | that head's mean clean ``z`` patched in at the last token)
    − P(correct | corrupted). Clean prompts: ``n_examples`` examples of ``task``; corrupted: the same queries after
    ``n_examples`` examples with random answers; candidates: every task of the family."""
    check_model(model)
    fam = get_family(family)
    resolve_tasks(fam, [task], name="task")
    _check_prompt_counts(model, n_prompts, n_examples)
    seed = check_seed(seed)
    layers = check_layers(model, layers)
    check_batch_size(batch_size)
    clean, corrupted, k = cie_prompts(family, task, n_prompts=n_prompts, n_examples=n_examples, seed=seed)
    means = head_outputs(model, clean, layers=layers, batch_size=batch_size).double().mean(dim=1)
    cells = [
        Intervention(la, "replace", means[i, h].float(), hook="z", head=h, label=f"mean z of {task}")
        for i, la in enumerate(layers)
        for h in range(model.cfg.n_heads)
    ]
    # the corrupted run itself as one more cell (zero added after the last block: the same tokens, nothing changed),
    # so that it shares the route's passes with the patched cells instead of running the prompts again
    unpatched = Intervention(model.cfg.n_layers - 1, "add", torch.zeros(model.cfg.d_model), label="unpatched")
    with family_candidates(model, corrupted, task):  # every task of the family is a candidate by design
        p = np.exp(score_cells(model, corrupted, [*cells, unpatched], batch_size=batch_size)[:, :, k])
    return _head_map("causal indirect effect", fam.name, task, layers, model.cfg.n_heads, p[:-1] - p[-1], seed)


def function_vector(model, family: str, task: str, cie: HeadMap, *, top_k: int = 3, n_prompts: int = 50,
                    n_examples: int = 10, seed: int = 0) -> torch.Tensor:  # fmt: skip
    """``Float[Tensor, "d_model"]``: Σ over the ``top_k`` heads of ``cie`` of their mean output ``z̄ @ W_O`` over
    in-context prompts of ``task`` (Todd et al.'s function vector; every head of the map where it holds fewer than
    ``top_k``). ``cie`` is :func:`causal_indirect_effects` of this model (a map of another task is used, with a
    warning, as a control would use it)."""
    check_model(model)
    fam = get_family(family)
    resolve_tasks(fam, [task], name="task")
    if not isinstance(cie, HeadMap):
        raise ArgumentTypeError("cie", f"need the HeadMap of causal_indirect_effects, got {type(cie).__name__}")
    check_layers(model, cie.layers, "cie.layers")
    if cie.mean.shape != (len(cie.layers), model.cfg.n_heads):
        raise ArgumentError("cie", f"a map of shape {cie.mean.shape}; this model has {model.cfg.n_heads} heads a layer")
    top_k = check_count(top_k, "top_k")  # more than the map holds: all of its heads
    _check_prompt_counts(model, n_prompts, n_examples)
    seed = check_seed(seed)
    if (cie.family, cie.task) != (fam.name, task):
        warnings.warn(
            f"cie: the head map of {cie.family}:{cie.task} is used for the function vector of {fam.name}:{task}; "
            f"pass {fam.name}:{task}'s own map unless this is a control",
            stacklevel=2,
        )
    one = [float(t == task) for t in fam.task_names]
    clean = build_prompts(fam, fam.task_names, proportions=one, n_examples=n_examples, n_prompts=n_prompts, seed=seed)
    z = head_outputs(model, clean, layers=list(cie.layers)).double().mean(dim=1)
    fv = torch.zeros(model.cfg.d_model, dtype=torch.float64)
    for la, h in cie.top(top_k):
        fv += z[list(cie.layers).index(la), h] @ head_out_weights(model, la)[h]
    return fv.float()


def final_norm_linear(model, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``Float[Tensor, "batch n d_model"]``: the final norm's linear part at a frozen scale, ``γ ⊙ P x / scale``, for
    residual parts ``x`` ``Float[Tensor, "batch n d_model"]`` and ``scale`` ``Float[Tensor, "batch"]`` (``P``: the
    centring of a LayerNorm, the identity for an RMS norm; ``γ``: the norm's weight; its bias ``β`` left out).

    Computed by the model's own ``ln_final`` with its ``hook_scale`` held at ``scale``, minus the same at ``x = 0``
    (the bias): whatever weight, offset or centring the norm has is applied as the forward applies it (a
    ``TransformerBridge`` does not fold ``γ`` into ``W_U``). The identity for a model without a final norm."""
    check_model(model)
    x = check_tensor(x, "x", ndim=3, width=model.cfg.d_model, shape_hint=f"[batch, n, d_model={model.cfg.d_model}]")
    scale = check_tensor(scale, "scale", ndim=1, shape_hint="[batch]")
    if len(scale) != len(x):
        raise ArgumentError("scale", f"need one scale per row of x ({len(x)}), got {len(scale)}")
    if not bool((scale > 0).all()):
        raise ArgumentError("scale", "every scale must be > 0 (a norm's scale is a root mean square plus epsilon)")
    if model.cfg.normalization_type is None:
        return x
    held = scale.to(x.device, x.dtype)[:, None, None]

    def hold(act, hook):
        return held.expand(act.shape).to(act.dtype)

    with hooked(model, [("ln_final.hook_scale", hold)]):
        both = model.ln_final(torch.cat([x, torch.zeros_like(x[:, :1])], dim=1))
    return both[:, :-1] - both[:, -1:]


#: The parts of the final residual at the last token that :func:`logit_components` attributes the logits to.
COMPONENTS = ("embeddings", "heads", "attention_biases", "mlps", "biases")


def logit_components(model, prompts: Sequence[Prompt], *, batch_size: int = 32,
                     heads_only: bool = False) -> dict[str, np.ndarray]:  # fmt: skip
    """Each part of the final residual at each prompt's last token read as the logits of each candidate task's answer
    (its first token), centred over the candidates: the parts sum to the model's centred logits there.

    With the final norm's scale ``s`` frozen at its value on the prompt (the one approximation: no part's effect
    through ``s`` is counted), ``ln_final(x) = γ ⊙ P x / s + β`` is linear in the residual ``x = Σ_c x_c``, so
    ``logits = Σ_c (γ ⊙ P x_c / s) W_U + (β W_U + b_U)``; each term, centred over the candidates, is that part's
    direct logit attribution (:func:`final_norm_linear`). Parts (:data:`COMPONENTS`), ``Float[ndarray, ...]``:

    - ``"embeddings"`` ``[prompt, task]``: the residual entering block 0 (token and position embeddings);
    - ``"heads"`` ``[prompt, layer, head, task]``: each head's write ``z @ W_O[L, h]``;
    - ``"attention_biases"`` ``[prompt, layer, task]``: the rest of each attention output (its bias ``b_O``);
    - ``"mlps"`` ``[prompt, layer, task]``: each MLP's output;
    - ``"biases"`` ``[prompt, task]``: the final norm's bias and the unembedding's, ``β W_U + b_U``.

    Exact where each block adds its attention and MLP outputs to the residual stream; a model that normalises a
    sublayer's output first (Gemma 2/3, OLMo 2) gets a ``ValueError``. Logits are read before any soft cap.
    ``heads_only``: the ``"heads"`` part alone (cheaper). On a parallel-residual model (GPT-NeoX) the attention's rest
    is its output bias and the MLP what the block adds beside the attention.

    >>> parts = logit_components(model, prompts)                                    # doctest: +SKIP
    >>> centred = sum(p.reshape(len(prompts), -1, p.shape[-1]).sum(axis=1) for p in parts.values())  # doctest: +SKIP
    """
    check_model(model)
    prompts = check_prompts(prompts)
    check_batch_size(batch_size)
    heads_only = check_flag(heads_only, "heads_only")
    cfg = model.cfg
    if _normed_sublayers(model):
        raise ValueError(
            "model: its blocks normalise their sublayers' outputs before they reach the residual stream, so a head's "
            "write is not its direct contribution to the logits; logit attribution needs blocks that add their outputs"
        )
    if not prompts:
        raise ValueError("prompts: need at least one prompt")
    tok = tokenizer_of(model)
    answer_ids = [[tok(a, add_special_tokens=False)["input_ids"][0] for a in p.answers] for p in prompts]
    n_tasks = len(answer_ids[0])
    if any(len(a) != n_tasks for a in answer_ids):
        raise ValueError("prompts: every prompt needs the same number of candidate answers")
    ids = token_ids(model, prompts)
    if is_nnsight(model):
        normed, const = _nn_normed_parts(model, ids, answer_ids, batch_size=batch_size, heads_only=heads_only)
    else:
        normed, const = _tl_normed_parts(model, ids, answer_ids, batch_size=batch_size, heads_only=heads_only)
    n_layers, n_heads = cfg.n_layers, cfg.n_heads
    out = {"heads": np.zeros((len(ids), n_layers, n_heads, n_tasks))}
    if not heads_only:
        out = {
            "embeddings": np.zeros((len(ids), n_tasks)),
            **out,
            "attention_biases": np.zeros((len(ids), n_layers, n_tasks)),
            "mlps": np.zeros((len(ids), n_layers, n_tasks)),
            "biases": np.zeros((len(ids), n_tasks)),
        }
    w_u = unembedding(model)
    for i in range(len(ids)):
        cols = w_u[:, answer_ids[i]]
        logits = torch.cat([normed[i] @ cols, const[i][None]])  # [part + 1, task]
        centred = (logits - logits.mean(dim=1, keepdim=True)).numpy()
        if heads_only:
            out["heads"][i] = centred[:-1].reshape(n_layers, n_heads, n_tasks)
            continue
        out["embeddings"][i] = centred[0]
        per_layer = centred[1:-1].reshape(n_layers, n_heads + 2, n_tasks)
        out["heads"][i] = per_layer[:, :n_heads]
        out["attention_biases"][i] = per_layer[:, n_heads]
        out["mlps"][i] = per_layer[:, n_heads + 1]
        out["biases"][i] = centred[-1]
    return out


def _normed_sublayers(model) -> bool:
    """Whether ``model``'s blocks normalise their sublayers' outputs before adding them to the residual stream
    (Gemma 2/3, OLMo 2): TransformerLens 3.x's ``use_normalization_before_and_after``; on a bridge, whose config does
    not say so, a wrapped block with a norm after its MLP (``post_feedforward_layernorm``)."""
    if is_nnsight(model):
        return nn_logits.normed_sublayers(model)
    if getattr(model.cfg, "use_normalization_before_and_after", False):
        return True
    return any(hasattr(getattr(b, "original_component", None), "post_feedforward_layernorm") for b in model.blocks)


def _nn_normed_parts(model, ids, answer_ids, *, batch_size: int, heads_only: bool):
    """The nnsight engine's ``(normed parts [prompt, part, d_model], constant logits [prompt, task])``, float64."""
    parts, final = nn_logits.residual_parts(
        model, ids, pad=pad_id(tokenizer_of(model)), batch_size=batch_size, heads_only=heads_only
    )
    scale = nn_logits.final_scale(model, final)
    if model.paths.point_outputs:  # a TransformerLens model wrapped by nnsight: its own ln_final at the held scale
        tl = model.module
        with torch.no_grad():
            normed = final_norm_linear(tl, parts.to(tl.cfg.dtype), scale).double()
            zero = torch.zeros(len(ids), 1, tl.cfg.d_model, dtype=tl.cfg.dtype)
            beta = (tl.ln_final(zero)[:, 0] if tl.cfg.normalization_type is not None else zero[:, 0]).double()
    else:
        normed, beta = nn_logits.norm_linear_and_bias(model, parts, scale)
    b_u = nn_logits.unembedding_bias(model)
    w_u = unembedding(model)
    const = torch.stack([
        beta[i] @ w_u[:, a] + (0.0 if b_u is None else b_u[a]) for i, a in enumerate(answer_ids)
    ])  # fmt: skip
    return normed, const


def _tl_normed_parts(model, ids, answer_ids, *, batch_size: int, heads_only: bool):
    """TransformerLens's ``(normed parts [prompt, part, d_model], constant logits [prompt, task])``, float64, CPU."""
    cfg = model.cfg
    n_layers = cfg.n_layers
    pad = pad_id(tokenizer_of(model))
    w_u = model.W_U.detach()
    normed_all, const_all = [], []
    for lo in range(0, len(ids), batch_size):
        chunk = list(range(lo, min(lo + batch_size, len(ids))))
        x, _ = pad_rows([ids[i] for i in chunk], pad)
        last = torch.tensor([len(ids[i]) - 1 for i in chunk])
        seen: dict[str, torch.Tensor] = {}

        def keep(name: str, last=last, seen=seen):
            def fn(act, hook):
                seen[name] = act[torch.arange(len(last)), last.to(act.device)].detach()

            return fn

        names = ["blocks.0.hook_resid_pre"] + ["ln_final.hook_scale"] * (cfg.normalization_type is not None)
        kinds = ("attn.hook_z", "hook_attn_out") + (() if getattr(cfg, "attn_only", False) else ("hook_mlp_out",))
        names += [f"blocks.{la}.{p}" for la in range(n_layers) for p in kinds]
        with torch.inference_mode(), hooked(model, [(n, keep(n)) for n in names]):
            forward_logits(model, x)
        with torch.inference_mode():
            scale = seen["ln_final.hook_scale"][:, 0] if cfg.normalization_type is not None else torch.ones(len(chunk))
            parts = [] if heads_only else [seen["blocks.0.hook_resid_pre"]]  # [batch, d_model] each
            for la in range(n_layers):
                w_o = model.blocks[la].attn.W_O.detach()  # [head, d_head, d_model]
                z = seen[f"blocks.{la}.attn.hook_z"]  # [batch, head, d_head]
                if z.shape[1] != w_o.shape[0]:
                    raise ValueError(f"model: layer {la} has {z.shape[1]} query heads but W_O of {w_o.shape[0]}")
                writes = torch.einsum("bhd,hdm->bhm", z.to(w_o.dtype), w_o)
                parts += [*writes.unbind(1)]
                if not heads_only:
                    mlp = seen.get(f"blocks.{la}.hook_mlp_out")  # none in an attention-only model
                    parts += [seen[f"blocks.{la}.hook_attn_out"] - writes.sum(1)]
                    parts.append(torch.zeros_like(parts[0]) if mlp is None else mlp)
            normed = final_norm_linear(model, torch.stack(parts, dim=1), scale)  # [batch, part, d_model]
            bias = model.ln_final(torch.zeros_like(normed[:, :1])) if cfg.normalization_type is not None else None
        b_u = getattr(model, "b_U", None)
        for j, i in enumerate(chunk):
            cols = w_u[:, answer_ids[i]].double()
            const = torch.zeros(len(answer_ids[i]), dtype=torch.float64)
            if bias is not None:
                const = const + (bias[j, 0].double() @ cols).cpu()
            if b_u is not None:
                const = const + b_u.detach()[answer_ids[i]].double().cpu()
            const_all.append(const)
        normed_all.append(normed.double().cpu())
    return torch.cat(normed_all), torch.stack(const_all)


def unembedding(model) -> torch.Tensor:
    """``Float[Tensor, "d_model vocab"]`` (float64, CPU): the unembedding (TransformerLens's ``W_U``; on the nnsight
    engine ``lm_head``'s weight, transposed)."""
    check_model(model)
    if is_nnsight(model):
        return nn_traces.unembedding(model).double()
    return model.W_U.detach().double().cpu()


def head_out_weights(model, layer: int) -> torch.Tensor:
    """``Float[Tensor, "head d_head d_model"]`` (float64, CPU): how each head's ``z`` is written to the residual stream
    at ``layer`` (TransformerLens's ``W_O``; on the nnsight engine read from the output projection)."""
    check_model(model)
    layer = check_layer(model, layer)
    if is_nnsight(model):
        return nn_traces.out_proj_weights(model, layer).double()
    return model.blocks[layer].attn.W_O.detach().double().cpu()


def direct_logit_attribution(model, prompts: Sequence[Prompt], *, layers: Sequence[int] | None = None,
                             batch_size: int = 32) -> np.ndarray:  # fmt: skip
    """``Float[ndarray, "prompt layer head task"]``: each head's direct contribution to the logit of each candidate
    task's answer (its first token) at the last token, centred over the candidates (a head that raises every
    candidate alike attributes nothing to any): ``(γ ⊙ P (z @ W_O[L, h]) / s) · W_U[:, answer]``, with the final
    norm's weight ``γ``, centring ``P`` and scale ``s`` frozen at its value on the prompt. The ``"heads"`` part of
    :func:`logit_components`, whose parts sum to the model's centred logits."""
    check_model(model)
    prompts = check_prompts(prompts)
    layers = check_layers(model, layers)
    check_batch_size(batch_size)
    return logit_components(model, prompts, batch_size=batch_size, heads_only=True)["heads"][:, list(layers)]


def mean_ablation_effects(model, prompts: Sequence[Prompt], *, layers: Sequence[int] | None = None,
                          batch_size: int = 32) -> np.ndarray:  # fmt: skip
    """``Float[ndarray, "layer head prompt task"]``: P(each task's answer) with one head's ``z`` at the last token
    replaced by its mean over ``prompts``, minus the unpatched P."""
    check_model(model)
    prompts = check_prompts(prompts)
    layers = check_layers(model, layers)
    check_batch_size(batch_size)
    means = head_outputs(model, prompts, layers=layers, batch_size=batch_size).double().mean(dim=1)
    cells = [
        Intervention(la, "ablate", means[i, h].float(), hook="z", head=h, label="mean z")
        for i, la in enumerate(layers)
        for h in range(model.cfg.n_heads)
    ]
    base = np.exp(score_answers(model, prompts, batch_size=batch_size).log_probs)
    patched = np.exp(score_cells(model, prompts, cells, batch_size=batch_size))
    return (patched - base[None]).reshape(len(layers), model.cfg.n_heads, len(prompts), -1)


def attention_scores(model, *, seq_len: int = 20, n_seqs: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """``{"previous_token", "duplicate_token", "induction"}`` → ``Float[ndarray, "layer head"]``: on ``n_seqs``
    sequences of ``seq_len`` random tokens repeated twice (after BOS), the mean attention from each token of the
    second copy to the token before it, to its own earlier copy, and to the token after its earlier copy (a
    sequence is ``1 + 2 * seq_len`` tokens: at most the model's context)."""
    check_model(model)
    longest = (int(model.cfg.n_ctx) - 1) // 2
    seq_len = check_int(seq_len, "seq_len", minimum=1, maximum=longest)
    check_count(n_seqs, "n_seqs")
    seed = check_seed(seed)
    tok = tokenizer_of(model)
    vocab = sorted({i for i in range(len(tok)) if i not in set(tok.all_special_ids)})
    rng = np.random.default_rng(seed)
    bos = token_ids(model, [""])[0]
    seqs = [rng.choice(vocab, size=seq_len, replace=False if len(vocab) >= seq_len else True).tolist()
            for _ in range(n_seqs)]  # fmt: skip
    x = torch.tensor([[*bos, *s, *s] for s in seqs])
    off = len(bos)
    patterns: dict[int, torch.Tensor] = {}

    def keep(act, hook):
        patterns[int(hook.name.split(".")[1])] = act.detach().double().cpu()  # [batch, head, query, key]

    if is_nnsight(model):
        patterns = {
            la: p.double() for la, p in nn_traces.attention_patterns(model, x, range(model.cfg.n_layers)).items()
        }
    else:
        fwd = [(f"blocks.{la}.attn.hook_pattern", keep) for la in range(model.cfg.n_layers)]
        with torch.inference_mode(), hooked(model, fwd):
            forward_logits(model, x)
    q = torch.arange(off + seq_len, off + 2 * seq_len)  # the second copy
    out = {name: np.zeros((model.cfg.n_layers, model.cfg.n_heads)) for name in ("previous_token", "duplicate_token",
                                                                                   "induction")}  # fmt: skip
    for la, pat in patterns.items():
        out["previous_token"][la] = pat[:, :, q, q - 1].mean(dim=(0, 2)).numpy()
        out["duplicate_token"][la] = pat[:, :, q, q - seq_len].mean(dim=(0, 2)).numpy()
        out["induction"][la] = pat[:, :, q, q - seq_len + 1].mean(dim=(0, 2)).numpy()
    return out


#: Attribution patching lives in :mod:`interp.attribution` (it imports this module); reachable from here too, as
#: ``interp.heads.attribution_patching`` (PEP 562: imported on first access, so the two modules import cleanly).
_FROM_ATTRIBUTION = ("HeadAttribution", "agreement", "attribution_patching", "residual_attribution")


def __getattr__(name: str):
    if name in _FROM_ATTRIBUTION:
        from interp import attribution

        return getattr(attribution, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
