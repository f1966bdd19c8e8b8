"""PNG export on a fresh machine: no browser, a browser that crashes or hangs, Ctrl-C, a killed caller.

The command-line tests run the real ``interp figures`` in a subprocess under a hard timeout and check its exit
status, the one line that says PNGs were skipped, the files, and that no process of the run is left (found by a
marker in the environment, which the renderer and its browser inherit). "No browser" is simulated, where a
Chromium is installed, by making kaleido's own browser search find nothing (``tests/no_browser/sitecustomize.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

import plotly.graph_objects as go
import pytest
from time_limits import limit_s

import interp.export as export
import interp.png as png

HERE = Path(__file__).resolve().parents[1]  # tests/
SKIPPED = "PNG export skipped, HTML and JSON written"
HAS_CHROMIUM = png.find_browser()[0] is not None if "BROWSER_PATH" not in os.environ else False
needs_chromium = pytest.mark.skipif(not HAS_CHROMIUM, reason="needs a Chromium (Debian: apt-get install chromium)")


def fake_browser(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def live_processes_with(marker: str) -> list[str]:
    """Command lines of live (not zombie) processes whose environment holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() not in (proc / "environ").read_bytes():
                continue
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state != "Z":
            found.append(f"{proc.name} {cmd[:120]}")
    return found


def assert_nothing_left(marker: str, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s(within_s)
    while (left := live_processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes left behind: {left}"


def cli_env(marker: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BROWSER_PATH", png.SWITCH_ENV, png.TIMEOUT_ENV)}
    env.update(INTERP_TEST_MARKER=marker, **extra)
    return env


def start_figures(out: Path, env: dict[str, str], *studies: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "interp", "figures", *(studies or ("superposition_bars",)), "--quick"]
    return subprocess.Popen(
        [*cmd, "--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen, idle_s: float = 240) -> tuple[int, str]:
    """The command's exit status and output; it fails as hung after ``idle_s`` (on an idle machine; scaled)."""
    timeout = limit_s(idle_s)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the command hung (killed after {timeout} s); said:\n{out}\n{err}")
    return proc.returncode, out + err


def assert_html_and_json_only(out: Path, study: str = "superposition_bars") -> None:
    assert (out / study / f"{study}.html").is_file() and (out / study / f"{study}.json").is_file()
    assert not list(out.rglob("*.png")) and not list(out.rglob("*.tmp"))


def test_no_browser_says_so_once_before_the_studies_and_writes_html_and_json(tmp_path):
    marker = uuid.uuid4().hex
    env = cli_env(marker, PYTHONPATH=os.pathsep.join([str(HERE / "no_browser"), os.environ.get("PYTHONPATH", "")]))
    code, said = finish(start_figures(tmp_path, env))
    assert code == 0, said
    lines = [line for line in said.splitlines() if SKIPPED in line]
    assert len(lines) == 1 and "no Chromium found" in lines[0] and "make png-deps" in lines[0], said
    assert said.index(SKIPPED) < said.index("superposition_bars:")  # said before the study ran
    assert "Traceback" not in said and ".png" not in said
    assert_html_and_json_only(tmp_path)
    assert_nothing_left(marker)


@pytest.mark.parametrize(
    ("browser", "words"),
    [("echo 'no display' >&2; exit 1", "did not start"), ("exec sleep 600", "did not start within 3 s")],
    ids=["crashes-at-start", "hangs-at-start"],
)
def test_a_browser_that_crashes_or_hangs_costs_a_timeout_not_a_hang(tmp_path, browser, words):
    marker = uuid.uuid4().hex
    env = cli_env(marker, BROWSER_PATH=fake_browser(tmp_path, "browser", browser), INTERP_PNG_TIMEOUT_S="3")
    out = tmp_path / "out"
    code, said = finish(start_figures(out, env))
    assert code == 0, said
    lines = [line for line in said.splitlines() if SKIPPED in line]
    assert len(lines) == 1 and words in lines[0], said
    assert "Traceback" not in said and ".png" not in said
    assert_html_and_json_only(out)
    assert_nothing_left(marker)


def test_ctrl_c_while_the_browser_hangs_exits_at_once_and_leaves_nothing(tmp_path):
    """The study is computed and staged, its PNG waits on a browser that hangs (3000 s limit): Ctrl-C ends the run
    without waiting for the browser, and the study's set, not yet whole, is not swapped in."""
    marker = uuid.uuid4().hex
    hangs = fake_browser(tmp_path, "browser", "exec sleep 6000")
    env = cli_env(marker, BROWSER_PATH=hangs, INTERP_PNG_TIMEOUT_S="3000")
    out = tmp_path / "out"
    proc = start_figures(out, env)
    deadline = time.monotonic() + limit_s(120)
    while not list(out.glob(".superposition_bars.new-*/superposition_bars.json")):  # staged; its PNG waits
        assert proc.poll() is None and time.monotonic() < deadline, finish(proc)[1]
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    code, said = finish(proc, idle_s=120)  # far below the browser's limit: fails if it waited for the browser
    assert code == 130, said
    assert "interrupted" in said and "Traceback" not in said and SKIPPED not in said
    assert sorted(p.name for p in out.iterdir()) == ["plotly.min.js"]  # no half set, no staging folder
    assert_nothing_left(marker)


def test_a_killed_caller_takes_its_renderer_and_browser_with_it(tmp_path):
    """SIGKILL leaves no exit handler to run: the renderer notices that its parent is gone and ends the browser."""
    marker = uuid.uuid4().hex
    env = cli_env(marker, BROWSER_PATH=fake_browser(tmp_path, "browser", "exec sleep 600"), INTERP_PNG_TIMEOUT_S="300")
    proc = start_figures(tmp_path / "out", env)
    deadline = time.monotonic() + limit_s(120)
    while not any("sleep 600" in p for p in live_processes_with(marker)):  # the fake browser is up
        assert proc.poll() is None and time.monotonic() < deadline, finish(proc)[1]
        time.sleep(0.1)
    proc.kill()
    proc.communicate(timeout=limit_s(30))
    assert_nothing_left(marker)


@needs_chromium
def test_with_chromium_every_png_is_drawn_and_listed_and_the_browser_ends(tmp_path):
    marker = uuid.uuid4().hex
    code, said = finish(start_figures(tmp_path, cli_env(marker), "superposition_bars", "tasks_solved"))
    assert code == 0 and SKIPPED not in said, said
    for study in ("superposition_bars", "tasks_solved"):
        png_file = tmp_path / study / f"{study}.png"
        assert png_file.read_bytes().startswith(b"\x89PNG") and str(png_file) in said
    assert_nothing_left(marker)


@needs_chromium
def test_chromium_killed_mid_run_turns_pngs_off_once_and_the_run_finishes(tmp_path):
    marker = uuid.uuid4().hex
    proc = start_figures(tmp_path, cli_env(marker), "superposition_bars", "tasks_solved", "generation_collapse")
    first = tmp_path / "superposition_bars" / "superposition_bars.png"
    deadline = time.monotonic() + limit_s(180)
    while not first.is_file():
        assert proc.poll() is None and time.monotonic() < deadline, finish(proc)[1]
        time.sleep(0.05)
    for line in live_processes_with(marker):  # the browser dies; the renderer (a python process) lives on
        if "chrom" in line.split(" ", 2)[1]:
            os.kill(int(line.split()[0]), signal.SIGKILL)
    code, said = finish(proc)
    assert code == 0, said
    assert said.count(SKIPPED) <= 1 and "Traceback" not in said
    listed = [p for line in said.splitlines() if line.startswith("PNG: ") for p in line[5:].split(", ")]
    assert all(Path(p).is_file() for p in listed), said  # no PNG is reported that does not exist
    for study in ("tasks_solved", "generation_collapse"):
        assert (tmp_path / study / f"{study}.json").is_file()
    assert_nothing_left(marker)


def test_the_render_timeout_setting_is_checked(monkeypatch):
    for bad in ("0", "-1", "soon"):
        monkeypatch.setenv(png.TIMEOUT_ENV, bad)
        with pytest.raises(ValueError, match=f"^{png.TIMEOUT_ENV}=.*expected a number of seconds > 0"):
            png.timeout_s()
    monkeypatch.setenv(png.TIMEOUT_ENV, "2.5")
    assert png.timeout_s() == 2.5


def test_browser_path_that_is_not_a_program_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "nothing-here"))
    path, why = png.find_browser()
    assert path is None and why == f"BROWSER_PATH={str(tmp_path / 'nothing-here')!r} is not an executable file"


def test_in_a_library_call_a_failing_browser_warns_once_and_deletes_no_png(tmp_path, monkeypatch, png_on):
    monkeypatch.setenv("BROWSER_PATH", fake_browser(tmp_path, "browser", "exit 1"))
    base = tmp_path / "study" / "fig"
    base.parent.mkdir()
    base.with_suffix(".png").write_bytes(b"old image of old numbers")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = export.write_figure(go.Figure(go.Bar(y=[1, 2])), base)
        second = export.write_figure(go.Figure(go.Bar(y=[3, 4])), tmp_path / "study" / "fig2")
    reasons = [str(w.message) for w in caught if issubclass(w.category, png.PngSkipped)]
    assert len(reasons) == 1 and reasons[0] == png.png_status() and "did not start" in reasons[0], reasons
    assert first["png"] is None and second["png"] is None
    assert [p.name for p in tmp_path.rglob("*.png")] == ["fig.png"]  # issue 36: an existing PNG is never deleted
    assert png.warm_png_export() is False  # off for the rest of the process: nothing to warm


def test_switched_off_png_export_never_looks_for_a_browser(monkeypatch, png_on):
    monkeypatch.setenv(png.SWITCH_ENV, "0")
    monkeypatch.setattr(png, "find_browser", lambda: pytest.fail("looked for a browser"))
    assert png.png_preflight() == png.png_status() and f"{png.SWITCH_ENV}=0" in png.png_status()
    assert export.figure_png_bytes(go.Figure()) is None
