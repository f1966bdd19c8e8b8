"""The committed figures' numbers regenerate from their saved config and seed (within GOLDEN_ATOL, never bit for bit).

One test per committed study; where the full study is slow, a slice of it (one pair, one family, two K) is
recomputed with the committed config and compared with the committed JSON. ``superposition_bars`` is regenerated
whole in ``tests/test_cli.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from golden import GOLDEN_ATOL, assert_close_tree

FIGURES = Path(__file__).resolve().parents[2] / "figures"


def committed(study: str, name: str | None = None) -> dict:
    return json.loads((FIGURES / study / f"{name or study}.json").read_text())


def check_model(numbers: dict, model) -> None:
    from interp.models import model_info

    assert numbers["model"]["weights_sha256"] == model_info(model).weights_sha256, "figures made by another model"


def test_mixture_sweep_first_curve_regenerates(embedded_model):
    from interp.studies.mixture_sweep import mixture_curve

    numbers = committed("mixture_sweep")
    check_model(numbers, embedded_model)
    cfg = numbers["config"]
    fam, a, b = cfg["pairs"][0]
    again = mixture_curve(
        embedded_model,
        fam,
        a,
        b,
        cfg["d"],
        n_prompts=cfg["n_prompts"],
        n_examples=cfg["n_examples"],
        seed=cfg["seed"],
        sampling=cfg["sampling"],
    )
    assert_close_tree(json.loads(json.dumps(again.to_dict())), numbers["curves"][0])


def test_tasks_solved_slice_regenerates(embedded_model):
    from interp.studies.tasks_solved import TasksSolvedConfig, solved_at_k

    numbers = committed("tasks_solved")
    check_model(numbers, embedded_model)
    cfg = TasksSolvedConfig(**{k: v for k, v in numbers["config"].items()})
    series = numbers["series"][-1]
    fam, tasks, n = cfg.settings[-1]
    for i in (0, len(series["k"]) - 1):
        row = solved_at_k(embedded_model, fam, tuple(tasks), series["k"][i], n, cfg)
        assert abs(row["solved"] - series["solved"][i]) <= GOLDEN_ATOL
        assert abs(row["kl"] - series["kl"][i]) <= GOLDEN_ATOL


@pytest.fixture(scope="module")
def task_vector_slice(embedded_model):
    """The first pair's vectors, task A's best layer and the λ sweep at the pair layer (mode shift, the one whose
    positive control holds), with the committed config: vectors from prompts of the config's seed, tested on prompts
    of its held-out seed, as the study does."""
    from interp.heldout import held_out_seed
    from interp.sweeps import best_layer, lambda_sweep
    from interp.vectors import null_vectors

    numbers = committed("task_vectors")
    check_model(numbers, embedded_model)
    cfg = numbers["config"]
    pair = numbers["pairs"][0]
    fam, a, b = pair["family"], *pair["tasks"]
    kw = dict(n_prompts=cfg["n_prompts"], n_examples=cfg["n_examples"], batch_size=cfg["batch_size"])
    layers = tuple(pair["layers"])
    vectors = null_vectors(embedded_model, fam, a, b, pair["third_task"], layers=layers, seed=cfg["seed"], **kw)
    kw["seed"] = held_out_seed(cfg["seed"])
    best = best_layer(
        embedded_model, fam, a, vectors["a"], layers=layers, mode="shift", other_vector=vectors["b"], **kw
    )
    layer = pair["modes"]["shift"]["acceptance"]["pair_layer"]
    sweep = lambda_sweep(
        embedded_model,
        fam,
        a,
        b,
        vectors["a"],
        vectors["b"],
        lambdas=cfg["lambdas"],
        layers=[layer],
        mode="shift",
        mixed_reference=False,
        **kw,
    )
    return pair, vectors, best, sweep, layer


def test_task_vectors_best_layer_regenerates(task_vector_slice):
    pair, _, best, _, _ = task_vector_slice
    stored = pair["modes"]["shift"]["best_layer"][best.task]
    for key in ("p_correct", "candidate_accuracy", "p_correct_sem", "control_accuracy", "negative_accuracy"):
        np.testing.assert_allclose(getattr(best, key), stored[key], rtol=0, atol=GOLDEN_ATOL, err_msg=key)
    assert best.best == stored["best"] and best.negative_task == stored["negative_task"]


def test_task_vectors_sweep_and_decomposition_regenerate(task_vector_slice):
    from interp.decomposition import control_decompositions

    pair, vectors, _, sweep, layer = task_vector_slice
    acc = pair["modes"]["shift"]["acceptance"]
    np.testing.assert_allclose(sweep.at_layer(layer)[:, 1], acc["p_b_at_layer"], rtol=0, atol=GOLDEN_ATOL)
    decomps = control_decompositions(vectors)
    li = decomps["mixed"].layers.index(layer)
    got = {name: float(d.residual_norm[li]) for name, d in decomps.items()}
    assert_close_tree(got, acc["residual"], atol=1e-4)
