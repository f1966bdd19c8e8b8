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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from interp.hooks import check_hook, check_layer, hook_name

MODES = ("replace", "add", "steer", "subspace", "ablate")
#: The hook of a head's output before W_O (``blocks.L.attn.hook_z``, ``[batch, pos, head, d_head]``): an
#: intervention there names its ``head`` and has a ``d_head`` vector (mean-ablating or patching one head).
HEAD_HOOK = "z"
#: Modes whose effect does not depend on the residual it replaces (so one row serves every prompt).
CONSTANT_MODES = ("replace", "ablate")


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`, else a ``ValueError`` naming the allowed values."""
    if mode not in MODES:
        raise ValueError(f"mode: {mode!r} not supported; valid: {', '.join(MODES)}")
    return mode


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
        check_mode(self.mode)
        if self.hook != HEAD_HOOK:
            check_hook(self.hook)
        if (self.head is not None) != (self.hook == HEAD_HOOK):
            raise ValueError(f"head: needed by hook {HEAD_HOOK!r} (a head's output) and by no residual hook point")
        if self.head is not None and (isinstance(self.head, bool) or not isinstance(self.head, int) or self.head < 0):
            raise ValueError(f"head: must be an integer >= 0, got {self.head!r}")
        if isinstance(self.layer, bool) or not isinstance(self.layer, int) or self.layer < 0:
            raise ValueError(f"layer: must be an integer >= 0, got {self.layer!r}")
        if not isinstance(self.vector, torch.Tensor) or self.vector.ndim != 1:
            raise ValueError(f"vector: need a 1-D tensor [d_model], got {getattr(self.vector, 'shape', self.vector)!r}")
        if not torch.isfinite(self.vector).all():
            raise ValueError("vector: holds NaN or infinite values")
        if not (isinstance(self.alpha, int | float) and math.isfinite(self.alpha)):
            raise ValueError(f"alpha: must be a finite number, got {self.alpha!r}")
        if self.mode not in ("add", "steer") and self.alpha != 1.0:
            raise ValueError(f"alpha: only modes add and steer are scaled; mode {self.mode!r} takes alpha=1")
        if (self.basis is not None) != (self.mode == "subspace"):
            raise ValueError("basis: needed by mode 'subspace' and by no other mode")
        if self.basis is not None:
            b = self.basis
            if b.ndim != 2 or b.shape[1] != self.vector.shape[0] or b.shape[0] < 1:
                raise ValueError(f"basis: need shape (k >= 1, d_model={self.vector.shape[0]}), got {tuple(b.shape)}")
            gram = b.double() @ b.double().T
            if not torch.allclose(gram, torch.eye(b.shape[0], dtype=torch.float64), atol=1e-4):
                raise ValueError("basis: rows must be orthonormal (see orthonormal_basis)")
        if self.position is not None and (
            isinstance(self.position, bool) or not isinstance(self.position, int) or self.position < 0
        ):
            raise ValueError(
                f"position: an integer >= 0 (0 = BOS) or None (each prompt's last token), got {self.position!r}"
            )

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
        basis = d.get("basis")
        return cls(
            layer=int(d["layer"]),
            mode=str(d["mode"]),
            vector=torch.tensor(d["vector"], dtype=torch.float32),
            alpha=float(d.get("alpha", 1.0)),
            basis=None if basis is None else torch.tensor(basis, dtype=torch.float32),
            hook=str(d.get("hook", "resid_post")),
            position=d.get("position"),
            label=str(d.get("label", "v")),
            head=d.get("head"),
        )


def _vector_at(v: Any, layer: int) -> tuple[torch.Tensor, str, str | None]:
    """(values at ``layer``, label, hook) of a TaskVector, or of a plain ``[d_model]`` tensor."""
    if isinstance(v, torch.Tensor):
        return v.detach().float(), "v", None
    at, describe, hook = getattr(v, "at", None), getattr(v, "describe", None), getattr(v, "hook", None)
    if at is None:
        raise ValueError(f"vector: expected a TaskVector or a Tensor, got {type(v).__name__}")
    return at(layer).detach().float(), describe(), hook


def _make(mode: str, v: Any, layer: int, *, hook: str | None, position: int | None, **kw: Any) -> Intervention:
    values, label, own_hook = _vector_at(v, layer)
    if hook is not None and own_hook is not None and hook != own_hook:
        raise ValueError(f"hook: {hook!r} differs from the vector's hook point {own_hook!r}")
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
    a, label_a, hook_a = _vector_at(v_a, layer)
    b, label_b, hook_b = _vector_at(v_b, layer)
    if hook_a != hook_b:
        raise ValueError(f"v_b: hook point {hook_b!r} differs from v_a's {hook_a!r}")
    chosen = hook or hook_a or "resid_post"
    return Intervention(
        layer, "steer", a - b, alpha=float(alpha), hook=chosen, position=position, label=f"{label_a} − {label_b}"
    )


def orthonormal_basis(vectors: torch.Tensor) -> torch.Tensor:
    """Orthonormal rows ``Float[Tensor, "k d_model"]`` spanning the rows of ``vectors`` (QR; rank-deficient rows
    dropped)."""
    m = torch.as_tensor(vectors, dtype=torch.float64)
    if m.ndim == 1:
        m = m[None]
    q, r = torch.linalg.qr(m.T)
    keep = r.diagonal().abs() > 1e-10 * max(1.0, float(r.diagonal().abs().max()))
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
            raise ValueError(f"which: needed to spread {len(interventions)} interventions over rows")
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
    """``iv`` if it fits ``model`` (layer in range, width ``d_model``), else a ``ValueError`` naming ``name``."""
    if not isinstance(iv, Intervention):
        raise ValueError(f"{name}: expected an Intervention, got {type(iv).__name__}")
    check_layer(model, iv.layer, f"{name}.layer")
    if iv.head is not None:
        if iv.head >= model.cfg.n_heads:
            raise ValueError(f"{name}: head {iv.head} out of range; valid: 0..{model.cfg.n_heads - 1}")
        if iv.width != model.cfg.d_head:
            raise ValueError(f"{name}: vector of width {iv.width}, a head's output (z) has d_head {model.cfg.d_head}")
        return iv
    if iv.width != model.cfg.d_model:
        raise ValueError(f"{name}: vector of width {iv.width}, the model's d_model is {model.cfg.d_model}")
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
