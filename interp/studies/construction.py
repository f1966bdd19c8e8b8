"""The hand-built superposition model next to a trained model on the same mixture sweep (docs/construction.md).

For each retrieval pair (A, B), prompts hold a fraction d of task-A examples (exact counts, the same seed hence the
same prompts for both models). The constructed model's curve is the maths (P(a_A) = d, built in); the other model's
is what training produced. Run with ``interp figures construction`` (the study's model is the trained one).

>>> ConstructionConfig.quick().constructed_spec()
'constructed:retrieval:tasks=pos1+pos3+pos6+pos8'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from interp.construction import load_constructed
from interp.defaults import pairs_of
from interp.models import model_info
from interp.plots.mixtures import model_comparison_figure
from interp.studies.common import metadata, write_outputs, writes_one_set
from interp.studies.mixture_sweep import mixture_curve
from interp.tasks import get_family, resolve_tasks

STUDY = "construction"


@dataclass
class ConstructionConfig:
    """Retrieval pairs (family, task A, task B), the fractions ``d``, prompts per point and the seed."""

    pairs: list[tuple[str, str, str]] = field(default_factory=lambda: [tuple(p) for p in pairs_of("retrieval")])
    d: list[float] = field(default_factory=lambda: [round(0.1 * i, 1) for i in range(11)])
    n_prompts: int = 100
    n_examples: int = 20
    seed: int = 0

    @classmethod
    def quick(cls) -> ConstructionConfig:
        """Three points, 16 prompts: a smoke run."""
        return cls(d=[0.0, 0.5, 1.0], n_prompts=16)

    def validate(self) -> None:
        """``ValueError`` naming the first bad field (no model needed)."""
        for fam, a, b in self.pairs:
            if fam != "retrieval":
                raise ValueError(f"pairs: the constructed model runs the retrieval family only, got {fam!r}")
            resolve_tasks(get_family(fam), [a, b])
        if not self.d or any(not 0 <= x <= 1 for x in self.d):
            raise ValueError(f"d: need fractions in [0, 1], got {self.d}")

    def constructed_spec(self) -> str:
        """The constructed model with one head per task of the pairs."""
        tasks = sorted({t for _, a, b in self.pairs for t in (a, b)})
        return "constructed:retrieval:tasks=" + "+".join(tasks)


@writes_one_set
def run(model, config: ConstructionConfig, out_dir: str | Path, *, progress: bool = True) -> dict:
    """Mixture curves of the constructed model and of ``model``; writes ``construction.{html,png,json}``."""
    config.validate()
    models = {"constructed": load_constructed(config.constructed_spec(), device=str(model.cfg.device)),
              model_info(model).model_id: model}  # fmt: skip
    curves = [
        (label, mixture_curve(m, fam, a, b, config.d, n_prompts=config.n_prompts, n_examples=config.n_examples,
                              seed=config.seed))
        for label, m in tqdm(models.items(), desc=STUDY, disable=not progress)
        for fam, a, b in config.pairs
    ]  # fmt: skip
    title = (
        f"Hand-built superposition model vs {model_info(model).model_id} · {config.n_prompts} prompts × "
        f"{config.n_examples} examples per point (mean, 95% bootstrap CI)"
    )
    numbers = {
        **metadata(model, config, STUDY),
        "models": {label: model_info(m).to_dict() for label, m in models.items()},
        "curves": [{"model": label, **c.to_dict()} for label, c in curves],
    }
    paths = write_outputs(model_comparison_figure(curves, title=title), numbers, out_dir, STUDY)
    return {"results": curves, "numbers": numbers, "paths": paths}
