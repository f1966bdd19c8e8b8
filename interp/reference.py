"""The paper's method, read top to bottom: the oracle every fast engine of the toolkit is tested against.

1. Prompts come from :mod:`interp.prompts` (``BOS`` + examples + query, the answer not included).
2. **Run** a prompt (plus a candidate answer) through the model, one unbatched forward pass, with any
   :class:`~interp.interventions.Intervention` applied by a hook attached through :func:`interp.hooks.hooked`.
3. **Score**: the log-probability of an answer is the sum, over its tokens, of the log-softmax of the logits one
   position earlier (teacher forcing).
4. **Capture**: the residual stream at the query's last token, saved by a hook.
5. **Task vector**: the mean of the captures over single-task in-context prompts.
6. **Best layer**: for each layer, replace the residual at zero-shot queries' last token by the task vector and
   read P(the task's answer).
7. **λ sweep**: for each (λ, layer), replace it by ``λ·v_A + (1 − λ)·v_B`` and read P(a_A), P(a_B), P(other).

Slow on purpose (one forward per prompt and candidate, in float64 log-softmax) and plain: no batching, padding,
caching or packing. ``tests/equivalence/test_equivalence.py`` checks every engine against these functions.

>>> from interp.reference import answer_log_probs
>>> lp = answer_log_probs(model, build_prompts("bias_add", ["add1", "add7"], n_prompts=2))   # doctest: +SKIP
>>> lp.shape                                                                                  # doctest: +SKIP
(2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from interp.hooks import forward_logits, hook_name, hooked
from interp.interventions import Intervention
from interp.models import tokenizer_of
from interp.prompts import Prompt, build_prompts, zero_shot_prompts
from interp.tasks import get_family
from interp.tokenization import encode


def tokenize(model, prompt_text: str, answer: str) -> tuple[list[int], int, int]:
    """``(tokens of BOS + prompt + answer, index of the answer's first token, index of the query's last token)``.

    With a BPE tokenizer the answer's first token may merge with the prompt's last one; the answer then starts at
    the first token that differs from the prompt's own tokens.
    """
    tok = tokenizer_of(model)
    prompt, full = encode(tok, prompt_text), encode(tok, prompt_text + answer)
    start = 0
    while start < min(len(prompt), len(full)) and prompt[start] == full[start]:
        start += 1
    return full, max(start, 1), len(prompt) - 1


def intervention_hooks(interventions: Sequence[Intervention], query: int) -> list[tuple[str, object]]:
    """One hook per intervention: it rewrites the residual at its position (``None``: ``query``)."""

    def hook_for(iv: Intervention):
        pos = query if iv.position is None else iv.position

        def fn(act, hook):
            act = act.clone()
            if iv.head is None:
                act[:, pos] = iv.apply(act[:, pos])
            else:  # a head's output z: [batch, pos, head, d_head]
                act[:, pos, iv.head] = iv.apply(act[:, pos, iv.head])
            return act

        return (iv.hook_name, fn)

    return [hook_for(iv) for iv in interventions]


@torch.inference_mode()
def run(model, tokens: Sequence[int], interventions: Sequence[Intervention] = (), query: int = -1) -> torch.Tensor:
    """Logits ``Float[Tensor, "pos vocab"]`` of one sequence, ``interventions`` applied (``query``: the position an
    intervention with ``position=None`` acts on)."""
    with hooked(model, intervention_hooks(interventions, query if query >= 0 else len(tokens) - 1)):
        return forward_logits(model, torch.tensor([list(tokens)]))[0]


def answer_log_prob(model, prompt_text: str, answer: str, interventions: Sequence[Intervention] = ()) -> float:
    """log P(answer | prompt): one forward pass over prompt + answer, log-softmax, summed over the answer tokens."""
    tokens, start, query = tokenize(model, prompt_text, answer)
    logp = torch.log_softmax(run(model, tokens, interventions, query).double(), dim=-1)
    return float(sum(logp[t - 1, tokens[t]] for t in range(start, len(tokens))))


def answer_log_probs(
    model, prompts: Sequence[Prompt], interventions: Sequence[Intervention] = (), *, include_newline: bool = False
) -> np.ndarray:
    """``Float[ndarray, "prompt task"]``: log P(each task's answer) for every prompt (the answer's ``\\n`` too with
    ``include_newline``)."""
    end = "\n" if include_newline else ""
    return np.array(
        [[answer_log_prob(model, p.text, a + end, interventions) for a in p.answers] for p in prompts], dtype=float
    )


@torch.inference_mode()
def capture(model, prompts: Sequence[Prompt], layers: Sequence[int], hook: str = "resid_post") -> torch.Tensor:
    """``Float[Tensor, "layer prompt d_model"]``: the residual stream at each prompt's last token."""
    out = torch.zeros(len(layers), len(prompts), model.cfg.d_model, dtype=model.cfg.dtype)
    saved: dict[str, torch.Tensor] = {}

    def saver(name: str):  # keyed by the name asked for (a TransformerBridge's hook may carry its alias's name)
        def save(act, hook):
            saved[name] = act[0, -1].detach().clone()

        return save

    for i, p in enumerate(prompts):
        with hooked(model, [(hook_name(la, hook), saver(hook_name(la, hook))) for la in layers]):
            forward_logits(model, torch.tensor([encode(tokenizer_of(model), p.text)]))
        for j, la in enumerate(layers):
            out[j, i] = saved[hook_name(la, hook)].cpu()
    return out


def task_vector_mean(
    model, family: str, task: str, layers: Sequence[int], *, n_prompts: int, n_examples: int, seed: int = 0
) -> torch.Tensor:
    """``Float[Tensor, "layer d_model"]``: the mean capture over single-task prompts of ``task``."""
    prompts = build_prompts(family, [task], n_examples=n_examples, n_prompts=n_prompts, seed=seed)
    return capture(model, prompts, layers).mean(dim=1)


def best_layer_curve(
    model, family: str, task: str, means: torch.Tensor, layers: Sequence[int], *, n_prompts: int, seed: int = 0
) -> np.ndarray:
    """``Float[ndarray, "layer"]``: mean P(``task``'s answer) over zero-shot queries (every task of the family a
    candidate) with the residual at the query replaced by ``means[i]`` at ``layers[i]``."""
    tasks = get_family(family).task_names
    zs = zero_shot_prompts(family, tasks, n_prompts=n_prompts, seed=seed)
    k = tasks.index(task)
    curve = []
    for i, la in enumerate(layers):
        patch = [Intervention(la, "replace", means[i].float())]
        curve.append(np.exp(answer_log_probs(model, zs, patch)[:, k]).mean())
    return np.array(curve)


def lambda_sweep(
    model,
    family: str,
    task_a: str,
    task_b: str,
    means_a: torch.Tensor,
    means_b: torch.Tensor,
    lambdas: Sequence[float],
    layers: Sequence[int],
    *,
    n_prompts: int,
    seed: int = 0,
    mode: str = "replace",
) -> np.ndarray:
    """``Float[ndarray, "lambda layer 3"]``: mean P(a_A), P(a_B), P(other) over zero-shot queries with
    ``v = λ·v_A + (1 − λ)·v_B`` (``means_*[i]`` at ``layers[i]``) put in at the query: ``replace`` (x ← v), ``add``
    (x ← x + v) or ``shift`` (x ← x − μ + v, μ the queries' mean residual at that layer)."""
    zs = zero_shot_prompts(family, [task_a, task_b], n_prompts=n_prompts, seed=seed)
    mu = capture(model, zs, layers).double().mean(dim=1) if mode == "shift" else None
    out = np.zeros((len(lambdas), len(layers), 3))
    for i, lam in enumerate(lambdas):
        for j, la in enumerate(layers):
            v = lam * means_a[j].double() + (1 - lam) * means_b[j].double()
            iv = Intervention(la, "add", (v - mu[j]).float()) if mode == "shift" else Intervention(la, mode, v.float())
            probs = np.exp(answer_log_probs(model, zs, [iv]))
            out[i, j] = [*probs.mean(axis=0), 1 - probs.sum(axis=1).mean()]
    return out
