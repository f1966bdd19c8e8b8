import json
import math
import os
import stat
from pathlib import Path

import plotly.graph_objects as go
import pytest

import interp.export as export
import interp.png as png


def test_atomic_json_leaves_no_temporary_files(tmp_path):
    export.write_json(tmp_path / "a.json", {"x": [1, 2]})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        export.write_json(tmp_path / "a.json", {"x": 1})
        export.atomic_write_bytes(tmp_path / "b.bin", b"\0")
        with export.atomic_path(tmp_path / "c.txt") as tmp:
            tmp.write_text("c")
    finally:
        os.umask(old)
    for name in ("a.json", "b.bin", "c.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


def test_unchanged_figure_keeps_its_html_and_png(tmp_path, png_off):
    """A rerun that changes nothing (up to float noise) rewrites nothing: git sees no change."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0.1234567891234, 0.5]))
    base = tmp_path / "study" / "fig"
    export.write_figure(fig, base)
    base.with_suffix(".png").write_bytes(b"png made where Chromium was available")
    html_inode = base.with_suffix(".html").stat().st_ino
    noisy = go.Figure(go.Scatter(x=[0, 1], y=[0.1234567891234 + 3e-8, 0.5]))
    paths = export.write_figure(noisy, base)
    assert base.with_suffix(".html").stat().st_ino == html_inode  # not replaced
    assert paths["png"] == str(base.with_suffix(".png")) and base.with_suffix(".png").read_bytes().startswith(b"png")
    paths = export.write_figure(go.Figure(go.Scatter(x=[0, 1], y=[0.2, 0.5])), base)  # a real change: new HTML
    assert base.with_suffix(".html").stat().st_ino != html_inode and paths["png"] is None
    assert base.with_suffix(".png").read_bytes().startswith(b"png")  # issue 36: never deleted (no browser to redraw)


def test_write_json_rounds_floats_and_skips_noise_only_rewrites(tmp_path):
    path = tmp_path / "n.json"
    export.write_json(path, {"p": [0.12345678901234567, 1 / 3, 2.0, 7], "s": "x", "nan": float("nan")})
    data = json.loads(path.read_text())
    assert data["p"] == [0.123456789, 0.3333333333, 2.0, 7] and data["s"] == "x" and math.isnan(data["nan"])
    inode = path.stat().st_ino
    export.write_json(path, {"p": [0.12345678901234567 + 2e-8, 1 / 3, 2.0, 7], "s": "x", "nan": float("nan")})
    assert path.stat().st_ino == inode  # float noise: the file is left as it was
    for changed in ({"p": [0.2, 1 / 3, 2.0, 7], "s": "x", "nan": 0.0}, {"p": [0.12345678901234567], "s": "y"}):
        export.write_json(path, changed)
        assert path.stat().st_ino != inode and json.loads(path.read_text())["p"][0] == round(changed["p"][0], 9)
        inode = path.stat().st_ino


@pytest.mark.parametrize(
    ("old", "new", "same"),
    [
        ('{"a": 0.5}', '{"a": 0.500002}', True),
        ('{"a": 0.5}', '{"a": 0.5001}', False),
        ('{"a": 1e-12}', '{"a": 3e-12}', True),  # both below the absolute tolerance
        ('{"a": 12345678.0}', '{"a": 12345679.0}', True),  # relative 8e-8
        ('{"a": 1.0}', '{"a": 1.0001}', False),
        ('{"a": 1}', '{"a": 1, "b": 2}', False),
        ('{"a": "x1"}', '{"a": "x2"}', False),  # numbers inside strings are numbers too, and differ by 1
        ("[1, 2]", "[1,2]", False),
    ],
)
def test_same_up_to_float_noise(old, new, same):
    assert export.same_up_to_float_noise(old, new) is same


def test_check_output_dir(tmp_path):
    (tmp_path / "file").write_text("x")
    assert export.check_output_dir(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    assert export.check_output_dir(tmp_path) == tmp_path
    for bad, words in [
        (tmp_path / "file", "is a file"),
        (tmp_path / "file" / "sub", "file is a file"),
        (Path("/proc/interp-forbidden"), "cannot be created in /proc"),
        ("", "empty path; give a directory"),
        ("  ", "empty path; give a directory"),
    ]:
        with pytest.raises(ValueError, match="^--out: .*" + words):
            export.check_output_dir(bad)
    with pytest.raises(ValueError, match="^out: "):
        export.check_output_dir(tmp_path / "file", flag="out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the probes left nothing


def test_pngs_in_background_are_all_written_when_the_block_ends(tmp_path, monkeypatch, png_on):
    """Inside the block write_figure returns before its PNG is drawn (drawn on another thread, one at a time); the
    block's end waits for every PNG; a PNG that fails raises there."""
    import threading

    release = threading.Event()
    drawn_on: list[str] = []

    def slow_png(fig, *, width, height):
        release.wait(10)
        drawn_on.append(threading.current_thread().name)
        return b"png:" + fig.layout.title.text.encode()

    monkeypatch.setattr(export, "figure_png_bytes", slow_png)
    figs = [go.Figure(layout={"title": {"text": f"f{i}"}}) for i in range(3)]
    with export.pngs_in_background():
        paths = [export.write_figure(f, tmp_path / "s" / f"f{i}") for i, f in enumerate(figs)]
        assert not any((tmp_path / "s" / f"f{i}.png").exists() for i in range(3))  # still waiting to be drawn
        assert all(p["html"] and Path(p["html"]).is_file() for p in paths)
        release.set()
    assert [Path(p["png"]).read_bytes() for p in paths] == [b"png:f0", b"png:f1", b"png:f2"]
    assert len(drawn_on) == 3 and all(name.startswith("interp-png") for name in drawn_on)

    def broken(fig, *, width, height):
        raise OSError("disk full")

    monkeypatch.setattr(export, "figure_png_bytes", broken)
    with pytest.raises(OSError, match="disk full"), export.pngs_in_background():
        export.write_figure(go.Figure(layout={"title": {"text": "g"}}), tmp_path / "s" / "g")
    assert not (tmp_path / "s" / "g.png").exists()
    assert export._background is None  # the block left nothing behind


def test_pngs_in_background_report_a_png_that_could_not_be_made(tmp_path, monkeypatch, png_on):
    monkeypatch.setattr(export, "figure_png_bytes", lambda fig, *, width, height: None)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "f.png").write_bytes(b"old numbers")
    with export.pngs_in_background():
        paths = export.write_figure(go.Figure(go.Scatter(x=[0], y=[1])), tmp_path / "s" / "f")
    assert paths["png"] is None and (tmp_path / "s" / "f.png").read_bytes() == b"old numbers"  # never deleted


def test_an_error_in_the_block_drops_queued_pngs_and_jobs_and_deletes_no_png(tmp_path, monkeypatch, png_on):
    """PNGs and jobs queued when the block fails are dropped (a job's ``otherwise`` runs instead), no PNG is deleted
    (issue 36; a study's folder is kept whole by interp.atomic_folder instead), and no new browser starts once the
    block is aborted."""
    import threading

    started = threading.Event()
    release = threading.Event()

    def slow_png(fig, *, width, height):
        started.set()
        release.wait(10)
        return None  # the renderer was closed under it: no image

    monkeypatch.setattr(export, "figure_png_bytes", slow_png)
    (tmp_path / "s").mkdir()
    for i in range(3):
        (tmp_path / "s" / f"f{i}.png").write_bytes(b"old numbers")
    ran: list[str] = []
    with pytest.raises(RuntimeError, match="study failed"), export.pngs_in_background():
        for i in range(3):
            export.write_figure(go.Figure(go.Scatter(x=[0], y=[i])), tmp_path / "s" / f"f{i}")
        export.after_pngs(lambda: ran.append("job"), otherwise=lambda: ran.append("otherwise"))
        started.wait(10)
        threading.Timer(0.2, release.set).start()
        raise RuntimeError("study failed")
    assert [(tmp_path / "s" / f"f{i}.png").read_bytes() for i in range(3)] == [b"old numbers"] * 3
    assert ran == ["otherwise"]
    assert png.render_png("{}", width=10, height=10, scale=1) is None  # aborted: no new browser starts


def test_after_pngs_runs_its_job_after_the_pngs_handed_over_before_it(tmp_path, monkeypatch, png_on):
    order: list[str] = []

    def draw(fig, *, width, height):
        order.append("png")
        return b"png"

    monkeypatch.setattr(export, "figure_png_bytes", draw)
    with export.pngs_in_background():
        export.write_figure(go.Figure(go.Scatter(x=[0], y=[1])), tmp_path / "s" / "f")
        export.after_pngs(lambda: order.append("job"), otherwise=lambda: order.append("otherwise"))
    assert order == ["png", "job"]
    export.after_pngs(lambda: order.append("at once"), otherwise=lambda: order.append("otherwise"))
    assert order[-1] == "at once"


def test_a_bad_timeout_setting_is_refused_before_any_study(monkeypatch, png_on):
    monkeypatch.setenv(png.TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match=f"^{png.TIMEOUT_ENV}='soon'"):
        png.png_preflight()
