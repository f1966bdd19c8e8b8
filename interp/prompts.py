"""Single- and mixed-task in-context prompts, and zero-shot queries.

A prompt is its examples joined by ``\\n``, then ``\\n`` + the query (``render(x) + separator``), as in
the paper (docs/science.md §1). Randomness: prompt ``i`` of seed ``s`` is drawn from its own generators
(``[s, i, 0]`` for the query, ``[s, i, 1]`` for the examples), so the same seed gives the same queries
whatever the proportions, the number of prompts or the sampling scheme.

>>> from interp.prompts import build_prompts
>>> p = build_prompts("operands", ["copy_first", "sum"], proportions=[0.5, 0.5], n_examples=4,
...                   n_prompts=1, seed=0)[0]
>>> p.example_tasks.count("sum"), p.text.endswith(p.query), p.answers == tuple(p.answer(t) for t in p.tasks)
(2, True, True)
"""

from __future__ import annotations

import itertools
import math
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np

from interp.remember import prompts_memo
from interp.seeds import check_seed
from interp.tasks import Family, get_family, resolve_tasks
from interp.validate import ArgumentError, ArgumentTypeError, check_choice, check_count, check_sequence

MAX_QUERY_TRIES = 1000
MAX_EXAMPLE_TRIES = 1000
#: Tolerance of :func:`check_simplex` on the sum of the values.
SIMPLEX_TOL = 1e-6
RANDOM_ALPHABET = string.ascii_letters + string.digits
#: How :func:`build_prompts` assigns examples to tasks.
SAMPLINGS = ("exact", "iid")


@dataclass(frozen=True)
class Prompt:
    """One in-context prompt and what each candidate task would answer to its query."""

    text: str
    family: str
    tasks: tuple[str, ...]
    answers: tuple[str, ...]
    example_tasks: tuple[str, ...]
    query: str
    query_input: Any
    proportions: tuple[float, ...]
    seed: int
    index: int

    @property
    def n_examples(self) -> int:
        return len(self.example_tasks)

    def answer(self, task: str) -> str:
        """The answer of ``task`` to this prompt's query."""
        if task not in self.tasks:
            raise ValueError(f"task: {task!r} is not a candidate of this prompt; valid: {', '.join(self.tasks)}")
        return self.answers[self.tasks.index(task)]

    def fractions(self) -> tuple[float, ...]:
        """Realised fraction of examples of each candidate task (zeros for a zero-shot prompt)."""
        n = max(self.n_examples, 1)
        return tuple(self.example_tasks.count(t) / n for t in self.tasks)


def check_prompts(value: Any, name: str = "prompts", *, allow_empty: bool = False) -> list:
    """A non-empty sequence (empty allowed with ``allow_empty``) of :class:`~interp.prompts.Prompt` sharing their
    candidate tasks."""
    prompts = check_sequence(
        value, name, what="Prompt values (interp.build_prompts makes them)", allow_empty=allow_empty
    )
    if not prompts:
        return prompts
    bad = next((i for i, p in enumerate(prompts) if not isinstance(p, Prompt)), None)
    if bad is not None:
        raise ArgumentTypeError(
            name, f"item {bad} is a {type(prompts[bad]).__name__}, not a Prompt (interp.build_prompts makes them)"
        )
    tasks = prompts[0].tasks
    if any(p.tasks != tasks for p in prompts):
        raise ArgumentError(name, "all prompts must share the same candidate tasks (Prompt.tasks)")
    return prompts


def exact_counts(proportions: Sequence[float], n_examples: int) -> tuple[int, ...]:
    """Examples per task by largest-remainder rounding: exact sum, ties to the earlier task.

    >>> exact_counts([1/3, 1/3, 1/3], 20)
    (7, 7, 6)
    """
    raw = [p * n_examples for p in proportions]
    counts = [math.floor(r + 1e-9) for r in raw]
    short = n_examples - sum(counts)
    order = sorted(range(len(raw)), key=lambda k: (-(raw[k] - counts[k]), k))
    for k in order[:short]:
        counts[k] += 1
    return tuple(counts)


def check_simplex(values: Sequence[float], n: int, name: str = "proportions") -> tuple[float, ...]:
    """The one simplex check: ``n`` finite values ``>= 0`` summing to 1 (within :data:`SIMPLEX_TOL`).

    Used for task proportions, convex weights of task vectors and the CLI's ``--mix``; it never renormalises.

    >>> check_simplex([0.25, 0.75], 2)
    (0.25, 0.75)
    >>> check_simplex([0.5, 0.6], 2, "weights")
    Traceback (most recent call last):
    ...
    interp.validate.ArgumentError: weights: values must sum to 1 (tolerance 1e-06), got sum 1.1 for [0.5, 0.6]
    """
    n = check_count(n, "n")
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray) or isinstance(values, dict):
        raise ArgumentTypeError(name, f"expected {n} numbers (one per task), got {values!r}")
    try:
        props = tuple(float(p) for p in values)
    except (TypeError, ValueError):
        raise ArgumentTypeError(name, f"expected {n} numbers (one per task), got {values!r}") from None
    if len(props) != n:
        raise ArgumentError(name, f"expected {n} values (one per task), got {len(props)}")
    if any(not math.isfinite(p) or p < 0 for p in props):
        raise ArgumentError(name, f"values must be finite and >= 0, got {list(props)}")
    if abs(sum(props) - 1.0) > SIMPLEX_TOL:
        raise ArgumentError(
            name, f"values must sum to 1 (tolerance {SIMPLEX_TOL:g}), got sum {sum(props):.6g} for {list(props)}"
        )
    return props


def _draw_query(family: Family, tasks: tuple[str, ...], rng: np.random.Generator) -> tuple[Any, tuple[str, ...]]:
    for _ in range(MAX_QUERY_TRIES):
        x = family.sample_input(rng)
        answers = tuple(family.task(t).answer(x) for t in tasks)
        if len(set(answers)) == len(answers):
            return x, answers
    raise ValueError(
        f"tasks: family {family.name!r} produced no query with pairwise distinct answers for tasks "
        f"{list(tasks)} in {MAX_QUERY_TRIES} draws; choose tasks whose answers can differ"
    )


def _draw_example_input(family: Family, query_text: str, rng: np.random.Generator) -> Any:
    for _ in range(MAX_EXAMPLE_TRIES):
        x = family.sample_input(rng)
        if family.query(x) != query_text:
            return x
    raise ValueError(f"family {family.name!r}: could not draw an example input different from the query")


def build_prompts(
    family: str | Family,
    tasks: Sequence[str] | None = None,
    *,
    proportions: Sequence[float] | None = None,
    counts: Sequence[int] | None = None,
    n_examples: int = 20,
    n_prompts: int = 100,
    seed: int = 0,
    sampling: Literal["exact", "iid"] = "exact",
) -> list[Prompt]:
    """Build ``n_prompts`` prompts mixing ``tasks`` of ``family``.

    Args:
        family: family name or object.
        tasks: candidate tasks (default: all of the family); every prompt records each one's answer.
        proportions: fraction of examples per task (default uniform). With ``sampling="exact"`` each
            task gets exactly :func:`exact_counts` examples in shuffled positions; with ``"iid"`` each
            example's task is drawn independently with these probabilities (the co-author's variant).
        counts: exact examples per task instead of ``proportions`` (sets ``n_examples``).
        n_examples: examples per prompt (0 gives zero-shot prompts ``\\n`` + query).
        n_prompts: number of prompts.
        seed: seed of every random choice.
        sampling: ``"exact"`` or ``"iid"``.

    The query input never occurs among the example inputs, and the candidate tasks' answers to it are
    pairwise distinct (``ValueError`` if the family cannot achieve that).
    """
    fam = get_family(family)
    names = resolve_tasks(fam, tasks)
    seed = check_seed(seed)
    props, counts = _mixture_plan(names, proportions, counts, n_examples, n_prompts, sampling)
    n_examples = sum(counts) if counts is not None else n_examples
    memo = prompts_memo()  # inside interp.remember.remembering(): prompts built before are reused
    if memo is None:
        return [_one_prompt(fam, names, props, counts, n_examples, sampling, seed, i) for i in range(n_prompts)]
    out = []
    for i in range(n_prompts):
        key = (fam, names, props, counts, n_examples, sampling, seed, i)
        if key not in memo:
            memo[key] = _one_prompt(*key)
        out.append(memo[key])
    return out


@dataclass(frozen=True)
class PromptSpec:
    """:func:`build_prompts`'s arguments as a value: the prompts of a long run, built a slice at a time.

    Prompt ``i`` depends on ``(seed, i)`` only, so ``spec.build(lo, hi)`` equals ``build_prompts(...)[lo:hi]`` and a
    capture of 10⁵ prompts never holds them all (:func:`interp.store.capture_to`). Round-trips through JSON
    (:meth:`to_dict` / :meth:`from_dict`): a store's manifest records it as its prompt generator.

    >>> spec = PromptSpec("bias_add", ("add2",), n_examples=4, n_prompts=10, seed=3)
    >>> spec.build(4, 6) == build_prompts("bias_add", ["add2"], n_examples=4, n_prompts=10, seed=3)[4:6]
    True
    >>> len(spec), PromptSpec.from_dict(spec.to_dict()) == spec
    (10, True)
    """

    family: str
    tasks: tuple[str, ...] | None = None
    proportions: tuple[float, ...] | None = None
    n_examples: int = 20
    n_prompts: int = 100
    seed: int = 0
    sampling: str = "exact"

    def __post_init__(self) -> None:
        fam = get_family(self.family)
        names = resolve_tasks(fam, self.tasks)
        object.__setattr__(self, "family", fam.name)
        object.__setattr__(self, "tasks", names)
        props, _ = _mixture_plan(names, self.proportions, None, self.n_examples, self.n_prompts, self.sampling)
        object.__setattr__(self, "proportions", props)
        object.__setattr__(self, "seed", check_seed(self.seed))

    def __len__(self) -> int:
        return self.n_prompts

    def build(self, start: int = 0, stop: int | None = None) -> list[Prompt]:
        """Prompts ``start .. stop - 1`` (default to the end), as :func:`build_prompts` numbers them."""
        stop = self.n_prompts if stop is None else stop
        if not 0 <= start <= stop <= self.n_prompts:
            raise ValueError(f"start, stop: need 0 <= start <= stop <= {self.n_prompts}, got {start}, {stop}")
        fam = get_family(self.family)
        plan = _mixture_plan(self.tasks, self.proportions, None, self.n_examples, self.n_prompts, self.sampling)
        return [_one_prompt(fam, self.tasks, *plan, self.n_examples, self.sampling, self.seed, i)
                for i in range(start, stop)]  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"generator": "build_prompts", **asdict(self)} | {
            "tasks": list(self.tasks),
            "proportions": list(self.proportions),  # fmt: skip
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PromptSpec:
        keys = ("family", "tasks", "proportions", "n_examples", "n_prompts", "seed", "sampling")
        return cls(**{k: tuple(d[k]) if k in ("tasks", "proportions") else d[k] for k in keys})


def _mixture_plan(
    names: tuple[str, ...],
    proportions: Sequence[float] | None,
    counts: Sequence[int] | None,
    n_examples: int,
    n_prompts: int,
    sampling: str,
) -> tuple[tuple[float, ...], tuple[int, ...] | None]:
    """Validate :func:`build_prompts`'s arguments; return the proportions and, for exact sampling, the counts."""
    check_choice(sampling, "sampling", SAMPLINGS)
    check_count(n_prompts, "n_prompts")
    if counts is not None:
        if proportions is not None:
            raise ArgumentError("counts", "give either proportions or counts, not both")
        counts = tuple(check_count(c, "counts", minimum=0) for c in check_sequence(counts, "counts", what="counts"))
        if len(counts) != len(names):
            raise ArgumentError("counts", f"need {len(names)} non-negative integers (one per task), got {list(counts)}")
        total = sum(counts)
        return (tuple(c / total for c in counts) if total else (1.0 / len(names),) * len(names)), counts
    props = check_simplex([1.0 / len(names)] * len(names) if proportions is None else proportions, len(names))
    check_count(n_examples, "n_examples", minimum=0)
    active = sum(p > 0 for p in props)  # tasks given a share of the examples (a candidate may get none)
    if n_examples and active > n_examples and sampling == "exact":
        raise ArgumentError(
            "n_examples", f"{n_examples} examples cannot hold {active} tasks; use n_examples >= {active}"
        )
    return props, (exact_counts(props, n_examples) if sampling == "exact" else None)


def _one_prompt(
    fam: Family,
    names: tuple[str, ...],
    props: tuple[float, ...],
    counts: tuple[int, ...] | None,
    n_examples: int,
    sampling: str,
    seed: int,
    i: int,
) -> Prompt:
    """Prompt ``i`` of ``seed``: its own generators for the query (``[seed, i, 0]``) and examples (``[seed, i, 1]``)."""
    rng_query = np.random.default_rng([seed, i, 0])
    rng_examples = np.random.default_rng([seed, i, 1])
    x, answers = _draw_query(fam, names, rng_query)
    query = fam.query(x)
    if counts is not None:
        labels = [t for t, c in zip(names, counts, strict=True) for _ in range(c)]
        rng_examples.shuffle(labels)
    else:
        labels = [names[k] for k in rng_examples.choice(len(names), size=n_examples, p=props)]
    examples = [fam.example(_draw_example_input(fam, query, rng_examples), t) for t in labels]
    text = "".join(e + "\n" for e in examples) + query if examples else "\n" + query
    return Prompt(
        text=text,
        family=fam.name,
        tasks=names,
        answers=answers,
        example_tasks=tuple(labels),
        query=query,
        query_input=x,
        proportions=props,
        seed=seed,
        index=i,
    )


def zero_shot_prompts(
    family: str | Family, tasks: Sequence[str] | None = None, *, n_prompts: int = 100, seed: int = 0
) -> list[Prompt]:
    """Zero-shot queries (``\\n`` + input + separator) with every candidate task's answer.

    With the same seed the queries equal those of :func:`build_prompts` (used for patching).

    >>> zero_shot_prompts("operands", n_prompts=1, seed=0)[0].text.startswith("\\n")
    True
    """
    return build_prompts(family, tasks, n_examples=0, n_prompts=n_prompts, seed=seed)


# ---------------------------------------------------------------------------------------------
# Control prompts and prompt groups (same queries as build_prompts with the same seed)


def random_answer_prompts(
    family: str | Family,
    tasks: Sequence[str] | None = None,
    *,
    proportions: Sequence[float] | None = None,
    n_examples: int = 20,
    n_prompts: int = 100,
    seed: int = 0,
) -> list[Prompt]:
    """Mixed prompts whose example answers are random: each example pairs a fresh input with the answer of a
    random task of the family to another random input. Queries equal :func:`build_prompts`'s (same seed);
    ``example_tasks`` are all ``"random"``.
    """
    fam = get_family(family)
    base = build_prompts(fam, tasks, proportions=proportions, n_examples=n_examples, n_prompts=n_prompts, seed=seed)
    out = []
    for p in base:
        rng = np.random.default_rng([seed, p.index, 2])
        lines = []
        for _ in range(p.n_examples):
            x = _draw_example_input(fam, p.query, rng)
            t = fam.task_names[int(rng.integers(len(fam.task_names)))]
            lines.append(fam.query(x) + fam.task(t).answer(fam.sample_input(rng)))
        out.append(_with_examples(p, lines, "random"))
    return out


def random_string_prompts(
    family: str,
    tasks: Sequence[str] | None = None,
    *,
    n_examples: int = 20,
    n_prompts: int = 100,
    seed: int = 0,
    alphabet: str = RANDOM_ALPHABET,
) -> list[Prompt]:
    """Prompts whose example lines are random strings (``alphabet``, the lengths of real example lines),
    followed by the real query of :func:`build_prompts` (same seed); ``example_tasks`` are ``"random_string"``.
    """
    fam = get_family(family)
    if not alphabet:
        raise ValueError("alphabet: need at least one character")
    base = build_prompts(fam, tasks, n_examples=n_examples, n_prompts=n_prompts, seed=seed)
    out = []
    for p in base:
        rng = np.random.default_rng([seed, p.index, 3])
        real = p.text.split("\n")[: p.n_examples]
        lines = ["".join(alphabet[i] for i in rng.integers(len(alphabet), size=len(r))) for r in real]
        out.append(_with_examples(p, lines, "random_string"))
    return out


def _with_examples(p: Prompt, lines: Sequence[str], label: str) -> Prompt:
    text = "".join(line + "\n" for line in lines) + p.query if lines else "\n" + p.query
    return replace(p, text=text, example_tasks=(label,) * len(lines))


def mixture_groups(
    family: str,
    tasks: Sequence[str],
    *,
    n_prompts: int = 50,
    n_examples: int = 20,
    seed: int = 0,
) -> dict[str, list[Prompt]]:
    """Prompt groups for 2-D views: each single task, each pairwise 50/50 mixture, the uniform mixture.

    Keys: ``"a"``, ``"a+b"``, ``"uniform"`` (the last only for 3 or more tasks). Candidate tasks are ``tasks``
    throughout, so every group shares the same queries.
    """
    fam = get_family(family)
    tasks = resolve_tasks(fam, tasks)
    k = len(tasks)

    def group(weights: Sequence[float]) -> list[Prompt]:
        return build_prompts(fam, tasks, proportions=weights, n_examples=n_examples, n_prompts=n_prompts, seed=seed)

    groups = {t: group([float(i == j) for j in range(k)]) for i, t in enumerate(tasks)}
    for i, j in itertools.combinations(range(k), 2):
        groups[f"{tasks[i]}+{tasks[j]}"] = group([0.5 if m in (i, j) else 0.0 for m in range(k)])
    if k >= 3:
        groups["uniform"] = group([1.0 / k] * k)
    return groups
