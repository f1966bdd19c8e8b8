"""The paper's Figure-2 view: on uniformly mixed prompts, mean P of each task's answer, "other", rank view, KL.

Claim 1 (docs/science.md §2): per family, one :class:`~interp.results.UniformMixture` per model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from interp.defaults import tasks_for
from interp.engines.plan import check_fits
from interp.hooks import context_length
from interp.metrics import bootstrap_ci, kl_divergence, rank_view
from interp.models import WeightsNotFoundError, load_model, model_info, resolve_weights_dir
from interp.plots.mixtures import superposition_bars_figure
from interp.prompts import build_prompts
from interp.results import UniformMixture
from interp.scoring import score_answers
from interp.studies.common import metadata, write_outputs, writes_one_set
from interp.tasks import get_family, resolve_tasks
from interp.tokenization import encode


def _by_family_order(family: str, tasks: tuple[str, ...]) -> tuple[str, ...]:
    order = get_family(family).task_names
    return tuple(sorted(tasks, key=order.index))


#: (family, tasks or None for all, examples per prompt): the embedded model's trained tasks (K = 2 and 3, in family
#: order), at most as many examples as its training prompts held (longer prompts reach untrained positions).
EMBEDDED_SETTINGS = tuple(
    (fam, _by_family_order(fam, tasks_for(fam, k)), n)
    for fam in ("retrieval", "bias_add")
    for k, n in ((2, 20), (3, 18))
)
#: The paper's families, 20 examples per task (docs/science.md §1), for pretrained models.
PAPER_SETTINGS = (
    ("operands", None, 60),
    ("add_translate", None, 80),
    ("country", None, 60),
    ("letters", None, 80),
)


@dataclass
class SuperpositionBarsConfig:
    settings: list[tuple[str, tuple[str, ...] | None, int]] | None = None  # None: by model (embedded vs pretrained)
    n_prompts: int = 100
    seed: int = 0
    #: further models shown beside the main one when their weights are present locally (else noted as skipped)
    extra_models: list[str] = field(default_factory=lambda: ["gpt2"])

    @classmethod
    def quick(cls) -> SuperpositionBarsConfig:
        return cls(n_prompts=12)

    def settings_for(self, model_id: str) -> list[tuple[str, tuple[str, ...] | None, int]]:
        if self.settings is not None:
            return [tuple(s) for s in self.settings]
        return list(EMBEDDED_SETTINGS if model_id == "embedded" else PAPER_SETTINGS)

    def validate(self) -> None:
        for fam, tasks, n in self.settings or []:
            resolve_tasks(get_family(fam), tasks)
            if n < 1:
                raise ValueError(f"settings: n_examples must be >= 1 for {fam}, got {n}")


def family_result(model, family: str, tasks, n_examples: int, n_prompts: int, seed: int) -> UniformMixture:
    """Score uniformly mixed prompts of ``family`` (``tasks``: default all) on ``model``."""
    fam = get_family(family)
    names = resolve_tasks(fam, tasks)
    t = np.full(len(names), 1.0 / len(names))
    prompts = build_prompts(fam, names, proportions=t, n_examples=n_examples, n_prompts=n_prompts, seed=seed)
    check_fits(model, [len(encode(model.tokenizer, p.text)) + 8 for p in prompts], what=f"{family} prompts")
    s = score_answers(model, prompts)
    p = s.probs
    kl = kl_divergence(t, p)
    return UniformMixture(
        model=model_info(model).model_id,
        family=family,
        tasks=tuple(names),
        task_index=tuple(fam.task_names.index(n) for n in names),
        n_examples=n_examples,
        n_prompts=n_prompts,
        targets=t,
        mean=p.mean(axis=0),
        ci95=np.array([bootstrap_ci(p[:, k], seed=seed) for k in range(len(names))]),
        var=p.var(axis=0),
        other=float(s.other.mean()),
        other_ci95=bootstrap_ci(s.other, seed=seed),
        rank_view=rank_view(p),
        kl=float(kl.mean()),
        kl_ci95=bootstrap_ci(kl, seed=seed),
    )


@writes_one_set
def run(model, config: SuperpositionBarsConfig, out_dir: str | Path, *, progress: bool = True) -> dict:
    config.validate()
    meta = metadata(model, config, "superposition_bars")
    mid = meta["model"]["model_id"]
    models, skipped = [model], []
    for spec in config.extra_models:
        if spec == mid:
            continue
        try:
            resolve_weights_dir(spec)
        except WeightsNotFoundError as err:
            skipped.append({"model": spec, "reason": str(err).split(". ")[0]})
            continue
        models.append(load_model(spec))
    results = []
    for m in models:
        m_id = model_info(m).model_id
        for fam, tasks, n in config.settings_for(m_id):
            try:
                results.append(family_result(m, fam, tasks, n, config.n_prompts, config.seed))
            except ValueError as err:
                if "context" not in str(err):
                    raise
                skipped.append({"model": m_id, "family": fam, "reason": str(err)})
    if not results:
        raise ValueError(f"settings: no family fits the context of {context_length(model)} tokens: {skipped}")
    title = f"Uniformly mixed prompts · model {mid} · {config.n_prompts} prompts per family"
    numbers = {**meta, "results": [r.to_dict() for r in results], "skipped": skipped}
    paths = write_outputs(superposition_bars_figure(results, title=title), numbers, out_dir, "superposition_bars")
    return {"results": results, "numbers": numbers, "paths": paths}
