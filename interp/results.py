"""Result values: what experiments return, what studies save and what plots draw (numpy only, no model).

Every result is a frozen dataclass built on :class:`Result`, so it

- prints in one line (``repr`` shows scalars, short tuples and the shapes of arrays, never the arrays);
- converts to JSON-ready values with :meth:`Result.to_dict` and back with :meth:`Result.from_dict`, from its own
  fields and their type hints (no serialiser written by hand beside it; :meth:`Result.save` / :meth:`Result.load`
  add a ``"type"`` tag and write atomically);
- converts to a tidy pandas DataFrame with :meth:`Result.to_frame` (one row per array cell, columns named by the
  array's dimensions; pandas is imported on first use).

The mixing variable has one meaning everywhere in this package: the **weight (fraction) of the first task A**.
For a λ sweep, the patched vector is v(λ) = λ·v_A + (1 − λ)·v_B and the real mixed prompts hold a fraction λ of
task-A examples; for a mixture curve, ``d`` is the fraction of task-A examples (docs/science.md §2, §4).

>>> import numpy as np
>>> r = BestLayer("bias_add", "add1", (0, 1), np.array([0.2, 0.6]), np.array([0.1, 0.7]), 0.1, 0.1, 0.9, 1.0, 8, 0)
>>> r
BestLayer(family='bias_add', task='add1', layers=(0, 1), p_correct[2], candidate_accuracy[2], zero_shot_p=0.1, \
zero_shot_candidate_accuracy=0.1, icl_p=0.9, icl_candidate_accuracy=1, n_prompts=8, seed=0, mode='replace', best=1)
>>> BestLayer.from_dict(r.to_dict()) == r
True
>>> r.to_frame()[["layers", "p_correct"]].values.tolist()
[[0, 0.2], [1, 0.6]]
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union

import numpy as np

from interp.export import atomic_write_bytes
from interp.validate import ArgumentError, ArgumentTypeError, check_int

R = TypeVar("R", bound="Result")

#: Every result type by name (for :meth:`Result.load`).
RESULT_TYPES: dict[str, type[Result]] = {}

CANDIDATE_ACCURACY_RULE = (
    "candidate accuracy: the correct answer has the highest teacher-forced probability among the candidate tasks' "
    "answers (not greedy decoding over the vocabulary; see interp.scoring.greedy_correct for that)"
)


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return "[" + "×".join(str(n) for n in value.shape) + "]"
    if isinstance(value, float):
        return f"={value:.4g}"
    if isinstance(value, tuple | list) and len(value) > 6:
        return f"=({len(value)} items)"
    if isinstance(value, Result):
        return f"={type(value).__name__}(…)"
    return f"={value!r}"


def _encode(value: Any) -> Any:
    if isinstance(value, Result):
        return value.to_dict()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def _decode(value: Any, hint: Any) -> Any:
    """Rebuild a field value from JSON using its type hint (ndarray, tuple, Result, unions with None)."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _decode(value, options[0]) if len(options) == 1 else value
    if hint is np.ndarray:
        return np.asarray(value, dtype=float)
    if isinstance(hint, type) and issubclass(hint, Result):
        return hint.from_dict(value)
    if origin is tuple:
        args = typing.get_args(hint)
        inner = args[0] if args and (len(args) == 2 and args[1] is Ellipsis) else None
        return tuple(_decode(v, inner) if inner is not None else _freeze(v) for v in value)
    if origin is list:
        (inner,) = typing.get_args(hint) or (None,)
        return [_decode(v, inner) if inner is not None else v for v in value]
    if origin is dict:
        _, inner = typing.get_args(hint)
        return {k: _decode(v, inner) for k, v in value.items()}
    if hint is float:
        return float(value)
    if hint is int:
        return int(value)
    return value


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _freeze(value: Any) -> Any:
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is not None and b is not None and np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


class Result:
    """Base of every result dataclass: one-line ``repr``, ``to_dict``/``from_dict``, ``to_frame``, ``save``/``load``.

    Subclasses are ``@dataclasses.dataclass(frozen=True, eq=False, repr=False)`` and list in ``_dims`` the dimension
    names of their array fields (used by :meth:`to_frame`); ``_summary`` names properties shown in the ``repr``.
    """

    _dims: ClassVar[dict[str, tuple[str, ...]]] = {}
    _summary: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        RESULT_TYPES[cls.__name__] = cls

    def __repr__(self) -> str:
        parts = [f"{f.name}{_short(getattr(self, f.name))}" for f in dataclasses.fields(self)]  # type: ignore[arg-type]
        parts += [f"{name}{_short(getattr(self, name))}" for name in self._summary]
        return f"{type(self).__name__}({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_equal(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self))  # type: ignore[arg-type]

    __hash__ = None  # type: ignore[assignment] - holds arrays

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values of every field (arrays as nested lists, nested results as dicts)."""
        return {f.name: _encode(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        """Inverse of :meth:`to_dict` (unknown keys refused, missing optional fields take their defaults); a missing
        or unreadable field is named (``data['log_probs']: ...``)."""
        if not isinstance(data, dict):
            raise ArgumentTypeError("data", f"need the dict of {cls.__name__}.to_dict(), got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        names = {f.name for f in fields}
        unknown = sorted(set(data) - names - {"type"})
        if unknown:
            raise ArgumentError("data", f"unknown keys {unknown} for {cls.__name__}; valid: {sorted(names)}")
        required = [
            f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [k for k in required if k not in data]
        if missing:
            raise ArgumentError("data", f"missing fields {missing} of {cls.__name__}")
        values = {}
        for k, v in data.items():
            if k not in names:
                continue
            try:
                values[k] = _decode(v, hints[k])
            except (TypeError, ValueError) as err:
                raise ArgumentError(f"data[{k!r}]", f"cannot be read as {_hint_name(hints[k])}: {err}") from None
        try:
            return cls(**values)
        except ArgumentError:
            raise
        except (TypeError, ValueError) as err:
            raise ArgumentError("data", f"not a valid {cls.__name__}: {err}") from None

    def save(self, path: str | Path) -> Path:
        """Write ``{"type": <class name>, **to_dict()}`` as JSON at full precision, atomically."""
        data = {"type": type(self).__name__, **self.to_dict()}
        return atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())

    @staticmethod
    def load(path: str | Path) -> Result:
        """Read a result written by :meth:`save` (its type from the ``"type"`` tag)."""
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            what = "is empty" if not err.doc.strip() else f"is not valid JSON ({err.msg} at line {err.lineno})"
            raise ArgumentError("path", f"{path} {what}; was it cut short? Write results with Result.save") from None
        name = data.get("type") if isinstance(data, dict) else None
        if name not in RESULT_TYPES:
            raise ArgumentError("path", f"{path} holds no interp result (type {name!r}); valid: {sorted(RESULT_TYPES)}")
        try:
            return RESULT_TYPES[name].from_dict(data)
        except ArgumentError as err:
            raise ArgumentError("path", f"{path}: {err}") from None

    def to_frame(self):
        """Tidy ``pandas.DataFrame``: one row per cell of the array fields named in ``_dims``, plus scalar fields.

        Columns: the scalar/string fields, one column per dimension (coordinates looked up in fields of that name
        when present, else integer indices), and one column per array field.
        """
        import pandas as pd

        scalars = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if isinstance(getattr(self, f.name), str | int | float | bool) and f.name not in self._dims
        }
        groups: dict[tuple[str, ...], dict[str, np.ndarray]] = {}
        for name, dims in self._dims.items():
            value = getattr(self, name)
            if value is not None:
                groups.setdefault(dims, {})[name] = np.asarray(value)
        frames = []
        for dims, arrays in groups.items():
            shape = next(iter(arrays.values())).shape
            index = np.indices(shape).reshape(len(shape), -1)
            cols = {dim: self._coords(dim, shape[i])[index[i]] for i, dim in enumerate(dims)}
            cols.update({name: a.reshape(-1) for name, a in arrays.items()})
            frames.append(pd.DataFrame(cols))
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(index=[0])
        for i, (k, v) in enumerate(scalars.items()):
            frame.insert(i, k, v)
        return frame

    def _coords(self, dim: str, n: int) -> np.ndarray:
        """Coordinates of dimension ``dim``: a field or property of that name with ``n`` entries, else ``0..n-1``."""
        value = getattr(self, dim, None)
        if value is not None and not callable(value) and len(value) == n:
            return np.asarray(list(value), dtype=object)
        return np.arange(n)


def result(cls: type[R]) -> type[R]:
    """Class decorator: a frozen dataclass that keeps :class:`Result`'s ``repr`` and ``==``."""
    return dataclasses.dataclass(frozen=True, eq=False, repr=False)(cls)


# ---------------------------------------------------------------------------------------------
# Answer probabilities


@result
class AnswerScores(Result):
    """Log-probabilities ``Float[ndarray, "prompt task"]`` of each task's answer to each prompt's query.

    ``include_newline``: whether the answer's terminating newline was scored too (the complete output);
    ``n_merged``: answers whose first token merged with the prompt's last token (scored exactly all the same).
    """

    log_probs: np.ndarray
    tasks: tuple[str, ...]
    include_newline: bool
    n_merged: int = 0

    _dims: ClassVar = {"log_probs": ("prompt", "tasks")}

    def __repr__(self) -> str:
        mean = ", ".join(f"{t}={p:.3f}" for t, p in zip(self.tasks, self.probs.mean(axis=0), strict=True))
        return (
            f"AnswerScores({self.log_probs.shape[0]} prompts; mean P: {mean}, other={self.other.mean():.3f}; "
            f"include_newline={self.include_newline}, n_merged={self.n_merged})"
        )

    @property
    def probs(self) -> np.ndarray:
        """P(answer) per prompt and task (not renormalised)."""
        return np.exp(self.log_probs)

    @property
    def other(self) -> np.ndarray:
        """1 − Σ_k P(a_k) per prompt: the mass on every other output."""
        return 1.0 - self.probs.sum(axis=1)


#: z of a two-sided 95% normal interval (the CIs of the bars: mean ± z · SEM over prompts).
Z95 = 1.959963984540054


@result
class AnswerDistribution(Result):
    """Mean probability of each task's answer and of everything else, over ``n_prompts`` prompts, with 95% CIs.

    ``mean``, ``low``, ``high``: ``Float[ndarray, "label"]`` (labels: the tasks, then ``"other"``); the interval is
    mean ± 1.96 · SEM over prompts (normal approximation).

    >>> d = AnswerDistribution.from_probs(np.array([[0.9, 0.1], [0.7, 0.2]]), "bias_add", ("add1", "add7"), "demo")
    >>> {k: round(v, 3) for k, v in d.as_dict().items()}
    {'add1': 0.8, 'add7': 0.15, 'other': 0.05}
    """

    family: str
    labels: tuple[str, ...]
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_prompts: int
    title: str

    _dims: ClassVar = {"mean": ("label",), "low": ("label",), "high": ("label",)}

    @classmethod
    def from_probs(cls, probs: np.ndarray, family: str, tasks: Sequence[str], title: str) -> AnswerDistribution:
        """From ``Float[ndarray, "prompt task"]`` probabilities (``other`` = 1 − their sum, per prompt)."""
        values = np.concatenate([probs, 1.0 - probs.sum(axis=1, keepdims=True)], axis=1)
        n = values.shape[0]
        mean = values.mean(axis=0)
        sem = values.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
        return cls(family, (*tasks, "other"), mean, mean - Z95 * sem, mean + Z95 * sem, n, title)

    def as_dict(self) -> dict[str, float]:
        """Label → mean probability."""
        return {k: float(v) for k, v in zip(self.labels, self.mean, strict=True)}


# ---------------------------------------------------------------------------------------------
# Task-vector experiments


#: What a self-patch control can say at a layer (:attr:`BestLayer.control_status`).
CONTROL_STATUSES = ("passes", "fails", "uninformative", "unchecked", "not run")


@result
class BestLayer(Result):
    """Patching a task vector into zero-shot queries, layer by layer, with references (docs/science.md §4).

    ``p_correct`` / ``candidate_accuracy``: ``Float[ndarray, "layer"]`` mean P(correct answer) and candidate
    accuracy (see ``accuracy_rule``) when patched at ``layers[i]``; ``p_correct_sem`` the s.e.m. of the mean.
    ``zero_shot_*``: no patch; ``icl_*``: in-context examples of the task, same queries. ``chance``: 1 / number of
    candidate tasks.
    """

    family: str
    task: str
    layers: tuple[int, ...]
    p_correct: np.ndarray
    candidate_accuracy: np.ndarray
    zero_shot_p: float
    zero_shot_candidate_accuracy: float
    icl_p: float
    icl_candidate_accuracy: float
    n_prompts: int
    seed: int
    n_candidates: int = 0
    p_correct_sem: np.ndarray | None = None
    accuracy_rule: str = CANDIDATE_ACCURACY_RULE
    mode: str = "replace"
    control_accuracy: np.ndarray | None = None
    control_tolerance: float | None = None
    queries: str = "zero_shot"
    n_distinct_queries: int | None = None
    negative_task: str | None = None
    negative_accuracy: np.ndarray | None = None
    negative_p_other: np.ndarray | None = None

    _dims: ClassVar = {
        "p_correct": ("layers",),
        "candidate_accuracy": ("layers",),
        "p_correct_sem": ("layers",),
        "control_accuracy": ("layers",),
        "negative_accuracy": ("layers",),
        "negative_p_other": ("layers",),
    }
    _summary: ClassVar = ("best",)

    def __repr__(self) -> str:
        skip = ("accuracy_rule", "n_candidates", "p_correct_sem", "control_accuracy", "control_tolerance", "queries",
                "n_distinct_queries", "negative_task", "negative_accuracy", "negative_p_other")  # fmt: skip
        parts = [f"{f.name}{_short(getattr(self, f.name))}" for f in dataclasses.fields(self) if f.name not in skip]
        return f"{type(self).__name__}({', '.join(parts)}, best={self.best})"

    @property
    def passes(self) -> np.ndarray:
        """``Bool[ndarray, "layer"]``: layers where the self-patch control holds (the task's own vector patched into
        its own in-context prompts keeps the candidate accuracy within ``control_tolerance`` of ``icl_candidate_
        accuracy``); every layer when no control was run."""
        if self.control_accuracy is None or self.control_tolerance is None:
            return np.ones(len(self.layers), dtype=bool)
        return np.asarray(self.control_accuracy) >= self.icl_candidate_accuracy - self.control_tolerance - 1e-9

    @property
    def informative(self) -> np.ndarray | None:
        """``Bool[ndarray, "layer"]``: layers where the control's negative form moved the accuracy (another task's
        vector, put in the same way, drops it by more than ``control_tolerance``); ``None`` when it was not run."""
        if self.negative_accuracy is None or self.control_tolerance is None:
            return None
        return np.asarray(self.negative_accuracy) < self.icl_candidate_accuracy - self.control_tolerance - 1e-9

    @property
    def control_status(self) -> tuple[str, ...]:
        """Per layer, what the self-patch control says (:data:`CONTROL_STATUSES`): ``"fails"`` (the own vector drops
        the accuracy), ``"passes"`` (it keeps it and another task's vector moves it), ``"uninformative"`` (both keep
        it: keeping it says nothing), ``"unchecked"`` (kept; no negative form run) or ``"not run"``.

        >>> r = BestLayer("f", "t", (0, 1, 2), np.zeros(3), np.zeros(3), 0, 0, 1, 1.0, 8, 0,
        ...               control_accuracy=np.array([1.0, 1.0, 0.2]), control_tolerance=0.05,
        ...               negative_accuracy=np.array([1.0, 0.0, 0.0]))
        >>> r.control_status
        ('uninformative', 'passes', 'fails')
        """
        if self.control_accuracy is None or self.control_tolerance is None:
            return ("not run",) * len(self.layers)
        moved = self.informative
        return tuple(
            "fails" if not ok else "unchecked" if moved is None else "passes" if moved[i] else "uninformative"
            for i, ok in enumerate(self.passes)
        )

    @property
    def best(self) -> int | None:
        """The passing layer with the highest mean P(correct) (ties: the earliest); ``None`` when no layer passes the
        self-patch control (no steering claim can be made at any layer)."""
        ok = self.passes
        if not ok.any():
            return None
        p = np.where(ok, self.p_correct, -np.inf)
        return self.layers[int(np.argmax(p))]

    def check_claim(self, layer: int) -> None:
        """Refuse a steering claim at ``layer`` when the self-patch control fails or is uninformative there, saying
        why.

        >>> r = BestLayer("f", "t", (0, 1), np.array([.2, .6]), np.array([.1, .7]), 0, 0, .9, 1.0, 8, 0,
        ...               control_accuracy=np.array([1.0, 0.1]), control_tolerance=0.05)
        >>> r.best, r.check_claim(0)
        (0, None)
        >>> r.check_claim(1)
        Traceback (most recent call last):
        ...
        ValueError: layer: no steering claim at layer 1 (mode replace): patching t's own vector into its own ...
        """
        if layer not in self.layers:
            raise ValueError(f"layer: {layer!r} was not swept; valid: {list(self.layers)}")
        i = self.layers.index(layer)
        if self.control_status[i] == "uninformative":
            raise ValueError(
                f"layer: no steering claim at layer {layer} (mode {self.mode}): the self-patch control is "
                f"uninformative there: {self.negative_task}'s vector put in the same way also keeps {self.task}'s "
                f"accuracy ({float(self.negative_accuracy[i]):.3f} of {self.icl_candidate_accuracy:.3f}), so keeping "
                "it says nothing about the intervention"
            )
        if not self.passes[i]:
            raise ValueError(
                f"layer: no steering claim at layer {layer} (mode {self.mode}): patching {self.task}'s own vector into "
                f"its own in-context prompts there drops candidate accuracy from {self.icl_candidate_accuracy:.3f} to "
                f"{float(self.control_accuracy[i]):.3f} (tolerance {self.control_tolerance:g}), so the intervention "
                f"erases what that position holds; passing layers: "
                f"{[la for la, ok in zip(self.layers, self.passes, strict=True) if ok]}"
            )

    @property
    def chance(self) -> float | None:
        """Candidate accuracy of a uniform guess among the candidates (``None`` when unknown)."""
        return 1.0 / self.n_candidates if self.n_candidates else None


@result
class MixtureSweep(Result):
    """Patched probabilities over mixing points × layers, and the real mixed-prompt curve (docs/science.md §4).

    ``weights``: ``Float[ndarray, "point task"]`` convex weights of the task vectors (for a λ sweep, rows
    ``(λ, 1 − λ)``: λ is the weight of task A). ``probs`` / ``sem``: ``Float[ndarray, "point layer outcome"]``
    mean / s.e.m. over queries of (P(a_1), …, P(a_K), P(other)). ``real_probs`` / ``real_sem``:
    ``Float[ndarray, "point outcome"]`` on in-context prompts whose task fractions are ``weights`` (same queries);
    ``real_fractions``: the realised fractions; ``None`` when the real curve was not asked for.
    """

    family: str
    tasks: tuple[str, ...]
    weights: np.ndarray
    layers: tuple[int, ...]
    probs: np.ndarray
    sem: np.ndarray
    real_probs: np.ndarray | None
    real_sem: np.ndarray | None
    real_fractions: np.ndarray | None
    n_prompts: int
    n_examples: int
    seed: int
    mode: str
    queries: str = "zero_shot"
    n_distinct_queries: int | None = None

    _dims: ClassVar = {
        "probs": ("point", "layers", "outcome"),
        "sem": ("point", "layers", "outcome"),
        "real_probs": ("point", "outcome"),
        "real_sem": ("point", "outcome"),
    }

    @property
    def outcome(self) -> tuple[str, ...]:
        """Names of the last axis of ``probs``: the tasks, then ``"other"``."""
        return (*self.tasks, "other")

    @property
    def lambdas(self) -> np.ndarray:
        """λ = weight of the first task A at each point."""
        return self.weights[:, 0]

    def at_layer(self, layer: int) -> np.ndarray:
        """``Float[ndarray, "point outcome"]``: patched probabilities at model layer ``layer``."""
        if layer not in self.layers:
            raise ValueError(f"layer: {layer!r} not in this sweep; valid: {list(self.layers)}")
        return self.probs[:, self.layers.index(layer)]


# ---------------------------------------------------------------------------------------------
# Decompositions and projections


#: A design whose condition number exceeds this lets float32 rounding of the vectors (~1e-7 relative) move the
#: decomposition coefficients by more than ~1e-3.
ILL_CONDITIONED = 1e4


@result
class Decomposition(Result):
    """Per-layer fit ``y ≈ intercept + Σ_k coefs[:, k] · x_k`` (docs/science.md §4).

    ``coefs``: ``Float[ndarray, "layer basis"]``; ``intercept``, ``residual_norm``, ``target_norm``:
    ``Float[ndarray, "layer"]`` (intercept 0 when not fitted; norms of the fitted, possibly unit, target).
    ``condition_number``: ``Float[ndarray, "layer"]`` of the fitted design (basis columns, plus the intercept's): how
    much the coefficients amplify noise in the vectors. The residual is stable whatever it is; coefficients at a
    layer where it exceeds :data:`ILL_CONDITIONED` (nearly collinear task vectors) are not to be read one by one.
    """

    coefs: np.ndarray
    intercept: np.ndarray
    residual_norm: np.ndarray
    target_norm: np.ndarray
    layers: tuple[int, ...]
    names: tuple[str, ...]
    method: str
    fit_intercept: bool
    normalized: bool
    condition_number: np.ndarray | None = None

    _dims: ClassVar = {
        "coefs": ("layers", "names"),
        "intercept": ("layers",),
        "residual_norm": ("layers",),
        "target_norm": ("layers",),
        "condition_number": ("layers",),
    }

    @property
    def ill_conditioned(self) -> np.ndarray:
        """``Bool[ndarray, "layer"]``: layers whose coefficients float noise can move (see ``condition_number``)."""
        if self.condition_number is None:
            return np.zeros(len(self.layers), dtype=bool)
        return self.condition_number > ILL_CONDITIONED

    @property
    def relative_residual(self) -> np.ndarray:
        """‖y − ŷ‖ / ‖y‖ per layer (equals ``residual_norm`` for a unit target)."""
        return np.divide(
            self.residual_norm, self.target_norm, out=np.zeros_like(self.residual_norm), where=self.target_norm > 0
        )


@result
class ProportionSweep(Result):
    """Decomposition coefficients vs the in-context fraction of task A (docs/science.md §4).

    ``proportions``: ``Float[ndarray, "point"]`` requested fraction of task A; ``fractions`` the realised one;
    ``coefs``: ``Float[ndarray, "point layer 2"]`` (on v_A, v_B); ``intercept`` / ``residual_norm``:
    ``Float[ndarray, "point layer"]``.
    """

    proportions: np.ndarray
    fractions: np.ndarray
    coefs: np.ndarray
    intercept: np.ndarray
    residual_norm: np.ndarray
    layers: tuple[int, ...]
    method: str
    fit_intercept: bool

    _dims: ClassVar = {
        "coefs": ("proportions", "layers", "basis"),
        "intercept": ("proportions", "layers"),
        "residual_norm": ("proportions", "layers"),
    }

    @property
    def basis(self) -> tuple[str, str]:
        return ("a", "b")


@result
class Projection(Result):
    """2-D coordinates ``Float[ndarray, "layer prompt 2"]`` of per-prompt vectors, one fit per layer.

    ``explained``: ``Float[ndarray, "layer 2"]`` explained-variance ratios (PCA: of the total variance; LDA: of the
    between-class variance). ``layers``: model layers of the fits.
    """

    coords: np.ndarray
    labels: tuple[str, ...]
    explained: np.ndarray
    method: str
    layers: tuple[int, ...] = ()

    _dims: ClassVar = {"coords": ("layers", "labels", "component"), "explained": ("layers", "component")}


@result
class CosineMatrix(Result):
    """Cosine similarities ``Float[ndarray, "layer name name"]`` between named vectors at each layer."""

    matrix: np.ndarray
    names: tuple[str, ...]
    layers: tuple[int, ...]
    centred: bool = False

    _dims: ClassVar = {"matrix": ("layers", "names", "other")}

    @property
    def other(self) -> tuple[str, ...]:
        return self.names


# ---------------------------------------------------------------------------------------------
# Measurements on mixed prompts


@result
class Distribution(Result):
    """Per-point distribution over prompts of one quantity: mean, 95% bootstrap CI, variance and quantiles.

    Every field is ``Float[ndarray, "point"]`` except ``ci95``: ``Float[ndarray, "point 2"]``.
    """

    mean: np.ndarray
    ci95: np.ndarray
    var: np.ndarray
    q10: np.ndarray
    q25: np.ndarray
    median: np.ndarray
    q75: np.ndarray
    q90: np.ndarray

    _dims: ClassVar = {k: ("point",) for k in ("mean", "var", "q10", "q25", "median", "q75", "q90")}


@result
class MixtureCurve(Result):
    """P(a_A), P(a_B), P(other) and P(a_A) + P(a_B) vs the fraction ``d`` of task-A examples (docs/science.md §2)."""

    family: str
    tasks: tuple[str, str]
    task_index: tuple[int, int]
    d: tuple[float, ...]
    a: Distribution
    b: Distribution
    other: Distribution
    two_answer_mass: Distribution

    def to_frame(self):
        """One row per (d, outcome) with the distribution's statistics."""
        import pandas as pd

        rows = []
        for outcome in ("a", "b", "other", "two_answer_mass"):
            dist = getattr(self, outcome)
            for i, d in enumerate(self.d):
                row = {"family": self.family, "task_a": self.tasks[0], "task_b": self.tasks[1], "d": d}
                row |= {"outcome": outcome, **{k: getattr(dist, k)[i] for k in Distribution._dims}}
                row |= {"ci_low": dist.ci95[i][0], "ci_high": dist.ci95[i][1]}
                rows.append(row)
        return pd.DataFrame(rows)


@result
class UniformMixture(Result):
    """The paper's Figure-2 view for one model and family: uniformly mixed prompts (docs/science.md §2).

    ``mean`` / ``var``: ``Float[ndarray, "task"]`` P(each task's answer) over prompts; ``ci95``:
    ``Float[ndarray, "task 2"]``; ``rank_view``: mean of the per-prompt sorted probabilities (top-1, top-2, …);
    ``kl``: mean KL(t ‖ p), the paper's definition (no renormalisation).
    """

    model: str
    family: str
    tasks: tuple[str, ...]
    task_index: tuple[int, ...]
    n_examples: int
    n_prompts: int
    targets: np.ndarray
    mean: np.ndarray
    ci95: np.ndarray
    var: np.ndarray
    other: float
    other_ci95: tuple[float, float]
    rank_view: np.ndarray
    kl: float
    kl_ci95: tuple[float, float]

    _dims: ClassVar = {"targets": ("tasks",), "mean": ("tasks",), "var": ("tasks",), "rank_view": ("rank",)}


@result
class TasksSolvedCurve(Result):
    """Tasks solved (the paper's beam-search rule) and KL vs the number ``k`` of tasks mixed (docs/science.md §5)."""

    model: str
    family: str
    tasks: tuple[str, ...]
    n_examples: int
    k: tuple[int, ...]
    solved: np.ndarray
    solved_ci95: np.ndarray
    kl: np.ndarray
    kl_ci95: np.ndarray

    _dims: ClassVar = {"solved": ("k",), "kl": ("k",)}


# ---------------------------------------------------------------------------------------------
# Training records


@result
class TrainingCurve(Result):
    """Training loss ``Float[ndarray, "step"]`` (answer tokens and their newline) at logged ``steps``."""

    steps: np.ndarray
    loss: np.ndarray

    _dims: ClassVar = {"loss": ("steps",)}


@result
class PairAtHalf(Result):
    """Mean P(a_A), P(a_B), across-prompt variance of P(a_A) and P(a_A) + P(a_B) on 50/50 prompts of one pair."""

    family: str
    tasks: tuple[str, str]
    p_a: float
    p_b: float
    var_a: float
    mass: float


@result
class CheckpointRecord(Result):
    """One checkpoint of a run: single-task accuracy per family and task, and each pair's 50/50 probabilities."""

    step: int
    accuracy: dict[str, dict[str, float]]
    pairs: tuple[PairAtHalf, ...]

    def to_frame(self):
        """One row per (family, task) accuracy."""
        import pandas as pd

        return pd.DataFrame(
            [
                {"step": self.step, "family": f, "task": t, "accuracy": a}
                for f, ts in self.accuracy.items()
                for t, a in ts.items()
            ]
        )


# ---------------------------------------------------------------------------------------------
# Scale and generation (claims 4 and 5)


@result
class ScalingPoint(Result):
    """One model of the scaling study (docs/science.md §5): calibration and tasks solved on uniform mixtures.

    ``kl``, ``kl_renormalized``, ``other`` and ``solved`` are distributions over prompts with one point per ``k``
    (K tasks mixed uniformly); ``accuracy`` has one point per task of ``tasks`` (greedy single-task accuracy);
    ``mean_accuracy`` pools every single-task prompt.
    """

    model: str
    n_params: int
    family: str
    tasks: tuple[str, ...]
    n_examples: int
    n_prompts: int
    k: tuple[int, ...]
    kl: Distribution
    kl_renormalized: Distribution
    other: Distribution
    solved: Distribution
    accuracy: Distribution
    mean_accuracy: float
    mean_accuracy_ci95: tuple[float, float]

    def to_frame(self):
        """One row per (metric, point): K for the mixture metrics, the task for ``accuracy``."""
        import pandas as pd

        rows = []
        for metric in ("kl", "kl_renormalized", "other", "solved", "accuracy"):
            dist: Distribution = getattr(self, metric)
            coords = self.tasks if metric == "accuracy" else self.k
            for i, c in enumerate(coords):
                row = {"model": self.model, "n_params": self.n_params, "family": self.family, "metric": metric}
                row |= {"k" if metric != "accuracy" else "task": c, "mean": dist.mean[i], "var": dist.var[i]}
                row |= {"ci_low": dist.ci95[i][0], "ci_high": dist.ci95[i][1]}
                rows.append(row)
        return pd.DataFrame(rows)


@result
class CollapseCurve(Result):
    """Generation collapse on mixed prompts (docs/science.md §5): superposition at token 1, commitment after it.

    One point per entry of ``proportions`` (the fraction of examples of each task); per point and task:

    - ``first_token``: ``Float[ndarray, "point task"]`` mean P(the task's first answer token) (a token that starts
      several tasks' answers is split equally among them), ``first_token_ci95``: ``Float[ndarray, "point task 2"]``;
      ``first_other``: the rest of the first-token mass;
    - ``full_answer``: exact mean P(the task's whole answer + terminator), the chance a sampled completion equals it;
    - ``sampled``: fraction of sampled completions equal to the task's answer; ``sampled_none``: equal to no task's
      answer; ``sampled_hybrid``: one task's first token followed by another task's continuation;
    - ``continuation``: ``Float[ndarray, "point task task"]`` mean P(task k's continuation | task j's first token)
      (row j, column k; the diagonal is commitment);
    - ``greedy_commit`` / ``sampled_commit``: per prompt, P(finishing a task's answer | the first token was the
      greedy one / a sampled one that starts a task's answer); ``greedy_none``: share of prompts whose greedy first
      token starts no task's answer.
    """

    model: str
    family: str
    tasks: tuple[str, ...]
    task_index: tuple[int, ...]
    proportions: tuple[tuple[float, ...], ...]
    n_examples: int
    n_prompts: int
    n_samples: int
    answer_tokens: tuple[int, ...]
    first_token: np.ndarray
    first_token_ci95: np.ndarray
    first_other: np.ndarray
    full_answer: np.ndarray
    sampled: np.ndarray
    sampled_none: np.ndarray
    sampled_hybrid: np.ndarray
    continuation: np.ndarray
    greedy_commit: Distribution
    greedy_none: np.ndarray
    sampled_commit: Distribution

    _dims: ClassVar = {
        "first_token": ("point", "tasks"),
        "first_other": ("point",),
        "full_answer": ("point", "tasks"),
        "sampled": ("point", "tasks"),
        "sampled_none": ("point",),
        "sampled_hybrid": ("point",),
        "greedy_none": ("point",),
    }


@result
class PowerCurve(Result):
    """How often a test rejects at level ``alpha`` when an effect of known size is planted (:mod:`interp.power`):
    ``rejection[i]`` over ``n_sim`` simulated data sets of ``n`` prompts with ``effects[i]`` planted (``unit``: what
    an effect is measured in, the statistic's own units). ``mde``: the minimum detectable effect, the smallest
    planted effect rejected with probability ``power`` (linear between grid points; ``None`` beyond the grid).

    >>> c = PowerCurve(np.array([0.0, 1.0, 2.0]), np.array([0.05, 0.6, 1.0]), 30, 0.05, 0.8, 100, "units")
    >>> round(c.mde, 3)
    1.5
    """

    effects: np.ndarray
    rejection: np.ndarray
    n: int
    alpha: float
    power: float
    n_sim: int
    unit: str

    _dims: ClassVar = {"effects": ("effect",), "rejection": ("effect",)}
    _summary: ClassVar = ("mde",)

    @property
    def mde(self) -> float | None:
        rej = np.asarray(self.rejection, dtype=float)
        eff = np.asarray(self.effects, dtype=float)
        hit = np.flatnonzero(rej >= self.power)
        if not len(hit):
            return None
        i = int(hit[0])
        if i == 0:
            return float(eff[0])
        e0, e1, r0, r1 = eff[i - 1], eff[i], rej[i - 1], rej[i]
        return float(e0 + (self.power - r0) / (r1 - r0) * (e1 - e0)) if r1 > r0 else float(e1)

    @property
    def false_positive_rate(self) -> float | None:
        """The rejection rate with nothing planted (effect 0, when on the grid): the test's size, near ``alpha``."""
        zero = np.flatnonzero(np.asarray(self.effects) == 0)
        return float(self.rejection[zero[0]]) if len(zero) else None

    def detectable(self) -> str:
        """``"≥ 0.12"`` (or ``"> 0.4"`` when the grid's largest effect is not detected with the power)."""
        m = self.mde
        return f"≥ {m:.3g}" if m is not None else f"> {float(np.max(self.effects)):.3g}"


@result
class NullTest(Result):
    """An effect beside its null (:mod:`interp.nulls`): ``statistic``, the null's samples ``null``
    (``Float[ndarray, "sample"]``), the one-sided ``p_value`` P(null >= statistic) with the +1 correction, a 95% CI of
    the statistic over prompts where it is a mean (else ``None``), and ``note`` saying what the null is. ``n``: the
    prompts the statistic rests on; ``power``: the test's :class:`PowerCurve` at that ``n`` (planted effects,
    simulated), whose ``mde`` is what a non-rejection can speak to (``None`` where it was not simulated)."""

    name: str
    statistic: float
    null: np.ndarray
    p_value: float
    ci95: tuple[float, float] | None
    note: str
    n: int = 0
    power: PowerCurve | None = None

    _dims: ClassVar = {"null": ("sample",)}

    @property
    def mde(self) -> float | None:
        """The minimum detectable effect at ``n`` (``None``: not simulated, or beyond the simulated grid)."""
        return None if self.power is None else self.power.mde

    @property
    def null_mean(self) -> float:
        return float(np.mean(self.null))

    @property
    def null_q95(self) -> float:
        """The null's 95th percentile: the statistic must exceed it for p < 0.05 (up to the +1 correction)."""
        return float(np.quantile(self.null, 0.95))


@result
class HeadMap(Result):
    """A per-head measurement (:mod:`interp.heads`): ``mean`` ``Float[ndarray, "layer head"]`` over ``n_prompts``
    prompts and its 95% bootstrap interval ``ci95`` ``Float[ndarray, "layer head 2"]``, for ``task`` of ``family``;
    ``measure`` names it (e.g. ``"causal indirect effect"``)."""

    measure: str
    family: str
    task: str
    layers: tuple[int, ...]
    mean: np.ndarray
    ci95: np.ndarray
    n_prompts: int
    seed: int

    _dims: ClassVar = {"mean": ("layers", "head"), "ci95": ("layers", "head", "bound")}

    def top(self, k: int = 3) -> list[tuple[int, int]]:
        """The ``k`` heads ``(layer, head)`` with the largest mean, largest first (ties: the earliest)."""
        k = check_int(k, "k", minimum=1)
        flat = np.argsort(-self.mean.ravel(), kind="stable")[:k]
        n_heads = self.mean.shape[1]
        return [(self.layers[int(i) // n_heads], int(i) % n_heads) for i in flat]

    def clear_of_zero(self) -> np.ndarray:
        """``Bool[ndarray, "layer head"]``: heads whose 95% interval excludes 0."""
        return (self.ci95[..., 0] > 0) | (self.ci95[..., 1] < 0)
