"""The nnsight engine's traces: scoring (with cells of interventions), capture, a head's ``z``, next-token
log-probabilities and attention patterns, each as few requests of batched traces that save only what the caller
needs.

Every call is one request (:meth:`interp.engines.nn_model.NNsightModel.session`; split every
:data:`~interp.engines.nn_model.TRACES_PER_REQUEST` traces) holding one trace per batch of rows (``batch_size`` rows,
right-padded: causal attention needs no mask for the real positions, as everywhere in the toolkit). Inside a trace:

- an intervention rewrites a hook point (:mod:`interp.engines.nn_points`) through the toolkit's one hook factory
  :func:`interp.interventions.intervention_hook`, so it means what it means on every other engine; points are visited
  in the order the forward pass reaches them (nnsight 0.8 refuses a value the model already ran past:
  ``intervention/interleaver.py`` ``OutOfOrderError``); a value is replaced by assigning the envoy's ``.output`` /
  ``.input`` (``intervention/envoy.py`` lines 554-580, ``input`` repacks into the module's arguments);
- scoring reads the logits at the scored positions only, takes ``log_softmax`` in float64 (as
  :mod:`interp.reference` does) and saves one log-prob and one argmax flag per scored token;
- capture saves ``act[row, position]`` per requested layer; the model computes its logits at the last position only
  (``logits_to_keep=1``, passed through ``Envoy.trace``'s keyword arguments to the forward). It does not stop the
  forward early (``Tracer.stop``, ``intervention/tracer.py`` lines 115-126): the stopped run's frames outlive the
  trace and hold a second batch's activations.

What crosses to the caller (and, remote, over the network) is those slices: never full logits or activations. The
functions run in the trace's body are plain functions of this module; for a remote run nnsight ships them by value
(``ndif.py`` ``pull_env`` / ``register``, lines 31-68 and 499-516: modules not installed on the server are pickled by
value), which ``remote="local"`` checks on every run.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from interp.engines.nn_model import TRACES_PER_REQUEST, NNsightModel
from interp.engines.plan import plan_scoring, token_batches
from interp.interventions import HEAD_HOOK, Intervention, intervention_hook
from interp.tokenization import right_pad

#: Order in which a forward pass reaches a block's points (a block's output after the MLP side's input).
POINT_ORDER = {"resid_pre": 0, HEAD_HOOK: 1, "resid_mid": 2, "resid_post": 3}


@dataclass(frozen=True)
class Site:
    """Where a hook point's value is: the ``attr`` (``"input"``/``"output"``) of module ``path``. ``heads``: the
    value's last dimension is ``[head · d_head]`` (view it per head); ``gives_delta``: read at the MLP side's input,
    so a change there is also added to the block's output (``resid_mid`` of a pre-norm block)."""

    path: str
    attr: str
    heads: int = 0
    gives_delta: bool = False


def site_of(model: NNsightModel, layer: int, hook: str) -> Site:
    """The :class:`Site` of ``hook`` (``resid_pre|resid_mid|resid_post|z``) at ``layer`` of ``model``."""
    p = model.paths
    out = "output" if p.point_outputs else "input"
    if hook == "resid_pre":
        return Site(p.at(p.pre, layer), "output") if p.point_outputs else Site(p.at(p.block, layer), "input")
    if hook == "resid_post":
        return Site(p.at(p.post or p.block, layer), "output")
    if hook == HEAD_HOOK:
        return Site(p.at(p.z, layer), out, heads=model.cfg.n_heads)
    if hook == "resid_mid":
        if p.mid is None:
            raise ValueError(
                "hook: resid_mid does not exist in this model's blocks (attention and MLP read the same input in "
                "parallel, as in GPT-NeoX / Pythia); valid here: resid_pre, resid_post"
            )
        return Site(p.at(p.mid, layer), out, gives_delta=not p.mid_is_stream)
    raise ValueError(f"hook: {hook!r} is not a hook point; valid: {', '.join(POINT_ORDER)}")


@dataclass(frozen=True)
class Step:
    """One visit of a site in a trace: rewrite it by ``interventions[which[i]]`` at ``(rows[i], cols[i])``, and/or add
    the pending ``resid_mid`` change (``takes_delta``: the block's output)."""

    site: Site
    interventions: tuple[Intervention, ...] = ()
    which: torch.Tensor | None = None
    rows: torch.Tensor | None = None
    cols: torch.Tensor | None = None
    takes_delta: bool = False


def plan_steps(model: NNsightModel, entries: Sequence[tuple[Intervention, int, int]]) -> list[Step]:
    """The steps of one batch, in forward order, from ``(intervention, batch row, column)`` entries."""
    by_point: dict[tuple[int, str], list[tuple[Intervention, int, int]]] = {}
    for iv, row, col in entries:
        by_point.setdefault((iv.layer, iv.hook), []).append((iv, row, col))
    steps: list[Step] = []
    for (layer, hook), group in sorted(by_point.items(), key=lambda kv: (kv[0][0], POINT_ORDER[kv[0][1]])):
        ivs: list[Intervention] = []
        which = []
        for iv, _, _ in group:
            k = next((i for i, known in enumerate(ivs) if known is iv), None)
            if k is None:
                ivs.append(iv)
                k = len(ivs) - 1
            which.append(k)
        site = site_of(model, layer, hook)
        rows = torch.tensor([r for _, r, _ in group])
        cols = torch.tensor([c for _, _, c in group])
        if hook == "resid_post" and steps and steps[-1].site == site:  # a delta-only visit of this output: merge
            steps.pop()
        steps.append(Step(site, tuple(ivs), torch.tensor(which), rows, cols, takes_delta=hook == "resid_post"))
        if site.gives_delta:  # the block's output must receive the change too
            steps.append(Step(site_of(model, layer, "resid_post"), takes_delta=True))
    return steps


# ---------------------------------------------------------------------------------------------------------------
# Run inside a trace's body (shipped by value for a remote run): plain torch on the values nnsight hands over.


def _read(nn, site: Site) -> tuple[Any, Any]:
    """(the tensor at ``site``, the raw value there: a block may return a tuple whose first element is the stream)."""
    raw = getattr(nn.get(site.path), site.attr)
    return (raw[0] if isinstance(raw, tuple) else raw), raw


def _write(nn, site: Site, raw: Any, new: torch.Tensor) -> None:
    setattr(nn.get(site.path), site.attr, (new, *raw[1:]) if isinstance(raw, tuple) else new)


def apply_steps(nn, steps: Sequence[Step]) -> None:
    """Rewrite every step's site in order (inside a trace)."""
    delta = None
    for step in steps:
        act, raw = _read(nn, step.site)
        new = act
        if step.takes_delta and delta is not None:
            new, delta = new + delta.to(new.device, new.dtype), None
        if step.interventions:
            fn = intervention_hook(list(step.interventions), step.which, step.rows, step.cols)
            here = SimpleNamespace(name=step.site.path)
            if step.site.heads and new.ndim == 3:  # [batch, pos, head · d_head] → per head and back
                b, n = new.shape[0], new.shape[1]
                new = fn(new.reshape(b, n, step.site.heads, -1), here).reshape(b, n, -1)
            else:
                new = fn(new, here)
        if step.site.gives_delta:
            delta = new - act
        if new is not act:
            _write(nn, step.site, raw, new)


def logits_of(nn) -> torch.Tensor:
    """The model's logits in a trace (a Hugging Face output's ``.logits``, or the tensor a TransformerLens model
    returns), after any final soft-capping the model applies."""
    out = nn.output
    return out.logits if hasattr(out, "logits") else (out[0] if isinstance(out, tuple) else out)


def answer_terms(nn, rows: torch.Tensor, cols: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """log P(``targets[i]`` at ``(rows[i], cols[i])``) in float64 and whether it is the argmax (inside a trace)."""
    logits = logits_of(nn)
    d = logits.device
    lp = torch.log_softmax(logits[rows.to(d), cols.to(d)].double(), dim=-1)
    t = targets.to(d)
    return lp.gather(1, t[:, None])[:, 0].cpu(), (lp.argmax(dim=-1) == t).cpu()


def slices(nn, sites: Sequence[Site], rows: torch.Tensor, cols: torch.Tensor) -> list[torch.Tensor]:
    """``value[rows, cols]`` at each site, in order (inside a trace)."""
    got = []
    for site in sites:
        act, _ = _read(nn, site)
        got.append(act[rows.to(act.device), cols.to(act.device)].detach().cpu())
    return got


def last_log_probs(nn, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``Float[Tensor, "row vocab"]`` next-token log-probs at ``(rows[i], cols[i])`` in float32 (inside a trace)."""
    logits = logits_of(nn)
    d = logits.device
    return torch.log_softmax(logits[rows.to(d), cols.to(d)].float(), dim=-1).cpu()


# ---------------------------------------------------------------------------------------------------------------
# The calls


@dataclass(frozen=True)
class Batch:
    """One trace's input: right-padded ``tokens`` and the plain data its body reads."""

    tokens: torch.Tensor
    steps: tuple[Step, ...] = ()
    rows: torch.Tensor | None = None
    cols: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    positions: torch.Tensor | None = None

    def forward_kwargs(self, model: NNsightModel) -> dict:
        """What the trace passes the forward beside the tokens: the attention mask and positions where the batch has
        them, and no key-value cache to build (a Hugging Face model; a TransformerLens one takes none of these)."""
        if model.paths.point_outputs:
            return {}
        out: dict = {"use_cache": False}
        if self.mask is not None:
            out["attention_mask"] = self.mask
        if self.positions is not None:
            out["position_ids"] = self.positions
        return out


def _requests(batches: list[Batch]) -> list[list[Batch]]:
    return [batches[i : i + TRACES_PER_REQUEST] for i in range(0, len(batches), TRACES_PER_REQUEST)]


def _tokens(model: NNsightModel, rows: Sequence[Sequence[int]], pad: int) -> torch.Tensor:
    x = right_pad([list(r) for r in rows], pad)
    return x if model.remote is True else x.to(model.cfg.device)


@torch.no_grad()
def _run_scoring(model: NNsightModel, batches: list[Batch]) -> list:
    import nnsight

    nn, out = model.nn, []
    for request in _requests(batches):
        got = []
        with model.session("score", len(request)):
            for b in request:
                with nn.trace(b.tokens, **b.forward_kwargs(model)):
                    apply_steps(nn, b.steps)
                    got.append(answer_terms(nn, b.rows, b.cols, b.targets))
            nnsight.save(got)
        out += got
    return out


def cache_exact(model: NNsightModel) -> bool:
    """Whether answers may run from the prompts' key-value cache, kept on the model's side between two traces of a
    session: a Hugging Face model without sliding-window or chunked attention (a right-padded batch's cache of such
    layers keeps the last positions of the padded row, not of each prompt)."""
    if model.paths.point_outputs:
        return False
    c = model.module.config
    c = c.get_text_config() if hasattr(c, "get_text_config") else c
    sliding = getattr(c, "sliding_window", None) and getattr(c, "use_sliding_window", True)
    local = {"sliding_attention", "chunked_attention"} & set(getattr(c, "layer_types", None) or ())
    return not (sliding or local or getattr(c, "attention_chunk_size", None))


@dataclass(frozen=True)
class AnswerPass:
    """The answers' context tokens of one batch, run from its prompts' cache, each prompt's answers side by side in
    its own row (:func:`answer_pass`): ``tokens`` ``[prompt, t]`` (right-padded), the additive attention mask
    ``[prompt, 1, t, cached + t]`` over cache + tokens, the positions, and the scored terms (``rows``, ``cols``,
    ``targets``)."""

    tokens: torch.Tensor
    mask: torch.Tensor
    positions: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    targets: torch.Tensor


def answer_pass(
    prompt_lengths: Sequence[int],
    width: int,
    owner: Sequence[int],
    contexts: Sequence[Sequence[int]],
    terms: np.ndarray,
    *,
    pad: int,
    dtype: torch.dtype,
) -> AnswerPass:
    """The :class:`AnswerPass` of one batch whose prompts (``prompt_lengths`` real tokens each, cached ``width``
    wide) are continued by answer contexts ``contexts[i]`` of prompt ``owner[i]``: a prompt's contexts side by side
    in its row (no copy of its cache per answer), each token at position ``prompt length + its index in its
    context`` and seeing its prompt's real tokens and its own context's tokens up to itself (a 4-D additive mask,
    which Hugging Face models take as given; a pad sees the first token only and is never read). ``terms``:
    ``(context, column, target)`` per scored token."""
    b, owner = len(prompt_lengths), np.asarray(owner, dtype=np.int64)
    sizes = np.array([len(x) for x in contexts], dtype=np.int64)
    offset = np.zeros(len(contexts), dtype=np.int64)
    for o in range(b):  # a prompt's contexts one after another in its row
        mine = np.flatnonzero(owner == o)
        offset[mine] = np.cumsum(sizes[mine]) - sizes[mine]
    t = int((offset + sizes).max())
    # every context token: its row, column, context, index within the context
    ctx_of = np.repeat(np.arange(len(contexts)), sizes)
    within = np.arange(len(ctx_of)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    row, col = owner[ctx_of], offset[ctx_of] + within
    length = np.asarray(prompt_lengths, dtype=np.int64)[row]
    tokens = torch.full((b, t), pad, dtype=torch.long)
    tokens[row, col] = torch.tensor([tok for x in contexts for tok in x], dtype=torch.long)
    positions = torch.zeros(b, t, dtype=torch.long)
    positions[row, col] = torch.from_numpy(length + within)
    keys = np.arange(width + t)
    allowed = np.zeros((b, t, width + t), dtype=bool)
    allowed[:, :, 0] = True
    new_key = keys[None, :] - width  # a key's column among the row's own tokens (negative: the cache)
    allowed[row, col] = (keys[None, :] < length[:, None]) | (
        (new_key >= offset[ctx_of][:, None]) & (new_key <= col[:, None])
    )  # its prompt's real tokens, its own context's tokens up to itself
    allowed_t = torch.from_numpy(allowed)
    mask = torch.zeros(allowed_t.shape, dtype=dtype).masked_fill_(~allowed_t, torch.finfo(dtype).min)[:, None]
    ctx = terms[:, 0].astype(np.int64)
    return AnswerPass(
        tokens,
        mask,
        positions,
        torch.from_numpy(owner[ctx]),
        torch.from_numpy(offset[ctx] + terms[:, 1].astype(np.int64)),
        torch.tensor(terms[:, 2], dtype=torch.long),
    )


#: The most mask entries (rows × width²) a batch may fold its answer pass into (:func:`one_pass`): 64 MiB in float32,
#: about what a Hugging Face model's own eager attention mask of such a batch takes.
ONE_PASS_MAX_MASK = 2**24


def one_pass_fits(b: Batch, a: AnswerPass) -> bool:
    """Whether batch ``b`` and its answer pass ``a`` fold into one forward under :data:`ONE_PASS_MAX_MASK`."""
    rows, width = b.tokens.shape
    return rows * (width + a.tokens.shape[1]) ** 2 <= ONE_PASS_MAX_MASK


def one_pass(b: Batch, a: AnswerPass, lengths: Sequence[int]) -> Batch:
    """Batch ``b`` with its answer pass ``a`` folded in, for a model run here (no request to keep small): each
    prompt's row continues with its answers' contexts side by side, as in ``a``, under one 4-D additive mask (the
    prompt causal over its real tokens, the contexts as ``a`` lets them see), so one forward scores both and no
    key-value cache is built; ``lengths``: each row's real prompt tokens. Its terms are ``b``'s, then ``a``'s
    (columns moved past the prompt part), the order :func:`_interleaved_slots` reads."""
    rows, width = b.tokens.shape
    device = b.tokens.device
    keys = torch.arange(width, device=device)
    real = keys[None, :] < torch.tensor(list(lengths), device=device)[:, None]  # [row, key]
    top = keys[None, :, None] >= keys[None, None, :]  # causal: [1, query, key]
    allowed = (top & real[:, None, :]) | (keys == 0)[None, None, :]  # a pad query sees the first token
    fill = torch.finfo(a.mask.dtype).min
    prompt_part = torch.zeros(rows, 1, width, width, dtype=a.mask.dtype, device=device).masked_fill_(
        ~allowed[:, None], fill
    )
    t = a.tokens.shape[1]
    upper = torch.cat([prompt_part, torch.full((rows, 1, width, t), fill, dtype=a.mask.dtype, device=device)], dim=-1)
    return Batch(
        torch.cat([b.tokens, a.tokens], dim=1),
        b.steps,
        torch.cat([b.rows, a.rows]),
        torch.cat([b.cols, a.cols + width]),
        torch.cat([b.targets, a.targets]),
        mask=torch.cat([upper, a.mask], dim=2),
        positions=torch.cat([keys.expand(rows, width), a.positions], dim=1),
    )


def _cache_kwarg(model: NNsightModel) -> str:
    """The forward's name for a key-value cache (``cache`` in transformers >= 5.2x, ``past_key_values`` before)."""
    return "cache" if "cache" in inspect.signature(model.module.forward).parameters else "past_key_values"


@torch.no_grad()
def _run_cached(model: NNsightModel, batches: list[Batch], answers: list[AnswerPass | None]) -> list:
    import nnsight

    nn, out, name = model.nn, [], _cache_kwarg(model)
    for lo in range(0, len(batches), TRACES_PER_REQUEST):
        request, passes = batches[lo : lo + TRACES_PER_REQUEST], answers[lo : lo + TRACES_PER_REQUEST]
        got = []
        with model.session("score", len(request) + sum(a is not None for a in passes)):
            for b, a in zip(request, passes, strict=True):
                if a is None:  # nothing to continue: no cache to keep (right padding needs no mask)
                    with nn.trace(b.tokens, use_cache=False):
                        apply_steps(nn, b.steps)
                        got.append(answer_terms(nn, b.rows, b.cols, b.targets))
                else:
                    with nn.trace(b.tokens, attention_mask=b.mask, use_cache=True):
                        apply_steps(nn, b.steps)
                        got.append(answer_terms(nn, b.rows, b.cols, b.targets))
                        cache = getattr(nn.output, name)  # the output names its cache as the forward does
                    with nn.trace(a.tokens, attention_mask=a.mask, position_ids=a.positions, **{name: cache}):
                        got.append(answer_terms(nn, a.rows, a.cols, a.targets))
            nnsight.save(got)
        out += got
    return out


def score(
    model: NNsightModel,
    cands,
    cells: Sequence[tuple[Intervention, ...]],
    pos: Sequence[int],
    *,
    pad: int,
    batch_size: int,
    across_prompts: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """log-probs and greedy flags ``[cell, prompt, cand]`` (one cell when ``cells`` is empty) of the candidates
    ``cands`` (:func:`interp.engines.plan.candidates_batch`), planned by :func:`interp.engines.plan.plan_scoring`,
    the prompts replicated per cell and each cell's interventions applied to its rows at ``pos[prompt]`` or their own
    position.

    Where :func:`cache_exact` holds, each prompt runs once and its answers' remaining tokens run in a second trace
    of the same request from the prompt's key-value cache, which stays on the model's side (a session's values flow
    between its traces: ``intervention/envoy.py`` ``Envoy.session``, lines 498-530), each prompt's answer contexts
    side by side in its own row (:func:`answer_pass`: the cache is not copied per answer); the interventions act in
    the prompt pass, as on the toolkit's own cache engine. A model run here (``remote=False``) folds the two passes
    into one forward where the mask stays small (:func:`one_pass`): no cache, one trace per batch; a request keeps
    the two passes, whose inputs are a few tokens and a mask of the answers' rows only. Otherwise every answer
    context is one full row."""
    n, n_cells = len(cands), max(1, len(cells))
    cached = cache_exact(model)
    plan = plan_scoring(cands * n_cells, shared_prefix=cached, across_prompts=across_prompts and not cells)
    terms, tail = plan.prompt_terms, plan.answer_terms  # (slot, row, position, target)
    lengths = [len(p) for p in plan.prefixes]
    order = sorted(range(len(lengths)), key=lambda r: lengths[r])
    by_row: dict[int, list[int]] = {}
    for t, row in enumerate(terms[:, 1].tolist()):
        by_row.setdefault(row, []).append(t)
    by_prefix: dict[int, list[int]] = {}
    for srow, prefix in enumerate(plan.suffix_prefix):
        by_prefix.setdefault(prefix, []).append(srow)
    by_suffix: dict[int, list[int]] = {}
    for t, srow in enumerate(tail[:, 1].tolist()):
        by_suffix.setdefault(srow, []).append(t)
    batches, answers, term_order, tail_order = [], [], [], []
    chunks = list(token_batches(order, lengths, batch_size, None))
    for chunk in chunks:
        local = {row: i for i, row in enumerate(chunk)}
        idx = [t for row in chunk for t in by_row.get(row, [])]
        entries = []
        for row in chunk if cells else ():
            cell, prompt = divmod(plan.prefix_prompt[row], n)
            for iv in cells[cell]:
                entries.append((iv, local[row], pos[prompt] if iv.position is None else iv.position))
        tokens = _tokens(model, [plan.prefixes[r] for r in chunk], pad)
        batches.append(
            Batch(
                tokens,
                tuple(plan_steps(model, entries)),
                torch.tensor([local[r] for r in terms[idx, 1]], dtype=torch.long),
                torch.tensor(terms[idx, 2], dtype=torch.long),
                torch.tensor(terms[idx, 3], dtype=torch.long),
                mask=_tokens(model, [[1] * lengths[r] for r in chunk], 0) if cached else None,
            )
        )
        term_order += idx
        suffixes = [srow for row in chunk for srow in by_prefix.get(row, [])]
        if not suffixes:
            answers.append(None)
            continue
        here = {srow: i for i, srow in enumerate(suffixes)}
        tidx = [t for srow in suffixes for t in by_suffix.get(srow, [])]
        a = answer_pass(
            [lengths[r] for r in chunk],
            tokens.shape[1],
            [local[plan.suffix_prefix[srow]] for srow in suffixes],
            [plan.suffixes[srow] for srow in suffixes],
            np.stack([[here[r] for r in tail[tidx, 1]], tail[tidx, 2], tail[tidx, 3]], axis=1),
            pad=pad,
            dtype=model.cfg.dtype,
        )
        device = tokens.device
        answers.append(dataclasses.replace(a, tokens=a.tokens.to(device), mask=a.mask.to(device),
                                           positions=a.positions.to(device)))  # fmt: skip
        tail_order.append(tidx)
    run_here = cached and model.remote is False
    if run_here and all(a is None or one_pass_fits(b, a) for b, a in zip(batches, answers, strict=True)):
        merged = [b if a is None else one_pass(b, a, [lengths[r] for r in chunk])
                  for b, a, chunk in zip(batches, answers, chunks, strict=True)]  # fmt: skip
        got = _run_scoring(model, merged)
        slots = _interleaved_slots(terms, tail, batches, answers, term_order, tail_order)
    elif cached:
        got = _run_cached(model, batches, answers)
        slots = _interleaved_slots(terms, tail, batches, answers, term_order, tail_order)
    else:
        got = _run_scoring(model, batches)
        slots = terms[term_order, 0]
    values, greedy = [v for v, _ in got], [g for _, g in got]
    values = torch.cat(values).numpy() if values else np.zeros(0)
    greedy = torch.cat(greedy).numpy() if greedy else np.zeros(0, dtype=bool)
    k = plan.shape[1]
    lp = np.zeros(n * n_cells * k)
    np.add.at(lp, slots, values)
    ok = np.ones(n * n_cells * k, dtype=bool)
    np.logical_and.at(ok, slots, greedy)
    return lp.reshape(n_cells, n, k), ok.reshape(n_cells, n, k)


def _interleaved_slots(terms, tail, batches, answers, term_order, tail_order) -> np.ndarray:
    """The slot of every value :func:`_run_cached` returns, in its order: per batch the prompt pass's terms, then
    its answer pass's."""
    out, at, k = [], 0, 0
    for b, a in zip(batches, answers, strict=True):
        n_terms = len(b.rows)
        out.append(terms[term_order[at : at + n_terms], 0])
        at += n_terms
        if a is not None:
            out.append(tail[tail_order[k], 0])
            k += 1
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


@torch.no_grad()
def _run_slices(model: NNsightModel, call: str, batches: list[Batch], sites: list[Site]) -> list[list[torch.Tensor]]:
    import nnsight

    nn, out = model.nn, []
    # A Hugging Face model computes its logits at the last position only: nothing the size of [batch, pos, vocab].
    # (Not tracer.stop(): the stopped forward's frames, held by the swallowed exception, keep a second batch's
    # activations alive into the next trace; measured: 72.5 MB against 41.9 MB for 128 prompts in 4 batches.)
    kw = {} if model.paths.point_outputs else {"logits_to_keep": 1}
    for request in _requests(batches):
        got = []
        with model.session(call, len(request)):
            for b in request:
                with nn.trace(b.tokens, **kw):
                    got.append(slices(nn, sites, b.rows, b.cols))
            nnsight.save(got)
        out += got
    return out


def _slice_batches(model: NNsightModel, ids, pos, pad: int, batch_size: int, max_tokens: int | None):
    lengths = [len(x) for x in ids]
    order = sorted(range(len(ids)), key=lambda i: lengths[i])
    chunks = token_batches(order, lengths, batch_size, max_tokens)
    batches = [
        Batch(
            _tokens(model, [ids[i] for i in chunk], pad),
            rows=torch.arange(len(chunk)),
            cols=torch.tensor([pos[i] for i in chunk]),
        )
        for chunk in chunks
    ]
    return chunks, batches


def capture(
    model: NNsightModel,
    ids: Sequence[Sequence[int]],
    layers: Sequence[int],
    hook: str,
    pos: Sequence[int],
    *,
    pad: int,
    batch_size: int,
    max_tokens: int | None,
) -> torch.Tensor:
    """``Float[Tensor, "layer prompt width"]`` (CPU, the model's dtype): ``hook``'s value at ``pos[i]`` of each prompt
    for every layer (``width``: ``d_model``, or ``n_heads · d_head`` at ``z``); only those slices are saved."""
    visit = sorted(range(len(layers)), key=lambda s: layers[s])
    sites = [site_of(model, layers[s], hook) for s in visit]
    chunks, batches = _slice_batches(model, ids, pos, pad, batch_size, max_tokens)
    got = _run_slices(model, f"capture:{hook}", batches, sites)
    width = model.cfg.n_heads * model.cfg.d_head if hook == HEAD_HOOK else model.cfg.d_model
    out = torch.empty(len(layers), len(ids), width, dtype=model.cfg.dtype)
    for chunk, per_site in zip(chunks, got, strict=True):
        for s, value in zip(visit, per_site, strict=True):
            out[s, chunk] = value.reshape(len(chunk), width).to(out.dtype)
    return out


@torch.no_grad()
def next_log_probs(model: NNsightModel, rows: Sequence[Sequence[int]], *, pad: int, batch_size: int) -> torch.Tensor:
    """``Float[Tensor, "row vocab"]`` log P(next token | ``rows[i]``) (float32; one full row each, no cache)."""
    import nnsight

    lengths = [len(r) for r in rows]
    chunks, batches = _slice_batches(model, rows, [n - 1 for n in lengths], pad, batch_size, None)
    nn, got = model.nn, []
    for request in _requests(batches):
        part = []
        with model.session("next_log_probs", len(request)):
            for b in request:
                with nn.trace(b.tokens):
                    part.append(last_log_probs(nn, b.rows, b.cols))
            nnsight.save(part)
        got += part
    out = torch.empty(len(rows), got[0].shape[-1])
    for chunk, lp in zip(chunks, got, strict=True):
        out[chunk] = lp
    return out


@torch.no_grad()
def attention_patterns(model: NNsightModel, tokens: torch.Tensor, layers: Sequence[int]) -> dict[int, torch.Tensor]:
    """``{layer: Float[Tensor, "batch head query key"]}`` for one batch of ``tokens`` (eager attention's weights; a
    TransformerLens model's ``hook_pattern``)."""
    import nnsight

    p = model.paths
    paths = [p.at(p.pattern, la) if p.pattern else p.at(p.attention, la) for la in sorted(layers)]
    nn, got = model.nn, []
    with model.session("attention_patterns", 1):
        with nn.trace(_tokens(model, tokens.tolist(), 0)):
            for path in paths:
                value = nn.get(path).output
                got.append((value if p.pattern else value[1]).detach().cpu())
        nnsight.save(got)
    if any(g is None for g in got):
        raise ValueError("model: its attention returns no weights (not eager attention); patterns need eager attention")
    return dict(zip(sorted(layers), got, strict=True))


def module_weight(model: NNsightModel, path: str, *, attr: str = "weight") -> torch.Tensor:
    """The weight (or another parameter, ``attr``) of module ``path`` (CPU); for a model whose weights live on a
    server, fetched by a one-token trace."""
    module = model.nn.get(path)._module
    if model.remote is not True:
        return getattr(module, attr).detach().cpu()
    import nnsight

    with model.session("weights", 1):
        with model.nn.trace(torch.zeros(1, 1, dtype=torch.long)):
            w = nnsight.save(getattr(model.nn.get(path)._module, attr).detach().cpu())
    return w


def out_proj_weights(model: NNsightModel, layer: int) -> torch.Tensor:
    """``Float[Tensor, "head d_head d_model"]``: the output projection of ``layer``'s attention per head (a
    ``Linear``'s weight is ``[d_model, head · d_head]``, GPT-2's ``Conv1D``'s ``[head · d_head, d_model]``)."""
    cfg, p = model.cfg, model.paths
    if p.point_outputs:  # a TransformerLens model: its own W_O
        return model.module.blocks[layer].attn.W_O.detach().cpu()
    path = p.at(p.z, layer)
    w = module_weight(model, path)
    flat = w if type(model.nn.get(path)._module).__name__ == "Conv1D" else w.T
    return flat.reshape(cfg.n_heads, cfg.d_head, cfg.d_model)


def unembedding(model: NNsightModel) -> torch.Tensor:
    """``Float[Tensor, "d_model vocab"]``: the unembedding (``lm_head``'s weight, transposed)."""
    if model.paths.point_outputs:
        return model.module.W_U.detach().cpu()
    return module_weight(model, "lm_head").T
