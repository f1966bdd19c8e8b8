"""What a run writes must never destroy or mix committed results (issue 36): a quick run has its own folder, a run
without a browser deletes no PNG, a study folder is replaced as one set, and every folder a run will write is checked
before the model loads."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import interp.cli
import interp.studies.common
from interp.cli import EXIT_INTERRUPTED, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[2]
STUDY = "superposition_bars"  # the cheapest study: one figure, one JSON


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def committed(tmp_path) -> Path:
    """A copy of the committed ``figures/`` for one study (its JSON, HTML and PNG), as a fresh clone holds it."""
    figures = tmp_path / "figures"
    shutil.copytree(ROOT / "figures" / STUDY, figures / STUDY)
    shutil.copy(ROOT / "figures" / "plotly.min.js", figures)
    assert (figures / STUDY / f"{STUDY}.png").is_file()
    return figures


@pytest.fixture
def no_model_load(monkeypatch, embedded_model):
    """The command gets the already loaded embedded model (the tests are about what it writes)."""
    monkeypatch.setattr(interp.cli, "load_checked_model", lambda *args, **kwargs: embedded_model)


def test_a_quick_run_writes_a_folder_of_its_own_and_leaves_the_committed_figures_as_they_were(
    tmp_path, monkeypatch, committed, no_model_load, png_off
):
    before = files(committed)
    monkeypatch.chdir(tmp_path)
    assert main(["figures", STUDY, "--quick"]) == 0
    assert files(committed) == before  # what `git status figures/` would see: nothing
    assert (tmp_path / "figures-quick" / STUDY / f"{STUDY}.json").is_file()
    ignored = subprocess.run(["git", "check-ignore", "-q", "figures-quick/x/y.json"], cwd=ROOT)
    assert ignored.returncode == 0  # and git ignores the quick run's folder


def test_a_run_without_a_browser_keeps_a_png_whose_figure_changed_and_names_it(
    committed, no_model_load, png_off, capsys
):
    png = committed / STUDY / f"{STUDY}.png"
    old_png, old_json = png.read_bytes(), (committed / STUDY / f"{STUDY}.json").read_bytes()
    assert main(["figures", STUDY, "--quick", "--out", str(committed)]) == 0  # asked for: the quick numbers replace
    assert (committed / STUDY / f"{STUDY}.json").read_bytes() != old_json
    assert png.read_bytes() == old_png  # never deleted: without a browser it could not be drawn again
    said = capsys.readouterr().out
    assert "not redrawn" in said and str(png) in said and f"PNG (figure unchanged, kept): {png}" not in said


@pytest.mark.parametrize("fault", [KeyboardInterrupt, RuntimeError])
def test_a_failure_after_the_first_file_of_a_study_leaves_the_previous_set_whole(
    tmp_path, monkeypatch, committed, no_model_load, png_off, fault
):
    """The HTML is written, then Ctrl-C (or an error) comes before the JSON: the folder keeps the previous run's set."""
    before = files(committed)

    def fails(*args, **kwargs):
        raise fault("after the first file")

    monkeypatch.setattr(interp.studies.common, "write_json", fails)
    if fault is KeyboardInterrupt:
        assert main(["figures", STUDY, "--quick", "--out", str(committed)]) == EXIT_INTERRUPTED
    else:
        with pytest.raises(RuntimeError):
            main(["figures", STUDY, "--quick", "--out", str(committed)])
    assert files(committed) == before
    assert [p.name for p in committed.iterdir() if p.name.startswith(".")] == []  # no staging folder left


@pytest.fixture
def never_loads(monkeypatch):
    """Fail the test if the command gets as far as loading a model (or building prompts)."""

    def loaded(*args, **kwargs):
        raise AssertionError("the model was loaded before the check")

    monkeypatch.setattr(interp.cli, "load_checked_model", loaded)


@pytest.mark.parametrize("command", [["figures", STUDY], ["figures", STUDY, "--quick"], ["demo"]])
def test_a_study_folder_that_cannot_be_written_is_refused_before_the_model_loads(
    tmp_path, never_loads, capsys, command
):
    """It failed after 56 s of work with a 55-line traceback."""
    study = "mixture_sweep" if command == ["demo"] else STUDY
    (tmp_path / study).write_text("a file where the study's folder goes")
    assert main([*command, "--out", str(tmp_path)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("interp: error: --out: "), err
    assert str(tmp_path / study) in err and "is a file" in err


@pytest.mark.parametrize(("name", "kind"), [("final", "file"), ("checkpoints", "file"), ("state.pt", "folder")])
def test_a_training_run_folder_in_the_way_is_refused_before_the_model_is_built(
    tmp_path, monkeypatch, capsys, name, kind
):
    """A file where ``final/`` goes used to fail only when the finished model was written."""
    import json

    import interp.training.loop

    def built(*args, **kwargs):
        raise AssertionError("the run started before the check")

    monkeypatch.setattr(interp.training.loop, "Run", built)
    run = tmp_path / "run"
    run.mkdir()
    (run / name).mkdir() if kind == "folder" else (run / name).write_text("in the way")
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({**json.loads((ROOT / "experiments/configs/tiny.json").read_text()), "steps": 2}))
    assert main(["train", "--config", str(config), "--out", str(run), "--quiet"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("interp: error: --out: ") and str(run / name) in err, err
