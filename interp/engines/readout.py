"""Reading log-probabilities off final residuals: ``ln_final``, the unembedding and a log-softmax, only at the
positions that are scored."""

from __future__ import annotations

import numpy as np
import torch

from interp.engines.plan import ScoringPlan
from interp.engines.weights_cache import cached_from_weights


def unembed(model, x: torch.Tensor) -> torch.Tensor:
    """``Float[Tensor, "n vocab"]`` logits of normalised residuals ``Float[Tensor, "n d_model"]``.

    TransformerLens's ``Unembed`` copies ``W_U.T`` into a contiguous tensor on every call (154 MB for GPT-2 small,
    a tenth of a second on CPU); multiplying by ``W_U`` as stored needs no copy. A bias of zeros (GPT-2's) is not
    added: ``addmm`` would first copy it into every row of the ``[n, vocab]`` output. Hooks on ``unembed`` keep the
    module's own forward.
    """
    u = model.unembed
    if u.hook_in.fwd_hooks or u.hook_out.fwd_hooks:
        return u(x[None])[0]
    w = u.W_U.to(x.dtype)
    if not cached_from_weights(u, "bias_nonzero", (u.b_U,), lambda: bool(u.b_U.any())):  # kept: no device sync per call
        return x @ w
    return torch.addmm(u.b_U.to(x.dtype), x, w)


def logits_at(model, resid: torch.Tensor, rows: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Logits ``Float[Tensor, "n vocab"]`` at ``resid[rows, pos]`` only (``ln_final`` + unembed + soft cap).

    The dtype is the model's, raised to float32 for half precision (so a log-softmax never runs below float32).
    """
    device = resid.device
    x = resid[rows.to(device), pos.to(device)][None]  # [1, n, d_model]
    if model.cfg.normalization_type is not None:
        x = model.ln_final(x)
    logits = unembed(model, x[0])
    cap = getattr(model.cfg, "output_logits_soft_cap", 0.0) or 0.0
    if cap > 0:
        logits = cap * torch.tanh(logits / cap)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return logits


def read_targets(model, resid: torch.Tensor, rows: torch.Tensor, pos: torch.Tensor, targets: torch.Tensor):
    """log P(target) (float64, CPU) and whether target is the argmax, at ``resid[rows, pos]`` only."""
    key = rows * resid.shape[1] + pos
    uniq, inv = torch.unique(key, return_inverse=True)  # candidates sharing a position: one log-softmax
    width = resid.shape[1]
    logits = logits_at(model, resid, uniq // width, uniq % width)
    logp = torch.log_softmax(logits, dim=-1)
    inv, t = inv.to(logp.device), targets.to(logp.device)
    chosen = logp[inv, t]
    return chosen.double().cpu(), (logits.argmax(dim=-1)[inv] == t).cpu()


def terms_in_batch(terms: np.ndarray, local: np.ndarray) -> tuple[np.ndarray, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices of ``terms`` whose row is in this batch (``local[row] >= 0``) and their (batch row, pos, target)."""
    idx = np.flatnonzero(local[terms[:, 1]] >= 0) if len(terms) else np.zeros(0, dtype=np.int64)
    t = terms[idx]
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return idx, as_t(local[t[:, 1]]), as_t(t[:, 2]), as_t(t[:, 3])


def per_slot(plan: ScoringPlan, slots: np.ndarray, lp: torch.Tensor, ok: torch.Tensor):
    """Per (prompt, candidate) slot: the scored tokens' summed log-prob ``Float[ndarray, "prompt cand"]`` and whether
    all of them were the argmax (greedy-exact)."""
    n_slots = plan.shape[0] * plan.shape[1]
    total = np.bincount(slots, weights=lp.numpy(), minlength=n_slots)
    n_ok = np.bincount(slots, weights=ok.numpy().astype(np.float64), minlength=n_slots)
    n_all = np.bincount(slots, minlength=n_slots)
    return total.reshape(plan.shape), (n_ok == n_all).reshape(plan.shape)
