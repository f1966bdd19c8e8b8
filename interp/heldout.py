"""Held-out by construction: which prompts a vector was made from, and the check that it is tested on others.

A prompt's identity is ``(family, seed, index)``: :func:`interp.prompts.build_prompts` draws prompt ``i`` of seed
``s`` from its own generators ``[s, i, …]``, so two prompts with the same identity share their query (and their
example inputs): a single-task, mixed, random-answer or zero-shot prompt alike. A task vector records the
identities of the prompts it was averaged over (:attr:`interp.vectors.Provenance.prompt_ids`); every call that
tests a vector on prompts — the self-patch control and its negative form, steering, λ and simplex sweeps, the
steering and ablation nulls, the decomposition of one vector on others — refuses prompts (or vectors) that share an
identity with it (:func:`check_held_out`, :func:`check_vectors_disjoint`). Where a vector's prompts were not recorded
(a file saved before they were), nothing can be checked and a warning says so.

A study draws the prompts it tests on from :func:`held_out_seed` of its seed (docs/science.md §4): a vector made
from prompts of the same seed as its test prompts would be tested on itself — in the shift ``x ← x − μ + v``,
``μ = v`` exactly and the control could not fail.

>>> held_out_seed(0), held_out_seed(0, 2), held_out_seed(3)
(10000, 20000, 10003)
>>> from interp.prompts import build_prompts
>>> made = prompt_ids(build_prompts("bias_add", ["add1"], n_prompts=3, seed=0))
>>> check_held_out(made, build_prompts("bias_add", ["add1"], n_prompts=3, seed=held_out_seed(0)), "queries")
>>> check_held_out(made, build_prompts("bias_add", ["add7"], n_prompts=5, seed=0), "queries")
Traceback (most recent call last):
...
interp.validate.ArgumentError: queries: 3 of 5 prompts share (seed, index) with the prompts the vector was made ...
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from interp.seeds import check_seed
from interp.validate import ArgumentError

#: Seeds ``s + k·HELD_OUT_STRIDE`` (k = 1, 2, …) hold a study's held-out prompts; seeds below it are the user's.
HELD_OUT_STRIDE = 10_000

PromptId = tuple[str, int, int]  # (family, seed, index)


def held_out_seed(seed: int, k: int = 1) -> int:
    """The ``k``-th seed of prompts held out from those of ``seed`` (``k >= 1``; distinct for every seed below
    :data:`HELD_OUT_STRIDE` and every ``k``)."""
    seed = check_seed(seed)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ArgumentError("k", f"must be an integer >= 1, got {k!r}")
    return seed + k * HELD_OUT_STRIDE


def prompt_ids(prompts: Iterable[Any]) -> frozenset[PromptId]:
    """The identities ``(family, seed, index)`` of ``prompts``."""
    return frozenset((str(p.family), int(p.seed), int(p.index)) for p in prompts)


def vector_ids(vector: Any) -> frozenset[PromptId] | None:
    """The identities of every prompt a :class:`~interp.vectors.TaskVector` (each term of a combination) was made
    from; ``None`` when any term did not record them."""
    out: set[PromptId] = set()
    for _, prov in getattr(vector, "terms", ()):
        ids = getattr(prov, "prompt_ids", ())
        if not ids:
            return None
        out |= {(prov.family, int(s), int(i)) for s, i in ids}
    return frozenset(out)


def _describe(ids: frozenset[PromptId]) -> str:
    by = {}
    for fam, s, i in ids:
        by.setdefault((fam, s), []).append(i)
    parts = []
    for (fam, s), idx in sorted(by.items()):
        idx.sort()
        run = idx == list(range(idx[0], idx[-1] + 1))
        parts.append(f"{fam} seed {s}, indices " + (f"{idx[0]}..{idx[-1]}" if run else ", ".join(map(str, idx[:6]))))
    return "; ".join(parts)


def _made_from(source: Any) -> frozenset[PromptId] | None:
    if isinstance(source, frozenset | set):
        return frozenset(source)
    if hasattr(source, "terms"):
        return vector_ids(source)
    return prompt_ids(source)


def check_held_out(source: Any, prompts: Sequence[Any], name: str = "prompts", *, what: str = "the vector") -> None:
    """``ArgumentError`` naming ``name`` when any of ``prompts`` shares an identity with the prompts ``source`` was made
    from (``source``: a TaskVector, a set of identities, or the prompts themselves); a warning when the vector did
    not record its prompts."""
    made = _made_from(source)
    if made is None:
        warnings.warn(
            f"{name}: {what} did not record the prompts it was made from (saved before they were recorded): "
            "cannot check that it is tested on held-out prompts",
            stacklevel=3,
        )
        return
    shared = made & prompt_ids(prompts)
    if shared:
        seed = min(s for _, s, _ in made)
        n_shared = sum((str(p.family), int(p.seed), int(p.index)) in shared for p in prompts)
        raise ArgumentError(
            name,
            f"{n_shared} of {len(prompts)} prompts share (seed, index) with the prompts {what} was made from "
            f"({_describe(made)}): draw held-out prompts, e.g. seed=held_out_seed({seed}) = {held_out_seed(seed)}",
        )


def check_vectors_disjoint(target: Any, others: Sequence[Any], name: str = "target") -> None:
    """``ArgumentError`` when ``target`` (a TaskVector) was made from any prompt one of ``others`` was made from (a
    decomposition or comparison of vectors that share prompts shares their sampling noise); a silent pass for
    values that are not task vectors or did not record their prompts."""
    made = vector_ids(target) if hasattr(target, "terms") else None
    if not made:
        return
    for i, other in enumerate(others):
        theirs = vector_ids(other) if hasattr(other, "terms") else None
        if theirs and made & theirs:
            raise ArgumentError(
                name,
                f"made from {len(made & theirs)} prompts that basis vector {i} ({other.describe()!r}) was "
                f"also made from ({_describe(made & theirs)}): make the target from held-out prompts "
                f"(seed=held_out_seed(seed))",
            )


__all__ = ["HELD_OUT_STRIDE", "check_held_out", "check_vectors_disjoint", "held_out_seed", "prompt_ids", "vector_ids"]
