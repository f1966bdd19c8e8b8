"""Tasks and task families as data.

A :class:`Task` maps an input to an answer string. A :class:`Family` is a set of tasks that share one
input space and one format: an example reads ``render(x) + separator + task.answer(x)``.

Adding a family takes a few lines::

    >>> import numpy as np
    >>> from interp.tasks import Family, Task, register_family, get_family
    >>> parity = Family(
    ...     name="parity",
    ...     tasks=(Task("even", lambda x: "E" if x % 2 == 0 else "O"),
    ...            Task("odd", lambda x: "O" if x % 2 == 0 else "E")),
    ...     sample_input=lambda rng: int(rng.integers(0, 100)),
    ...     render=str,
    ...     separator="?",
    ... )
    >>> register_family(parity, overwrite=True)
    >>> get_family("parity").example(7, "even")
    '7?O'
"""

from __future__ import annotations

import csv
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from interp.validate import ArgumentError, ArgumentTypeError


@dataclass(frozen=True)
class Task:
    """One task: a name and a function from an input to its answer string."""

    name: str
    answer: Callable[[Any], str]
    description: str = ""


@dataclass(frozen=True)
class Family:
    """Tasks sharing one input space and format (``render(x) + separator + answer``).

    ``n_inputs`` is the size of the input space when it is small (``None`` = effectively unbounded);
    prompt builders use it to refuse requests that cannot be met.
    """

    name: str
    tasks: tuple[Task, ...]
    sample_input: Callable[[np.random.Generator], Any]
    render: Callable[[Any], str]
    separator: str
    description: str = ""
    n_inputs: int | None = None
    _by_name: dict[str, Task] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"family {self.name!r}: task names must be unique, got {names}")
        if not self.tasks:
            raise ValueError(f"family {self.name!r}: needs at least one task")
        object.__setattr__(self, "_by_name", {t.name: t for t in self.tasks})

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    def task(self, name: str) -> Task:
        """The task called ``name``; ``ValueError`` listing the valid names otherwise."""
        return self._by_name[self.check_task(name)]

    def check_task(self, name: str, argument: str = "tasks") -> str:
        """``name`` if it is one of this family's tasks; else an error naming ``argument`` and the valid names."""
        if not isinstance(name, str):
            raise ArgumentTypeError(argument, f"a task name (a string), got {type(name).__name__} {name!r}")
        if name not in self._by_name:
            raise ArgumentError(
                argument, f"unknown task {name!r} for family {self.name!r}; valid: {', '.join(self.task_names)}"
            )
        return name

    def query(self, x: Any) -> str:
        """The query text for input ``x``: ``render(x) + separator``."""
        return self.render(x) + self.separator

    def example(self, x: Any, task: str) -> str:
        """One solved example: ``render(x) + separator + answer``."""
        return self.query(x) + self.task(task).answer(x)


# ---------------------------------------------------------------------------------------------
# Built-in families (paper formats, docs/science.md §1-§2)


def _two_operands(rng: np.random.Generator) -> tuple[int, int]:
    a, b = rng.integers(10, 100, size=2)
    return int(a), int(b)


def operands() -> Family:
    """``34@57=34`` copy the first operand, ``34@57=57`` copy the second, ``34@57=91`` their sum."""
    return Family(
        name="operands",
        tasks=(
            Task("copy_first", lambda x: str(x[0]), "copy operand A"),
            Task("copy_second", lambda x: str(x[1]), "copy operand B"),
            Task("sum", lambda x: str(x[0] + x[1]), "A + B"),
        ),
        sample_input=_two_operands,
        render=lambda x: f"{x[0]}@{x[1]}",
        separator="=",
        description="A, B uniform in [10, 99]",
        n_inputs=90 * 90,
    )


def _words(lang: str) -> Callable[[Any], str]:
    from num2words import num2words

    return lambda x: num2words(x[0] + x[1], lang=lang)


def add_translate() -> Family:
    """``57+66->123`` and the sum in English, French and Spanish words (``num2words``)."""
    return Family(
        name="add_translate",
        tasks=(
            Task("sum", lambda x: str(x[0] + x[1]), "A + B in digits"),
            Task("english", _words("en"), "A + B in English words"),
            Task("french", _words("fr"), "A + B in French words"),
            Task("spanish", _words("es"), "A + B in Spanish words"),
        ),
        sample_input=_two_operands,
        render=lambda x: f"{x[0]}+{x[1]}",
        separator="->",
        description="A, B uniform in [10, 99]",
        n_inputs=90 * 90,
    )


@dataclass(frozen=True)
class Country:
    name: str
    capital: str
    continent: str


@cache
def countries() -> tuple[Country, ...]:
    """The country table shipped in ``interp/data/countries.csv``."""
    text = resources.files("interp").joinpath("data/countries.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    return tuple(Country(r["country"], r["capital"], r["continent"]) for r in rows)


def country() -> Family:
    """``France->Paris`` (capital), ``France->Europe`` (continent), ``France->FRANCE`` (upper case)."""
    table = countries()
    return Family(
        name="country",
        tasks=(
            Task("capital", lambda c: c.capital),
            Task("continent", lambda c: c.continent),
            Task("upper", lambda c: c.name.upper()),
        ),
        sample_input=lambda rng: table[int(rng.integers(len(table)))],
        render=lambda c: c.name,
        separator="->",
        description=f"{len(table)} countries",
        n_inputs=len(table),
    )


@cache
def words() -> tuple[str, ...]:
    """The word list shipped in ``interp/data/words.txt`` (first letter differs from last)."""
    text = resources.files("interp").joinpath("data/words.txt").read_text(encoding="utf-8")
    return tuple(w for w in (line.strip() for line in text.splitlines()) if w and w[0] != w[-1])


def letters() -> Family:
    """``garden->g`` / ``garden->n`` / ``garden->G`` / ``garden->N`` (first/last letter, lower/upper)."""
    table = words()
    return Family(
        name="letters",
        tasks=(
            Task("first", lambda w: w[0]),
            Task("last", lambda w: w[-1]),
            Task("first_upper", lambda w: w[0].upper()),
            Task("last_upper", lambda w: w[-1].upper()),
        ),
        sample_input=lambda rng: table[int(rng.integers(len(table)))],
        render=str,
        separator="->",
        description=f"{len(table)} words",
        n_inputs=len(table),
    )


RETRIEVAL_LENGTH = 8


def _letters8(rng: np.random.Generator) -> str:
    idx = rng.choice(len(string.ascii_letters), size=RETRIEVAL_LENGTH, replace=False)
    return "".join(string.ascii_letters[i] for i in idx)


def _position(i: int) -> Callable[[str], str]:
    return lambda s: s[i]


def retrieval() -> Family:
    """``qWeRtYuI>e``: 8 distinct random letters; task ``pos{i}`` returns the i-th character (1-based)."""
    return Family(
        name="retrieval",
        tasks=tuple(
            Task(f"pos{i + 1}", _position(i), f"character at position {i + 1}") for i in range(RETRIEVAL_LENGTH)
        ),
        sample_input=_letters8,
        render=str,
        separator=">",
        description="8 distinct letters from a-zA-Z",
    )


def _shift(b: int) -> Callable[[int], str]:
    return lambda x: str((x + b) % 10)


def bias_add() -> Family:
    """``3>5``: single digit x, task ``add{b}`` answers (x + b) mod 10."""
    return Family(
        name="bias_add",
        tasks=tuple(Task(f"add{b}", _shift(b), f"(x + {b}) mod 10") for b in range(10)),
        sample_input=lambda rng: int(rng.integers(10)),
        render=str,
        separator=">",
        description="x uniform in 0..9",
        n_inputs=10,
    )


def _shift_twice(b: int) -> Callable[[int], str]:
    return lambda x: f"{(x + b) % 10}{(x + 2 * b) % 10}"


#: The shifts b of :func:`two_digit_shift`'s tasks.
TWO_DIGIT_SHIFTS = (1, 7, 4, 9)


def two_digit_shift() -> Family:
    """``3>45``: single digit x, task ``shift{b}`` answers two digits, (x + b) mod 10 then (x + 2b) mod 10.

    Given x and the first answer digit the second is determined (b = digit − x), so after generating the first token
    a model either commits to the task that digit implies or keeps following the in-context mixture (then the other
    task's second digit, a *hybrid*, gets probability): the question of generation collapse (claim 5), which
    one-character answers cannot ask. shift4 and shift9 share their second digits (2·4 ≡ 2·9 mod 10).

    >>> two_digit_shift().example(3, "shift1")
    '3>45'
    """
    return Family(
        name="two_digit_shift",
        tasks=tuple(
            Task(f"shift{b}", _shift_twice(b), f"(x + {b}) mod 10, (x + {2 * b}) mod 10") for b in TWO_DIGIT_SHIFTS
        ),
        sample_input=lambda rng: int(rng.integers(10)),
        render=str,
        separator=">",
        description="x uniform in 0..9",
        n_inputs=10,
    )


_BUILTIN: dict[str, Callable[[], Family]] = {
    "operands": operands,
    "add_translate": add_translate,
    "country": country,
    "letters": letters,
    "retrieval": retrieval,
    "bias_add": bias_add,
    "two_digit_shift": two_digit_shift,
}
_REGISTRY: dict[str, Family] = {}


def family_names() -> tuple[str, ...]:
    """Names of all known families (built-in and registered)."""
    return tuple(dict.fromkeys([*_BUILTIN, *_REGISTRY]))


def get_family(name: str | Family) -> Family:
    """The family called ``name`` (a :class:`Family` passes through).

    >>> get_family("operands").example((34, 57), "sum")
    '34@57=91'
    """
    if isinstance(name, Family):
        return name
    if not isinstance(name, str):
        raise ArgumentTypeError("family", f"a family name (a string), got {type(name).__name__}; valid: "
                                f"{', '.join(family_names())}")  # fmt: skip
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _BUILTIN:
        _REGISTRY[name] = _BUILTIN[name]()
        return _REGISTRY[name]
    raise ArgumentError("family", f"unknown family {name!r}; valid: {', '.join(family_names())}")


def register_family(family: Family, *, overwrite: bool = False) -> None:
    """Make ``family`` available by name to every builder, study and the CLI."""
    if not overwrite and family.name in family_names():
        raise ValueError(f"family: {family.name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[family.name] = family


def resolve_tasks(family: Family, tasks: Sequence[str] | None, name: str = "tasks") -> tuple[str, ...]:
    """Validate task names against ``family`` (``None`` = all its tasks; one name may be given as a string);
    errors name the argument ``name``.

    >>> resolve_tasks(get_family("bias_add"), "add1")
    ('add1',)
    """
    if tasks is None:
        return family.task_names
    if not isinstance(tasks, str | Sequence):
        raise ArgumentTypeError(name, f"task names (a string or a list of them), got {type(tasks).__name__}")
    tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
    if not tasks:
        raise ArgumentError(name, f"need at least one task; valid for {family.name!r}: {', '.join(family.task_names)}")
    for t in tasks:
        family.check_task(t, name)
    if len(set(tasks)) != len(tasks):
        raise ArgumentError(name, f"duplicate task names in {list(tasks)}")
    return tasks
