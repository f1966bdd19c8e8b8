"""The shared-prefix engine for interventions at late positions (λ × layer sweeps, best layer, head effects).

Where every answer is one token scored right after the prompt's last token, a patch at position ``P`` of a prompt
changes nothing before ``P``: the tokens before ``P`` run once for all cells (a key-value cache), the *tail* (tokens
``P`` … last) once through the blocks below the patch, and only the tail through the blocks from the patch on, the
cells in the batch dimension. A patch of the residual stream (``resid_pre``/``resid_post``) splits between blocks; a
patch of a head's output (``hook="z"``) splits inside its block: the tail enters that block unpatched, and each cell
edits its head's ``z`` before ``W_O``. At the query's last token (the default) the tail is one token. On the fused
forward the cells of every start layer share one pass: they join the tail's rows as it enters their block
(:func:`interp.engines.fused.fused_continue_joining`), so each block runs once for all the cells that reach it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from interp.bridge import is_bridge
from interp.engines.exact import fused_forward_exact
from interp.engines.fused import Join, fused_continue, fused_continue_joining, fused_resid
from interp.engines.kv_cache import sub_cache
from interp.engines.plan import ScoringPlan, pad_rows, plan_scoring
from interp.engines.readout import logits_at
from interp.hooks import hooked
from interp.interventions import HEAD_HOOK, Intervention, apply_rowwise, intervention_hook
from interp.models import tokenizer_of
from interp.tokenization import pad_id

#: Hook points the shared prefix splits at.
SPLIT_HOOKS = ("resid_pre", "resid_post", HEAD_HOOK)

#: One pass of cells holds at most ``PASS_ROWS`` tail rows and ``PASS_ROW_KEYS`` rows × cached keys (bounded
#: activations); more cells run in several passes.
PASS_ROWS, PASS_ROW_KEYS = 1024, 16384


def shared_prefix_plan(cands, positions: Sequence[int]) -> ScoringPlan | None:
    """The scoring plan when the shared-prefix route is exact for candidates ``cands`` patched at ``positions`` (one
    per prompt, at most its last token, after BOS): every answer one token scored right after the prompt's last token
    (none merged into it); else ``None``."""
    plan = plan_scoring(cands)
    n = len(cands)
    pos = np.asarray(list(positions), dtype=np.int64)
    if len(plan.answer_terms) or plan.prefix_prompt != list(range(n)) or len(pos) != n:
        return None
    last = np.array([len(r) - 1 for r in plan.prefixes])
    head = plan.prompt_terms
    if (pos > last).any() or (pos < 1).any() or (head[:, 2] != last[head[:, 1]]).any():
        return None
    return plan


def split_positions(interventions: Sequence[Intervention], positions: Sequence[int]) -> np.ndarray:
    """``Int[ndarray, "prompt"]``: where each prompt's tail starts, the earliest position any intervention acts at
    (``position=None``: ``positions[i]``, the prompt's own)."""
    pos = np.asarray(list(positions), dtype=np.int64)
    fixed = [iv.position for iv in interventions if iv.position is not None]
    out = np.full(len(pos), min(fixed), dtype=np.int64) if fixed else pos.copy()
    if any(iv.position is None for iv in interventions):
        out = np.minimum(out, pos)
    return out


def _start_layer(iv: Intervention) -> int:
    """The first block that runs per cell: after the patch of a residual (``resid_post``: ``layer + 1``, ``resid_pre``:
    ``layer``), or the head's own block (``z``: its output is edited inside it)."""
    return iv.layer + 1 if iv.hook == "resid_post" else iv.layer


@torch.inference_mode()
def run_shared_prefix(
    model, plan: ScoringPlan, interventions: Sequence[Intervention], positions: Sequence[int], *, batch_size: int
) -> np.ndarray:
    """log-probs ``Float[ndarray, "cell prompt cand"]`` by the shared-prefix route (``plan`` from
    :func:`shared_prefix_plan`, ``positions`` the per-prompt positions an intervention with ``position=None`` acts at).

    Identical (prompt, position) pairs run once. Per batch of them: the tokens before each tail
    (:func:`split_positions`) run once into a frozen key-value cache; per start layer ``s`` (:func:`_start_layer`) the
    tail runs through blocks ``< s`` from that cache, is expanded over the cells of that layer, intervened, and runs
    through blocks ``>= s`` reading its prompt's cached keys and values; one log-softmax per (cell, prompt) row at the
    tail's last token serves all candidates. Where :func:`interp.engines.exact.fused_forward_exact` holds, the cache is
    the fused forward's own keys and values, read in place by every cell's row, the cells of all start layers joining
    one pass as the tail reaches their block (:func:`_fused_cells`), and tails may be longer than one token; otherwise
    TransformerLens's key-value cache (rows gathered per cell one layer at a time), for tails of one token (the last).
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
    pos = np.asarray(list(positions), dtype=np.int64)
    split = split_positions(interventions, pos)
    if not fused and (split != np.array([len(r) - 1 for r in plan.prefixes])).any():
        raise ValueError("positions: TransformerLens's key-value cache continues the last token only; choose_route "
                         "sends patches before it per cell")  # fmt: skip
    start_of = np.array([_start_layer(iv) for iv in interventions])
    is_z = np.array([iv.hook == HEAD_HOOK for iv in interventions])
    distinct: dict[tuple, int] = {}
    uid = np.array([distinct.setdefault((r, int(p)), len(distinct)) for r, p in zip(plan.prefixes, pos, strict=True)])
    keys = list(distinct)
    cut = np.zeros(len(keys), dtype=np.int64)
    cut[uid] = split
    head = plan.prompt_terms  # (slot, row, position, target); row == prompt here
    order = sorted(range(len(keys)), key=lambda u: (len(keys[u][0]), len(keys[u][0]) - cut[u]))
    for lo in range(0, len(order), batch_size):
        chunk = order[lo : lo + batch_size]
        b = len(chunk)
        x, mask = pad_rows([keys[u][0][: cut[u]] for u in chunk], pad)
        tails = [keys[u][0][cut[u] :] for u in chunk]
        tail_x, tail_mask = pad_rows(tails, pad)
        t = tail_x.shape[1]
        tail_last = torch.tensor([len(tl) - 1 for tl in tails])
        if fused:  # keys and values of every layer from the fused forward; continued in place, not copied per cell
            keys_values: list = []
            fused_resid(model, x, keys_values=keys_values, through="keys_values")
            prompt_len = torch.from_numpy(cut[chunk])
        else:
            cache = TransformerLensKeyValueCache.init_cache(model.cfg, device, b)
            model(x.to(device), attention_mask=mask.to(device), past_kv_cache=cache, stop_at_layer=n_layers)
            cache.freeze()
        local = np.full(len(keys), -1, dtype=np.int64)
        local[chunk] = np.arange(b)
        terms = head[local[uid[head[:, 1]]] >= 0]
        t_row = torch.from_numpy(local[uid[terms[:, 1]]])
        t_tgt = torch.from_numpy(terms[:, 3])
        # where each cell patches each row of the batch, in tail coordinates: [cell, b]
        own = np.array([keys[u][1] for u in chunk]) - cut[chunk]
        place = np.stack([own if iv.position is None else iv.position - cut[chunk] for iv in interventions])
        cells_per_pass = max(1, min(PASS_ROWS, PASS_ROW_KEYS // x.shape[1]) // (b * t))
        if fused:
            _fused_cells(model, interventions, keys_values, prompt_len, tail_x, tail_last, place, start_of, is_z,
                         cells_per_pass, t_row, t_tgt, terms, out)  # fmt: skip
            continue
        for s in sorted(set(start_of.tolist())):
            resid = model(
                tail_x.to(device), attention_mask=tail_mask.to(device), past_kv_cache=cache, stop_at_layer=s
            )  # [b, t, d_model], unpatched, shared
            for on_z in (False, True):
                ids = np.flatnonzero((start_of == s) & (is_z == on_z))
                for clo in range(0, len(ids), cells_per_pass):
                    cid = ids[clo : clo + cells_per_pass]
                    c = len(cid)
                    ivs = [interventions[i] for i in cid]
                    which = torch.arange(c).repeat_interleave(b)
                    cols = torch.from_numpy(place[cid].reshape(-1))
                    act = resid.repeat(c, 1, 1)
                    if not on_z:
                        act = _resid_patcher(ivs, which, cols)(act)
                    if s < n_layers:
                        view = sub_cache(cache, torch.arange(b).repeat(c))
                        full_mask = torch.cat([view.previous_attention_mask, tail_mask.repeat(c, 1).to(device)], dim=1)
                        patch = [(ivs[0].hook_name, intervention_hook(ivs, which, None, cols))] if on_z else []
                        with hooked(model, patch):
                            act = model(act, start_at_layer=s, attention_mask=full_mask, past_kv_cache=view,
                                        stop_at_layer=n_layers)  # fmt: skip
                    _read_cells(model, act, torch.arange(c * b), tail_last.repeat(c), cid, b, t_row, t_tgt, terms, out)
    return out.reshape(len(interventions), n, k)


def _fused_cells(model, interventions, keys_values, prompt_len, tail_x, tail_last, place, start_of, is_z,
                 cells_per_pass: int, t_row, t_tgt, terms, out: np.ndarray) -> None:  # fmt: skip
    """The cells of one batch of prompts on the fused route, into ``out``: the tails' unpatched run to the earliest
    start layer, then, ``cells_per_pass`` cells at a time (in order of their start layers), one
    :func:`interp.engines.fused.fused_continue_joining` pass in which each start layer's cells join the rows as the
    tails enter that block (a residual patch as they enter it, a head's patch inside it); the tails' unpatched
    residual entering each block is kept from the first pass for the later ones."""
    b = tail_x.shape[0]
    base_rows = torch.arange(b)
    order = sorted(range(len(interventions)), key=lambda i: start_of[i])
    kept: dict[int, torch.Tensor] = {}
    for clo in range(0, len(order), cells_per_pass):
        cid = np.array(order[clo : clo + cells_per_pass])
        first = int(start_of[cid].min())
        if kept:
            base = kept[first]
        else:
            base = fused_continue(model, keys_values, prompt_len, base_rows, tail_x, stop_at_layer=first)
        groups, joins = [], []
        for s in sorted(set(start_of[cid].tolist())):
            for on_z in (False, True):
                ids = cid[(start_of[cid] == s) & (is_z[cid] == on_z)]
                if not len(ids):
                    continue
                ivs = [interventions[i] for i in ids]
                which = torch.arange(len(ids)).repeat_interleave(b)
                cols = torch.from_numpy(place[ids].reshape(-1))
                if on_z:
                    joins.append(Join(s, len(ids), edit_z=_z_editor(ivs, which, cols)))
                else:
                    joins.append(Join(s, len(ids), patch=_resid_patcher(ivs, which, cols)))
                groups.append(ids)
        h, first_rows = fused_continue_joining(model, keys_values, prompt_len, base_rows, base, joins,
                                               start_at_layer=first, kept=kept if clo == 0 else None)  # fmt: skip
        ordered = sorted(zip(first_rows, groups, strict=True), key=lambda pair: pair[0])  # the joined rows' order
        ids = np.concatenate([g for _, g in ordered])  # every joined row is a cell's: rows b … end, one read
        _read_cells(model, h, torch.arange(b, h.shape[0]), tail_last.repeat(len(ids)), ids, b, t_row, t_tgt, terms, out)


def _read_cells(model, act, rows, last, cid, b: int, t_row, t_tgt, terms, out: np.ndarray) -> None:
    """Each cell's log-probs of its prompts' candidates into ``out[cid]``, read at the tails' last tokens (``rows`` of
    ``act``: cell after cell, ``b`` prompt rows each; ``last``: each row's last token)."""
    c = len(cid)
    logp = torch.log_softmax(logits_at(model, act, rows, last), dim=-1)
    sel = (torch.arange(c)[:, None] * b + t_row[None, :]).flatten().to(logp.device)
    chosen = logp[sel, t_tgt.repeat(c).to(logp.device)]
    out[cid[:, None], terms[None, :, 0]] = chosen.double().cpu().numpy().reshape(c, -1)


def _resid_patcher(interventions: Sequence[Intervention], which: torch.Tensor, cols: torch.Tensor):
    """``patch`` of a :class:`interp.engines.fused.Join` for cells on the residual stream: row ``i`` gets
    ``interventions[which[i]]`` at tail position ``cols[i]``."""

    def patch(act: torch.Tensor) -> torch.Tensor:  # [row, pos, d_model]
        rows = torch.arange(act.shape[0], device=act.device)
        c = cols.to(act.device)
        act[rows, c] = apply_rowwise(interventions, which, act[rows, c])
        return act

    return patch


def _z_editor(interventions: Sequence[Intervention], which: torch.Tensor, cols: torch.Tensor):
    """``edit_z`` of :func:`interp.engines.fused.fused_continue` for cells on heads' outputs: row ``i`` gets
    ``interventions[which[i]]`` on its head's ``z`` at tail position ``cols[i]``."""
    heads = torch.tensor([iv.head for iv in interventions])

    def edit(z: torch.Tensor) -> torch.Tensor:  # [row, head, pos, d_head]
        rows = torch.arange(z.shape[0], device=z.device)
        h, c = heads.to(z.device)[which.to(z.device)], cols.to(z.device)
        z[rows, h, c] = apply_rowwise(interventions, which, z[rows, h, c])
        return z

    return edit
