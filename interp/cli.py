"""The ``interp`` command (also ``python -m interp``).

Examples::

    interp measure --family bias_add --tasks add1,add4,add7 --mix 1/3,1/3,1/3 --n-prompts 50
    interp measure --family retrieval --tasks pos1,pos8 --mix 0.5,0.5 --json
    interp train --config experiments/configs/tiny.json --out runs/tiny
    interp capture --family bias_add --tasks add2 --n-prompts 100000 --layers 1,2 --out runs/add2
    interp figures --quick          # into figures-quick/ (figures/ holds the committed results)
    interp demo
"""

from __future__ import annotations

import _thread
import argparse
import atexit
import dataclasses
import gc
import json
import math
import os
import re
import signal
import sys
import threading
import types
import typing
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

from interp.export import INTERRUPT_REQUESTED
from interp.models import WeightsNotFoundError

#: Exit status of a bad command line (argparse's) and of Ctrl-C (128 + SIGINT).
EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
#: Exit status of ``interp capture`` when the disk fills up (the store keeps its finished shards).
EXIT_DISK_FULL = 1
INTERRUPTED = "interrupted; nothing half-written"
#: Library argument names → the flag the user typed (``interp measure`` / ``figures`` / ``demo``).
FLAG_NAMES = {
    "family": "--family",
    "tasks": "--tasks",
    "task": "--tasks",
    "proportions": "--mix",
    "n_prompts": "--n-prompts",
    "n_examples": "--n-examples",
    "seed": "--seed",
    "spec": "--model",
    "model": "--model",
    "device": "--device",
    "dtype": "--dtype",
    "n_devices": "--n-devices",
    "out": "--out",
    "engine": "--engine",
    "remote": "--remote",
    "host": "--ndif-host",
}
_PREFIX = re.compile(r"^([A-Za-z_][\w.\-]*|embedded model): ")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class CliError(Exception):
    """A bad command line: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """``argparse`` whose errors are one line (the README's promise), pointing to ``--help`` for the usage.

    ``lazy_epilog``: a function giving the epilog, called only when the help is shown (e.g. the studies' table,
    which imports the studies).
    """

    def __init__(self, *args: Any, lazy_epilog: typing.Callable[[], str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_epilog = lazy_epilog

    def format_help(self) -> str:
        if self.lazy_epilog is not None:
            self.epilog = self.lazy_epilog()
        return super().format_help()

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


@contextmanager
def as_flag(flag: str, names: Mapping[str, str] | None = None) -> Iterator[None]:
    """Re-raise a library ``ValueError`` (or missing weights) as a :class:`CliError` naming the user's flag.

    A message starting with a library argument name in ``names`` (``n_prompts: ...``) gets that flag instead
    (``--n-prompts: ...``); any other message is prefixed with ``flag``.
    """
    try:
        yield
    except CliError:
        raise
    except (ValueError, WeightsNotFoundError) as err:
        raise CliError(user_message(str(err), flag, names)) from None


def user_message(message: str, flag: str, names: Mapping[str, str] | None = None) -> str:
    """``"n_prompts: must be >= 1"`` → ``"--n-prompts: must be >= 1"``; unknown prefixes keep ``flag`` in front.

    >>> user_message("proportions: values must be finite", "--mix", FLAG_NAMES)
    '--mix: values must be finite'
    >>> user_message("gpt2: weights not found", "--model", FLAG_NAMES)
    '--model: gpt2: weights not found'
    """
    message = " ".join(message.split())  # one line, whatever the library wrote
    for name in names or {}:
        if "_" in name:  # "use n_examples >= 10" → "use --n-examples >= 10" (whole identifiers only)
            message = re.sub(rf"(?<![\w.-]){name}(?![\w-])", names[name], message)
    if any(message.startswith(f"{f}:") for f in (names or {}).values()):
        return message
    match = _PREFIX.match(message)
    if match and names and match.group(1) in names:
        return names[match.group(1)] + message[len(match.group(1)) :]
    if message.startswith(f"{flag}:"):
        return message
    return f"{flag}: {message}"


def parse_mix(text: str | None, n_tasks: int) -> list[float]:
    """``"1/3,1/3,1/3"`` or ``"0.5,0.5"`` → floats (uniform when ``None``)."""
    if text is None:
        return [1.0 / n_tasks] * n_tasks
    if not isinstance(text, str):  # argparse turns "--mix=--" into a list
        text = "--"
    try:
        values = [float(Fraction(part.strip())) for part in text.split(",")]
    except (ValueError, ZeroDivisionError, OverflowError):
        raise CliError(
            f"--mix: malformed {text!r}; expected comma-separated fractions like 1/3,1/3,1/3 or 0.5,0.5"
        ) from None
    if len(values) != n_tasks:
        raise CliError(f"--mix: {len(values)} values for {n_tasks} tasks; give one fraction per task")
    if all(math.isfinite(v) for v in values) and abs(sum(values) - 1) < 1e-4:
        values = [v / sum(values) for v in values]  # 1/3 written as 0.333 is fine; renormalise tiny rounding
    return values


def _parse_list(text: str | None) -> list[str] | None:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def check_device(device: str, flag: str = "--device") -> str:
    """Refuse an unknown device, or CUDA on a torch that has none, before any model is loaded."""
    if not _DEVICE.match(device):
        raise CliError(f"{flag}: {device!r} is not a device; valid: auto, cpu, cuda, cuda:N")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise CliError(
                f"{flag}: {device!r} asked for, but torch {torch.__version__} ({built}) sees no CUDA "
                "device; use --device cpu"
            )
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise CliError(f"{flag}: {device!r} asked for, but torch sees {torch.cuda.device_count()} CUDA device(s)")
    return device


def check_out(path: str | Path, flag: str = "--out") -> Path:
    """The output directory is creatable, writable and not a file: checked before any compute."""
    from interp.export import check_output_dir

    with as_flag(flag):
        return check_output_dir(path, flag=flag)


def remote_mode(args: argparse.Namespace) -> bool | str:
    """``--remote`` as ``load_model``'s ``remote``: absent ``False``, ``--remote`` (NDIF) ``True``, ``--remote local``
    ``"local"``; refused without ``--engine nnsight``, and the nnsight engine refused (with how to install it) where
    nnsight is missing. Cheap: before any model is loaded."""
    engine = getattr(args, "engine", "transformer_lens")
    remote = {None: False, "ndif": True, "local": "local"}[getattr(args, "remote", None)]
    if remote is not False and engine != "nnsight":
        raise CliError("--remote: traces run remotely on the nnsight engine only; add --engine nnsight")
    if getattr(args, "ndif_host", None) and remote is not True:
        raise CliError("--ndif-host: only used with --remote (NDIF)")
    if engine == "nnsight":
        from interp.engines.nn_model import require_nnsight

        with as_flag("--engine", FLAG_NAMES):
            require_nnsight()
    return remote


def load_checked_model(
    spec: str,
    device: str,
    dtype: str = "float32",
    n_devices: int = 1,
    *,
    engine: str = "transformer_lens",
    remote: bool | str = False,
    host: str | None = None,
):
    """Check ``--device``, ``--dtype``, ``--n-devices`` and resolve ``--model`` (cheap), then load the model (on
    ``--engine``; with ``--remote``, NDIF's key, host and served models are checked before anything is loaded)."""
    from interp.models import check_load_args, load_model, pick_device, resolve_weights_dir, spec_plugin

    check_device(device)
    with as_flag("--dtype", FLAG_NAMES):
        check_load_args(pick_device(device), dtype, n_devices)
    with as_flag("--model", FLAG_NAMES):
        if spec_plugin(spec) is None and remote is not True:  # a built model has no weights; NDIF holds them
            resolve_weights_dir(spec)
        return load_model(
            spec, device=device, dtype=dtype, n_devices=n_devices, engine=engine, remote=remote, host=host
        )


def engine_args(args: argparse.Namespace) -> dict[str, Any]:
    """``--engine``, ``--remote`` and ``--ndif-host`` as :func:`load_checked_model`'s keywords (checked)."""
    remote = remote_mode(args)
    return {"engine": args.engine, "remote": remote, "host": args.ndif_host}


#: Example lines (prompts × (examples + query)) ``interp measure`` builds and holds at once before scoring: far
#: above any study (≤ 1,000 prompts × 20 examples), far below what exhausts memory or takes hours just to build.
MAX_PROMPT_LINES = 10_000_000


def check_prompt_sizes(n_examples: int, n_prompts: int, n_ctx: int | None) -> None:
    """Refuse ``--n-examples`` / ``--n-prompts`` that cannot fit, before any prompt is built: every example takes at
    least one token (so more examples than the model's context ``n_ctx`` cannot fit; ``None``: a built model, which
    checks its context itself), and the prompts are built in memory before scoring (:data:`MAX_PROMPT_LINES`).

    >>> check_prompt_sizes(100000, 100, 288)
    Traceback (most recent call last):
    interp.cli.CliError: --n-examples: 100000 examples take at least 100002 tokens ... context of 288; use fewer ...
    """
    if n_ctx is not None and n_examples + 2 > n_ctx:
        raise CliError(
            f"--n-examples: {n_examples} examples take at least {n_examples + 2} tokens with the query and BOS, more "
            f"than the model's context of {n_ctx}; use fewer examples"
        )
    lines = n_prompts * (max(n_examples, 0) + 1)
    if lines > MAX_PROMPT_LINES:
        raise CliError(
            f"--n-prompts: {n_prompts} prompts × {n_examples + 1} lines are {lines:,} lines to build and hold before "
            f"scoring, more than {MAX_PROMPT_LINES:,}; use fewer prompts (or examples)"
        )


def check_prompts_fit(spec: str, prompts: Sequence[Any], *, newline: bool = False) -> None:
    """Refuse prompts longer than the model's context, from its config and tokenizer, before the model loads."""
    from interp.models import context_and_tokenizer
    from interp.tokenization import encode

    with as_flag("--model", FLAG_NAMES):
        found = context_and_tokenizer(spec)
    if found is None:  # a built model: scoring checks the context itself
        return
    n_ctx, tokenizer = found
    end = "\n" if newline else ""
    longest = max(len(encode(tokenizer, p.text + max(p.answers, key=len) + end)) for p in prompts)
    if longest > n_ctx:
        raise CliError(
            f"--n-examples: the longest prompt with its answer has {longest} tokens, more than the model's context "
            f"of {n_ctx}; use fewer examples"
        )


def cmd_measure(args: argparse.Namespace) -> None:
    from interp.prompts import build_prompts
    from interp.tasks import get_family, resolve_tasks

    with as_flag("--family", FLAG_NAMES):
        fam = get_family(args.family)
    with as_flag("--tasks", FLAG_NAMES):
        tasks = resolve_tasks(fam, _parse_list(args.tasks))
    mix = parse_mix(args.mix, len(tasks))
    if args.n_examples == 0:
        raise CliError(
            "--n-examples: 0 examples make zero-shot prompts, which hold no mixture to measure against --mix; "
            f"use --n-examples >= {len(tasks)}"
        )
    from interp.models import context_length

    engine = engine_args(args)
    n_ctx = None  # NDIF holds a served model's config: scoring checks the context itself
    if engine["remote"] is not True:
        with as_flag("--model", FLAG_NAMES):
            n_ctx = context_length(args.model)  # config.json only: no torch, no tokenizer, no weights
    check_prompt_sizes(args.n_examples, args.n_prompts, n_ctx)  # before a single prompt is built
    with as_flag("--mix", FLAG_NAMES):
        prompts = build_prompts(
            fam, tasks, proportions=mix, n_examples=args.n_examples, n_prompts=args.n_prompts, seed=args.seed
        )
    if engine["remote"] is not True:  # NDIF holds the weights: scoring checks the context itself
        check_prompts_fit(args.model, prompts, newline=args.newline)
    model = load_checked_model(args.model, args.device, args.dtype, args.n_devices, **engine)
    from interp.metrics import summarize
    from interp.models import model_info
    from interp.scoring import score_answers  # imports torch: after the cheap checks

    with as_flag("--n-examples", FLAG_NAMES):  # a prompt longer than the model's context
        scores = score_answers(model, prompts, include_newline=args.newline)
    summary = summarize(scores.probs, mix, tasks=tasks, seed=args.seed)
    result = {
        "model": model_info(model).model_id,
        "family": fam.name,
        "tasks": list(tasks),
        "mix": mix,
        "n_examples": args.n_examples,
        "n_prompts": args.n_prompts,
        "seed": args.seed,
        "include_newline": args.newline,
        **summary,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"model {result['model']} · family {fam.name} · {args.n_prompts} prompts × {args.n_examples} examples"
        f" · seed {args.seed}"
    )
    print(f"{'task':<14}{'target':>8}{'mean P':>9}{'95% CI':>18}{'var':>8}")
    for task, t in zip(tasks, mix, strict=True):
        s = summary["tasks"][task]
        print(f"{task:<14}{t:>8.3f}{s['mean']:>9.3f}   [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]{s['var']:>8.3f}")
    o = summary["other"]
    print(f"{'other':<14}{0:>8.3f}{o['mean']:>9.3f}   [{o['ci95'][0]:.3f}, {o['ci95'][1]:.3f}]{o['var']:>8.3f}")
    kl = summary["kl"]
    print(
        f"KL(t||p) = {kl['mean']:.3f} [{kl['ci95'][0]:.3f}, {kl['ci95'][1]:.3f}]  "
        f"(renormalised {summary['kl_renormalized']['mean']:.3f})"
    )


#: ``interp capture``: library argument names → its flags (``dtype`` there is the storage dtype).
CAPTURE_FLAGS = FLAG_NAMES | {
    "layers": "--layers",
    "hooks": "--hooks",
    "hook": "--hooks",
    "positions": "--position",
    "shard_size": "--shard-size",
    "dtype": "--store-dtype",
    "batch_size": "--batch-size",
    "store": "--out",
}


def _parse_ints(text: str | None, flag: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise CliError(f"{flag}: malformed {text!r}; expected comma-separated integers like 0,2,3") from None


def cmd_capture(args: argparse.Namespace) -> None:
    from interp.hooks import check_hook
    from interp.prompts import PromptSpec
    from interp.tasks import get_family, resolve_tasks

    with as_flag("--family", FLAG_NAMES):
        fam = get_family(args.family)
    with as_flag("--tasks", FLAG_NAMES):
        tasks = resolve_tasks(fam, _parse_list(args.tasks))
    mix = parse_mix(args.mix, len(tasks))
    with as_flag("--mix", FLAG_NAMES):
        spec = PromptSpec(fam.name, tasks, mix, n_examples=args.n_examples, n_prompts=args.n_prompts, seed=args.seed)
    layers = _parse_ints(args.layers, "--layers")
    hooks = _parse_list(args.hooks) or []
    with as_flag("--hooks", CAPTURE_FLAGS):
        for h in hooks:
            check_hook(h)
    if args.shard_size < 1:
        raise CliError(f"--shard-size: must be >= 1, got {args.shard_size}")
    check_out(args.out)
    check_prompts_fit(args.model, spec.build(0, min(len(spec), 64)))
    model = load_checked_model(args.model, args.device, args.dtype, args.n_devices)
    from interp.store.manifest import StoreError
    from interp.store.writer import DiskFullError, capture_to

    print(f"capturing {len(spec)} prompts into {args.out} (shards of {args.shard_size})", flush=True)
    try:
        with as_flag("--out", CAPTURE_FLAGS):
            store = capture_to(args.out, model, spec, layers, hooks, args.position, shard_size=args.shard_size,
                               dtype=args.store_dtype, batch_size=args.batch_size)  # fmt: skip
    except DiskFullError as err:
        raise DiskFull(str(err.strerror)) from None
    except CliError as err:
        if isinstance(err.__context__, StoreError):  # its own words: field names are the manifest's, not flags
            raise CliError(f"--out: {str(err.__context__).removeprefix('store: ')}") from None
        raise
    size = sum(s.bytes for s in store.manifest.shards)
    print(f"{store.folder}: {store.n_finished} prompts in {len(store.manifest.shards)} shards, {size / 2**20:.1f} MiB")


class DiskFull(Exception):
    """The disk filled up during ``interp capture``: one line, exit status 1; the store stays resumable."""


def _json_type(value: Any) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "an array"}
    return "null" if value is None else names.get(type(value), "an object")


def _type_ok(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a config field's type hint (unknown hints: left to ``TrainConfig.validate``)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    if origin is dict:
        return isinstance(value, dict) and all(_type_ok(v, args[1]) for v in value.values())
    if origin is list:
        return isinstance(value, list) and all(_type_ok(v, args[0]) for v in value)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    return True


def _hint_words(hint: Any) -> str:
    words = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}
    if hint in words:
        return words[hint]
    return getattr(hint, "__name__", None) if typing.get_origin(hint) is None else str(hint).replace("typing.", "")


def read_config_json(path: str) -> dict[str, Any]:
    """The ``--config`` file as a JSON object: missing, a directory, unreadable, not JSON or not an object → one
    :class:`CliError` line naming the file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CliError(f"--config: no such file {path}; give a JSON training config (see experiments/configs/)")
    if p.is_dir():
        raise CliError(f"--config: {path} is a directory; give a JSON training config file (see experiments/configs/)")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise CliError(f"--config: cannot read {path} ({getattr(err, 'strerror', None) or err})") from None
    if not text.strip():
        raise CliError(f'--config: {path} is empty; a config is a JSON object like {{"steps": 1000}}')
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(
            f"--config: {path} is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
        ) from None
    except RecursionError:
        raise CliError(f"--config: {path} is nested too deeply to be a config") from None
    if not isinstance(data, dict):
        raise CliError(f'--config: {path} must be a JSON object ({{"steps": 1000, ...}}), got {_json_type(data)}')
    return data


def load_config(path: str):
    """Read, type-check and validate a ``TrainConfig`` from ``--config``; every problem is one line."""
    data = read_config_json(path)  # before importing torch: a missing or broken file fails at once

    from interp.training import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for key, value in data.items():
        if key in hints and not _type_ok(value, hints[key]):
            raise CliError(f"--config: {path}: {key} must be {_hint_words(hints[key])}, got {json.dumps(value)[:80]}")
    try:
        cfg = TrainConfig.from_json(path)
        cfg.validate()
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as err:
        # TypeError & co.: a value of the right JSON type that TrainConfig.validate does not range-check yet
        raise CliError(user_message(str(err) or type(err).__name__, f"--config: {path}")) from None
    return cfg


#: ``interp train`` flags that override a field of the config (``None``: keep the config's value).
TRAIN_OVERRIDES = {
    "seed": "--seed",
    "time_budget_s": "--time-budget-s",
    "checkpoint_every_s": "--checkpoint-every-s",
    "eval_every_s": "--eval-every-s",
    "precision": "--precision",
    "compile": "--compile",
    "data_workers": "--data-workers",
    "grad_accum": "--grad-accum",
    "checkpoint_dtype": "--checkpoint-dtype",
}


def apply_overrides(cfg, args: argparse.Namespace):
    """The config with the fields given on the command line replaced, validated again (one line per problem)."""
    given = {k: getattr(args, k, None) for k in TRAIN_OVERRIDES}
    changes = {k: v for k, v in given.items() if v is not None and v is not False}  # 0 is a value, not "absent"
    if not changes:
        return cfg
    cfg = dataclasses.replace(cfg, **changes)
    try:
        cfg.validate()
    except ValueError as err:
        raise CliError(user_message(str(err), "--config", {k: v for k, v in TRAIN_OVERRIDES.items()})) from None
    return cfg


def cmd_train(args: argparse.Namespace) -> None:
    cfg = apply_overrides(load_config(args.config), args)
    check_out(args.out)
    check_device(args.device)
    from interp.training import train

    with as_flag("--device", {"device": "--device", "out": "--out"}):
        final = train(cfg, args.out, resume=not args.no_resume, progress=not args.quiet, device=args.device)
    print(f"model written to {final}")


def check_study_run(names: Sequence[str] | None, out: str) -> list[str]:
    """Study names, every folder the run will write and the PNG settings, checked before the model loads."""
    check_out(out)  # before the studies' import, which imports torch and plotly
    from interp.png import timeout_s
    from interp.studies import check_study_names, check_study_outputs

    with as_flag("studies"):
        names = check_study_names(names)
    with as_flag("--out", FLAG_NAMES):
        check_study_outputs(names, out)
    try:
        timeout_s()
    except ValueError as err:  # INTERP_PNG_TIMEOUT_S=...: the message names the variable
        raise CliError(str(err)) from None
    return names


def cmd_figures(args: argparse.Namespace) -> None:
    from interp.defaults import default_out

    out = default_out(args.quick) if args.out is None else args.out  # a quick run has a folder of its own
    names = check_study_run(args.studies or None, out)
    from interp.studies import run_studies

    model = load_checked_model(args.model, args.device, args.dtype, args.n_devices, **engine_args(args))
    run_studies(names, model=model, quick=args.quick, out=out)


def cmd_demo(args: argparse.Namespace) -> None:
    from interp.studies import HEADLINE, demo

    check_study_run(HEADLINE, args.out)
    model = load_checked_model(args.model, args.device, args.dtype, args.n_devices, **engine_args(args))
    demo(out=args.out, model=model)


def add_precision_flags(p: argparse.ArgumentParser) -> None:
    """``--dtype`` and ``--n-devices``: how a (big) model is loaded."""
    p.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "bfloat16", "float16", "float64"),
        help="weights' dtype (default float32; bfloat16/float16 for big models on a GPU; float64 on CPU only)",
    )
    p.add_argument("--n-devices", type=int, default=1, help="split the model's layers over this many GPUs (default 1)")
    p.add_argument(
        "--engine",
        default="transformer_lens",
        choices=("transformer_lens", "nnsight"),
        help='how the model runs: TransformerLens hooks (default) or nnsight traces (pip install -e ".[nnsight]")',
    )
    p.add_argument(
        "--remote",
        nargs="?",
        const="ndif",
        choices=("ndif", "local"),
        help="nnsight engine: run every trace on NDIF (--remote; key from NDIF_API_KEY, --model a Hugging Face repo "
        "id it serves) or through nnsight's local simulation of a remote request (--remote local)",
    )
    p.add_argument("--ndif-host", help="the NDIF host for --remote (default NDIF_HOST, else nnsight's own)")


def _studies_epilog() -> str:
    from interp.studies import STUDIES

    width = max(map(len, STUDIES))
    rows = [f"  {name:<{width}}  {study.description}" for name, study in STUDIES.items()]
    return "\n".join(["studies:", *rows, "", "example: interp figures mixture_sweep --quick --out /tmp/figs"])


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="interp",
        description="Task superposition toolkit: measure, train and plot (offline; default model: embedded).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Examples::", 1)[1],
    )
    sub = parser.add_subparsers(dest="command", required=True)

    m = sub.add_parser(
        "measure",
        help="answer probabilities on mixed prompts",
        description="Mean probability of each task's answer on prompts mixing tasks in the given "
        "proportions, with 95% bootstrap CIs, 'other' mass and KL(t||p).",
        epilog="example: interp measure --family bias_add --tasks add1,add4,add7 --mix 1/3,1/3,1/3 --n-prompts 50",
    )
    m.add_argument("--family", required=True, help="task family, e.g. operands, retrieval, bias_add, country")
    m.add_argument("--tasks", help="comma-separated task names of the family (default: all)")
    m.add_argument("--mix", help="comma-separated fraction per task, e.g. 1/3,1/3,1/3 (default: uniform)")
    m.add_argument("--n-examples", type=int, default=20, help="in-context examples per prompt (default 20)")
    m.add_argument("--n-prompts", type=int, default=100, help="prompts to average over (default 100)")
    m.add_argument("--seed", type=int, default=0, help="seed of the prompts and bootstrap (default 0)")
    m.add_argument(
        "--model",
        default="embedded",
        help="embedded (default), gpt2, a local HF directory (GPT-2, Llama, Qwen2, GPT-NeoX, Gemma, Mistral), a "
        "repo id in the local HF cache, or constructed:retrieval:K=4",
    )
    m.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    add_precision_flags(m)
    m.add_argument("--newline", action="store_true", help="score the answer's terminating newline too")
    m.add_argument("--json", action="store_true", help="print only JSON on stdout")
    m.set_defaults(func=cmd_measure)

    t = sub.add_parser(
        "train",
        help="train a model from scratch on single-task prompts",
        epilog="example: interp train --config experiments/configs/embedded.json --out runs/embedded",
    )
    t.add_argument("--config", required=True, help="JSON training config (see experiments/configs/)")
    t.add_argument("--out", required=True, help="run directory (checkpoints, log.json, final/)")
    t.add_argument("--no-resume", action="store_true", help="start over even if the run directory has a state")
    t.add_argument("--seed", type=int, help="training seed (data and initialisation), overriding the config's")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="cpu (default; bit-reproducible per seed and thread count) or cuda (fast, for exploring configs)",
    )
    t.add_argument(
        "--time-budget-s",
        type=float,
        help="wall-clock budget in seconds: warm-up and cosine learning rate "
        "follow the elapsed fraction; the run stops inside it, evaluated and saved (0 = off: steps set the "
        "schedule)",
    )
    t.add_argument("--checkpoint-every-s", type=float, help="evaluate and write a checkpoint every this many seconds")
    t.add_argument("--eval-every-s", type=float, help="evaluate every this many seconds")
    t.add_argument(
        "--precision",
        choices=("float32", "bfloat16"),
        help="bfloat16: autocast the forward pass (weights stay float32)",
    )
    t.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA; costs start-up time)")
    t.add_argument("--data-workers", type=int, help="worker processes generating batches ahead (0 = one thread)")
    t.add_argument("--grad-accum", type=int, help="micro-batches per step (large batches on little memory)")
    t.add_argument(
        "--checkpoint-dtype",
        choices=("float32", "float16", "bfloat16"),
        help="weights' dtype on disk (loading gives float32)",
    )
    t.set_defaults(func=cmd_train)

    f = sub.add_parser(
        "figures",
        help="regenerate figures (HTML, PNG, JSON) under --out",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        lazy_epilog=_studies_epilog,
    )
    f.add_argument("studies", nargs="*", help="studies to run, each once (default: all; listed below)")
    f.add_argument("--model", default="embedded", help="model spec (default embedded)")
    f.add_argument(
        "--quick", action="store_true", help="few prompts: a smoke run in well under 2 minutes, into figures-quick/"
    )
    f.add_argument(
        "--out",
        help="output directory (default figures/; with --quick figures-quick/, so the committed "
        "figures are replaced only when you name them)",
    )
    f.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    add_precision_flags(f)
    f.set_defaults(func=cmd_figures)

    c = sub.add_parser(
        "capture",
        help="capture residual streams of many prompts into a resumable store on disk",
        description="Residual stream at each prompt's last token (or --position), at the given layers and hook "
        "points, written as safetensors shards of --shard-size prompts and a manifest. Rerunning the same command "
        "continues an interrupted capture; a store captured with other settings is refused, naming what differs.",
        epilog="example: interp capture --family bias_add --tasks add2 --n-prompts 100000 --layers 1,2 --out runs/add2",
    )
    c.add_argument("--family", required=True, help="task family, e.g. operands, retrieval, bias_add, country")
    c.add_argument("--tasks", help="comma-separated task names of the family (default: all)")
    c.add_argument("--mix", help="comma-separated fraction of examples per task (default: uniform)")
    c.add_argument("--n-examples", type=int, default=20, help="in-context examples per prompt (default 20)")
    c.add_argument("--n-prompts", type=int, default=1000, help="prompts to capture (default 1000)")
    c.add_argument("--seed", type=int, default=0, help="seed of the prompts (default 0)")
    c.add_argument("--layers", help="comma-separated layers (default: all)")
    c.add_argument(
        "--hooks", default="resid_post", help="comma-separated hook points: resid_pre, resid_mid, resid_post"
    )
    c.add_argument("--position", type=int, help="token position in every prompt (default: each prompt's last token)")
    c.add_argument("--shard-size", type=int, default=1000, help="prompts per shard (default 1000)")
    c.add_argument("--store-dtype", default="float32", choices=("float32", "bfloat16", "float16"), help="storage dtype")
    c.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass (default 32)")
    c.add_argument("--out", required=True, help="the store's folder (new, empty, or this capture's to resume it)")
    c.add_argument("--model", default="embedded", help="model spec (default embedded)")
    c.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    add_precision_flags(c)
    c.set_defaults(func=cmd_capture)

    d = sub.add_parser(
        "demo", help="the main job: headline figures and numbers on the embedded model", epilog="example: interp demo"
    )
    d.add_argument("--model", default="embedded", help="model spec (default embedded)")
    d.add_argument("--out", default="figures", help="output directory (default figures/)")
    d.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    add_precision_flags(d)
    d.set_defaults(func=cmd_demo)
    return parser


def join_dash_values(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """``["--mix", "-1,2"]`` → ``["--mix=-1,2"]``: a value starting with ``-`` reaches the option's own check.

    argparse takes ``-1,2`` for an option and says "expected one argument"; joining a value-taking flag with
    its next token (unless that token is itself a known flag) keeps argparse's parsing otherwise unchanged.
    """
    takes_value, known = set(), set()
    for p in [parser, *_subparsers(parser)]:
        for action in p._actions:
            known.update(action.option_strings)
            if action.option_strings and action.nargs is None and action.const is None:
                takes_value.update(o for o in action.option_strings if o.startswith("--"))
    out: list[str] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok == "--":
            out.extend(tokens[i:])
            break
        if tok in takes_value and nxt is not None and nxt.startswith("-") and nxt.split("=")[0] not in known:
            out.append(f"{tok}={nxt}")
            i += 2
            continue
        out.append(tok)
        i += 1
    return out


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [sub for a in parser._actions if isinstance(a, argparse._SubParsersAction) for sub in a.choices.values()]


class _CtrlCNotLost:
    """Ctrl-C that cannot be lost: the pieces that stay, and why (each has a test in
    ``tests/acceptance/test_faults.py``).

    1. Our SIGINT handler sets :data:`interp.export.INTERRUPT_REQUESTED` before raising ``KeyboardInterrupt``: a
       library that catches ``BaseException`` cannot lose it, since no new output file is started once it is set
       (:func:`interp.export.atomic_path`).
    2. ``sys.unraisablehook``: Python drops an exception raised inside a weakref callback or ``__del__`` ("Exception
       ignored in ...") and the run went on as if no Ctrl-C had been pressed (seen in a real ``interp figures`` run).
       The hook interrupts the main thread again from a short-lived thread, after a short delay: raised, or even
       asked for with ``_thread.interrupt_main()``, inside the hook, it is delivered at the hook's next bytecode and
       swallowed again (tried: the weakref test then fails).

    (``os._exit`` in :func:`entry` is about speed, not Ctrl-C.)
    """

    def __enter__(self) -> _CtrlCNotLost:
        self.previous = sys.unraisablehook
        self.done = threading.Event()
        sys.unraisablehook = self._hook
        self.previous_sigint = None
        ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # e.g. a background job: keep ignoring it
        if threading.current_thread() is threading.main_thread() and not ignored:
            self.previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()  # the command is over: a late re-raise would only kill the exit (status -2 instead of 130)
        sys.unraisablehook = self.previous
        if self.previous_sigint is not None:
            signal.signal(signal.SIGINT, self.previous_sigint)
        INTERRUPT_REQUESTED.clear()

    def _on_sigint(self, signum: int, frame: Any) -> None:
        """Ctrl-C: remember it (a library that swallows the exception cannot lose it: no new file is started, see
        :data:`interp.export.INTERRUPT_REQUESTED`), then raise it as Python would."""
        INTERRUPT_REQUESTED.set()
        raise KeyboardInterrupt

    def _hook(self, unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            INTERRUPT_REQUESTED.set()
            # from another thread, once this callback has returned: raised here it would be swallowed again (and
            # if it is swallowed anyway, this hook runs again and tries again)
            threading.Thread(target=_interrupt_main_soon, args=(self.done,), daemon=True).start()
            return
        self.previous(unraisable)


def _interrupt_main_soon(done: threading.Event, delay_s: float = 0.05) -> None:
    """Interrupt the main thread after ``delay_s``, unless the command has finished meanwhile."""
    if not done.wait(delay_s):
        _thread.interrupt_main()


def _one_line_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None):
    """Warnings on the command line: ``interp: warning: ...`` in one line (no file name, no source line)."""
    print(f"interp: warning: {' '.join(str(message).split())}", file=sys.stderr if file is None else file)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``interp`` command; returns the exit status (0, 2 for bad input, 130 for Ctrl-C)."""
    with _CtrlCNotLost(), warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _main(argv)


def entry() -> typing.NoReturn:
    """The ``interp`` console command (and ``python -m interp``): :func:`main`, then exit without tearing the
    interpreter down. Tearing down the module graph of torch, TransformerLens and transformers takes ~2 s on the
    2-core machine after every command (measured: ``import torch, transformer_lens`` then exit, 7.3 s vs 5.3 s);
    exit handlers still run first (the PNG browser is stopped) and the standard streams are flushed. Every output
    file is written atomically and closed before :func:`main` returns. Under a profiler or tracer (``python -m
    cProfile``, coverage) the normal exit is kept, so that the tool can write what it recorded."""
    code = main()
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(join_dash_values(sys.argv[1:] if argv is None else argv, parser))
        args.func(args)
    except CliError as err:
        print(f"interp: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except DiskFull as err:
        print(f"interp: error: {err}", file=sys.stderr)
        return EXIT_DISK_FULL
    except (ValueError, WeightsNotFoundError) as err:  # a library check without a flag mapping: still one line
        print(f"interp: error: {' '.join(str(err).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        pass
    else:
        if not INTERRUPT_REQUESTED.is_set():
            return 0
    _close_progress_bars()  # the traceback is gone: a bar's last redraw comes before our line, not after
    print(f"\ninterp: {INTERRUPTED}", file=sys.stderr)
    return EXIT_INTERRUPTED


def _close_progress_bars() -> None:

    gc.collect()
    tqdm_module = sys.modules.get("tqdm.std")
    for bar in list(getattr(getattr(tqdm_module, "tqdm", None), "_instances", ())):
        bar.close()


if __name__ == "__main__":  # pragma: no cover
    entry()
