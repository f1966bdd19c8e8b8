"""Beam search over complete outputs (completions that end at a newline), for "tasks solved".

>>> outs = complete_outputs(model, "\\n34@57=", beam_width=4, max_new_tokens=5)   # doctest: +SKIP
>>> outs[0]                                                                         # doctest: +SKIP
('91\\n', -0.02)
"""

from __future__ import annotations

import torch

from interp.hooks import context_length, forward_logits
from interp.models import tokenizer_of
from interp.tokenization import encode, pad_id, right_pad


def newline_token_ids(tokenizer) -> set[int]:
    """Ids of every vocabulary token whose text contains a newline."""
    ids = set()
    for tok_id in range(len(tokenizer)):
        if "\n" in tokenizer.decode([tok_id]):
            ids.add(tok_id)
    return ids


_NEWLINE_CACHE: dict[int, set[int]] = {}


@torch.inference_mode()
def complete_outputs(
    model, prompt_text: str, *, beam_width: int = 8, max_new_tokens: int = 12
) -> list[tuple[str, float]]:
    """Complete outputs (text up to and including the first newline) with their log-probs, best first.

    A beam of ``beam_width`` partial completions is extended by each one's top ``beam_width`` next
    tokens; a completion that emits a newline-bearing token is finished. Partial completions still
    open after ``max_new_tokens`` are dropped.
    """
    if beam_width < 1 or max_new_tokens < 1:
        raise ValueError(f"beam_width and max_new_tokens: must be >= 1, got {beam_width}, {max_new_tokens}")
    tok = tokenizer_of(model)
    newline_ids = _NEWLINE_CACHE.setdefault(id(tok), newline_token_ids(tok))
    prefix = encode(tok, prompt_text)
    if len(prefix) + max_new_tokens > context_length(model):
        raise ValueError(f"max_new_tokens: prompt of {len(prefix)} tokens + {max_new_tokens} exceeds the context")
    beams: list[tuple[list[int], float]] = [([], 0.0)]
    finished: list[tuple[list[int], float]] = []
    for _ in range(max_new_tokens):
        if not beams:
            break
        x = right_pad([prefix + cont for cont, _ in beams], pad_id(tok))
        logp = torch.log_softmax(forward_logits(model, x)[:, -1].float(), dim=-1).cpu()
        top = logp.topk(beam_width, dim=-1)
        expanded = []
        for i, (cont, score) in enumerate(beams):
            for lp, t in zip(top.values[i].tolist(), top.indices[i].tolist(), strict=True):
                expanded.append((cont + [t], score + lp))
        expanded.sort(key=lambda b: -b[1])
        beams = []
        for cont, score in expanded:
            if cont[-1] in newline_ids:
                finished.append((cont, score))
            elif len(beams) < beam_width:
                beams.append((cont, score))
    finished.sort(key=lambda b: -b[1])
    return [(tok.decode(c), s) for c, s in finished]
