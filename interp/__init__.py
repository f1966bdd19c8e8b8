"""interp: the reference toolkit for task superposition (Xiong et al., arXiv 2410.05603).

Data flows one way: tasks → prompts → model run (hooks) → tensors → metrics / vectors → results → figures.
The names a notebook needs are importable from the package root; each is loaded on first use (PEP 562), so
``import interp`` stays cheap (no torch, no TransformerLens until a name that needs them is touched).

>>> import interp
>>> "load_model" in dir(interp) and "lambda_sweep" in interp.__all__
True
>>> interp.check_simplex([0.5, 0.5], 2)
(0.5, 0.5)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name → module that defines it (the one definition).
_EXPORTS: dict[str, str] = {
    # models and running them
    "load_model": "interp.models",
    "model_info": "interp.models",
    "WeightsNotFoundError": "interp.models",
    # a bad argument (a ValueError; ArgumentTypeError is also a TypeError), named in .argument
    "ArgumentError": "interp.validate",
    "ArgumentTypeError": "interp.validate",
    "hooked": "interp.hooks",
    "add_hooks": "interp.hooks",
    "hook_name": "interp.hooks",
    # tasks and prompts
    "get_family": "interp.tasks",
    "family_names": "interp.tasks",
    "build_prompts": "interp.prompts",
    "Prompt": "interp.prompts",
    "zero_shot_prompts": "interp.prompts",
    "check_simplex": "interp.prompts",
    # measuring
    "score_answers": "interp.scoring",
    "score_texts": "interp.scoring",
    "greedy_correct": "interp.scoring",
    "remembering": "interp.remember",
    "summarize": "interp.metrics",
    "kl_divergence": "interp.metrics",
    "capture_resid": "interp.capture",
    # captures on disk (a resumable store) and what streams from it
    "capture_to": "interp.store.writer",
    "ActivationStore": "interp.store.reader",
    # task vectors and patching
    "TaskVector": "interp.vectors",
    "task_vector": "interp.vectors",
    "convex": "interp.vectors",
    "null_vectors": "interp.vectors",
    "held_out_seed": "interp.heldout",
    "Intervention": "interp.interventions",
    "patch": "interp.patching",
    "add_patch": "interp.patching",
    "patched_scores": "interp.sweeps",
    "best_layer": "interp.sweeps",
    "lambda_sweep": "interp.sweeps",
    "simplex_sweep": "interp.sweeps",
    "proportion_sweep": "interp.sweeps",
    "decompose": "interp.decomposition",
    "project_2d": "interp.decomposition",
    # playing in Jupyter
    "explore": "interp.panel",
    "Explorer": "interp.explorer",
    # claims that can fail
    "Claim": "interp.claims",
    "page_trend": "interp.trends",
    # results and studies
    "Result": "interp.results",
    "measure_table": "interp.studies.table",
    "run_studies": "interp.studies",
}
#: Sub-packages reachable as attributes (``interp.plots.mixture_sweep_figure``).
_MODULES = ("plots", "results", "metrics", "studies", "interventions", "reference")

__all__ = sorted([*_EXPORTS, *_MODULES])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"interp.{name}")
    else:
        raise AttributeError(f"module 'interp' has no attribute {name!r}; public names: {', '.join(__all__)}")
    globals()[name] = value  # cache: the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
