"""The studies run unchanged on the nnsight engine, through nnsight's local simulation of a remote request
(``remote="local"``: every trace serialised as for NDIF, then run), and write the default engine's numbers.

Each study runs on the embedded model twice, small configs: on the default engine and on ``engine="nnsight",
remote="local"``; every number of every JSON file must agree within :data:`RTOL`/:data:`ATOL`, and the nnsight
run's JSON records what it sent (``engine``: traces, requests, serialised bytes). Not compared: wall-clock times,
file paths, and the 2-D LDA coordinates (``projection.coords``): LDA on fewer prompts than dimensions is
ill-conditioned: measured on the quick task_vectors config, a relative perturbation of 1e-7 of the default engine's
own captures moves the coordinates by 0.10, more than the 0.043 between the engines, whose captures differ by
3.6e-6 (of values up to 9.1), compared here through every other number.
"""

from __future__ import annotations

import json
import math
import warnings

import pytest

from interp.defaults import EMBEDDED_PAIRS
from interp.models import load_model
from interp.studies import STUDIES, record_engine
from interp.studies.heads import HeadsConfig
from interp.studies.mixture_sweep import MixtureSweepConfig
from interp.studies.superposition_bars import SuperpositionBarsConfig
from interp.studies.task_vectors import DEFAULT_PAIRS, TaskVectorsConfig

pytest.importorskip("nnsight", reason='the nnsight engine needs pip install -e ".[nnsight]"')

RTOL, ATOL = 1e-4, 1e-5
#: Keys not compared (see the module's docstring).
VOLATILE = ("engine", "runtime_s", "files", "seconds", "timings")
CONFIGS = {
    "mixture_sweep": lambda: MixtureSweepConfig(pairs=[tuple(EMBEDDED_PAIRS[0])], d=[0.0, 0.5, 1.0], n_prompts=4),
    "superposition_bars": lambda: SuperpositionBarsConfig(
        settings=[("bias_add", ("add1", "add7"), 8)], n_prompts=4, extra_models=[]
    ),
    "task_vectors": lambda: TaskVectorsConfig(
        pairs=[tuple(DEFAULT_PAIRS[0])],
        n_prompts=3,
        n_examples=6,
        lambdas=[0.0, 0.5, 1.0],
        layers=[1, 2],
        projection_prompts=4,
        n_null=4,
    ),  # fmt: skip
    "heads": lambda: HeadsConfig(
        models=[], n_prompts=3, n_examples=4, fractions=[0.5], n_seqs=2, seq_len=6, role_models=[]
    ),  # fmt: skip
}


def differences(a, b, path: str = "") -> list[str]:
    """Where two JSON values differ beyond the tolerance (numbers), or at all (anything else)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (set(a) | set(b)) - set(VOLATILE)
        if path.endswith(".projection"):
            keys.discard("coords")
        return [d for k in sorted(keys) for d in differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        if math.isclose(a, b, rel_tol=RTOL, abs_tol=ATOL):
            return []
    elif a == b:
        return []
    return [f"{path}: {a!r} vs {b!r}"]


@pytest.fixture(scope="module")
def engines():
    return load_model("embedded", device="cpu"), load_model("embedded", device="cpu", engine="nnsight", remote="local")


#: task_vectors (37 requests) and heads (22) take 20-40 s each on 2 busy cores: with ``-m slow`` (``make test-all``).
SLOW = ("task_vectors", "heads")


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW else []) for n in CONFIGS])
def test_the_study_on_the_simulated_remote_engine_writes_the_default_engines_numbers(name, engines, tmp_path):
    default, nnsight = engines
    study = STUDIES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = study.run(default, CONFIGS[name](), tmp_path / "default", progress=False)
        nnsight.ledger.reset()
        got = study.run(nnsight, CONFIGS[name](), tmp_path / "nnsight", progress=False)
    record_engine(got, nnsight)
    files = sorted(p.relative_to(tmp_path / "default") for p in (tmp_path / "default").rglob("*.json"))
    assert files == sorted(p.relative_to(tmp_path / "nnsight") for p in (tmp_path / "nnsight").rglob("*.json"))
    for f in files:
        a, b = (json.loads((tmp_path / side / f).read_text()) for side in ("default", "nnsight"))
        if name == "heads":  # attribution's gradients go through TransformerLens hooks: skipped there, and said so
            for x, y in [(a, b), *zip(a.get("models", []), b.get("models", []), strict=True)]:
                if "attribution" in x:
                    assert set(y.pop("attribution")) == {"skipped"} and x.pop("attribution")["add1"]
        assert differences(a, b) == [], f
        engine = b["engine"]
        assert "engine" not in a and engine["name"] == "nnsight" and engine["remote"] == "local"
        assert engine["traces"] >= engine["requests"] >= 1 and engine["request_bytes"] > 0
    assert ref["numbers"].keys() | {"engine"} == got["numbers"].keys()


def test_the_comparison_can_fail():
    assert differences({"p": [0.5, 1.0]}, {"p": [0.5, 1.0 + 1e-3]}) == [".p[1]: 1.0 vs 1.001"]
    assert differences({"a": 1, "engine": 1}, {"a": 1}) == []
    assert differences({"projection": {"coords": [1.0]}}, {"projection": {"coords": [2.0]}}) == []
    assert differences({"a": "x"}, {"a": "y", "b": 1}) == [".a: 'x' vs 'y'", ".b: None vs 1"]
