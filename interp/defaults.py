"""Which tasks the studies and the model card use by default: defined once, here.

The embedded model was trained on the retrieval and bias-add families (its card has the numbers). Every default
pair of a study or of the card comes from these constants:

- :data:`EMBEDDED_PAIRS`: two (task A, task B) pairs per trained family, in the order figures show them;
- :data:`EXTRA_TASKS`: further tasks per family, added in order when a study needs a third task (a control or a
  third mixed task) or up to six tasks (tasks solved vs K).

>>> pairs_of("bias_add")
[('bias_add', 'add1', 'add7'), ('bias_add', 'add2', 'add5')]
>>> tasks_for("retrieval", 4)
('pos1', 'pos8', 'pos4', 'pos6')
"""

from __future__ import annotations

#: Two pairs per family the embedded model was trained on: (family, task A, task B).
EMBEDDED_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("retrieval", "pos1", "pos8"),
    ("bias_add", "add1", "add7"),
    ("retrieval", "pos3", "pos6"),
    ("bias_add", "add2", "add5"),
)
#: Tasks added after a family's first pair, in order (third task, then up to six tasks).
EXTRA_TASKS: dict[str, tuple[str, ...]] = {
    "retrieval": ("pos4", "pos6", "pos2", "pos7"),
    "bias_add": ("add4", "add9", "add2", "add5"),
}
#: Pairs of the multi-character operands family, for models trained on it (the card uses them when present).
OPERANDS_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("operands", "copy_first", "copy_second"),
    ("operands", "copy_first", "sum"),
)


def pairs_of(family: str) -> list[tuple[str, str, str]]:
    """The default pairs of ``family`` (empty when it has none)."""
    return [p for p in EMBEDDED_PAIRS + OPERANDS_PAIRS if p[0] == family]


def tasks_for(family: str, k: int) -> tuple[str, ...]:
    """The first ``k`` default tasks of ``family``: its first pair, then :data:`EXTRA_TASKS`."""
    pairs = pairs_of(family)
    if not pairs or family not in EXTRA_TASKS:
        raise ValueError(f"family: no default tasks for {family!r}; valid: {', '.join(EXTRA_TASKS)}")
    order = pairs[0][1:] + EXTRA_TASKS[family]
    if not 1 <= k <= len(order):
        raise ValueError(f"k: need 1..{len(order)} default tasks of {family}, got {k!r}")
    return order[:k]


#: Where ``interp figures`` writes without ``--out``: a quick run has a folder of its own, so that the committed
#: full-size results in ``figures/`` are never replaced by a smoke run's.
DEFAULT_OUT, QUICK_OUT = "figures", "figures-quick"


def default_out(quick: bool) -> str:
    """The output folder when none is given: ``figures-quick`` for a quick run, else ``figures``.

    >>> default_out(True), default_out(False)
    ('figures-quick', 'figures')
    """
    return QUICK_OUT if quick else DEFAULT_OUT
