"""The shared-prefix engine for interventions at the query's last token (λ × layer sweeps, best layer).

Where every answer is one token scored right after the patched position, which is the prompt's last token, the
tokens before it run once for all cells (a key-value cache), the last token once through the blocks below the
patch, and only that token through the blocks above it, with the cells in the batch dimension.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from interp.bridge import is_bridge
from interp.engines.exact import fused_forward_exact
from interp.engines.fused import fused_continue, fused_resid
from interp.engines.kv_cache import sub_cache
from interp.engines.plan import ScoringPlan, pad_rows, plan_scoring
from interp.engines.readout import logits_at
from interp.interventions import Intervention, apply_rowwise
from interp.models import tokenizer_of
from interp.tokenization import pad_id


def shared_prefix_plan(cands, positions: Sequence[int]) -> ScoringPlan | None:
    """The scoring plan when the shared-prefix route is exact for candidates ``cands`` patched at ``positions``:
    every answer one token scored right after the patch position, which is each prompt's last token; else ``None``."""
    plan = plan_scoring(cands)
    n = len(cands)
    pos = np.asarray(list(positions), dtype=np.int64)
    if len(plan.answer_terms) or plan.prefix_prompt != list(range(n)) or len(pos) != n:
        return None
    last = np.array([len(r) - 1 for r in plan.prefixes])
    head = plan.prompt_terms
    if (pos != last).any() or (last < 1).any() or (head[:, 2] != last[head[:, 1]]).any():
        return None
    return plan


def _split_layer(iv: Intervention) -> int:
    """The first block that runs after the intervention (its patch sits between blocks ``s - 1`` and ``s``)."""
    return iv.layer + 1 if iv.hook == "resid_post" else iv.layer


@torch.inference_mode()
def run_shared_prefix(
    model, plan: ScoringPlan, interventions: Sequence[Intervention], *, batch_size: int
) -> np.ndarray:
    """log-probs ``Float[ndarray, "cell prompt cand"]`` by the shared-prefix route (``plan`` from
    :func:`shared_prefix_plan`).

    Identical prompts run once. Per batch of distinct prompts: the tokens before the last run once into a frozen
    key-value cache; per split layer ``s`` (``s = layer + 1`` for ``resid_post``, ``layer`` for ``resid_pre``) the
    last token runs through blocks ``< s`` from that cache, is expanded over the cells of that layer, intervened,
    and runs through blocks ``>= s`` reading its prompt's cached keys and values; one log-softmax per (cell, prompt)
    row serves all candidates. Where :func:`interp.engines.exact.fused_forward_exact` holds, the cache is the fused
    forward's own keys and values, read in place by every cell's row (:func:`interp.engines.fused.fused_continue`);
    otherwise TransformerLens's key-value cache, its rows gathered per cell one layer at a time.
    """
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    n, k = plan.shape
    n_layers, device = model.cfg.n_layers, model.cfg.device
    pad = pad_id(tokenizer_of(model))
    out = np.zeros((len(interventions), n * k))
    fused = fused_forward_exact(model)  # no hook attached, GPT-2-style attention: the fused forward and its own cache
    if not fused and is_bridge(model):
        raise ValueError(
            "model: the shared-prefix route needs the fused forward or TransformerLens's key-value cache, which a "
            "TransformerBridge does not take; choose_route sends this model per cell"
        )
    split_of = np.array([_split_layer(iv) for iv in interventions])
    distinct: dict[tuple[int, ...], int] = {}
    uid = np.array([distinct.setdefault(r, len(distinct)) for r in plan.prefixes])
    rows_u = list(distinct)
    head = plan.prompt_terms  # (slot, row, position, target); row == prompt here
    order = sorted(range(len(rows_u)), key=lambda u: len(rows_u[u]))
    for lo in range(0, len(order), batch_size):
        chunk = order[lo : lo + batch_size]
        b = len(chunk)
        x, mask = pad_rows([rows_u[u][:-1] for u in chunk], pad)
        if fused:  # keys and values of every layer from the fused forward; continued in place, not copied per cell
            keys_values: list = []
            fused_resid(model, x, keys_values=keys_values)
            prompt_len = torch.tensor([len(rows_u[u]) - 1 for u in chunk])
        else:
            cache = TransformerLensKeyValueCache.init_cache(model.cfg, device, b)
            model(x.to(device), attention_mask=mask.to(device), past_kv_cache=cache, stop_at_layer=n_layers)
            cache.freeze()
        last_tok = torch.tensor([[rows_u[u][-1]] for u in chunk])
        local = np.full(len(rows_u), -1, dtype=np.int64)
        local[chunk] = np.arange(b)
        terms = head[local[uid[head[:, 1]]] >= 0]
        t_row = torch.from_numpy(local[uid[terms[:, 1]]])
        t_tgt = torch.from_numpy(terms[:, 3])
        cells_per_pass = max(1, min(1024, 16384 // x.shape[1]) // b)  # one token per row: bounded activations
        for s in sorted(set(split_of.tolist())):
            if fused:
                resid = fused_continue(model, keys_values, prompt_len, torch.arange(b), last_tok, stop_at_layer=s)
            else:
                resid = model(
                    last_tok.to(device),
                    attention_mask=torch.ones_like(last_tok).to(device),
                    past_kv_cache=cache,
                    stop_at_layer=s,
                )  # [b, 1, d_model], unpatched, shared
            ids = np.flatnonzero(split_of == s)
            for clo in range(0, len(ids), cells_per_pass):
                cid = ids[clo : clo + cells_per_pass]
                c = len(cid)
                act = resid.repeat(c, 1, 1)
                which = torch.arange(c).repeat_interleave(b)
                act[:, 0] = apply_rowwise([interventions[i] for i in cid], which, act[:, 0])
                if s < n_layers and fused:
                    rows = torch.arange(b).repeat(c)
                    act = fused_continue(model, keys_values, prompt_len, rows, resid=act, start_at_layer=s)
                elif s < n_layers:
                    view = sub_cache(cache, torch.arange(b).repeat(c))
                    ones = torch.ones(c * b, 1, dtype=view.previous_attention_mask.dtype, device=device)
                    full_mask = torch.cat([view.previous_attention_mask, ones], dim=1)
                    act = model(
                        act, start_at_layer=s, attention_mask=full_mask, past_kv_cache=view, stop_at_layer=n_layers
                    )
                every = torch.arange(c * b)
                logp = torch.log_softmax(logits_at(model, act, every, torch.zeros_like(every)), dim=-1)
                rows = (torch.arange(c)[:, None] * b + t_row[None, :]).flatten().to(logp.device)
                chosen = logp[rows, t_tgt.repeat(c).to(logp.device)]
                out[cid[:, None], terms[None, :, 0]] = chosen.double().cpu().numpy().reshape(c, -1)
    return out.reshape(len(interventions), n, k)
