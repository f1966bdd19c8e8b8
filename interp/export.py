"""Atomic writing of JSON, HTML and PNG outputs.

Every file is written to a temporary name in its target folder and renamed into place, so an
interrupted run never leaves a half-written file. Static PNG export uses plotly's kaleido, which
needs a Chromium; when none can be found the run goes on in HTML-only mode and says so once (never a
crash at the end of a long run).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PNG_HELP = (
    "static PNG export needs a Chromium for kaleido (Debian: `apt-get install chromium`, or "
    "`make png-deps`); writing HTML and JSON only"
)
_png_disabled_reason: str | None = None


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on error removed.

    For writers that want a file name (``DataFrame.to_csv``, ``safetensors.save_file``, ``torch.save``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def _find_chromium() -> str | None:
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def figure_png_bytes(fig, *, width: int = 900, height: int = 560, scale: float = 2.0) -> bytes | None:
    """PNG bytes of ``fig`` via kaleido, or ``None`` (with one warning) when no browser is available."""
    global _png_disabled_reason
    if _png_disabled_reason is not None:
        return None
    chrome = _find_chromium()
    if chrome and not os.environ.get("BROWSER_PATH"):
        os.environ["BROWSER_PATH"] = chrome
    try:
        return fig.to_image(format="png", width=width, height=height, scale=scale)
    except Exception as err:  # noqa: BLE001 - kaleido raises many kinds when no browser is usable
        _png_disabled_reason = f"{PNG_HELP} ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
        warnings.warn(_png_disabled_reason, RuntimeWarning, stacklevel=2)
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
    """Write ``base.html`` (interactive) and ``base.png``; returns the paths written.

    The HTML loads plotly.js from ``../plotly.min.js`` (written once beside the study folders), so figures
    work offline without repeating 4.6 MB of JavaScript in each.
    """
    base = Path(base)
    out: dict[str, str | None] = {"html": None, "png": None}
    if html:
        ensure_plotly_js(base.parent.parent)
        text = fig.to_html(include_plotlyjs=f"../{PLOTLY_JS}", full_html=True, div_id=base.name)
        out["html"] = str(atomic_write_bytes(base.with_suffix(".html"), text.encode()))
    if png:
        data = figure_png_bytes(fig, width=width, height=height)
        if data is not None:
            out["png"] = str(atomic_write_bytes(base.with_suffix(".png"), data))
    return out


def png_status() -> str | None:
    """Why PNG export is off in this process, or ``None`` when it works (or was not tried)."""
    return _png_disabled_reason
