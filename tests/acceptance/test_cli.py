"""The `interp` command: measure, figures, bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
from golden import assert_close_tree
from time_limits import limit_s

from interp.cli import main, parse_mix


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "interp", *args], capture_output=True, text=True, timeout=limit_s(300))


def test_parse_mix():
    assert parse_mix("1/3,1/3,1/3", 3) == pytest.approx([1 / 3] * 3)
    assert parse_mix(None, 4) == [0.25] * 4
    assert parse_mix("0.333,0.333,0.334", 3) == pytest.approx([0.333, 0.333, 0.334])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["measure", "--family", "nope"], "unknown family 'nope'; valid: operands"),
        (["measure", "--family", "operands", "--tasks", "copy_first,mul"], "unknown task 'mul'"),
        (["measure", "--family", "operands", "--mix", "1/2,x,1/2"], "--mix: malformed"),
        (["measure", "--family", "operands", "--mix", "1/2,1/2"], "--mix: 2 values for 3 tasks"),
        (["measure", "--family", "operands", "--mix", "0.9,0.9,-0.8"], "values must be finite and >= 0"),
        (["measure", "--family", "operands", "--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["figures", "nope_study", "--out", "OUT"], "unknown 'nope_study'; valid: mixture_sweep"),
    ],
)
def test_bad_input_one_line_nonzero_exit_no_outputs(args, message, tmp_path, capsys):
    out = tmp_path / "figs"
    args = [str(out) if a == "OUT" else a for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_measure_json_matches_library(embedded_model, capsys):
    from interp.metrics import summarize
    from interp.prompts import build_prompts
    from interp.scoring import score_answers

    assert (
        main(
            [
                "measure",
                "--family",
                "bias_add",
                "--tasks",
                "add1,add7",
                "--mix",
                "1/2,1/2",
                "--n-prompts",
                "12",
                "--seed",
                "3",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)  # only JSON on stdout
    prompts = build_prompts("bias_add", ["add1", "add7"], proportions=[0.5, 0.5], n_prompts=12, seed=3)
    expected = summarize(score_answers(embedded_model, prompts).probs, [0.5, 0.5], tasks=["add1", "add7"], seed=3)
    assert result["model"] == "embedded"
    assert result["tasks"]["add1"]["mean"] == pytest.approx(expected["tasks"]["add1"]["mean"], abs=1e-9)
    assert result["kl"]["mean"] == pytest.approx(expected["kl"]["mean"], abs=1e-9)


def test_measure_table_and_help():
    res = run_cli("measure", "--family", "operands", "--n-prompts", "4", "--n-examples", "6")
    assert res.returncode == 0, res.stderr
    assert "copy_first" in res.stdout and "KL(t||p)" in res.stdout
    helptext = run_cli("measure", "--help").stdout
    for flag in ("--family", "--tasks", "--mix", "--n-examples", "--n-prompts", "--seed", "--model", "--json"):
        assert flag in helptext
    assert "example:" in helptext


_ENTRY_PROBE = """
import atexit, sys
atexit.register(lambda: print("exit handlers ran", flush=True))
sys.argv = ["interp", *sys.argv[1:]]
from interp.cli import entry
entry()
print("not reached")
"""


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [(["measure", "--family", "operands", "--n-prompts", "3", "--n-examples", "4", "--json"], 0, '"kl"'),
     (["figures", "nope_study"], 2, "unknown 'nope_study'")],
)  # fmt: skip
def test_console_entry_exits_with_mains_status_after_exit_handlers(args, code, expected):
    """``interp`` skips the interpreter's teardown: its status is main's, exit handlers still run, and everything
    printed arrives."""
    cmd = [sys.executable, "-c", _ENTRY_PROBE, *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s(300))
    assert res.returncode == code, res.stderr
    assert expected in res.stdout + res.stderr
    assert res.stdout.rstrip().endswith("exit handlers ran") and "not reached" not in res.stdout


def test_console_entry_under_a_profiler_exits_normally(tmp_path):
    """A profiler wrapping the command still gets to write what it recorded."""
    out = tmp_path / "run.prof"
    cmd = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "interp", "figures", "nope_study"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s(300))
    assert "unknown 'nope_study'" in res.stderr  # (cProfile itself swallows the exit status)
    assert out.is_file() and out.stat().st_size > 0


def test_figures_quick_writes_every_file_and_numbers_recompute(tmp_path, embedded_model):
    from interp.studies import STUDIES, run_studies
    from interp.studies.mixture_sweep import MixtureSweepConfig, mixture_curve

    names = [n for n in STUDIES if n != "task_vectors"]  # the task-vector study has its own test
    run_studies(names, model=embedded_model, quick=True, out=tmp_path, progress=False)
    for name in names:
        for ext in ("html", "json"):
            assert (tmp_path / name / f"{name}.{ext}").is_file()
    numbers = json.loads((tmp_path / "mixture_sweep" / "mixture_sweep.json").read_text())
    cfg = MixtureSweepConfig.quick()
    fam, a, b = cfg.pairs[0]
    again = mixture_curve(
        embedded_model, fam, a, b, cfg.d, n_prompts=cfg.n_prompts, n_examples=cfg.n_examples, seed=cfg.seed
    )
    # the JSON keeps 10 significant digits (interp.export.JSON_SIGNIFICANT_DIGITS)
    np.testing.assert_allclose(numbers["curves"][0]["a"]["mean"], again.a.mean, rtol=1e-9, atol=0)
    assert numbers["model"]["model_id"] == "embedded" and numbers["config"]["seed"] == cfg.seed
    assert not list(tmp_path.rglob("*.tmp"))  # nothing half-written


def test_committed_figure_numbers_regenerate_and_rerun_is_a_git_noop(tmp_path, embedded_model):
    """figures/superposition_bars/ was written by `make demo`; its command and seed give the same numbers (within
    GOLDEN_ATOL: another CPU changes the last bits), and rerunning it over the committed files rewrites none of
    them (issue #12 item 11: `make demo` leaves the repository clean)."""
    import shutil
    from pathlib import Path

    from interp.studies import run_studies

    figures = Path(__file__).resolve().parents[2] / "figures"
    shutil.copytree(figures / "superposition_bars", tmp_path / "superposition_bars")
    shutil.copy(figures / "plotly.min.js", tmp_path)
    committed = {p.name: p.read_bytes() for p in (figures / "superposition_bars").iterdir()}
    old = json.loads(committed["superposition_bars.json"])
    new = run_studies(["superposition_bars"], model=embedded_model, out=tmp_path, progress=False)
    fresh = json.loads(json.dumps(new["superposition_bars"]["numbers"]))  # this run's numbers, not the file's
    assert fresh["config"] == old["config"] and fresh["model"]["weights_sha256"] == old["model"]["weights_sha256"]
    assert_close_tree(fresh["results"], old["results"])
    after = {p.name: p.read_bytes() for p in (tmp_path / "superposition_bars").iterdir()}
    assert after.keys() == committed.keys()
    assert [name for name in committed if after[name] != committed[name]] == []  # nothing for git to see


def test_packaging_metadata_uses_the_spdx_license_string():
    """Issue #12 item 15: a table-style ``license`` makes setuptools>=77 print a deprecation warning at set-up."""
    import tomllib
    from pathlib import Path

    meta = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    assert "setuptools>=77" in meta["build-system"]["requires"]  # the first setuptools that reads SPDX strings
    assert meta["project"]["scripts"]["interp"] == "interp.cli:entry"


def test_readme_names_the_installed_hub_command():
    """Issue #12 item 13: huggingface_hub ships ``hf``; ``huggingface-cli`` is gone."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "huggingface-cli" not in readme and "hf download openai-community/gpt2" in readme


def test_figures_help_and_the_readme_list_every_study(capsys):
    """Issue 24: ``interp figures --help`` did not list the studies; the README's command block named 5 of 7."""
    from pathlib import Path

    from interp.studies import STUDIES

    with pytest.raises(SystemExit):
        main(["figures", "--help"])
    shown = capsys.readouterr().out
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    figures_line = next(line for line in readme.splitlines() if line.startswith("interp figures [STUDY"))
    for name, study in STUDIES.items():
        assert f"  {name}" in shown and study.description in shown, name
        assert name in figures_line, name


def test_warnings_on_the_command_line_are_one_line(capsys):
    """The hand-built model asked about a task it was not built for: one ``interp: warning:`` line, then numbers."""
    args = ["measure", "--family", "retrieval", "--tasks", "pos1,pos8", "--model", "constructed:retrieval:K=2"]
    assert main([*args, "--n-prompts", "4"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("interp: warning: prompts: this hand-built model was built for"), err
