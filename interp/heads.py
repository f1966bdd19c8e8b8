"""Which attention heads carry each task: head-level measurements, batched and exact (hooks removed on every path).

A head's output at a prompt's last token is ``z`` (``blocks.L.attn.hook_z``, ``[d_head]``), written to the residual
stream as ``z @ W_O[L, h]``. On it:

- :func:`causal_indirect_effects` (Todd et al. 2024): each head's mean ``z`` over in-context prompts of a task,
  patched in at the last token of *corrupted* prompts (the same queries after examples with random answers); the rise
  of P(correct) over the corrupted run is the head's causal indirect effect (CIE). :func:`function_vector`: the sum of
  the top heads' mean outputs, a ``[d_model]`` vector to add to the residual stream.
- :func:`direct_logit_attribution`: each head's direct contribution to each candidate's logit (its output through the
  final layer norm's scale, read by the unembedding), per prompt: which heads push which task's answer.
- :func:`mean_ablation_effects`: each head's ``z`` at the last token replaced by its mean over the prompts; the change
  of each task's P(answer) on mixed prompts.
- :func:`attention_scores`: previous-token, duplicate-token and induction scores per head on repeated random tokens
  (Olsson et al. 2022).

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
from interp.engines.plan import check_batch_size, pad_rows
from interp.hooks import check_layers, forward_logits, hooked
from interp.interventions import Intervention
from interp.metrics import bootstrap_ci
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
    check_int,
    check_model,
)


def head_outputs(model, prompts: Sequence[Prompt], *, layers: Sequence[int] | None = None, batch_size: int = 32):
    """``Float[Tensor, "layer prompt head d_head"]``: every head's ``z`` at each prompt's last token."""
    check_model(model)
    prompts = check_prompts(prompts)
    layers = check_layers(model, layers)
    check_batch_size(batch_size)
    ids = token_ids(model, prompts)
    out = torch.empty(len(layers), len(ids), model.cfg.n_heads, model.cfg.d_head, dtype=model.cfg.dtype)
    pad = pad_id(tokenizer_of(model))
    for lo in range(0, len(ids), batch_size):
        chunk = list(range(lo, min(lo + batch_size, len(ids))))
        x, _ = pad_rows([ids[i] for i in chunk], pad)
        last = torch.tensor([len(ids[i]) - 1 for i in chunk])

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
    ci = np.array([bootstrap_ci(v, seed=seed) for v in per_prompt]).reshape(len(layers), n_heads, 2)
    return HeadMap(measure, family, task, tuple(layers), mean, ci, per_prompt.shape[1], seed)


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
    tasks = fam.task_names
    k = tasks.index(task)
    one = [float(t == task) for t in tasks]
    kw = dict(n_examples=n_examples, n_prompts=n_prompts, seed=seed)
    clean = build_prompts(fam, tasks, proportions=one, **kw)
    corrupted = random_answer_prompts(fam, tasks, proportions=one, **kw)
    means = head_outputs(model, clean, layers=layers, batch_size=batch_size).double().mean(dim=1)
    cells = [
        Intervention(la, "replace", means[i, h].float(), hook="z", head=h, label=f"mean z of {task}")
        for i, la in enumerate(layers)
        for h in range(model.cfg.n_heads)
    ]
    with family_candidates(model, corrupted, task):  # every task of the family is a candidate by design
        base = np.exp(score_answers(model, corrupted, batch_size=batch_size).log_probs[:, k])
        patched = np.exp(score_cells(model, corrupted, cells, batch_size=batch_size)[:, :, k])
    return _head_map("causal indirect effect", fam.name, task, layers, model.cfg.n_heads, patched - base, seed)


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
        fv += z[list(cie.layers).index(la), h] @ model.blocks[la].attn.W_O[h].detach().double().cpu()
    return fv.float()


def direct_logit_attribution(model, prompts: Sequence[Prompt], *, layers: Sequence[int] | None = None,
                             batch_size: int = 32) -> np.ndarray:  # fmt: skip
    """``Float[ndarray, "prompt layer head task"]``: each head's direct contribution to the logit of each candidate
    task's answer (its first token) at the last token: ``(z @ W_O[L, h]) / scale · W_U[:, answer]``, with ``scale`` the
    final layer norm's per-prompt scale, minus the mean over candidates (a head that raises every candidate alike
    attributes nothing to any)."""
    check_model(model)
    prompts = check_prompts(prompts)
    layers = check_layers(model, layers)
    check_batch_size(batch_size)
    z = head_outputs(model, prompts, layers=layers, batch_size=batch_size).double()  # [layer, prompt, head, d_head]
    scales = _final_scales(model, prompts, batch_size)  # [prompt]
    tok = tokenizer_of(model)
    answer_ids = [[tok(a, add_special_tokens=False)["input_ids"][0] for a in p.answers] for p in prompts]
    w_u = model.W_U.detach().double().cpu()
    out = np.zeros((len(prompts), len(layers), model.cfg.n_heads, len(prompts[0].answers)))
    for i, la in enumerate(layers):
        w_o = model.blocks[la].attn.W_O.detach().double().cpu()  # [head, d_head, d_model]
        written = torch.einsum("phd,hdm->phm", z[i], w_o) / scales[:, None, None]
        for p, ids in enumerate(answer_ids):
            logits = written[p] @ w_u[:, ids]  # [head, task]
            out[p, i] = (logits - logits.mean(dim=1, keepdim=True)).numpy()
    return out


def _final_scales(model, prompts: Sequence[Prompt], batch_size: int) -> torch.Tensor:
    """The final layer norm's scale at each prompt's last token (1 where the model has no final norm)."""
    ids = token_ids(model, prompts)
    out = torch.ones(len(ids), dtype=torch.float64)
    if model.cfg.normalization_type is None:
        return out
    pad = pad_id(tokenizer_of(model))
    for lo in range(0, len(ids), batch_size):
        chunk = list(range(lo, min(lo + batch_size, len(ids))))
        x, _ = pad_rows([ids[i] for i in chunk], pad)
        last = torch.tensor([len(ids[i]) - 1 for i in chunk])

        def keep(act, hook, chunk=chunk, last=last):
            out[chunk] = act[torch.arange(len(chunk)), last.to(act.device), 0].detach().double().cpu()

        with torch.inference_mode(), hooked(model, [("ln_final.hook_scale", keep)]):
            forward_logits(model, x)
    return out


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
