"""What the live explorer (``interp.explore``, :mod:`interp.panel`) computes, without any widget: answer
distributions of mixed prompts, and of zero-shot queries with a convex combination of two task vectors patched in.

Every answer comes from the public measurements (:func:`interp.prompts.build_prompts`,
:func:`interp.scoring.score_answers`, :func:`interp.vectors.task_vector`, :func:`interp.sweeps.patched_scores`);
the explorer only caches what a slider move does not change (the zero-shot queries, each task's vector, the mean
residual of mode ``shift``) and the distributions already computed, so an update scores one batch of prompts.

>>> from interp.models import load_model
>>> ex = Explorer(load_model("constructed:retrieval:K=2"), n_prompts=8)
>>> ex.families, ex.tasks("retrieval")
(('retrieval',), ('pos1', 'pos2'))
>>> d = ex.mixture("retrieval", ("pos1", "pos2"), (0.5, 0.5))
>>> d.labels, d.n_prompts
(('pos1', 'pos2', 'other'), 8)
>>> bool(ex.mixture("retrieval", ("pos1",), (1.0,)).mean[0] > 0.9)
True
"""

from __future__ import annotations

from collections.abc import Sequence

from interp.models import model_info, trained_examples
from interp.prompts import build_prompts, check_simplex
from interp.results import AnswerDistribution
from interp.scoring import score_answers
from interp.seeds import check_seed
from interp.sweeps import (
    QUERY_KINDS,
    SWEEP_MODES,
    check_sweep_mode,
    patched_scores,
    query_prompts,
    target_means,
    vector_cells,
)
from interp.tasks import family_names, get_family
from interp.validate import (
    ArgumentError,
    check_choice,
    check_count,
    check_examples_fit,
    check_int,
    check_model,
    check_probability,
)
from interp.vectors import TaskVector, convex, task_vector


class Explorer:
    """Answer distributions for the explorer, cached per setting.

    ``n_prompts`` prompts per bar (the same queries for every setting of one family and task set, ``seed``);
    ``n_examples`` in-context examples per mixed prompt (default: 16, fewer where the model was trained on shorter
    prompts). ``queries``: where vectors are patched, ``"zero_shot"`` (the query alone) or ``"neutral"``.
    """

    def __init__(
        self,
        model,
        *,
        n_prompts: int = 24,
        n_examples: int | None = None,
        seed: int = 0,
        queries: str = "zero_shot",
    ) -> None:
        check_model(model)
        check_count(n_prompts, "n_prompts", minimum=2)  # the CIs need two prompts
        if check_count(n_examples, "n_examples", optional=True) is not None:
            check_examples_fit(model, n_examples)
        seed = check_seed(seed)
        check_choice(queries, "queries", QUERY_KINDS)
        self.model = model
        self.n_prompts, self.seed, self.queries = n_prompts, seed, queries
        self._n_examples = n_examples
        self._memo: dict[tuple, object] = {}

    # ------------------------------------------------------------------ what the model knows
    @property
    def families(self) -> tuple[str, ...]:
        """The families the model was built or trained for (every registered family for other models)."""
        built = getattr(self.model, "interp_construction", None)
        if built is not None:
            return (built.family,)
        trained = trained_examples(self.model)
        if trained:
            return tuple(f for f in trained if f in family_names())
        return tuple(family_names())

    def tasks(self, family: str) -> tuple[str, ...]:
        """The tasks of ``family`` this model computes (a hand-built model's own; every task otherwise)."""
        self._check_family(family)
        built = getattr(self.model, "interp_construction", None)
        if built is not None:
            return tuple(built.tasks)
        return tuple(get_family(family).task_names)

    @property
    def layers(self) -> tuple[int, ...]:
        """The layers a vector can be patched at (``blocks.ℓ.hook_resid_post``)."""
        return tuple(range(self.model.cfg.n_layers))

    def n_examples(self, family: str) -> int:
        """Examples per mixed prompt for ``family``."""
        if self._n_examples is not None:
            return self._n_examples
        trained = (trained_examples(self.model) or {}).get(family)
        return 16 if trained is None else max(1, min(16, trained - 1))

    # ------------------------------------------------------------------ checks (before any work)
    def _check_family(self, family: str) -> None:
        check_choice(family, "family", self.families, f"not known to {model_info(self.model).model_id}")

    def _check_tasks(self, family: str, tasks: Sequence[str], at_most: int | None = None) -> tuple[str, ...]:
        self._check_family(family)
        tasks = tuple(tasks)
        valid = self.tasks(family)
        bad = [t for t in tasks if t not in valid]
        if bad or not tasks:
            raise ArgumentError("tasks", f"{', '.join(map(repr, bad)) or 'none given'}; valid: {', '.join(valid)}")
        if len(set(tasks)) != len(tasks):
            raise ArgumentError("tasks", f"each task once, got {', '.join(tasks)}")
        if at_most is not None and len(tasks) != at_most:
            raise ArgumentError("tasks", f"exactly {at_most} (task A, task B), got {len(tasks)}")
        return tasks

    # ------------------------------------------------------------------ measurements
    def mixture(self, family: str, tasks: Sequence[str], proportions: Sequence[float]) -> AnswerDistribution:
        """P(each task's answer) on prompts whose examples mix ``tasks`` in ``proportions`` (they sum to 1)."""
        tasks = self._check_tasks(family, tasks)
        props = tuple(round(float(p), 6) for p in check_simplex(proportions, len(tasks)))
        key = ("mixture", family, tasks, props)
        if key not in self._memo:
            n_ex = self.n_examples(family)
            prompts = build_prompts(
                family, list(tasks), proportions=list(props), n_examples=n_ex, n_prompts=self.n_prompts, seed=self.seed
            )
            mix = " + ".join(f"{p:.2f}·{t}" for t, p in zip(tasks, props, strict=True))
            title = f"{family}: mixed prompts ({mix}; {n_ex} examples)"
            self._memo[key] = AnswerDistribution.from_probs(
                score_answers(self.model, prompts).probs, family, tasks, title
            )
        return self._memo[key]

    def _queries(self, family: str, tasks: tuple[str, ...]):
        key = ("queries", family, tasks)
        if key not in self._memo:
            self._memo[key] = query_prompts(
                family,
                tasks,
                self.queries,
                n_prompts=self.n_prompts,
                n_examples=self.n_examples(family),
                seed=self.seed,
            )
        return self._memo[key]

    def vector(self, family: str, task: str) -> TaskVector:
        """``task``'s task vector (mean last-token residual over its single-task prompts; cached)."""
        (task,) = self._check_tasks(family, (task,))
        key = ("vector", family, task)
        if key not in self._memo:
            self._memo[key] = task_vector(
                self.model, family, task, n_prompts=self.n_prompts, n_examples=self.n_examples(family), seed=self.seed
            )
        return self._memo[key]

    def patched(
        self, family: str, tasks: Sequence[str], layer: int, lam: float, mode: str = "replace"
    ) -> AnswerDistribution:
        """P(answers) of zero-shot queries with v(λ) = λ·v_A + (1 − λ)·v_B put in at ``layer`` (``mode``:
        :data:`~interp.sweeps.SWEEP_MODES`)."""
        tasks = self._check_tasks(family, tasks, at_most=2)
        layer = check_int(layer, "layer", minimum=0, maximum=self.model.cfg.n_layers - 1)
        lam = check_probability(lam, "lam")  # the weight of task A
        check_sweep_mode(mode)
        key = ("patched", family, tasks, int(layer), round(lam, 6), mode)
        if key not in self._memo:
            prompts = self._queries(family, tasks)
            v = convex([lam, 1.0 - lam], [self.vector(family, t) for t in tasks])
            means = None
            if mode == "shift":
                mkey = ("means", family, tasks, v.hook)
                if mkey not in self._memo:
                    self._memo[mkey] = target_means(self.model, prompts, self.layers, v.hook, 32)
                means = self._memo[mkey][int(layer) : int(layer) + 1]
            (iv,) = vector_cells(self.model, v, [int(layer)], mode, means)
            scores = patched_scores(self.model, prompts, iv)
            title = f"{family}: {lam:.2f}·v({tasks[0]}) + {1 - lam:.2f}·v({tasks[1]}) at layer {layer} ({mode})"
            self._memo[key] = AnswerDistribution.from_probs(scores.probs, family, tasks, title)
        return self._memo[key]

    def unpatched(self, family: str, tasks: Sequence[str]) -> AnswerDistribution:
        """P(answers) of the same queries with nothing patched (the baseline a patch moves away from)."""
        tasks = self._check_tasks(family, tasks)
        key = ("unpatched", family, tasks)
        if key not in self._memo:
            prompts = self._queries(family, tasks)
            probs = score_answers(self.model, prompts).probs
            self._memo[key] = AnswerDistribution.from_probs(
                probs, family, tasks, f"{family}: the same queries, nothing patched"
            )
        return self._memo[key]


__all__ = ["SWEEP_MODES", "Explorer"]
