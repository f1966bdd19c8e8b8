"""Executing a notebook as the suite does it: a fresh ``python3`` kernel, the notebook's folder as working
directory; and reading what it printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from time_limits import limit_s

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "experiments" / "notebooks"


def execute(path: Path):
    """``path`` executed top to bottom; the executed notebook (skips without nbclient or a python3 kernel)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from jupyter_client.kernelspec import find_kernel_specs

    if "python3" not in find_kernel_specs():
        pytest.skip("no 'python3' Jupyter kernel spec (run `.venv/bin/python -m ipykernel install --sys-prefix`)")
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    for attempt in (1, 2):
        nb = nbformat.read(path, as_version=4)
        client = nbclient.NotebookClient(
            nb,
            timeout=int(limit_s(600)),  # a hang's safety net: the slowest cell takes ~40 s on an idle 2-core machine
            startup_timeout=int(limit_s(60)),
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        )
        try:
            client.execute()
            return nb
        except (CellTimeoutError, DeadKernelError):
            # Seen here (jupyter_client 8.10, ipykernel 6.31, pyzmq 27): now and then a cell's reply never reaches
            # the client while the kernel sits idle (py-spy: both sides waiting on their sockets). That is the
            # harness, not the notebook: a fresh kernel runs the notebook once more; a second hang fails the test.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def outputs(nb) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def summary_of(nb) -> dict:
    """The ``NOTEBOOK_SUMMARY {json}`` line the notebook printed, after checking it raised and warned nothing."""
    outs = outputs(nb)
    errors = [o for o in outs if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    stderr = "".join(o.get("text", "") for o in outs if o.output_type == "stream" and o.name == "stderr")
    assert "Warning" not in stderr, stderr
    text = "".join(o.get("text", "") for o in outs if o.output_type == "stream")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("NOTEBOOK_SUMMARY ")]
    return json.loads(line.split(" ", 1)[1])


def plotly_outputs(nb) -> list[dict]:
    """The display data of every plotly figure the notebook showed."""
    return [o["data"] for o in outputs(nb) if "application/vnd.plotly.v1+json" in o.get("data", {})]
