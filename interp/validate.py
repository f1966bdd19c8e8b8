"""Argument checks shared by the public entry points: a bad value is refused before any work, with a typed error
that names the argument and says what is allowed.

Every check raises :class:`ArgumentError` (a ``ValueError``) or, for a value of the wrong kind, its subclass
:class:`ArgumentTypeError` (also a ``TypeError``); both carry the argument's name in ``.argument`` and start their
message with it (``"n_prompts: must be an integer >= 1, got 0"``), so a caller can catch either builtin and a user
reads which argument to fix. Functions of the toolkit call these checks first, then build prompts and run the model.

Nothing here imports torch until a tensor is checked (``import interp`` stays cheap).

>>> check_count(3, "n_prompts")
3
>>> check_count(0, "n_prompts")
Traceback (most recent call last):
...
interp.validate.ArgumentError: n_prompts: must be an integer >= 1, got 0
>>> check_probability(float("nan"), "control_tolerance")
Traceback (most recent call last):
...
interp.validate.ArgumentError: control_tolerance: must be a finite number in [0, 1], got nan
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np


class ArgumentError(ValueError):
    """A bad argument value; ``argument`` names it (e.g. ``"n_prompts"``, ``"interventions[2]"``)."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument of the wrong kind (a string where a list of prompts belongs, a tensor where a TaskVector does)."""


def _kind(value: Any) -> str:
    return type(value).__name__


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer (numpy integers too; not a bool) in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        bounds = f" >= {minimum}" if minimum is not None and maximum is None else ""
        raise ArgumentTypeError(name, f"must be an integer{bounds}, got {value!r}")
    value = int(value)
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ArgumentError(name, f"{value} is out of range; valid: integers {minimum}..{maximum}")
    if minimum is not None and value < minimum:
        raise ArgumentError(name, f"must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ArgumentError(name, f"must be an integer <= {maximum}, got {value!r}")
    return value


def check_count(value: Any, name: str, minimum: int = 1, *, optional: bool = False) -> int | None:
    """A number of things (prompts, permutations, a batch size): an integer ``>= minimum`` (or ``None`` where
    ``optional``)."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        error = (
            ArgumentError if isinstance(value, numbers.Integral) and not isinstance(value, bool) else ArgumentTypeError
        )
        raise error(name, f"must be an integer >= {minimum}{' or None' if optional else ''}, got {value!r}")
    return int(value)


def check_number(value: Any, name: str, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """``value`` as a ``float`` if it is a finite real number (not a bool) in ``[minimum, maximum]``."""
    where = (
        f" in [{minimum:g}, {maximum:g}]"
        if minimum is not None and maximum is not None
        else f" >= {minimum:g}"
        if minimum is not None
        else f" <= {maximum:g}"
        if maximum is not None
        else ""
    )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(name, f"must be a finite number{where}, got {value!r}")
    x = float(value)
    if not math.isfinite(x) or (minimum is not None and x < minimum) or (maximum is not None and x > maximum):
        raise ArgumentError(name, f"must be a finite number{where}, got {value!r}")
    return x


def check_probability(value: Any, name: str) -> float:
    """A finite number in [0, 1]."""
    return check_number(value, name, minimum=0.0, maximum=1.0)


def check_flag(value: Any, name: str) -> bool:
    """``True`` or ``False`` (numpy bools too); a string such as ``"no"`` is refused rather than read as true."""
    if not isinstance(value, bool | np.bool_):
        raise ArgumentTypeError(name, f"must be True or False, got {value!r}")
    return bool(value)


def check_choice(value: Any, name: str, allowed: Collection[str], what: str = "not supported") -> str:
    """``value`` if it is one of ``allowed``; else an error listing them."""
    if not isinstance(value, str) or value not in allowed:
        error = ArgumentError if isinstance(value, str) else ArgumentTypeError
        raise error(name, f"{value!r} {what}; valid: {', '.join(allowed)}")
    return value


def check_name(value: Any, name: str) -> str:
    """A non-empty string (a task, a family, a label)."""
    if not isinstance(value, str):
        raise ArgumentTypeError(name, f"must be a string, got {_kind(value)} {value!r}")
    if not value:
        raise ArgumentError(name, "must be a non-empty string")
    return value


def check_sequence(value: Any, name: str, *, what: str = "values", allow_empty: bool = False) -> list:
    """A list, tuple or 1-D array (not a string, not a mapping) as a list; non-empty unless ``allow_empty``."""
    if isinstance(value, str | bytes | dict) or not isinstance(value, Sequence | np.ndarray) and not is_tensor(value):
        raise ArgumentTypeError(name, f"need a sequence of {what}, got {_kind(value)} {_clip(value)}")
    out = list(value)
    if not out and not allow_empty:
        raise ArgumentError(name, f"need at least one of the {what}, got none")
    return out


def check_numbers(values: Any, name: str, *, minimum: float | None = None, maximum: float | None = None) -> np.ndarray:
    """A non-empty 1-D sequence of finite numbers in ``[minimum, maximum]``, as a float array."""
    if isinstance(values, str | bytes) or not (isinstance(values, Sequence | np.ndarray) or is_tensor(values)):
        raise ArgumentTypeError(name, f"need a sequence of numbers, got {_kind(values)} {_clip(values)}")
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentTypeError(name, f"need a sequence of numbers, got {_clip(values)}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ArgumentError(name, f"need a non-empty 1-D sequence of numbers, got shape {arr.shape}")
    lo = -math.inf if minimum is None else minimum
    hi = math.inf if maximum is None else maximum
    bad = [float(x) for x in arr if not (math.isfinite(x) and lo <= x <= hi)]
    if bad:
        where = f" in [{lo:g}, {hi:g}]" if minimum is not None and maximum is not None else ""
        raise ArgumentError(name, f"every value must be a finite number{where}; got {bad[:5]}")
    return arr


def _clip(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor (checked without importing torch)."""
    return type(value).__module__.startswith("torch") and hasattr(value, "dtype") and hasattr(value, "shape")


def check_tensor(
    value: Any,
    name: str,
    *,
    ndim: int | None = None,
    width: int | None = None,
    min_rows: int | None = None,
    shape_hint: str = "",
):
    """A real floating-point torch tensor with values (not on the ``meta`` device), finite, of ``ndim`` dimensions,
    last dimension ``width`` and at least ``min_rows`` rows (first dimension); ``shape_hint`` says that shape in the
    error (e.g. ``"[prompt >= 2, d_model=64]"``)."""
    import torch

    hint = shape_hint or (f"[{width or 'd'}]" if ndim == 1 else f"{ndim}-D" if ndim else "")
    if not isinstance(value, torch.Tensor):
        raise ArgumentTypeError(name, f"need a {hint} tensor, got {_kind(value)} {_clip(value)}".replace("  ", " "))
    if value.is_complex() or not value.is_floating_point():
        raise ArgumentTypeError(name, f"need a real floating-point tensor, got dtype {value.dtype}")
    if value.device.type == "meta":
        raise ArgumentError(name, "is on the 'meta' device (a shape without values); give a tensor with values")
    shape = tuple(value.shape)
    if (
        (ndim is not None and value.ndim != ndim)
        or (width is not None and (value.ndim == 0 or shape[-1] != width))
        or (min_rows is not None and (value.ndim == 0 or shape[0] < min_rows))
    ):
        raise ArgumentError(name, f"need a {hint} tensor, got shape {shape}".replace("  ", " "))
    if not bool(torch.isfinite(value).all()):
        raise ArgumentError(name, "holds NaN or infinite values")
    return value


def check_vector(value: Any, name: str, width: int | None = None):
    """``Float[Tensor, "d"]``: a finite real 1-D tensor of ``width`` values (e.g. ``d_model``)."""
    return check_tensor(value, name, ndim=1, width=width, shape_hint=f"[d_model{'=' + str(width) if width else ''}]")


def check_model(value: Any, name: str = "model"):
    """A model from :func:`interp.models.load_model` (a callable with a TransformerLens ``cfg``), not its name."""
    runs = callable(value) or getattr(value, "engine", None) == "nnsight"  # an nnsight model runs through traces
    if isinstance(value, str | bytes) or not hasattr(value, "cfg") or not runs:
        hint = f" (load it first: interp.load_model({value!r}))" if isinstance(value, str) else ""
        raise ArgumentTypeError(name, f"need a model from interp.load_model, got {_kind(value)}{hint}")
    return value


def check_examples_fit(model, n_examples: int, name: str = "n_examples") -> int:
    """Refuse, before any prompt is built, a number of examples that cannot fit the model's context: every example
    line takes at least one token, so ``n_examples`` of them and a query need more than ``n_examples + 1`` tokens
    (the exact length is checked once the prompts are tokenised)."""
    n_ctx = int(model.cfg.n_ctx)
    if n_examples + 2 > n_ctx:
        raise ArgumentError(
            name,
            f"{n_examples} examples cannot fit the model's context of {n_ctx} tokens (each example takes at least "
            f"one); use far fewer (the prompts this model was trained on show how many fit)",
        )
    return n_examples
