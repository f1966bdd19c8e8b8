"""Atomic writing of JSON, HTML and PNG outputs.

Every file is written to a temporary name in its target folder and renamed into place, so an
interrupted run never leaves a half-written file; files get the usual ``0o666 & ~umask`` mode. Static PNG
export uses plotly's kaleido, which needs a Chromium; when none can be found the run goes on in HTML-only
mode, says so once with the reason, and removes a PNG that would no longer match its HTML (never a crash at
the end of a long run).

Reruns are a no-op for git: floats in JSON are rounded to :data:`JSON_SIGNIFICANT_DIGITS` significant digits,
and a JSON or HTML file whose new text differs from the existing one only by float noise (every number within
:data:`NOISE_TOLERANCE`, everything else identical) is left untouched, together with its PNG.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PNG_HELP = (
    "static PNG export needs a Chromium for kaleido (Debian: `apt-get install chromium`, or "
    "`make png-deps`); writing HTML and JSON only"
)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
#: Floats written by :func:`write_json` keep this many significant digits (far above any reported precision,
#: far below the ~1e-8 noise another CPU or thread count adds).
JSON_SIGNIFICANT_DIGITS = 10
#: Two numbers differ only by float noise when ``|a - b| <= max(NOISE_TOLERANCE, NOISE_TOLERANCE * max(|a|, |b|))``:
#: the tolerance of the golden tests (``tests/golden.py``), since another CPU changes committed numbers by up to
#: ~2e-6 (measured on mixture_sweep); far below the 3 decimals reported and any CI width.
NOISE_TOLERANCE = 1e-5
_png_disabled_reason: str | None = None


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


def _find_chromium() -> str | None:
    import shutil

    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _png_failure_reason(err: BaseException, chrome: str | None) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    detail = lines[0][:160] if lines else "(no message)"
    if chrome is None and not os.environ.get("BROWSER_PATH"):
        return f"no Chromium found on PATH (looked for {', '.join(CHROMIUM_NAMES)}); kaleido said: {detail}"
    return f"kaleido failed with browser {os.environ.get('BROWSER_PATH') or chrome}: {type(err).__name__}: {detail}"


_browser_kept = False


def _keep_browser() -> None:
    """One headless browser for the whole process (kaleido's sync server), stopped at exit: the first PNG pays the
    browser's start, later ones take ~0.2 s instead of ~2 s each (measured on the 2-core machine)."""
    global _browser_kept
    if _browser_kept:
        return
    import kaleido

    kaleido.start_sync_server(silence_warnings=True)
    atexit.register(kaleido.stop_sync_server, silence_warnings=True)
    _browser_kept = True


def _point_kaleido_at_chromium() -> str | None:
    """The Chromium found on PATH (``None``: none), given to kaleido through ``BROWSER_PATH`` unless one is set."""
    chrome = _find_chromium()
    if chrome and not os.environ.get("BROWSER_PATH"):
        os.environ["BROWSER_PATH"] = chrome
    return chrome


_png_lock = threading.Lock()  # one PNG at a time: the warm-up thread and the studies share kaleido's server


def warm_png_export() -> threading.Thread | None:
    """Start the headless browser now, in a background thread (a throwaway 10-pixel render), so that the first real
    PNG does not wait ~2 s for it while the caller computes; returns the thread (``None`` when already warm or PNG
    export is off). A failure here is silent: the first real PNG meets it again and says why.

    >>> warm_png_export()  # doctest: +SKIP
    <Thread(interp-png-warm-up, started daemon ...)>
    """
    if _png_disabled_reason is not None or _browser_kept:
        return None

    def warm() -> None:
        with _png_lock:
            _point_kaleido_at_chromium()
            try:
                _keep_browser()
                import kaleido

                kaleido.calc_fig_sync({"data": [], "layout": {}}, opts={"format": "png", "width": 10, "height": 10})
            except Exception:  # noqa: BLE001 - reported by the first real PNG
                pass

    thread = threading.Thread(target=warm, name="interp-png-warm-up", daemon=True)
    thread.start()
    return thread


def figure_png_bytes(fig, *, width: int = 900, height: int = 560, scale: float = 2.0) -> bytes | None:
    """PNG bytes of ``fig`` via kaleido, or ``None`` when no browser is usable (one warning per process)."""
    with _png_lock:
        return _figure_png_bytes(fig, width, height, scale)


def _figure_png_bytes(fig, width: int, height: int, scale: float) -> bytes | None:
    global _png_disabled_reason
    if _png_disabled_reason is not None:
        return None
    chrome = _point_kaleido_at_chromium()
    try:
        _keep_browser()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The kopts argument is ignored")  # plotly's, with a server
            return fig.to_image(format="png", width=width, height=height, scale=scale)
    except Exception as err:  # noqa: BLE001 - kaleido raises many kinds when no browser is usable
        _png_disabled_reason = f"{PNG_HELP}: {_png_failure_reason(err, chrome)}"
        warnings.warn(_png_disabled_reason, RuntimeWarning, stacklevel=3)
        return None


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
    it is kept, and so is an existing PNG (no re-render); when the figure changed and no PNG can be made, an
    old ``base.png`` is removed so that no stale image sits beside the new numbers.
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
    if png and not changed and png_path.is_file():
        out["png"] = str(png_path)
    elif png and _background is not None:  # inside pngs_in_background(): rendered while the caller goes on
        out["png"] = str(png_path)
        _background[1].append(_background[0].submit(lambda: out.update(png=_write_png(fig, png_path, width, height))))
    elif png:
        out["png"] = _write_png(fig, png_path, width, height)
    return out


def _write_png(fig, png_path: Path, width: int, height: int) -> str | None:
    """Render and write ``png_path`` atomically; without a usable browser, remove an old one (it shows the previous
    numbers: better no image than a wrong one). Returns the path written, or ``None``."""
    data = figure_png_bytes(fig, width=width, height=height)
    if data is not None:
        return str(atomic_write_bytes(png_path, data))
    if png_path.is_file():
        png_path.unlink()
    return None


_background: tuple[Any, list] | None = None  # (one-thread executor, its futures) inside pngs_in_background()


@contextmanager
def pngs_in_background() -> Iterator[None]:
    """Inside this block, :func:`write_figure` hands each PNG to one background thread and returns at once: the
    headless browser renders while the caller computes the next figure. Leaving the block waits for every PNG and
    raises the first error one met (on an error in the block itself, PNGs not yet started are dropped). The
    ``"png"`` path ``write_figure`` returned is where the image will be; its dict is set to ``None`` if none could
    be made (with the usual warning).

    >>> with pngs_in_background():                              # doctest: +SKIP
    ...     paths = write_figure(fig, "figures/demo/curve")
    """
    global _background
    previous, executor = _background, ThreadPoolExecutor(max_workers=1, thread_name_prefix="interp-png")
    _background = (executor, [])
    futures = _background[1]
    try:
        yield
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        _background = previous
    executor.shutdown(wait=True)
    for future in futures:
        future.result()


def png_status() -> str | None:
    """Why PNG export is off in this process, or ``None`` when it works (or was not tried)."""
    return _png_disabled_reason
