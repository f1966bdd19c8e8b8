"""Task vectors: mean residual stream at the query's last token over in-context prompts, with arithmetic.

A :class:`TaskVector` holds, per captured layer, the mean ``Float[Tensor, "layer d_model"]`` of the residual
stream at each prompt's last token (the separator) and the per-dimension standard deviation across prompts,
plus everything needed to know what it is (model, weight processing, hook point, prompts). Linear
combinations read like the paper (docs/science.md §4)::

    v = 0.3 * v_a + 0.7 * v_b          # or convex([0.3, 0.7], [v_a, v_b])

Arithmetic refuses vectors from different models, weight processing, hook points, widths or layers
(``ValueError`` naming what differs). A combination records its terms (weight, provenance); its std is
``sqrt(Σ w_i² σ_i²)``, the per-dimension std of ``Σ w_i x_i`` for independently drawn prompts.

>>> v_a = task_vector(model, "operands", "copy_first", n_prompts=100)   # doctest: +SKIP
>>> v_a.save("copy_first.safetensors"); TaskVector.load("copy_first.safetensors") == v_a   # doctest: +SKIP
True
"""

from __future__ import annotations

import json
import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from interp.capture import POSITION_RULE, capture_resid
from interp.engines.plan import check_batch_size
from interp.export import atomic_path
from interp.heldout import held_out_seed
from interp.hooks import check_hook, check_layers
from interp.models import model_info
from interp.prompts import (
    Prompt,
    build_prompts,
    check_prompts,
    check_simplex,
    random_answer_prompts,
    random_string_prompts,
)
from interp.seeds import check_seed
from interp.streaming import moments
from interp.tasks import get_family, resolve_tasks
from interp.validate import (
    ArgumentError,
    ArgumentTypeError,
    check_count,
    check_examples_fit,
    check_int,
    check_model,
    check_sequence,
    check_tensor,
)

FORMAT = "interp.TaskVector/1"


@dataclass(frozen=True)
class Provenance:
    """Which prompts a captured vector was averaged over."""

    family: str
    tasks: tuple[str, ...]
    proportions: tuple[float, ...]
    n_prompts: int
    n_examples: int
    seed: int
    label: str = ""
    #: ``(seed, index)`` of every prompt averaged (:mod:`interp.heldout`); empty in files saved before it was recorded.
    prompt_ids: tuple[tuple[int, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Provenance:
        return cls(
            family=str(d["family"]),
            tasks=tuple(d["tasks"]),
            proportions=tuple(float(p) for p in d["proportions"]),
            n_prompts=int(d["n_prompts"]),
            n_examples=int(d["n_examples"]),
            seed=int(d["seed"]),
            label=str(d.get("label", "")),
            prompt_ids=tuple((int(s), int(i)) for s, i in d.get("prompt_ids", ())),
        )


@dataclass(frozen=True, eq=False, repr=False)
class TaskVector:
    """Per-layer mean and standard deviation of the residual stream at the query's last token.

    Fields:
        mean: ``Float[Tensor, "layer d_model"]``; row ``i`` belongs to model layer ``layers[i]``.
        std: ``Float[Tensor, "layer d_model"]`` per-dimension standard deviation across prompts (0 for one prompt).
        model_id, processing: the model's :class:`~interp.models.ModelInfo` id and weight-processing flags.
        hook: ``"resid_pre" | "resid_mid" | "resid_post"``.
        layers: model layers of the rows of ``mean``.
        position: the position rule (``"last_token"``).
        terms: ``((weight, Provenance), ...)``: one term of weight 1 for a captured vector.

    Equality (``==``) is exact: same tensors bit for bit and same metadata.
    """

    mean: torch.Tensor
    std: torch.Tensor
    model_id: str
    processing: tuple[tuple[str, bool], ...]
    hook: str
    layers: tuple[int, ...]
    position: str = POSITION_RULE
    terms: tuple[tuple[float, Provenance], ...] = field(default=())

    def __post_init__(self) -> None:
        check_hook(self.hook)
        for name in ("mean", "std"):
            check_tensor(getattr(self, name), name, ndim=2, shape_hint="[layer, d_model]")
        if self.mean.shape != self.std.shape:
            raise ArgumentError(
                "std",
                f"need the shape of mean (layer, d_model), got {tuple(self.mean.shape)} and {tuple(self.std.shape)}",
            )
        if not isinstance(self.model_id, str):
            raise ArgumentTypeError("model_id", f"a string, got {type(self.model_id).__name__}")
        layers = check_sequence(self.layers, "layers", what="layer indices", allow_empty=True)
        object.__setattr__(self, "layers", tuple(check_int(la, "layers", minimum=0) for la in layers))
        if len(self.layers) != self.mean.shape[0]:
            raise ArgumentError("layers", f"{len(self.layers)} layers for {self.mean.shape[0]} rows of mean")
        if isinstance(self.processing, dict):
            object.__setattr__(self, "processing", tuple(sorted(self.processing.items())))

    # ---- views ---------------------------------------------------------------------------------
    @property
    def d_model(self) -> int:
        return int(self.mean.shape[1])

    @property
    def processing_dict(self) -> dict[str, bool]:
        return dict(self.processing)

    @property
    def std_norm(self) -> torch.Tensor:
        """``Float[Tensor, "layer"]``: ‖per-dimension std‖ (root of the total variance across prompts)."""
        return self.std.double().norm(dim=1).to(self.std.dtype)

    def at(self, layer: int) -> torch.Tensor:
        """``Float[Tensor, "d_model"]``: the mean at model layer ``layer`` (``ValueError`` if not captured)."""
        if layer not in self.layers:
            raise ArgumentError("layer", f"{layer!r} not captured in this vector; valid: {list(self.layers)}")
        return self.mean[self.layers.index(layer)]

    def describe(self) -> str:
        """Short human label, e.g. ``0.3·operands:copy_first + 0.7·operands:sum``."""
        parts = []
        for w, p in self.terms:
            name = p.label or f"{p.family}:" + "+".join(
                t if len(p.tasks) == 1 else f"{t}={q:g}" for t, q in zip(p.tasks, p.proportions, strict=True)
            )
            parts.append(name if w == 1.0 and len(self.terms) == 1 else f"{w:g}·{name}")
        return " + ".join(parts) or "vector"

    def single_task(self) -> tuple[str, str] | None:
        """``(family, task)`` when this vector was captured on single-task prompts, else ``None`` (a mixture or a
        combination, whose task is not one name)."""
        if len(self.terms) != 1:
            return None
        _, prov = self.terms[0]
        return (prov.family, prov.tasks[0]) if len(prov.tasks) == 1 else None

    def incompatibilities(self, other: TaskVector) -> list[str]:
        """What differs between two vectors that must be combined (empty when compatible)."""
        diffs = []
        for name in ("model_id", "processing", "hook", "d_model", "layers", "position"):
            va, vb = getattr(self, name), getattr(other, name)
            if va != vb:
                diffs.append(f"{name} ({va!r} vs {vb!r})")
        return diffs

    def __repr__(self) -> str:
        norms = ", ".join(f"{x:.3g}" for x in self.mean.double().norm(dim=1).tolist())
        return (
            f"TaskVector({self.describe()!r}, model={self.model_id!r}, hook={self.hook!r}, layers={list(self.layers)}, "
            f"d_model={self.d_model}, norms=[{norms}])"
        )

    # ---- arithmetic ----------------------------------------------------------------------------
    def _scaled(self, w: float) -> TaskVector:
        if not math.isfinite(w):
            raise ArgumentError("weight", f"a task vector's weight must be finite, got {w!r}")
        return TaskVector(
            self.mean * w,
            self.std * abs(w),
            self.model_id,
            self.processing,
            self.hook,
            self.layers,
            self.position,
            tuple((c * w, p) for c, p in self.terms),
        )

    def __mul__(self, w: Any) -> TaskVector:
        if isinstance(w, bool) or not isinstance(w, numbers.Real):
            return NotImplemented
        return self._scaled(float(w))

    __rmul__ = __mul__

    def __truediv__(self, w: Any) -> TaskVector:
        if isinstance(w, bool) or not isinstance(w, numbers.Real):
            return NotImplemented
        return self._scaled(1.0 / float(w))

    def __neg__(self) -> TaskVector:
        return self._scaled(-1.0)

    def __add__(self, other: Any) -> TaskVector:
        if not isinstance(other, TaskVector):
            return NotImplemented
        check_compatible(self, other)
        std = torch.sqrt(self.std**2 + other.std**2)
        return TaskVector(
            self.mean + other.mean,
            std,
            self.model_id,
            self.processing,
            self.hook,
            self.layers,
            self.position,
            self.terms + other.terms,
        )

    def __sub__(self, other: Any) -> TaskVector:
        if not isinstance(other, TaskVector):
            return NotImplemented
        return self + (-other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskVector):
            return NotImplemented
        return (
            self.metadata() == other.metadata()
            and self.mean.dtype == other.mean.dtype
            and torch.equal(self.mean, other.mean)
            and torch.equal(self.std, other.std)
        )

    __hash__ = None  # type: ignore[assignment] - holds tensors

    # ---- persistence ---------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """Everything but the tensors, as JSON-ready values."""
        return {
            "format": FORMAT,
            "model_id": self.model_id,
            "processing": dict(self.processing),
            "hook": self.hook,
            "layers": list(self.layers),
            "position": self.position,
            "d_model": self.d_model,
            "terms": [[w, p.to_dict()] for w, p in self.terms],
        }

    def save(self, path: str | Path) -> Path:
        """Write one ``.safetensors`` file (tensors + JSON metadata in its header), atomically."""
        path = Path(path)
        tensors = {"mean": self.mean.detach().cpu().contiguous(), "std": self.std.detach().cpu().contiguous()}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"interp": json.dumps(self.metadata())})
        return path

    @classmethod
    def load(cls, path: str | Path) -> TaskVector:
        """Read a vector written by :meth:`save`."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        if "interp" not in header:
            raise ValueError(f"path: {path} is not a TaskVector file (no 'interp' metadata)")
        meta = json.loads(header["interp"])
        if meta.get("format") != FORMAT:
            raise ValueError(f"path: {path} has format {meta.get('format')!r}; this version reads {FORMAT!r}")
        tensors = load_file(str(path))
        return cls(
            mean=tensors["mean"],
            std=tensors["std"] if "std" in tensors else tensors["spread"],  # files written before the rename
            model_id=meta["model_id"],
            processing=tuple(sorted((k, bool(v)) for k, v in meta["processing"].items())),
            hook=meta["hook"],
            layers=tuple(int(la) for la in meta["layers"]),
            position=meta["position"],
            terms=tuple((float(w), Provenance.from_dict(p)) for w, p in meta["terms"]),
        )


def warn_if_other_task(vector: TaskVector, family: str, task: str, name: str = "vector") -> None:
    """Warn when a single-task vector is used as the vector of another task (e.g. a retrieval vector passed for a
    bias-add task): legal, as a control, but more often a slip."""
    own = vector.single_task()
    if own is not None and own != (family, task):
        warnings.warn(
            f"{name}: a vector of {own[0]}:{own[1]} is used as the vector of {family}:{task}; pass {family}:{task}'s "
            "own vector unless this is a control",
            stacklevel=3,
        )


def check_compatible(a: TaskVector, b: TaskVector) -> None:
    """``ValueError`` naming each field that differs (model_id, processing, hook, d_model, layers, position)."""
    diffs = a.incompatibilities(b)
    if diffs:
        raise ArgumentError("vectors", "incompatible task vectors; they differ in " + "; ".join(diffs))


def convex(weights: Sequence[float], vectors: Sequence[TaskVector]) -> TaskVector:
    """Σ_i w_i v_i with ``w_i >= 0`` and ``Σ w_i = 1`` (checked, like the vectors' compatibility, up front).

    ``convex([1, 0], [v_a, v_b]).mean`` equals ``v_a.mean`` exactly.
    """
    vectors = check_sequence(vectors, "vectors", what="TaskVectors")
    if not all(isinstance(v, TaskVector) for v in vectors):
        raise ArgumentTypeError("vectors", "every element must be a TaskVector")
    w = check_simplex(weights, len(vectors), "weights")
    for v in vectors[1:]:
        check_compatible(vectors[0], v)
    out = w[0] * vectors[0]
    for wi, v in zip(w[1:], vectors[1:], strict=True):
        out = out + wi * v
    return out


def from_activations(
    acts: torch.Tensor,
    *,
    model,
    hook: str,
    layers: Sequence[int],
    provenance: Provenance,
) -> TaskVector:
    """A :class:`TaskVector` from captured ``Float[Tensor, "layer prompt d_model"]`` activations: the streaming
    statistics of :mod:`interp.streaming` over the tensor (the same loop, and bits, as :func:`vector_from_store`)."""
    if acts.ndim != 3 or acts.shape[0] != len(layers):
        raise ArgumentError("acts", f"expected shape (layer={len(layers)}, prompt, d_model), got {tuple(acts.shape)}")
    info = model_info(model)
    processing = tuple(sorted(asdict(info.processing).items()))
    return _from_moments(moments(acts), acts.dtype, info.model_id, processing, hook, layers, provenance)


def _from_moments(m, dtype, model_id: str, processing, hook: str, layers, provenance: Provenance) -> TaskVector:
    return TaskVector(
        mean=m.mean.to(dtype),
        std=m.std(correction=1).to(dtype),
        model_id=model_id,
        processing=processing,
        hook=hook,
        layers=tuple(int(la) for la in layers),
        position=POSITION_RULE,
        terms=((1.0, provenance),),
    )


def vector_from_store(store, hook: str = "resid_post", *, layers: Sequence[int] | None = None,
                      label: str | None = None) -> TaskVector:  # fmt: skip
    """The :class:`TaskVector` of a store's prompts (or of one ``label``'s), streamed shard by shard from disk.

    With a float32 store captured at each prompt's last token this equals, bit for bit,
    :func:`vector_from_prompts` on the same prompts (tested); a bfloat16 or float16 store gives the vector of the
    rounded activations, in float32.

    >>> store = capture_to("runs/add2", model, build_prompts("bias_add", ["add2"], n_prompts=100))  # doctest: +SKIP
    >>> vector_from_store(store) == task_vector(model, "bias_add", "add2", n_prompts=100)          # doctest: +SKIP
    True
    """
    cfg = store.config
    if cfg["positions"] != POSITION_RULE:
        raise ValueError(
            f"store: captured at positions {cfg['positions']}; a task vector is read at each prompt's last token"
        )
    source = store.source(hook, layers=layers, label=label)
    prov = Provenance.from_dict(cfg["provenance"]["" if label is None else label])
    processing = tuple(sorted((k, bool(v)) for k, v in cfg["processing"].items()))
    return _from_moments(moments(source), torch.float32, cfg["model_id"], processing, hook, source.layers, prov)


def vector_from_prompts(
    model,
    prompts: Sequence[Prompt],
    *,
    hook: str = "resid_post",
    layers: Sequence[int] | None = None,
    batch_size: int = 32,
    label: str = "",
) -> TaskVector:
    """Mean residual stream at each prompt's last token over arbitrary prompts (controls, custom builders)."""
    check_model(model)
    prompts = check_prompts(prompts)
    check_hook(hook)
    layers = check_layers(model, layers)
    p0 = prompts[0]
    ids = tuple(sorted({(int(p.seed), int(p.index)) for p in prompts}))
    prov = Provenance(
        p0.family, tuple(p0.tasks), tuple(p0.proportions), len(prompts), p0.n_examples, p0.seed, label, ids
    )
    acts = capture_resid(model, prompts, layers=layers, hook=hook, batch_size=batch_size)
    return from_activations(acts, model=model, hook=hook, layers=layers, provenance=prov)


def task_vector(
    model,
    family: str,
    task_or_tasks: str | Sequence[str],
    *,
    proportions: Sequence[float] | None = None,
    n_prompts: int = 100,
    n_examples: int = 20,
    seed: int = 0,
    hook: str = "resid_post",
    layers: Sequence[int] | None = None,
    batch_size: int = 32,
) -> TaskVector:
    """Task vector of one task (or of a mixture of tasks with ``proportions``) at every (or given) layer.

    Prompts come from :func:`interp.prompts.build_prompts` (``n_examples`` examples and a real query); the
    vector is the mean residual stream (``hook`` of each layer) at the query's last token.

    Args:
        family: task family name; task_or_tasks: one task or the mixed tasks.
        proportions: fraction of examples per task (default uniform; ignored for a single task).
        n_prompts, n_examples, seed: prompt construction (seeded).
        hook: ``"resid_pre" | "resid_mid" | "resid_post"``; layers: default all.

    >>> v = task_vector(model, "operands", "sum", n_prompts=50)       # doctest: +SKIP
    >>> v.mean.shape                                                  # doctest: +SKIP
    torch.Size([4, 128])
    """
    check_model(model)
    fam = get_family(family)
    tasks = resolve_tasks(fam, task_or_tasks, name="task_or_tasks")
    check_hook(hook)
    layers = check_layers(model, layers)
    check_count(n_prompts, "n_prompts")
    check_examples_fit(model, check_count(n_examples, "n_examples", minimum=0))
    check_batch_size(batch_size)
    prompts = build_prompts(fam, tasks, proportions=proportions, n_examples=n_examples, n_prompts=n_prompts, seed=seed)
    return vector_from_prompts(model, prompts, hook=hook, layers=layers, batch_size=batch_size)


def null_vectors(
    model,
    family: str,
    task_a: str,
    task_b: str,
    third_task: str,
    *,
    n_prompts: int = 100,
    n_examples: int = 20,
    seed: int = 0,
    hook: str = "resid_post",
    layers: Sequence[int] | None = None,
    batch_size: int = 32,
    target_seed: int | None = None,
) -> dict[str, TaskVector]:
    """Single-task, 50/50-mixed and control vectors, keyed ``"a"``, ``"b"``, ``"mixed"``, ``"random_answers"``,
    ``"random_strings"``, ``"third_task"``.

    The basis ``"a"``, ``"b"`` comes from prompts of ``seed``; every vector decomposed on it (the mixture and the
    controls) from prompts of ``target_seed`` (default :func:`interp.heldout.held_out_seed` of ``seed``), which share
    their queries with each other but no prompt with the basis (docs/science.md §4).
    """
    check_model(model)
    fam = get_family(family)
    for name, task in (("task_a", task_a), ("task_b", task_b), ("third_task", third_task)):
        resolve_tasks(fam, [task], name=name)
    resolve_tasks(fam, [task_a, task_b, third_task], name="third_task")  # three different tasks
    check_hook(hook)
    layers = check_layers(model, layers)
    check_count(n_prompts, "n_prompts")
    check_examples_fit(model, check_count(n_examples, "n_examples"))
    seed = check_seed(seed)
    check_batch_size(batch_size)
    target_seed = held_out_seed(seed) if target_seed is None else check_seed(target_seed, "target_seed")
    if target_seed == seed:
        raise ArgumentError("target_seed", f"must differ from seed ({seed}): the targets are held out from the basis")
    kw = dict(n_prompts=n_prompts, n_examples=n_examples, hook=hook, layers=layers, batch_size=batch_size)
    cap = dict(hook=hook, layers=layers, batch_size=batch_size)
    pair = [task_a, task_b]
    held = dict(n_examples=n_examples, n_prompts=n_prompts, seed=target_seed)
    return {
        "a": task_vector(model, fam.name, task_a, seed=seed, **kw),
        "b": task_vector(model, fam.name, task_b, seed=seed, **kw),
        "mixed": task_vector(model, fam.name, pair, proportions=[0.5, 0.5], seed=target_seed, **kw),
        "random_answers": vector_from_prompts(
            model, random_answer_prompts(fam.name, pair, **held), label="random_answers", **cap
        ),
        "random_strings": vector_from_prompts(
            model, random_string_prompts(fam.name, pair, **held), label="random_strings", **cap
        ),
        "third_task": task_vector(model, fam.name, third_task, seed=target_seed, **kw),
    }


def capture_groups(
    model,
    groups: Mapping[str, Sequence[Prompt]],
    *,
    layers: Sequence[int] | None = None,
    hook: str = "resid_post",
    batch_size: int = 32,
) -> tuple[torch.Tensor, list[str]]:
    """Per-prompt vectors ``Float[Tensor, "layer prompt d_model"]`` of all groups and each prompt's label."""
    prompts = [p for ps in groups.values() for p in ps]
    labels = [name for name, ps in groups.items() for _ in ps]
    return capture_resid(model, prompts, layers=layers, hook=hook, batch_size=batch_size), labels
