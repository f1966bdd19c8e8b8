"""Claims as records: what a statistical sentence rests on, and the rules that word it.

A :class:`Claim` holds everything a claim about an effect needs (docs/science.md §7): the statistic (with its CI and
the null's 95th percentile), the test, ``n``, the level ``alpha``, the power asked for and the minimum detectable
effect at ``n`` (:mod:`interp.power`), and the p-value of every replication (one per prompt seed, the first the main
run). Its :attr:`~Claim.verdict` and :meth:`~Claim.words` follow from those fields by fixed rules, so a README
sentence cannot say more than its record:

- ``"detected"``: p < ``alpha`` in every replication, with at least ``min_replications`` of them;
- ``"not replicated"``: p < ``alpha`` in some replications but not all ("detected in k of m prompt seeds");
- ``"not detected"``: p ≥ ``alpha`` in every replication: "not detected at n = …, detectable ≥ …" (never "absent",
  never "lies in the span": a non-rejection is read beside the smallest effect the test could have seen);
- ``"unreplicated"``: p < ``alpha`` but fewer replications than ``min_replications``.

A claim is a small frozen dataclass that round-trips JSON (:meth:`Claim.to_dict`, :meth:`Claim.from_dict`), so any
study can write its claims beside its numbers and any renderer can word them.

>>> c = Claim("demo/residual", "out-of-span residual", 0.165, "split-half noise floor", 30, (0.29, 0.41, 0.35),
...           null_q95=0.197, mde=0.31, unit="norm")
>>> c.verdict
'not detected'
>>> for part in c.words().split(": "):
...     print(part)
out-of-span residual 0.165 vs 0.197 for the null's 95th percentile
not detected at n = 30 (p = 0.29, 0.41, 0.35 over 3 prompt seeds), detectable ≥ 0.31 with power 0.8
>>> Claim.from_dict(c.to_dict()) == c
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from interp.validate import ArgumentError

#: Replications (prompt seeds) a detection needs before it is called one.
MIN_REPLICATIONS = 3
VERDICTS = ("detected", "not replicated", "not detected", "unreplicated")


@dataclass(frozen=True)
class Claim:
    """One claim about one effect (module docstring). ``p_values``: one per replication, the main run first
    (``seeds``: their prompt seeds); ``mde``: the minimum detectable effect at ``n`` with power ``power`` (``None``:
    not simulated, or larger than ``mde_max``, the largest effect simulated); ``unit``: what the statistic and the
    effects are measured in."""

    key: str
    subject: str
    statistic: float
    test: str
    n: int
    p_values: tuple[float, ...]
    seeds: tuple[int, ...] = ()
    ci95: tuple[float, float] | None = None
    null_q95: float | None = None
    alpha: float = 0.05
    power: float = 0.8
    mde: float | None = None
    mde_max: float | None = None
    unit: str = ""
    min_replications: int = MIN_REPLICATIONS

    def __post_init__(self) -> None:
        if not self.p_values or any(not (0 <= p <= 1) for p in self.p_values):
            raise ArgumentError("p_values", f"need at least one p-value in [0, 1], got {self.p_values!r}")
        if self.seeds and len(self.seeds) != len(self.p_values):
            raise ArgumentError("seeds", f"one per p-value ({len(self.p_values)}), got {len(self.seeds)}")
        if not 0 < self.alpha < 1 or not 0 < self.power < 1:
            raise ArgumentError("alpha, power", f"must lie in (0, 1), got {self.alpha!r}, {self.power!r}")
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ArgumentError("n", f"must be an integer >= 1, got {self.n!r}")

    # ---- rules ---------------------------------------------------------------------------------
    @property
    def n_detected(self) -> int:
        return sum(p < self.alpha for p in self.p_values)

    @property
    def verdict(self) -> str:
        """One of :data:`VERDICTS`, by the rules of the module docstring."""
        k, m = self.n_detected, len(self.p_values)
        if k == 0:
            return "not detected"
        if k < m:
            return "not replicated"
        return "detected" if m >= self.min_replications else "unreplicated"

    def detectable(self) -> str:
        """``"detectable ≥ 0.31 with power 0.8"``, or what is known when the power was not simulated."""
        if self.mde is not None:
            return f"detectable ≥ {self.mde:.3g} with power {self.power:g}"
        if self.mde_max is not None:
            return f"not detectable with power {self.power:g} at any effect up to {self.mde_max:.3g}"
        return "power not simulated"

    def _ps(self) -> str:
        m = len(self.p_values)
        ps = ", ".join(f"{p:.2g}" for p in self.p_values)
        return f"p = {ps}" + (f" over {m} prompt seeds" if m > 1 else " (one prompt seed)")

    def words(self) -> str:
        """The claim's sentence: the statistic beside its null, then the verdict in the rules' words."""
        ci = "" if self.ci95 is None else f" [{self.ci95[0]:.3g}, {self.ci95[1]:.3g}]"
        null = "" if self.null_q95 is None else f" vs {self.null_q95:.3g} for the null's 95th percentile"
        head = f"{self.subject} {self.statistic:.3g}{ci}{null}: "
        k, m = self.n_detected, len(self.p_values)
        if self.verdict == "detected":
            return head + f"detected at n = {self.n} ({self._ps()})"
        if self.verdict == "unreplicated":
            return head + (
                f"p < {self.alpha:g} at n = {self.n} ({self._ps()}), fewer than {self.min_replications} replications"
            )
        if self.verdict == "not replicated":
            return head + f"detected in {k} of {m} prompt seeds at n = {self.n} ({self._ps()}), not replicated"
        return head + f"not detected at n = {self.n} ({self._ps()}), {self.detectable()}"

    # ---- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values of every field, plus the verdict (ignored on the way back)."""
        return {**asdict(self), "verdict": self.verdict}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Claim:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names - {"verdict"})
        if unknown:
            raise ArgumentError("d", f"unknown keys {unknown} for Claim; valid: {sorted(names)}")
        kw = {k: v for k, v in d.items() if k in names}
        kw["p_values"] = tuple(float(p) for p in kw["p_values"])
        kw["seeds"] = tuple(int(s) for s in kw.get("seeds", ()))
        if kw.get("ci95") is not None:
            kw["ci95"] = tuple(float(x) for x in kw["ci95"])
        return cls(**kw)


def _finite(x: Any) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def claim_from_null(key: str, subject: str, summary: dict[str, Any], *, test: str | None = None) -> Claim:
    """A :class:`Claim` from a null test's summary as studies write it (``name``, ``statistic``, ``p_value``,
    ``ci95``, ``null_q95``, ``n``, ``mde``, ``power``, and ``replications``: one such summary per prompt seed)."""
    reps = summary.get("replications") or [summary]
    power = summary.get("power") or {}
    effects = power.get("effects") or []
    return Claim(
        key=key,
        subject=subject,
        statistic=float(summary["statistic"]),
        test=test or summary.get("note", ""),
        n=int(summary["n"]),
        p_values=tuple(float(r["p_value"]) for r in reps),
        seeds=tuple(int(r["seed"]) for r in reps) if all(r.get("seed") is not None for r in reps) else (),
        ci95=None if summary.get("ci95") is None else tuple(summary["ci95"]),
        null_q95=_finite(summary.get("null_q95")),
        alpha=float(power.get("alpha", 0.05)),
        power=float(power.get("power", 0.8)),
        mde=_finite(summary.get("mde")),
        mde_max=float(max(effects)) if effects else None,
        unit=str(power.get("unit", "")),
    )


__all__ = ["MIN_REPLICATIONS", "VERDICTS", "Claim", "claim_from_null"]
