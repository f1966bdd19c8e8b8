"""A folder written as one set (issue 36: Ctrl-C part-way through a study left four new figures beside the old JSON)."""

from __future__ import annotations

import threading
from pathlib import Path

import plotly.graph_objects as go
import pytest

import interp.atomic_folder as atomic_folder
import interp.export as export
from interp.atomic_folder import one_set, recover, stale_pngs


def previous_run(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True)
    export.write_json(folder / "numbers.json", {"p": 0.5})
    (folder / "figure.html").write_text("<html>old</html>")
    (folder / "figure.png").write_bytes(b"old png")
    return snapshot(folder)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


@pytest.fixture(params=["exchange", "two renames"])
def swap(request, monkeypatch):
    """Both ways of swapping: Linux's one-step exchange, and two renames where the system has none."""
    if request.param == "two renames":
        monkeypatch.setattr(atomic_folder, "_exchange", lambda a, b: False)
    return request.param


def test_the_new_set_replaces_the_old_and_unchanged_files_stay_the_same_file(tmp_path, swap):
    target = tmp_path / "study"
    previous_run(target)
    inode = (target / "numbers.json").stat().st_ino
    with one_set(target) as staging:
        assert staging.parent == tmp_path and staging != target
        export.write_json(staging / "numbers.json", {"p": 0.5 + 1e-9})  # float noise: left as it was
        export.atomic_write_bytes(staging / "figure.html", b"<html>new</html>")
        export.atomic_write_bytes(staging / "extra.json", b"{}")
        assert snapshot(target)["figure.html"] == b"<html>old</html>"  # nothing written into the target meanwhile
    assert snapshot(target)["figure.html"] == b"<html>new</html>" and (target / "extra.json").is_file()
    assert (target / "numbers.json").stat().st_ino == inode  # git sees no change
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fault", [RuntimeError("study failed"), KeyboardInterrupt()])
def test_a_failure_after_the_first_file_leaves_the_previous_set_whole(tmp_path, swap, fault):
    target = tmp_path / "study"
    before = previous_run(target)
    with pytest.raises(type(fault)), one_set(target) as staging:
        export.atomic_write_bytes(staging / "figure.html", b"<html>new</html>")  # the first file of the new set...
        raise fault  # ...then Ctrl-C or an error
    assert snapshot(target) == before and leftovers(tmp_path) == []


def test_a_swap_cut_between_its_two_renames_is_put_back(tmp_path, monkeypatch):
    """Where the system has no one-step exchange: the old folder renamed aside, then the process died."""
    target = tmp_path / "study"
    before = previous_run(target)
    target.rename(tmp_path / ".study.old-123")
    recover(target)
    assert snapshot(target) == before and leftovers(tmp_path) == []
    monkeypatch.setattr(atomic_folder, "_exchange", lambda a, b: False)
    target.rename(tmp_path / ".study.old-456")
    with one_set(target) as staging:  # the next run starts from the previous set
        assert snapshot(staging) == before


def test_inside_pngs_in_background_the_swap_waits_for_the_study_pngs(tmp_path, monkeypatch, png_on):
    release = threading.Event()

    def slow_png(fig, *, width, height):
        release.wait(10)
        return b"new png"

    monkeypatch.setattr(export, "figure_png_bytes", slow_png)
    target = tmp_path / "study"
    before = previous_run(target)
    with export.pngs_in_background():
        with one_set(target) as staging:
            export.write_figure(go.Figure(go.Scatter(x=[0], y=[2])), staging / "figure")
        assert snapshot(target) == before  # the study is done, its PNG not yet: the old set is still in place
        release.set()
    assert snapshot(target)["figure.png"] == b"new png" and leftovers(tmp_path) == []


def test_ctrl_c_while_a_finished_study_waits_for_its_pngs_keeps_the_old_set(tmp_path, monkeypatch, png_on):
    started, release = threading.Event(), threading.Event()

    def slow_png(fig, *, width, height):
        started.set()
        release.wait(10)
        return None  # the renderer was closed under it

    monkeypatch.setattr(export, "figure_png_bytes", slow_png)
    target = tmp_path / "study"
    before = previous_run(target)
    with pytest.raises(KeyboardInterrupt), export.pngs_in_background():
        with one_set(target) as staging:
            export.write_figure(go.Figure(go.Scatter(x=[0], y=[2])), staging / "figure")
        started.wait(10)
        threading.Timer(0.2, release.set).start()
        raise KeyboardInterrupt
    assert snapshot(target) == before and leftovers(tmp_path) == []


def test_a_png_that_cannot_be_redrawn_is_kept_and_named_as_stale(tmp_path, png_off):
    target = tmp_path / "study"
    previous_run(target)
    stale_pngs(clear=True)
    with one_set(target) as staging:
        paths = export.write_figure(go.Figure(go.Scatter(x=[0], y=[3])), staging / "figure")
    assert paths["png"] is None and (target / "figure.png").read_bytes() == b"old png"  # never deleted
    assert stale_pngs(clear=True) == [str(target / "figure.png")]
    with one_set(target) as staging:  # unchanged figure: its PNG is not called stale
        export.write_figure(go.Figure(go.Scatter(x=[0], y=[3])), staging / "figure")
    assert stale_pngs(clear=True) == []


def test_a_file_where_the_folder_should_be_is_refused(tmp_path):
    (tmp_path / "study").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="is a file"), one_set(tmp_path / "study"):
        pass
    assert leftovers(tmp_path) == []


def test_every_study_writes_its_folder_as_one_set():
    """The class, not an instance: every registered study's ``run`` goes through the one-set writer."""
    from interp.studies import STUDIES

    assert all(getattr(study.load().run, "writes_one_set", False) for study in STUDIES.values())
