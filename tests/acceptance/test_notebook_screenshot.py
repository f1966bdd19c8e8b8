"""A notebook as a reader sees it: executed, exported to HTML (nbconvert), opened in headless Chromium and
photographed; the plots must have drawn. Checked by colour: the hand-built notebook's bar chart fills its pos1 and pos2
bars with their fixed task colours, which nothing else on the page uses. The same page with plotly's drawing call
disabled must show none of them (the check can fail). Skipped, with the reason, where no Chromium exists.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from notebook_run import NOTEBOOKS, execute
from pixels import colour_counts, hex_rgb

from interp.plots.style import task_color
from interp.png import find_browser

BROWSER, WHY_NOT = find_browser()
NOTEBOOK = NOTEBOOKS / "06_hand_built.ipynb"
#: pos1 and pos2 bars of the notebook's distribution figure (task colours by index in the retrieval family).
BAR_COLOURS = (task_color(0), task_color(1))

pytestmark = pytest.mark.skipif(
    BROWSER is None, reason=f"needs a Chromium (Debian: apt-get install chromium): {WHY_NOT}"
)


def screenshot(html: Path, png: Path, *, height: int = 3200, timeout_s: float = 120) -> None:
    """Photograph ``html`` (1280 × ``height`` px) with the headless browser; killed with its children on timeout."""
    args = [
        BROWSER, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run", f"--window-size=1280,{height}",
        "--virtual-time-budget=20000", f"--screenshot={png}", html.as_uri(),
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"the browser did not finish a screenshot within {timeout_s} s")
    assert png.is_file(), f"the browser wrote no screenshot (exit status {proc.returncode})"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> str:
    exporter = pytest.importorskip("nbconvert").HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(execute(NOTEBOOK))
    return body


def test_exported_notebook_draws_its_plots(exported, tmp_path):
    html, png = tmp_path / "notebook.html", tmp_path / "notebook.png"
    html.write_text(exported, encoding="utf-8")
    screenshot(html, png)
    counts = colour_counts(png)
    drawn = {c: counts[hex_rgb(c)] for c in BAR_COLOURS}
    assert all(n > 2000 for n in drawn.values()), f"bar pixels per colour: {drawn} (the plot did not draw)"


def test_the_check_sees_a_plot_that_did_not_draw(exported, tmp_path):
    assert "Plotly.newPlot(" in exported
    html, png = tmp_path / "broken.html", tmp_path / "broken.png"
    html.write_text(exported.replace("Plotly.newPlot(", "(function () {})("), encoding="utf-8")
    screenshot(html, png)
    counts = colour_counts(png)
    assert all(counts[hex_rgb(c)] == 0 for c in BAR_COLOURS)
