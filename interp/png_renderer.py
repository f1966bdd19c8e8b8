"""The PNG renderer process (``python -m interp.png_renderer``), started and owned by :mod:`interp.png`.

It opens kaleido's headless browser once, says ``{"ready": true, "browser_pid": ...}`` (or ``{"ready": false,
"error": ...}`` and exits 1), then answers requests on its standard input until that closes:

    request:  one JSON line {"nbytes": N, "width": W, "height": H, "scale": S}, then N bytes of plotly figure JSON
    answer:   one JSON line {"ok": true, "nbytes": M}, then M bytes of PNG; or {"ok": false, "error": "..."}

The browser lives in this process, not in the caller's: a browser that cannot start, crashes or hangs costs the
caller at most its timeout (it kills this process's group and the browser's), never a lock held forever. When the
caller dies without closing the pipe, a watchdog notices (the parent process changed) and ends the browser and this
process, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from typing import BinaryIO

_renderer = None  # the kaleido renderer, once made: its browser process is ``_renderer.subprocess``


def _send(out: BinaryIO, header: dict, body: bytes = b"") -> None:
    out.write(json.dumps(header).encode() + b"\n" + body)
    out.flush()


def _read_exact(inp: BinaryIO, n: int) -> bytes:
    data = inp.read(n)
    if data is None or len(data) != n:
        raise EOFError("request body cut short")
    return data


def _first_line(err: BaseException) -> str:
    """``"Type: first line of the message"`` (kaleido's errors carry a tuple of sentences: the first one)."""
    text = err.args[0] if err.args and isinstance(err.args[0], str) else str(err)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0][:200] if lines else '(no message)'}"


def _browser_pid() -> int | None:
    return getattr(getattr(_renderer, "subprocess", None), "pid", None)


def _kill_browser() -> None:
    """End the browser's whole session (its helper processes too): choreographer starts it as a session leader."""
    pid = _browser_pid()
    if pid is not None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def _on_sigterm(signum: int, frame: object) -> None:
    """The caller gave up on us (a timeout, Ctrl-C, exit): end the browser, even one still starting, then exit."""
    _kill_browser()
    os._exit(4)


def _exit_when_orphaned(parent: int, poll_s: float = 0.5) -> None:
    """The caller died without closing the pipe (killed): end the browser and this process."""
    while os.getppid() == parent:
        time.sleep(poll_s)
    _kill_browser()
    os._exit(3)


async def _serve(inp: BinaryIO, out: BinaryIO) -> int:
    global _renderer
    loop = asyncio.get_running_loop()
    try:
        import kaleido

        renderer = _renderer = kaleido.Kaleido(n=1, timeout=None, mathjax=False)  # no MathJax: it needs a CDN
        await renderer.open()
    except Exception as err:  # noqa: BLE001 - every start failure is reported the same way
        _send(out, {"ready": False, "error": _first_line(err)})
        return 1
    try:
        _send(out, {"ready": True, "browser_pid": _browser_pid()})
        while True:
            line = await loop.run_in_executor(None, inp.readline)
            if not line:
                return 0
            request = json.loads(line)
            body = await loop.run_in_executor(None, _read_exact, inp, int(request["nbytes"]))
            opts = {"format": "png", "width": request["width"], "height": request["height"]}
            opts["scale"] = request["scale"]
            try:
                png = await renderer.calc_fig(json.loads(body), opts=opts)
            except Exception as err:  # noqa: BLE001 - reported to the caller, which decides
                _send(out, {"ok": False, "error": _first_line(err)})
                continue
            _send(out, {"ok": True, "nbytes": len(png)}, png)
    finally:
        try:
            await asyncio.wait_for(renderer.close(), timeout=10)
        except BaseException:  # noqa: BLE001 - a browser that will not close is killed below
            pass
        _kill_browser()


def main() -> int:
    """Serve render requests on stdin/stdout; returns the exit status."""
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a library's stray print must not corrupt the protocol
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller decides when this process ends
    signal.signal(signal.SIGTERM, _on_sigterm)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    try:
        return asyncio.run(_serve(sys.stdin.buffer, protocol_out))
    finally:
        _kill_browser()


if __name__ == "__main__":  # pragma: no cover - run as a child process by interp.png
    sys.exit(main())
