"""Attribution patching: every head's patching effect estimated from one forward and one backward pass, beside the
exact effect, with checks of where the linear estimate cannot be trusted (``docs/science.md §4``).

Exact per-head patching (:func:`interp.heads.causal_indirect_effects`) runs once per head; Llama-3-70B has 5,120
heads. Attribution patching (Nanda 2023; AtP, Kramár et al. 2024, arXiv 2403.00745) replaces each patched run by a
first-order estimate: with ``Δz_h`` the patch of head ``h``'s output (its mean over clean prompts minus its value on
the corrupted prompt),

    ΔP_h ≈ ∇_{z_h} P(correct) · Δz_h        (all heads from one backward pass, :func:`interp.engines.gradients`)

The estimate is linear where the model is not; three checks mark each head whose estimate is unreliable:

- *output saturation* (in the spirit of AtP*'s fix for saturated attention: recompute the softmax that the gradient
  linearises): the same gradient read in log space, ``min(P exp(∇ log P · Δz), 1) − P``, keeps the output
  softmax's exponential instead of linearising it; where the two estimates disagree, P sits on a saturated part of
  the softmax.
  AtP*'s own fix targets a head's query and key; here the patched node is the head's output, after its own
  softmax, so the softmax left to linearise is the output's.
- *curvature*: the estimate taken again at the far end of the patch must agree with the one at the corrupted run; a
  ReLU or attention pattern that switches between the two ends (a dead unit at the corrupted run gives a zero
  gradient however large the effect) makes them differ. The far end of head ``h``'s patch is approximated by the run
  with every head of ``h``'s layer patched (heads of one layer act in parallel and meet only downstream): one more
  backward pass per layer, of the last token alone on the fused forward. That run also gives, exactly, the effect of
  patching every head of the layer at once; where it differs from the sum of the layer's estimates, every head of
  the layer is marked (*layer patch*): this catches what no gradient sees, a step whose both ends are flat (a dead
  ReLU before the patch, a saturated softmax after it: the hand-built model's task head).
- *cancellation* (AtP*'s GradDrop): the estimate recomputed with each later block's output detached in the backward
  pass, ``c_GD(h) = 1/(L − 1) Σ_ℓ |ĉ_ℓ(h)|``; where paths through different blocks cancel, ``c_GD`` is large while
  the estimate is small.

:func:`agreement` compares an estimate with the exact effects (Spearman's rank correlation, top-k overlap, the heads
whose error exceeds a tolerance and whether each is flagged). :func:`residual_attribution` gives the same estimate
for patching the residual stream at every layer and position.

>>> atp = attribution_patching(model, "bias_add", "add1", n_prompts=20)      # doctest: +SKIP
>>> agreement(causal_indirect_effects(model, "bias_add", "add1", n_prompts=20), atp)["spearman"]  # doctest: +SKIP
0.93
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from scipy.stats import spearmanr

from interp.capture import token_ids
from interp.engines.gradients import Variant, at_least_float32, head_gradients
from interp.engines.plan import candidates_batch, pad_rows
from interp.heads import cie_prompts, head_outputs
from interp.hooks import forward_logits, hooked
from interp.metrics import bootstrap_cis
from interp.models import tokenizer_of
from interp.prompts import Prompt
from interp.results import HeadMap, Result
from interp.tokenization import pad_id

#: Default tolerance (probability units) below which two estimates, or an estimate and the exact effect, count as
#: the same.
TOLERANCE = 0.02


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class HeadAttribution(Result):
    """Attribution patching of every head (:func:`attribution_patching`), each ``Float[ndarray, "layer head"]`` a mean
    over prompts: ``estimate`` (a :class:`HeadMap`: ∇P · Δz, with bootstrap CIs), ``log_space`` (the output softmax
    kept), ``far_end`` (linearised where every head of the layer is patched), ``grad_drop`` (AtP*'s c_GD),
    ``layer_exact`` ``Float[ndarray, "layer"]`` (the exact effect of patching every head of a layer at once),
    ``unreliable`` (``Bool``: any check failed) and ``why`` (per head, the checks that failed, ``""`` when none);
    the checks' arrays are NaN when not computed."""

    estimate: HeadMap
    log_space: np.ndarray
    far_end: np.ndarray
    grad_drop: np.ndarray
    layer_exact: np.ndarray
    unreliable: np.ndarray
    why: tuple[tuple[str, ...], ...]
    tolerance: float

    _dims: ClassVar = {
        **{k: ("layers", "head") for k in ("log_space", "far_end", "grad_drop", "unreliable")},
        "layer_exact": ("layers",),
    }


def answer_tokens(model, prompts: Sequence[Prompt], k: int) -> list[int]:
    """The one token of candidate ``k``'s answer in each prompt (read right after the prompt's last token);
    ``ValueError`` when an answer has several tokens or merges into the prompt (attribution reads one token)."""
    cands = candidates_batch(tokenizer_of(model), [p.text for p in prompts], [list(p.answers) for p in prompts])
    out = []
    for p, group in zip(prompts, cands, strict=True):
        c = group[k]
        if c.merged or len(c.ids) - c.prompt_len != 1:
            raise ValueError(
                f"prompts: answer {p.answers[k]!r} is not one token read after the prompt; attribution patching "
                "estimates P of one token (use a family whose answers are single tokens)"
            )
        out.append(c.ids[-1])
    return out


def attribution_patching(
    model,
    family: str,
    task: str,
    *,
    n_prompts: int = 50,
    n_examples: int = 10,
    seed: int = 0,
    batch_size: int = 32,
    checks: bool = True,
    tolerance: float = TOLERANCE,
) -> HeadAttribution:
    """Every head's causal indirect effect (the protocol of :func:`interp.heads.causal_indirect_effects`: its mean
    output over clean prompts patched into corrupted ones at the last token, the rise of P(correct)) estimated by
    attribution patching from one backward pass; with ``checks``, the reliability checks of this module (two more
    backward passes per layer: the far end of its heads' patches and GradDrop). A head is ``unreliable`` when a
    check's two numbers differ by more than ``tolerance`` and by more than half the larger of them."""
    clean, corrupted, k = cie_prompts(family, task, n_prompts=n_prompts, n_examples=n_examples, seed=seed)
    means = head_outputs(model, clean, batch_size=batch_size).double().mean(dim=1)  # [layer, head, d_head]
    ids, targets = token_ids(model, corrupted), answer_tokens(model, corrupted, k)
    n_layers, n_heads = means.shape[:2]
    variants = [Variant()]
    if checks:  # the far end of each layer's patches (every head of it patched), then GradDrop per block
        variants += [Variant(replace_z={la: means[la]}) for la in range(n_layers)]
        variants += [Variant(drop_grad_at=la) for la in range(1, n_layers)]
    runs = head_gradients(model, ids, targets, variants, batch_size=batch_size)
    at = runs[0]
    delta = means[None] - at.z  # [prompt, layer, head, d_head]
    p = at.log_p.exp()[:, None, None]
    lin = (at.grad * delta).sum(-1)  # ∇ log P · Δz: [prompt, layer, head]
    per_prompt = (p * lin).numpy()
    layers = tuple(range(n_layers))
    cis = bootstrap_cis(per_prompt.reshape(len(ids), -1).T, seed=seed).reshape(n_layers, n_heads, 2)
    estimate = HeadMap("attribution patching (∇P · Δz)", family, task, layers, per_prompt.mean(axis=0), cis,
                       len(ids), seed)  # fmt: skip
    log_space = ((p * lin.exp()).clamp(max=1.0) - p).numpy().mean(axis=0)  # a probability stays one
    far_end = np.full((n_layers, n_heads), np.nan)
    grad_drop = np.full((n_layers, n_heads), np.nan)
    layer_exact = np.full(n_layers, np.nan)
    if checks:
        for la, far in enumerate(runs[1 : 1 + n_layers]):
            p_far = far.log_p.exp()
            far_end[la] = (p_far[:, None] * (far.grad[:, la] * delta[:, la]).sum(-1)).numpy().mean(axis=0)
            layer_exact[la] = float((p_far - at.log_p.exp()).mean())
        dropped = [_estimate(g, delta) for g in runs[1 + n_layers :]]
        grad_drop = _grad_drop(estimate.mean, dropped)
    unreliable, why = _flags(estimate.mean, log_space, far_end, grad_drop, layer_exact, tolerance)
    return HeadAttribution(estimate, log_space, far_end, grad_drop, layer_exact, unreliable, why, float(tolerance))


def _estimate(g, delta: torch.Tensor) -> np.ndarray:
    """The mean over prompts of ``∇P · Δz`` ``[layer, head]`` from :class:`~interp.engines.gradients.HeadGradients`."""
    return (g.log_p.exp()[:, None, None] * (g.grad * delta).sum(-1)).numpy().mean(axis=0)


def _grad_drop(estimate: np.ndarray, dropped: list[np.ndarray]) -> np.ndarray:
    """AtP*'s GradDrop, ``c_GD(h) = 1/(L − 1) Σ_ℓ |ĉ_ℓ(h)|`` with ``ĉ_ℓ`` the estimate when block ``ℓ``'s output is
    detached in the backward pass (``dropped[ℓ - 1]`` for blocks 1 … L − 1): ``ĉ`` itself for blocks before the
    head's (not on its path), 0 for its own block (its output is the head's path). ``NaN`` for a one-layer model."""
    n_layers = estimate.shape[0]
    if n_layers < 2:
        return np.full_like(estimate, np.nan)
    total = np.zeros_like(estimate)
    layer = np.arange(n_layers)
    for drop in range(n_layers):
        upstream = layer < drop  # heads whose path to the output runs through the dropped block
        if upstream.any():
            total[upstream] += np.abs(dropped[drop - 1][upstream])
        total[layer > drop] += np.abs(estimate[layer > drop])  # the dropped block is not on their path
    return total / (n_layers - 1)


def _disagree(a: np.ndarray, b: np.ndarray, tolerance: float) -> np.ndarray:
    gap = np.abs(a - b)
    return (gap > tolerance) & (gap > 0.5 * np.maximum(np.abs(a), np.abs(b)))


def _flags(estimate, log_space, far_end, grad_drop, layer_exact, tolerance: float):
    summed = estimate.sum(axis=1)
    layer_off = _disagree(summed, layer_exact, tolerance) & np.isfinite(layer_exact)
    checks = {
        "output saturation": _disagree(estimate, log_space, tolerance),
        "curvature": _disagree(estimate, far_end, tolerance) & np.isfinite(far_end),
        "cancellation": (grad_drop > 2 * np.abs(estimate) + tolerance) & np.isfinite(grad_drop),
        "layer patch": np.repeat(layer_off[:, None], estimate.shape[1], axis=1),
    }
    unreliable = np.zeros(estimate.shape, dtype=bool)
    for failed in checks.values():
        unreliable |= failed
    why = tuple(
        tuple(", ".join(n for n, failed in checks.items() if failed[la, h]) for h in range(estimate.shape[1]))
        for la in range(estimate.shape[0])
    )
    return unreliable, why


def agreement(exact: HeadMap, estimate: HeadAttribution | HeadMap | np.ndarray, *, top_k: int = 3,
              tolerance: float = TOLERANCE) -> dict[str, Any]:  # fmt: skip
    """How an estimate of every head's effect agrees with the exact effects ``exact`` (same ``[layer, head]`` grid):
    ``spearman`` (rank correlation over heads), ``top_k_overlap`` (shared heads among the ``top_k`` largest of each,
    over ``top_k``), ``max_abs_error``, ``wrong`` (heads whose error exceeds ``tolerance``, with exact and estimated
    values and, for a :class:`HeadAttribution`, whether its checks flagged the head) and ``missed`` (how many of
    ``wrong`` no check flagged)."""
    est = estimate.estimate.mean if isinstance(estimate, HeadAttribution) else getattr(estimate, "mean", estimate)
    est = np.asarray(est, dtype=float)
    truth = np.asarray(exact.mean, dtype=float)
    if est.shape != truth.shape:
        raise ValueError(f"estimate: shape {est.shape} differs from the exact effects' {truth.shape}")
    k = min(top_k, truth.size)
    top = lambda m: set(np.argsort(-m.ravel(), kind="stable")[:k].tolist())  # noqa: E731
    flagged = estimate.unreliable if isinstance(estimate, HeadAttribution) else None
    wrong = []
    for la, h in zip(*np.nonzero(np.abs(est - truth) > tolerance), strict=True):
        entry = {"head": [int(exact.layers[la]), int(h)], "exact": float(truth[la, h]), "estimate": float(est[la, h])}
        if flagged is not None:
            entry["flagged"] = bool(flagged[la, h])
        wrong.append(entry)
    rho = spearmanr(truth.ravel(), est.ravel())[0] if np.ptp(truth) > 0 and np.ptp(est) > 0 else float("nan")
    return {
        "spearman": float(rho),
        "top_k": k,
        "top_k_overlap": len(top(truth) & top(est)) / k,
        "max_abs_error": float(np.abs(est - truth).max()),
        "tolerance": float(tolerance),
        "wrong": wrong,
        "missed": sum(1 for w in wrong if not w.get("flagged", False)),
    }


def residual_attribution(model, clean: Sequence[Prompt], corrupted: Sequence[Prompt], k: int, *,
                         batch_size: int = 32) -> np.ndarray:  # fmt: skip
    """``Float[ndarray, "prompt layer position"]``: attribution patching of the residual stream, the estimated change
    of P(candidate ``k``'s answer) on each corrupted prompt when ``resid_pre`` of a layer at a position is replaced by
    the clean prompt's there, ``∇_x P · (x_clean − x_corrupted)``: every layer and position from one backward pass.
    Clean and corrupted prompt ``i`` must have the same number of tokens (``ValueError`` otherwise); positions beyond
    a prompt's length are 0."""
    if len(clean) != len(corrupted):
        raise ValueError(f"clean, corrupted: need pairs, got {len(clean)} and {len(corrupted)} prompts")
    ids_c, ids_x = token_ids(model, clean), token_ids(model, corrupted)
    for i, (a, b) in enumerate(zip(ids_c, ids_x, strict=True)):
        if len(a) != len(b):
            raise ValueError(f"clean, corrupted: pair {i} has {len(a)} and {len(b)} tokens; patching by position "
                             "needs equal lengths")  # fmt: skip
    targets = answer_tokens(model, corrupted, k)
    n_layers = model.cfg.n_layers
    width = max(map(len, ids_x))
    out = np.zeros((len(ids_x), n_layers, width))
    pad = pad_id(tokenizer_of(model))
    names = [f"blocks.{la}.hook_resid_pre" for la in range(n_layers)]
    for lo in range(0, len(ids_x), batch_size):
        rows = list(range(lo, min(lo + batch_size, len(ids_x))))
        clean_x, _ = pad_rows([ids_c[i] for i in rows], pad)
        seen: dict[str, torch.Tensor] = {}

        def keep(name: str, seen=seen):
            def fn(act, hook):
                seen[name] = act.detach()

            return fn

        with torch.inference_mode(), hooked(model, [(n, keep(n)) for n in names]):
            forward_logits(model, clean_x)
        x, _ = pad_rows([ids_x[i] for i in rows], pad)
        last = torch.tensor([len(ids_x[i]) - 1 for i in rows], device=model.cfg.device)
        at = torch.arange(len(rows), device=model.cfg.device)
        shifts = [torch.zeros(len(rows), x.shape[1], model.cfg.d_model, device=model.cfg.device,
                              dtype=model.cfg.dtype, requires_grad=True) for _ in names]  # fmt: skip
        values: dict[str, torch.Tensor] = {}

        def shifted(name: str, shift: torch.Tensor, values=values):
            def fn(act, hook):
                values[name] = act.detach()
                return act + shift.to(act.dtype)

            return fn

        hooks = [(n, shifted(n, s)) for n, s in zip(names, shifts, strict=True)]
        with torch.enable_grad(), hooked(model, hooks):
            logits = forward_logits(model, x)[at, last]
            log_p = torch.log_softmax(at_least_float32(logits), dim=-1)[at, torch.tensor([targets[i] for i in rows])]
            p = log_p.exp()
            grads = torch.autograd.grad(p.sum(), shifts, allow_unused=True)
        for la, (name, g) in enumerate(zip(names, grads, strict=True)):
            if g is None:
                continue
            diff = (seen[name] - values[name]).double()
            est = (g.double() * diff).sum(-1).cpu().numpy()  # [row, position]
            for j, i in enumerate(rows):
                out[i, la, : len(ids_x[i])] = est[j, : len(ids_x[i])]
    return out


__all__ = ["HeadAttribution", "agreement", "answer_tokens", "attribution_patching", "residual_attribution"]
