"""The repository's scripts (experiments/, benchmarks/) as modules, loaded by their path: they are not packages, and
a bare ``import`` could find a test helper of the same name first (tests/versions.py)."""

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative_path: str) -> ModuleType:
    """The script at ``ROOT / relative_path`` (e.g. ``"experiments/gpu_train.py"``), executed as a fresh module."""
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
