"""Atomic writing of JSON, HTML and PNG outputs.

Every file is written to a temporary name in its target folder and renamed into place, so an
interrupted run never leaves a half-written file; files get the usual ``0o666 & ~umask`` mode (a study's folder is
written as one set on top of this: :mod:`interp.atomic_folder`). Static PNG export (:mod:`interp.png`) needs a
Chromium; when none can be used the run goes on in HTML-only mode and says so once with the reason (never a crash or
a hang). A PNG is never deleted: one that could not be redrawn for a changed figure stays, and the study writer names
it (:func:`interp.atomic_folder.stale_pngs`).

Reruns are a no-op for git: floats in JSON are rounded to :data:`JSON_SIGNIFICANT_DIGITS` significant digits,
and a JSON or HTML file whose new text differs from the existing one only by float noise (every number within
:data:`NOISE_TOLERANCE`, everything else identical) is left untouched, together with its PNG.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from interp.png import abort_png, allow_png, png_status, render_png

#: Floats written by :func:`write_json` keep this many significant digits (far above any reported precision,
#: far below the ~1e-8 noise another CPU or thread count adds).
JSON_SIGNIFICANT_DIGITS = 10
#: Two numbers differ only by float noise when ``|a - b| <= max(NOISE_TOLERANCE, NOISE_TOLERANCE * max(|a|, |b|))``:
#: the tolerance of the golden tests (``tests/golden.py``), since another CPU changes committed numbers by up to
#: ~2e-6 (measured on mixture_sweep); far below the 3 decimals reported and any CI width.
NOISE_TOLERANCE = 1e-5


def package_version() -> str:
    """The installed version of this package, recorded with every output (``"unknown"`` when run from a bare source
    tree)."""
    try:
        return importlib_metadata.version("interp-superposition")
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover - source tree without install
        return "unknown"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on error removed.

    For writers that want a file name (``DataFrame.to_csv``, ``safetensors.save_file``, ``torch.save``). The
    file gets mode ``0o666 & ~umask``, as ``open()`` would give it (``mkstemp`` alone gives 0600). Once
    :data:`INTERRUPT_REQUESTED` is set (the CLI's Ctrl-C handler sets it), no new file is started: a Ctrl-C that a
    library swallowed still stops the run at its next output.
    """
    if INTERRUPT_REQUESTED.is_set():
        raise KeyboardInterrupt
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


#: Set by the command line's Ctrl-C handler; checked before every output file (see :func:`atomic_path`).
INTERRUPT_REQUESTED = threading.Event()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


#: Fields that change on every run (wall-clock seconds): ignored when deciding whether a result file changed.
_VOLATILE = re.compile(r'("runtime_s":\s*)' + _NUMBER.pattern)


def same_up_to_float_noise(old: str, new: str, tol: float = NOISE_TOLERANCE) -> bool:
    """Whether two texts are identical except for numbers that differ by at most ``tol`` (absolute or relative).

    >>> same_up_to_float_noise('{"p": 0.12345678901}', '{"p": 0.123457}')
    True
    >>> same_up_to_float_noise('{"p": 0.1}', '{"p": 0.2}'), same_up_to_float_noise('{"a": 1}', '{"b": 1}')
    (False, False)
    >>> same_up_to_float_noise('{"runtime_s": 18.3, "p": 1}', '{"runtime_s": 19.4, "p": 1}')  # wall time: volatile
    True
    """
    old, new = (_VOLATILE.sub(r"\1", text) for text in (old, new))
    old_parts, new_parts = _NUMBER.split(old), _NUMBER.split(new)
    if old_parts != new_parts:
        return False
    for a, b in zip(_NUMBER.findall(old), _NUMBER.findall(new), strict=True):
        if a != b:
            x, y = float(a), float(b)
            if not abs(x - y) <= max(tol, tol * max(abs(x), abs(y))):
                return False
    return True


def write_text_if_changed(path: str | Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically unless the file already holds it up to float noise.

    Returns whether the file was (re)written: a rerun that only changes the last bits of floats leaves the
    committed file as it was.
    """
    path = Path(path)
    try:
        old = path.read_text()
    except (OSError, UnicodeDecodeError):
        old = None
    if old is not None and same_up_to_float_noise(old, text):
        return False
    atomic_write_bytes(path, text.encode())
    return True


def round_floats(obj: Any, digits: int = JSON_SIGNIFICANT_DIGITS) -> Any:
    """``obj`` with every finite float rounded to ``digits`` significant digits (dicts, lists, tuples).

    >>> round_floats({"p": [0.123456789012345, 2.0, 1e-20, float("nan")]}, 4)
    {'p': [0.1235, 2.0, 1e-20, nan]}
    """
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {k: round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [round_floats(v, digits) for v in obj]
    return obj


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically, floats rounded to :data:`JSON_SIGNIFICANT_DIGITS` digits.

    An existing file equal up to float noise (see :func:`same_up_to_float_noise`) is left as it is.
    """
    write_text_if_changed(path, json.dumps(round_floats(obj), indent=2, sort_keys=False) + "\n")
    return Path(path)


def check_output_dir(path: str | Path, flag: str = "--out") -> Path:
    """Check, cheaply and before any compute, that ``path`` is (or can be made) a writable directory.

    Creates nothing that stays: the nearest existing ancestor must be a directory in which a probe directory
    can be made (and is removed at once). Raises ``ValueError`` starting with ``flag`` otherwise.

    >>> import tempfile; check_output_dir(tempfile.gettempdir() + "/interp-new/figs").name
    'figs'
    """
    if not str(path).strip():  # Path("") is "." : an empty --out would write into the current directory
        raise ValueError(f"{flag}: empty path; give a directory, e.g. {flag} figures")
    path = Path(path).expanduser()
    probe_in = path
    while not probe_in.exists() and not probe_in.is_symlink():
        if probe_in.parent == probe_in:
            break
        probe_in = probe_in.parent
    if probe_in.exists() and not probe_in.is_dir():
        what = "is a file" if probe_in == path else f"cannot be created: {probe_in} is a file"
        raise ValueError(f"{flag}: {path} {what}, not a directory; give a directory path")
    if not probe_in.exists():
        raise ValueError(f"{flag}: {path} cannot be created: {probe_in} is a broken link")
    try:
        os.rmdir(tempfile.mkdtemp(dir=probe_in, prefix=".interp-write-probe."))
    except OSError as err:
        where = "is not writable" if probe_in == path else f"cannot be created in {probe_in}"
        raise ValueError(f"{flag}: {path} {where} ({err.strerror or type(err).__name__})") from None
    return path


def figure_png_bytes(fig, *, width: int = 900, height: int = 560, scale: float = 2.0) -> bytes | None:
    """PNG bytes of ``fig``, or ``None`` when PNG export is off (no usable browser: said once, see
    :func:`interp.png.png_status`). Waits at most :func:`interp.png.timeout_s` for the browser to start and as long
    again for the image."""
    import plotly.io as pio

    if png_status() is not None:
        return None
    return render_png(pio.to_json(fig, validate=False), width=width, height=height, scale=scale)


PLOTLY_JS = "plotly.min.js"


def ensure_plotly_js(folder: str | Path) -> Path:
    """Copy plotly.js (shipped inside the plotly package) into ``folder`` once, for offline HTML figures."""
    from plotly.offline import get_plotlyjs

    path = Path(folder) / PLOTLY_JS
    if not path.is_file():
        atomic_write_bytes(path, get_plotlyjs().encode())
    return path


def write_figure(
    fig, base: str | Path, *, png: bool = True, html: bool = True, width: int = 900, height: int = 560
) -> dict[str, str | None]:
    """Write ``base.html`` (interactive) and ``base.png``; returns the paths written (or kept).

    The HTML loads plotly.js from ``../plotly.min.js`` (written once beside the study folders), so figures
    work offline without repeating 4.6 MB of JavaScript in each. When the HTML is unchanged up to float noise
    it is kept, and so is an existing PNG (no re-render). When the figure changed and no PNG can be made (no
    browser), ``"png"`` is ``None`` and an old ``base.png`` is left as it is: a PNG is never deleted (without a
    browser it could not be drawn again); :func:`interp.atomic_folder.one_set` names it as out of date.
    """
    base = Path(base)
    out: dict[str, str | None] = {"html": None, "png": None}
    png_path = base.with_suffix(".png")
    changed = True
    if html:
        ensure_plotly_js(base.parent.parent)
        text = fig.to_html(include_plotlyjs=f"../{PLOTLY_JS}", full_html=True, div_id=base.name)
        changed = write_text_if_changed(base.with_suffix(".html"), text)
        out["html"] = str(base.with_suffix(".html"))
    if not png:
        return out
    if not changed and png_path.is_file():  # the figure did not change: its PNG still shows it
        out["png"] = str(png_path)
    elif png_status() is not None:  # PNG export is off: nothing drawn, an old PNG kept (never deleted)
        pass
    elif _background is not None:  # inside pngs_in_background(): rendered while the caller goes on
        out["png"] = str(png_path)

        def draw() -> str | None:
            out.update(png=_write_png(fig, png_path, width, height))
            return out["png"]

        _background.pngs.append(_background.executor.submit(draw))
    else:
        out["png"] = _write_png(fig, png_path, width, height)
    return out


def _write_png(fig, png_path: Path, width: int, height: int) -> str | None:
    """Render and write ``png_path`` atomically; returns the path written, or ``None`` without a usable browser (an
    old PNG is then left as it is)."""
    data = figure_png_bytes(fig, width=width, height=height)
    return None if data is None else str(atomic_write_bytes(png_path, data))


@dataclass
class _Background:
    """Inside :func:`pngs_in_background`: the one PNG thread, the PNGs handed to it, and the jobs queued behind them
    with what to do instead if the block fails first (:func:`after_pngs`)."""

    executor: ThreadPoolExecutor
    pngs: list[Future] = field(default_factory=list)
    jobs: list[tuple[Future, Callable[[], None]]] = field(default_factory=list)


_background: _Background | None = None


def after_pngs(job: Callable[[], None], *, otherwise: Callable[[], None]) -> None:
    """Run ``job`` once every PNG handed to the background so far is written: inside :func:`pngs_in_background` in
    the PNG thread right after them, elsewhere at once. When the block fails before ``job`` ran (or ``job`` itself
    fails), ``otherwise`` runs instead, after the PNG thread has stopped (e.g. swap a study folder into place, or
    drop it)."""
    if _background is None:
        job()
        return
    _background.jobs.append((_background.executor.submit(job), otherwise))


def _run_otherwise(jobs: list[tuple[Future, Callable[[], None]]]) -> None:
    for future, otherwise in jobs:
        if future.cancelled() or future.exception() is not None:
            otherwise()


@contextmanager
def pngs_in_background() -> Iterator[None]:
    """Inside this block, :func:`write_figure` hands each PNG to one background thread and returns at once: the
    headless browser renders while the caller computes the next figure. Leaving the block waits for every PNG (and
    the jobs queued behind them, :func:`after_pngs`) and raises the first error one met; on an error in the block
    itself, PNGs not yet started are dropped, and so are the jobs (their ``otherwise`` runs). The ``"png"`` path
    ``write_figure`` returned is where the image will be; its dict is set to ``None`` if none could be made (with
    the usual warning).

    >>> with pngs_in_background():                              # doctest: +SKIP
    ...     paths = write_figure(fig, "figures/demo/curve")
    """
    global _background
    previous = _background
    background = _background = _Background(ThreadPoolExecutor(max_workers=1, thread_name_prefix="interp-png"))
    allow_png()
    try:
        yield
        background.executor.shutdown(wait=True)  # every wait on the browser has a timeout, so this ends
    except BaseException:
        background.executor.shutdown(wait=False, cancel_futures=True)  # queued PNGs and jobs never start...
        abort_png()  # ...the one being drawn fails at once, and no new browser starts (Ctrl-C must not wait)
        background.executor.shutdown(wait=True)
        _run_otherwise(background.jobs)
        raise
    finally:
        _background = previous
    _run_otherwise(background.jobs)
    for future in [*background.pngs, *(job for job, _ in background.jobs)]:
        future.result()
