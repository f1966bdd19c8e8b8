"""Training-time evaluation with the toolkit's ONE accuracy definition, :func:`interp.scoring.greedy_correct`.

The HF model being trained is converted to a TransformerLens model (:func:`interp.models.hooked_from_hf`, cheap
for the small models trained here) and scored exactly as every study scores a loaded checkpoint.

>>> from interp.training.config import TrainConfig                          # doctest: +SKIP
>>> evaluate(hf_model, build_char_tokenizer(), cfg)                        # doctest: +SKIP
{'bias_add': {'add0': 1.0, 'add1': 0.95, ...}}
"""

from __future__ import annotations

import torch

from interp.models import hooked_from_hf
from interp.prompts import build_prompts
from interp.scoring import greedy_correct
from interp.tasks import get_family, resolve_tasks
from interp.training.config import TrainConfig

#: The held-out evaluation prompts use seeds from here on (training batches use ``[seed, step]`` streams).
EVAL_SEED = 10**6


def as_hooked(hf_model, tokenizer):
    """A float32 TransformerLens copy of ``hf_model`` on its device (the global torch RNG is left untouched)."""
    device = str(next(hf_model.parameters()).device)
    with torch.random.fork_rng(devices=[]):  # HookedTransformer's own init must not move training's RNG
        return hooked_from_hf(hf_model, tokenizer, model_id="training", source="interp.train", device=device)


def evaluate(hf_model, tokenizer, cfg: TrainConfig, n_examples: int | None = None, seed: int = EVAL_SEED) -> dict:
    """Single-task greedy accuracy of every trained task on ``cfg.eval_prompts`` held-out prompts.

    Returns ``{family: {task: accuracy}}``; accuracy is the mean of :func:`interp.scoring.greedy_correct`.
    """
    model = as_hooked(hf_model, tokenizer)
    out: dict[str, dict[str, float]] = {}
    for fam in cfg.families:
        for task in resolve_tasks(get_family(fam), cfg.tasks.get(fam)):
            prompts = build_prompts(
                fam, [task], n_examples=n_examples or cfg.eval_n_examples, n_prompts=cfg.eval_prompts, seed=seed
            )
            out.setdefault(fam, {})[task] = float(greedy_correct(model, prompts, task).mean())
    return out
