"""Static PNG export that can neither hang nor leave a process behind.

Plotly's kaleido draws PNGs in a headless Chromium. A fresh machine has none, and a browser can also crash or hang
mid-run. So:

- :func:`png_preflight` looks for a browser without starting one (``BROWSER_PATH``, kaleido's own download, then
  the usual names and places) and says, before any figure is computed, why PNGs will be skipped;
- the browser runs in a separate renderer process (:mod:`interp.png_renderer`) that this module owns: every wait
  on it has a timeout (:data:`TIMEOUT_ENV`, default :data:`DEFAULT_TIMEOUT_S` seconds), and on a failure, a timeout
  or Ctrl-C it is killed with its browser, PNG export turns off for the rest of the process with one reason
  (:func:`png_status`), and the caller goes on with HTML and JSON;
- the renderer is closed at exit (and ends itself if this process is killed).

>>> from interp.png import png_preflight
>>> reason = png_preflight()   # None: a browser was found; otherwise the one line to show the user
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from typing import Any

#: The fix, named in the one line that says PNGs were skipped.
PNG_HELP = "for PNGs install a Chromium (Debian, as root: `make png-deps`) or set BROWSER_PATH to one"
#: Environment variable: seconds to wait for the browser to start, and for each PNG (default below).
TIMEOUT_ENV = "INTERP_PNG_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 60.0
#: Environment variable: set to ``0`` to turn PNG export off (``INTERP_PNG=0 interp figures``).
SWITCH_ENV = "INTERP_PNG"


class PngSkipped(RuntimeWarning):
    """PNG export turned off (the message says why and how to get PNGs); warned once per process."""


_state_lock = threading.Lock()  # guards the module state below (held only briefly, never across a wait)
_render_lock = threading.Lock()  # one request at a time on the renderer's pipe
_disabled_reason: str | None = None
_renderer: _Renderer | None = None
_browser: str | None = None  # found by png_preflight, searched once per process (reset_png_state searches again)
_closing = threading.Event()  # set by abort_png: no new renderer starts until the next reset or begin_png_block


def timeout_s() -> float:
    """Seconds any one wait on the browser may take (:data:`TIMEOUT_ENV`, default :data:`DEFAULT_TIMEOUT_S`)."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds > 0") from None
    if not value > 0:
        raise ValueError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds > 0")
    return value


def find_browser() -> tuple[str | None, str]:
    """``(path, "")`` of the browser kaleido would use, or ``(None, why none is usable)``; starts nothing.

    ``BROWSER_PATH`` wins when set (it must be an executable file); then kaleido's own download and the usual
    names on ``PATH`` and install places (choreographer's search, the one kaleido itself runs).
    """
    given = os.environ.get("BROWSER_PATH")
    if given:
        if os.path.isfile(given) and os.access(given, os.X_OK):
            return given, ""
        return None, f"BROWSER_PATH={given!r} is not an executable file"
    try:
        from choreographer.browsers.chromium import Chromium

        found = Chromium.find_browser(skip_local=False)
    except Exception as err:  # noqa: BLE001 - a broken optional dependency means no PNGs, not a crash
        return None, f"could not search for a browser ({type(err).__name__}: {err})"
    if found:
        return str(found), ""
    return None, "no Chromium found (looked at BROWSER_PATH, kaleido's download, PATH and the usual places)"


def png_status() -> str | None:
    """Why PNG export is off in this process (one line), or ``None`` while it is on (or untried)."""
    return _disabled_reason


def disable_png(reason: str, *, warn: bool = True, fix: bool = True) -> None:
    """Turn PNG export off for the rest of the process with ``reason`` (the first reason is kept); ``warn``: say it
    once as a ``RuntimeWarning`` (the command line prints :func:`png_status` instead); ``fix``: name how to get PNGs."""
    global _disabled_reason
    with _state_lock:
        if _disabled_reason is not None:
            return
        _disabled_reason = f"PNG export skipped, HTML and JSON written: {reason}" + (f"; {PNG_HELP}" if fix else "")
    if warn:
        warnings.warn(_disabled_reason, PngSkipped, stacklevel=3)


def reset_png_state() -> None:
    """Forget an earlier failure and close the renderer: the next PNG looks for a browser again (tests, notebooks
    after installing a browser)."""
    global _disabled_reason, _browser
    close_renderer()
    with _state_lock:
        _disabled_reason = None
        _browser = None
    _closing.clear()


def abort_png() -> None:
    """Stop drawing now (Ctrl-C, an error in the caller's block): close the renderer and start no new one until
    :func:`allow_png` (a queued PNG then returns ``None`` at once instead of starting a fresh browser)."""
    _closing.set()
    close_renderer(grace_s=0)


def allow_png() -> None:
    """Undo :func:`abort_png` (the start of the next block of PNGs)."""
    _closing.clear()


def png_preflight() -> str | None:
    """Check, cheaply and before any study runs, that PNGs can be made; returns :func:`png_status`.

    Turns PNG export off (without a warning: the caller prints the returned line) when ``INTERP_PNG=0`` or no
    browser is found. Does not start the browser (see :func:`warm_png_export`). A bad :data:`TIMEOUT_ENV` is refused
    here, before any study runs (``ValueError``).
    """
    global _browser
    if _disabled_reason is None:
        if os.environ.get(SWITCH_ENV, "1").strip() in ("0", "off", "false", "no"):
            disable_png(f"{SWITCH_ENV}={os.environ[SWITCH_ENV]}", warn=False, fix=False)
        elif _browser is None:
            timeout_s()
            path, why = find_browser()
            if path is None:
                disable_png(why, warn=False)
            _browser = path
    return _disabled_reason


def warm_png_export() -> bool:
    """Start the renderer and its browser now, without waiting for them, so that the first PNG does not pay the
    browser's start while the caller computes. Returns whether a renderer is (being) started.

    >>> warm_png_export()  # doctest: +SKIP
    True
    """
    if png_preflight() is not None:
        return False
    try:
        _get_renderer()
    except _RenderError as err:
        disable_png(str(err))
        return False
    return True


def render_png(fig_json: str, *, width: int, height: int, scale: float) -> bytes | None:
    """PNG bytes of a plotly figure given as JSON, or ``None`` when PNG export is (or just turned) off.

    Waits at most :func:`timeout_s` for the browser to start and as long again for the image (one deadline for the
    request and its answer); a failure turns PNG export off with its reason (a ``RuntimeWarning``, once). A
    ``KeyboardInterrupt`` kills the renderer and is raised again. After :func:`abort_png`, returns ``None`` at once.
    """
    if png_preflight() is not None or _closing.is_set():
        return None
    if not _render_lock.acquire(timeout=2 * timeout_s() + 10):  # the holder's waits all time out before this
        disable_png("another PNG request did not finish")
        return None
    try:
        if _disabled_reason is not None or _closing.is_set():  # another thread failed, or the caller aborted
            return None
        renderer = None
        try:
            renderer = _get_renderer()
            return renderer.render(fig_json, width=width, height=height, scale=scale)
        except _RenderError as err:
            if renderer is not None and renderer.closed:  # closed by another thread (Ctrl-C): not a PNG failure
                return None
            close_renderer(grace_s=0)  # it failed: no orderly goodbye
            disable_png(str(err))
            return None
        except BaseException:
            close_renderer(grace_s=0)  # Ctrl-C mid-request: the pipe's state is unknown
            raise
    finally:
        _render_lock.release()


def close_renderer(grace_s: float = 5.0) -> None:
    """Close the renderer (and its browser): ask it to stop, then kill what is left after ``grace_s``. Safe from
    any thread, also while another thread waits on the renderer (its wait ends at once)."""
    global _renderer
    with _state_lock:
        renderer, _renderer = _renderer, None
    if renderer is not None:
        renderer.close(grace_s)


atexit.register(close_renderer)


class _RenderError(RuntimeError):
    """The renderer failed, timed out or died (the message says which, in one line)."""


def _get_renderer() -> _Renderer:
    global _renderer
    with _state_lock:
        if _renderer is None:
            path, why = find_browser()
            if path is None:
                raise _RenderError(why)
            _renderer = _Renderer(path)
        return _renderer


class _Renderer:
    """One renderer process (:mod:`interp.png_renderer`) and its browser; requests are sent one at a time."""

    def __init__(self, browser: str) -> None:
        self.browser = browser
        self.browser_pid: int | None = None
        self.ready = False
        self.stderr = tempfile.TemporaryFile()
        env = dict(os.environ, BROWSER_PATH=browser, PYTHONUNBUFFERED="1")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "interp.png_renderer"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
                env=env,
                start_new_session=True,  # its own group: a terminal's Ctrl-C reaches us, and we end it
            )
        except OSError as err:
            raise _RenderError(f"could not start the PNG renderer: {err}") from None
        self.closed = False

    def render(self, fig_json: str, *, width: int, height: int, scale: float) -> bytes:
        if not self.ready:
            hello = self._read_header(f"the browser ({self.browser}) did not start", time.monotonic() + timeout_s())
            if not hello.get("ready"):
                raise _RenderError(f"the browser ({self.browser}) did not start: {hello.get('error')}")
            self.browser_pid = hello.get("browser_pid")
            self.ready = True
        body = fig_json.encode()
        header = {"nbytes": len(body), "width": width, "height": height, "scale": scale}
        try:
            self.process.stdin.write(json.dumps(header).encode() + b"\n" + body)
            self.process.stdin.flush()
        except (OSError, ValueError):
            raise _RenderError(self._died("while sending a figure")) from None
        deadline = time.monotonic() + timeout_s()  # one deadline for the answer's header and body
        answer = self._read_header("no PNG came back", deadline)
        if not answer.get("ok"):
            raise _RenderError(f"the browser failed to draw a figure: {answer.get('error')}")
        return self._read_exact(int(answer["nbytes"]), deadline, "the PNG came back cut short")

    def _read_header(self, what: str, deadline: float) -> dict[str, Any]:
        line = b""
        while not line.endswith(b"\n"):
            line += self._read_some(1, deadline, what)
        try:
            return json.loads(line)
        except ValueError:
            raise _RenderError(f"{what}: the renderer answered {line[:80]!r}") from None

    def _read_exact(self, n: int, deadline: float, what: str) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunk = self._read_some(min(n - got, 1 << 20), deadline, what)
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _read_some(self, n: int, deadline: float, what: str) -> bytes:
        fd = self.process.stdout.fileno()
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise _RenderError(f"{what} within {timeout_s():g} s ({TIMEOUT_ENV} sets the limit)")
        data = os.read(fd, n)
        if not data:
            raise _RenderError(self._died(what))
        return data

    def _died(self, what: str) -> str:
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        last = self._stderr_tail()
        how = f"the renderer exited with status {code}" if code is not None else "the renderer closed its output"
        return f"{what}: {how}" + (f" ({last})" if last else "")

    def _stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self.stderr.seek(0)
            lines = [line.strip() for line in self.stderr.read().decode(errors="replace").splitlines() if line.strip()]
            return lines[-1][:200] if lines else ""
        return ""

    def close(self, grace_s: float) -> None:
        """Close stdin (the renderer closes its browser and exits), wait ``grace_s``; then SIGTERM (it kills its
        browser, even one still starting) and, after 2 s, SIGKILL both process groups."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError, ValueError):
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace_s)
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)
        for group in (self.process.pid, self.browser_pid):  # whatever did not end in time
            _kill_group(group)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)
        # the pipes and the stderr file are left to the garbage collector: another thread may still be reading them


def _kill_group(leader: int | None) -> None:
    """SIGKILL the process group led by ``leader`` (the renderer's, the browser's), if it still exists."""
    if leader is None:
        return
    try:
        if os.getpgid(leader) != leader:  # the leader is gone and its pid reused by someone else: leave it
            return
    except OSError:
        pass  # the leader exited; its group's other members (browser helpers) may still run
    with contextlib.suppress(OSError):
        os.killpg(leader, signal.SIGKILL)
