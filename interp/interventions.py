"""Interventions on the residual stream, as values: where (layer, hook point, position) and what (mode, vector).

An :class:`Intervention` says what happens to the residual stream ``x`` at one position of one hook point:

=============  =============================================  =================================================
mode           effect on ``x``                                made by
=============  =============================================  =================================================
``replace``    ``x ← v``                                      :func:`replace` (Hendel et al.'s patch)
``add``        ``x ← x + α v``                                :func:`add`
``steer``      ``x ← x + α (v_A − v_B)``                      :func:`steer` (steering by a difference)
``subspace``   ``x ← x − P x + P v`` (``P``: projection on    :func:`replace_in_subspace` (only the component in
               the span of ``basis``)                         a span is replaced, the orthogonal rest is kept)
``ablate``     ``x ← mean`` (the mean over reference prompts)  :func:`mean_ablate`
=============  =============================================  =================================================

Every engine (scoring, sweeps, the reference method in :mod:`interp.reference`) applies an intervention through
:meth:`Intervention.apply` or its batched form :func:`apply_rowwise` (the same formulas, stacked over rows; tested
equal), so all of them mean the same thing by it. An intervention prints in one line and
round-trips through JSON (:meth:`Intervention.to_dict` / :meth:`Intervention.from_dict`).

``position=None`` means each prompt's query, its last token (the toolkit's default patch position); an int is a
token position (0 = BOS) in every prompt.

>>> import torch
>>> v = torch.ones(4)
>>> add(v, layer=1, alpha=0.5)
Intervention(add 0.5·v at blocks.1.hook_resid_post[last])
>>> add(v, layer=1, alpha=0.5).apply(torch.zeros(2, 4)).tolist()
[[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]]
>>> Intervention.from_dict(add(v, layer=1).to_dict()) == add(v, layer=1)
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch

from interp.hooks import check_hook, check_layer, hook_name
from interp.validate import (
    ArgumentError,
    ArgumentTypeError,
    check_choice,
    check_int,
    check_number,
    check_tensor,
    check_vector,
)

MODES = ("replace", "add", "steer", "subspace", "ablate")
#: The hook of a head's output before W_O (``blocks.L.attn.hook_z``, ``[batch, pos, head, d_head]``): an
#: intervention there names its ``head`` and has a ``d_head`` vector (mean-ablating or patching one head).
HEAD_HOOK = "z"
#: Modes whose effect does not depend on the residual it replaces (so one row serves every prompt).
CONSTANT_MODES = ("replace", "ablate")


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`, else an :class:`~interp.validate.ArgumentError` naming the allowed
    values."""
    return check_choice(mode, "mode", MODES)


@dataclass(frozen=True, eq=False)
class Intervention:
    """What happens to the residual stream at ``blocks.{layer}.hook_{hook}``, position ``position``.

    Fields:
        layer: model layer.
        mode: one of :data:`MODES`.
        vector: ``Float[Tensor, "d_model"]``: the new residual (replace), the direction added (add, steer: ``v_A −
            v_B``), the target whose component in the span is taken (subspace), or the mean (ablate).
        alpha: the scale of ``add`` and ``steer`` (1 otherwise).
        basis: ``Float[Tensor, "k d_model"]`` orthonormal rows spanning the subspace (mode ``subspace`` only).
        hook: ``"resid_pre" | "resid_mid" | "resid_post"``.
        position: token position in every prompt, or ``None`` for each prompt's last token.
        label: what the vector is, for humans (e.g. ``"bias_add:add1"``).
    """

    layer: int
    mode: str
    vector: torch.Tensor
    alpha: float = 1.0
    basis: torch.Tensor | None = None
    hook: str = "resid_post"
    position: int | None = None
    label: str = "v"
    head: int | None = None

    def __post_init__(self) -> None:
        check_int(self.layer, "layer", minimum=0)
        check_mode(self.mode)
        if self.hook != HEAD_HOOK:
            check_hook(self.hook)
        if (self.head is not None) != (self.hook == HEAD_HOOK):
            raise ArgumentError("head", f"needed by hook {HEAD_HOOK!r} (a head's output) and by no residual hook point")
        if self.head is not None:
            check_int(self.head, "head", minimum=0)
        check_vector(self.vector, "vector")
        check_number(self.alpha, "alpha")
        if self.mode not in ("add", "steer") and self.alpha != 1.0:
            raise ArgumentError("alpha", f"only modes add and steer are scaled; mode {self.mode!r} takes alpha=1")
        if (self.basis is not None) != (self.mode == "subspace"):
            raise ArgumentError("basis", "needed by mode 'subspace' and by no other mode")
        if self.basis is not None:
            b = check_tensor(self.basis, "basis", ndim=2, width=self.vector.shape[0], min_rows=1,
                             shape_hint=f"[k >= 1, d_model={self.vector.shape[0]}]")  # fmt: skip
            gram = b.double() @ b.double().T
            if not torch.allclose(gram, torch.eye(b.shape[0], dtype=torch.float64), atol=1e-4):
                raise ArgumentError("basis", "rows must be orthonormal (see orthonormal_basis)")
        if self.position is not None and (
            isinstance(self.position, bool) or not isinstance(self.position, int) or self.position < 0
        ):
            raise ArgumentError(
                "position", f"an integer >= 0 (0 = BOS) or None (each prompt's last token), got {self.position!r}"
            )
        if not isinstance(self.label, str):
            raise ArgumentTypeError("label", f"a string, got {type(self.label).__name__}")

    @property
    def width(self) -> int:
        """Length of the vector: ``d_model`` on the residual stream, ``d_head`` on a head's output (``hook="z"``)."""
        return int(self.vector.shape[0])

    @property
    def hook_name(self) -> str:
        return f"blocks.{self.layer}.attn.hook_z" if self.hook == HEAD_HOOK else hook_name(self.layer, self.hook)

    @property
    def constant(self) -> bool:
        """Whether the patched value ignores the residual it replaces (replace, ablate)."""
        return self.mode in CONSTANT_MODES

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The intervened residual for residuals ``x`` ``Float[Tensor, "... d_model"]`` (a new tensor)."""
        v = self.vector.to(x.device, x.dtype)
        if self.mode in CONSTANT_MODES:
            return v.expand_as(x).clone()
        if self.mode in ("add", "steer"):
            return x + self.alpha * v
        b = self.basis.to(x.device, x.dtype)
        return x - (x @ b.T) @ b + (v @ b.T) @ b

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Intervention):
            return NotImplemented
        same_basis = (self.basis is None and other.basis is None) or (
            self.basis is not None and other.basis is not None and torch.equal(self.basis, other.basis)
        )
        fields = ("layer", "mode", "alpha", "hook", "position", "label", "head")
        return (
            all(getattr(self, f) == getattr(other, f) for f in fields)
            and torch.equal(self.vector, other.vector)
            and same_basis
        )

    __hash__ = None  # tensors inside: compared by value, not hashable

    def __repr__(self) -> str:
        head = "" if self.head is None else f", head {self.head}"
        where = f"{self.hook_name}[{'last' if self.position is None else self.position}{head}]"
        what = {
            "replace": f"replace with {self.label}",
            "ablate": f"mean-ablate to {self.label}",
            "add": f"add {self.alpha:g}·{self.label}",
            "steer": f"steer {self.alpha:g}·({self.label})",
            "subspace": f"replace the {0 if self.basis is None else self.basis.shape[0]}-d span with {self.label}",
        }[self.mode]
        return f"Intervention({what} at {where})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (tensors as lists of floats)."""
        return {
            "layer": self.layer,
            "mode": self.mode,
            "vector": self.vector.double().tolist(),
            "alpha": self.alpha,
            "basis": None if self.basis is None else self.basis.double().tolist(),
            "hook": self.hook,
            "position": self.position,
            "label": self.label,
            "head": self.head,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Intervention:
        """Inverse of :meth:`to_dict`; a missing, unknown or bad field is named (``layer: ...``)."""
        if not isinstance(d, Mapping):
            raise ArgumentTypeError("d", f"need the dict of Intervention.to_dict, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        missing = [k for k in ("layer", "mode", "vector") if k not in d]
        unknown = sorted(set(d) - set(names))
        if missing or unknown:
            what = f"missing fields {missing}" if missing else f"unknown fields {unknown}"
            raise ArgumentError("d", f"{what}; an Intervention has {', '.join(names)}")

        def tensor(name: str) -> torch.Tensor | None:
            value = d.get(name)
            if value is None and name == "basis":
                return None
            try:
                return torch.tensor(value, dtype=torch.float32)
            except (TypeError, ValueError, RuntimeError):
                raise ArgumentTypeError(name, f"need a list of numbers, got {str(value)[:40]!r}") from None

        defaults = {"alpha": 1.0, "hook": "resid_post", "position": None, "label": "v", "head": None}
        return cls(**{**defaults, **d, "vector": tensor("vector"), "basis": tensor("basis")})


def _vector_at(v: Any, layer: int, name: str = "v") -> tuple[torch.Tensor, str, str | None]:
    """(values at ``layer``, label, hook) of a TaskVector, or of a plain ``[d_model]`` tensor."""
    if isinstance(v, torch.Tensor):
        return check_vector(v, name).detach().float(), "v", None
    at, describe, hook = getattr(v, "at", None), getattr(v, "describe", None), getattr(v, "hook", None)
    if at is None:
        raise ArgumentTypeError(name, f"expected a TaskVector or a Tensor, got {type(v).__name__}")
    return at(layer).detach().float(), describe(), hook


def _make(mode: str, v: Any, layer: int, *, hook: str | None, position: int | None, **kw: Any) -> Intervention:
    values, label, own_hook = _vector_at(v, layer, "mean" if mode == "ablate" else "v")
    if hook is not None and own_hook is not None and hook != own_hook:
        raise ArgumentError("hook", f"{hook!r} differs from the vector's hook point {own_hook!r}")
    return Intervention(
        layer, mode, values, hook=hook or own_hook or "resid_post", position=position, label=label, **kw
    )


def replace(v: Any, layer: int, *, hook: str | None = None, position: int | None = None) -> Intervention:
    """``x ← v`` (a TaskVector's mean at ``layer``, or a ``[d_model]`` tensor)."""
    return _make("replace", v, layer, hook=hook, position=position)


def add(
    v: Any, layer: int, *, alpha: float = 1.0, hook: str | None = None, position: int | None = None
) -> Intervention:
    """``x ← x + α v``."""
    return _make("add", v, layer, hook=hook, position=position, alpha=float(alpha))


def steer(
    v_a: Any, v_b: Any, layer: int, *, alpha: float = 1.0, hook: str | None = None, position: int | None = None
) -> Intervention:
    """``x ← x + α (v_A − v_B)``: steering by the difference of two task vectors."""
    a, label_a, hook_a = _vector_at(v_a, layer, "v_a")
    b, label_b, hook_b = _vector_at(v_b, layer, "v_b")
    if hook_a != hook_b:
        raise ArgumentError("v_b", f"hook point {hook_b!r} differs from v_a's {hook_a!r}")
    if a.shape != b.shape:
        raise ArgumentError(
            "v_b", f"width {b.shape[0]} differs from v_a's {a.shape[0]}; steer by two vectors of one model"
        )
    chosen = hook or hook_a or "resid_post"
    return Intervention(
        layer, "steer", a - b, alpha=float(alpha), hook=chosen, position=position, label=f"{label_a} − {label_b}"
    )


def orthonormal_basis(vectors: torch.Tensor) -> torch.Tensor:
    """Orthonormal rows ``Float[Tensor, "k d_model"]`` spanning the rows of ``vectors`` (QR; rank-deficient rows
    dropped)."""
    if not isinstance(vectors, torch.Tensor):
        try:
            vectors = torch.as_tensor(vectors, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise ArgumentTypeError("basis", f"need a [k, d_model] tensor, got {type(vectors).__name__}") from None
    m = check_tensor(vectors[None] if vectors.ndim == 1 else vectors, "basis", ndim=2, min_rows=1,
                     shape_hint="[k >= 1, d_model]").double()  # fmt: skip
    q, r = torch.linalg.qr(m.T)
    keep = r.diagonal().abs() > 1e-10 * max(1.0, float(r.diagonal().abs().max()))
    if not keep.any():
        raise ArgumentError("basis", "spans nothing (every row is zero); give at least one non-zero direction")
    return q.T[keep].float()


def replace_in_subspace(
    v: Any, layer: int, basis: torch.Tensor, *, hook: str | None = None, position: int | None = None
) -> Intervention:
    """``x ← x − P x + P v``: only the component of ``x`` in the span of ``basis`` becomes ``v``'s."""
    return _make("subspace", v, layer, hook=hook, position=position, basis=orthonormal_basis(basis))


def mean_ablate(mean: Any, layer: int, *, hook: str | None = None, position: int | None = None) -> Intervention:
    """``x ← mean``: the residual replaced by its mean over reference prompts (a TaskVector or a tensor)."""
    return _make("ablate", mean, layer, hook=hook, position=position)


def apply_rowwise(interventions: Sequence[Intervention], which: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """Residuals ``x`` ``Float[Tensor, "row d_model"]`` with row ``i`` intervened by ``interventions[which[i]]``
    (``which=None``: one intervention for every row). A new tensor; batched where the modes allow.

    >>> import torch
    >>> ivs = [add(torch.ones(2), 0), replace(torch.zeros(2), 0)]
    >>> apply_rowwise(ivs, torch.tensor([0, 1, 0]), torch.full((3, 2), 5.0)).tolist()
    [[6.0, 6.0], [0.0, 0.0], [6.0, 6.0]]
    """
    if which is None:
        if len(interventions) != 1:
            raise ArgumentError("which", f"needed to spread {len(interventions)} interventions over rows")
        return interventions[0].apply(x)
    which = which.to(x.device)
    modes = {iv.mode for iv in interventions}
    if modes <= set(CONSTANT_MODES):
        return torch.stack([iv.vector for iv in interventions]).to(x.device, x.dtype)[which]
    if modes <= {"add", "steer"}:  # α·v formed as apply() forms it, in the residual's dtype: equal to the bit
        return x + torch.stack([iv.alpha * iv.vector.to(x.device, x.dtype) for iv in interventions])[which]
    out = x.clone()
    for k in torch.unique(which).tolist():
        sel = torch.nonzero(which == k).flatten()
        out[sel] = interventions[k].apply(x[sel])
    return out


def check_intervention(model, iv: Intervention, name: str = "intervention") -> Intervention:
    """``iv`` if it fits ``model`` (layer in range, width ``d_model``), else an
    :class:`~interp.validate.ArgumentError` naming ``name``."""
    if not isinstance(iv, Intervention):
        raise ArgumentTypeError(name, f"expected an Intervention, got {type(iv).__name__}")
    check_layer(model, iv.layer, f"{name}.layer")
    if iv.head is not None:
        if iv.head >= model.cfg.n_heads:
            raise ArgumentError(name, f"head {iv.head} out of range; valid: 0..{model.cfg.n_heads - 1}")
        if iv.width != model.cfg.d_head:
            raise ArgumentError(name, f"vector of width {iv.width}, a head's output (z) has d_head {model.cfg.d_head}")
        return iv
    if iv.width != model.cfg.d_model:
        raise ArgumentError(name, f"vector of width {iv.width}, the model's d_model is {model.cfg.d_model}")
    return iv


def intervention_hook(
    interventions: Sequence[Intervention],
    which: torch.Tensor | None,
    rows: torch.Tensor | None,
    cols: torch.Tensor | int,
) -> Callable:
    """The one hook factory: a hook rewriting ``act[rows[i], cols[i]]`` by ``interventions[which[i]]`` (every row of
    the batch when ``rows`` is None; one intervention for all when ``which`` is None). Out of place (the input of a
    ``resid_pre`` hook is the previous block's output)."""

    def fn(act, hook):  # TransformerLens passes the HookPoint as ``hook``
        b, n = act.shape[0], act.shape[1]
        r = torch.arange(b, device=act.device) if rows is None else rows.to(act.device)
        c = torch.as_tensor(cols, device=act.device)
        c = c.expand(r.shape[0]) if c.ndim == 0 else c
        if c.shape[0] != r.shape[0]:
            raise ValueError(f"positions: {c.shape[0]} positions for a batch of {r.shape[0]} sequences")
        if c.numel() and int(c.max()) >= n:
            raise ValueError(f"positions: {int(c.max())} lies beyond the sequence (length {n}) at {hook.name}")
        if which is not None and which.shape[0] != r.shape[0]:
            raise ValueError(f"which: {which.shape[0]} entries for {r.shape[0]} patched rows")
        act = act.clone()
        if interventions[0].head is None:
            act[r, c] = apply_rowwise(interventions, which, act[r, c])
        else:  # a head's output z: [batch, pos, head, d_head]; each row's own head
            heads = torch.tensor([iv.head for iv in interventions], device=act.device)
            h = heads[0].expand(r.shape[0]) if which is None else heads[which.to(act.device)]
            act[r, c, h] = apply_rowwise(interventions, which, act[r, c, h])
        return act

    return fn
