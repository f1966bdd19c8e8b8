"""A folder written as one set: its files are written beside it, then swapped into place in one step.

:func:`one_set` yields a staging folder next to the target (``.name.new-XXXX``) that starts as hard links to the
target's files, so a file the run leaves unchanged stays the very same file (git sees no change) and the target
itself is never written. When the block ends the staging folder takes the target's place: Linux exchanges the two
names in one ``renameat2(RENAME_EXCHANGE)``; elsewhere the old folder is renamed aside first and the next
:func:`one_set` (or :func:`recover`) puts it back if the process died in between. When the block raises (Ctrl-C
included) the staging folder is removed and the target is left as it was: a reader of the target always sees one
run's files, never a mix of two runs.

Inside :func:`interp.export.pngs_in_background` the swap waits for the PNGs the block handed to the background
thread (it runs in that thread, after them), and the PNGs kept from the previous run beside a figure that changed
(no browser to redraw them: a PNG is never deleted) are listed by :func:`stale_pngs`.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> with one_set(root / "study") as staging:
...     _ = (staging / "numbers.json").write_text("{}")
>>> sorted(p.name for p in root.iterdir())
['study']
"""

from __future__ import annotations

import ctypes
import filecmp
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from interp.export import _umask, after_pngs

_stale_lock = threading.Lock()
_stale: list[str] = []


@contextmanager
def one_set(target: str | Path) -> Iterator[Path]:
    """Yield a staging folder for ``target``'s new files; swap it into place when the block ends without error.

    The staging folder starts with hard links to (or copies of) ``target``'s files; write every file there by
    replacing it, as every writer of :mod:`interp.export` does (a file written in place would change the previous
    run's copy too). On an error the staging folder is dropped and ``target`` keeps the previous run's files, whole.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} is a file, not a folder; give another --out or move the file")
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.new-"))
    try:
        os.chmod(staging, 0o777 & ~_umask())
        if target.is_dir():
            _link_tree(target, staging)
        yield staging
    except BaseException:
        after_pngs(lambda: _remove(staging), otherwise=lambda: _remove(staging))  # after any PNG still drawn in it
        raise
    after_pngs(lambda: _swap_in(staging, target), otherwise=lambda: _remove(staging))


def recover(target: str | Path) -> None:
    """Put a folder renamed aside by an interrupted swap (``.name.old-XXXX``) back in place when ``target`` is
    missing (only where the swap is not one exchange; a no-op otherwise)."""
    target = Path(target)
    if target.exists() or not target.parent.is_dir():
        return
    aside = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if aside:
        os.rename(aside[-1], target)


def stale_pngs(clear: bool = False) -> list[str]:
    """PNGs kept from a previous run beside a figure that changed (swapped in since the last ``clear``)."""
    with _stale_lock:
        found = list(_stale)
        if clear:
            _stale.clear()
    return found


def _link_tree(source: Path, dest: Path) -> None:
    for entry in source.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, dest / entry.name, copy_function=_link_or_copy, symlinks=True)
        else:
            _link_or_copy(entry, dest / entry.name)


def _link_or_copy(source: str | Path, dest: str | Path) -> None:
    try:
        os.link(source, dest, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, dest, follow_symlinks=False)


def _swap_in(staging: Path, target: Path) -> None:
    _note_stale_pngs(staging, target)
    if not target.exists():
        os.rename(staging, target)
    elif _exchange(staging, target):
        _remove(staging)  # now the previous run's folder
    else:  # two steps: recover() puts the old folder back if the process dies between them
        aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:12]}")
        os.rename(target, aside)
        os.rename(staging, target)
        _remove(aside)


def _note_stale_pngs(staging: Path, target: Path) -> None:
    """A PNG still the previous run's file (same inode) beside an HTML that this run rewrote shows old numbers."""
    if not target.is_dir():
        return
    for html in staging.glob("*.html"):
        png, old_html, old_png = html.with_suffix(".png"), target / html.name, target / f"{html.stem}.png"
        if not _same_file(html, old_html) and _same_file(png, old_png):
            with _stale_lock:
                _stale.append(str(target / png.name))


def _same_file(a: Path, b: Path) -> bool:
    """Both exist and are one file (a hard link), or equal byte for byte (a copy, where links are not possible)."""
    if not (a.is_file() and b.is_file()):
        return False
    return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2``); ``False`` where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
