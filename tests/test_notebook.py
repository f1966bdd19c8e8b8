"""The newcomer notebook executes headless, top to bottom, without an error (on the embedded model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from interp.models import embedded_model_dir

NOTEBOOK = Path(__file__).resolve().parents[1] / "experiments" / "explore_task_vectors.ipynb"


@pytest.mark.skipif(not (embedded_model_dir() / "model.safetensors").is_file(),
                    reason=f"embedded checkpoint absent: {embedded_model_dir() / 'model.safetensors'} missing")
def test_explore_task_vectors_notebook_runs():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from jupyter_client.kernelspec import find_kernel_specs

    if "python3" not in find_kernel_specs():
        pytest.skip("no 'python3' Jupyter kernel spec (run `.venv/bin/python -m ipykernel install --sys-prefix`)")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "notebook stored with outputs"
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parents[1])}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
