"""The task-vector study end to end on a tiny seeded (untrained) model: structure, reproducibility, validation."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from interp.export import png_status
from interp.heldout import held_out_seed
from interp.results import BestLayer
from interp.studies import task_vectors as tv
from interp.studies.task_vectors import FIGURES, TaskVectorsConfig, acceptance_lines, half_crossings
from interp.sweeps import best_layer
from interp.vectors import task_vector


@pytest.fixture(scope="module")
def quick_run(tiny_char_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("task_vectors")
    config = TaskVectorsConfig.quick()
    return config, out, tv.run(tiny_char_model, config, out, progress=False)


def test_every_expected_file_is_written(quick_run):
    config, out, result = quick_run
    paths = result["paths"]
    assert paths["summary_json"] == str(out / "task_vectors.json")
    for name in FIGURES:
        for kind in ("html", "json"):
            assert paths[f"{name}_{kind}"] == str(out / f"{name}.{kind}")
        if png_status() is None:  # PNG export needs a Chromium; HTML-only mode otherwise
            assert paths[f"{name}_png"] == str(out / f"{name}.png")
    for p in paths.values():
        if p:
            assert (out / p.split("/")[-1]).stat().st_size > 0
    summary = json.loads((out / "task_vectors.json").read_text())
    assert summary["study"] == "task_vectors" and summary["config"]["n_prompts"] == config.n_prompts
    assert summary["model"]["model_id"] == "tiny-char"
    fig_json = json.loads((out / "lambda_heatmap.json").read_text())
    assert fig_json["figure"] == "lambda_heatmap" and "lambda_sweep" in fig_json["pairs"][0]["modes"]["shift"]


def test_summary_holds_the_acceptance_quantities_per_mode(quick_run):
    config, _, result = quick_run
    (pair,) = result["numbers"]["pairs"]
    family, a, b, third = config.pairs[0]
    assert list(pair["modes"]) == list(config.modes) == ["replace", "shift"]
    for mode, block in pair["modes"].items():
        acc = block["acceptance"]
        assert acc["mode"] == mode and set(acc["best_layer"]) == {a, b} and set(acc["recovery"]) == {a, b}
        for t in (a, b):
            c = acc["control"][t]
            assert len(c["accuracy"]) == len(c["passes"]) == len(pair["layers"]) and c["tolerance"] == 0.05
            passes = [x >= acc["icl_accuracy"][t] - 0.05 for x in c["accuracy"]]
            assert c["passes"] == passes
            moved = [x < acc["icl_accuracy"][t] - 0.05 for x in c["negative_accuracy"]]  # the negative form
            assert c["negative_task"] == ({a, b} - {t}).pop()
            assert c["status"] == [
                "fails" if not ok else "passes" if mv else "uninformative" for ok, mv in zip(passes, moved, strict=True)
            ]
            best = acc["best_layer"][t]
            assert best is None if not any(passes) else passes[pair["layers"].index(best)]
        if acc["pair_layer"] is None:
            assert acc["steering_claim"].startswith("none:") and acc["residual"] is None
            continue
        assert acc["pair_layer"] in pair["layers"] and acc["steering_claim"] is None
        assert acc["spearman_rho"] is None or -1 <= acc["spearman_rho"] <= 1
        assert isinstance(acc["crosses_half"], bool)
        assert set(acc["residual"]) == {"mixed", "random_answers", "random_strings", "third_task"}
        assert acc["mixed_below_every_control"] == all(
            acc["residual"]["mixed"] < acc["residual"][c] for c in ("random_answers", "random_strings", "third_task")
        )
        sweep = block["lambda_sweep"]
        assert np.array(sweep["probs"]).shape == (len(config.lambdas), len(pair["layers"]), 3)
        assert np.array(sweep["real_probs"]).shape == (len(config.lambdas), 3)
        assert set(acc["chance"]) == {a, b} and all(acc["chance"][t] == 1 / 10 for t in (a, b))  # bias_add: 10 tasks
    assert np.array(pair["cosines"]["raw"]["matrix"]).shape == (len(pair["layers"]), 6, 6)
    nulls = pair["nulls"]
    if nulls is not None:  # every p-value replicated over prompt seeds, at an n chosen for power before the run
        size = nulls["sample_size"]
        assert size["chosen"] in config.null_sizes and nulls["n"] == size["chosen"]
        assert size["effect"] == config.residual_effect and set(size["power_at"]) <= {str(n) for n in config.null_sizes}
        for key in ("projection", "residual", "ablation"):
            reps = nulls[key]["replications"]
            assert [r["seed"] for r in reps] == [config.seed + i for i in range(config.replications)]
            assert nulls[key]["p_value"] == reps[0]["p_value"] and all(r["n"] == nulls["n"] for r in reps)
            assert reps[0]["power"]["n_sim"] == config.power_sims and len(reps[0]["power"]["effects"]) > 2
    lines = acceptance_lines(result["numbers"])
    assert lines[0].startswith(f"{family}: {a} vs {b}") and lines[0].endswith("mode replace")


def test_numbers_match_a_recomputation_with_the_same_seed(quick_run, tiny_char_model):
    config, _, result = quick_run
    family, a, _, _ = config.pairs[0]
    kw = dict(n_prompts=config.n_prompts, n_examples=config.n_examples)
    v = task_vector(tiny_char_model, family, a, seed=config.seed, **kw)
    other = task_vector(tiny_char_model, family, config.pairs[0][2], seed=config.seed, **kw)
    tested_on = result["numbers"]["pairs"][0]["seeds"]["tested_on"]
    assert tested_on == held_out_seed(config.seed) != config.seed  # held out by construction
    again = best_layer(tiny_char_model, family, a, v, mode="shift", other_vector=other, seed=tested_on, **kw)
    stored = result["numbers"]["pairs"][0]["modes"]["shift"]["best_layer"][a]
    np.testing.assert_allclose(stored["p_correct"], again.p_correct, rtol=1e-5, atol=1e-7)
    assert stored["icl_candidate_accuracy"] == again.icl_candidate_accuracy and stored["best"] == again.best
    np.testing.assert_allclose(stored["negative_accuracy"], again.negative_accuracy)
    assert BestLayer.from_dict({k: v for k, v in stored.items() if k != "best"}).best == again.best
    norms = result["numbers"]["pairs"][0]["vector_norms"]["a"]
    np.testing.assert_allclose(norms, v.mean.double().norm(dim=1).numpy(), rtol=1e-5)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (dict(n_prompts=1), "n_prompts"),
        (dict(n_examples=0), "n_examples"),
        (dict(pairs=[("bias_add", "add1", "add1", "add4")]), "pairs"),
        (dict(pairs=[("bias_add", "add1", "nope", "add4")]), "pairs"),
        (dict(pairs=[]), "pairs"),
        (dict(lambdas=[0.0, 1.5, 1.0]), "lambdas"),
        (dict(lambdas=[0.0, 1.0]), "lambdas"),
        (dict(lambdas=[0.0, 0.5, 0.2]), "lambdas"),
        (dict(projection="tsne"), "projection"),
        (dict(projection_prompts=1), "projection_prompts"),
        (dict(layers=[]), "layers"),
        (dict(layers=[7]), "layer"),  # beyond the 2-layer model: checked against the model, before any pass
        (dict(modes=["swap"]), "mode"),
        (dict(modes=[]), "modes"),
        (dict(control_tolerance=2), "control_tolerance"),
    ],
)
def test_bad_config_raises_before_any_forward_pass(tiny_char_model, tmp_path, monkeypatch, change, field):
    def forbidden(*args, **kwargs):
        raise AssertionError("a forward pass started before the config was validated")

    monkeypatch.setattr(tv, "null_vectors", forbidden)
    monkeypatch.setattr(tv, "run_pair", forbidden)
    with pytest.raises(ValueError, match=rf"^{field}"):
        tv.run(tiny_char_model, replace(TaskVectorsConfig.quick(), **change), tmp_path, progress=False)
    assert not any(tmp_path.iterdir())


def test_half_crossings_and_pair_layer():
    lam = np.linspace(0, 1, 5)
    assert half_crossings(lam, np.array([0.0, 0.2, 0.4, 0.6, 1.0])) == [0.625]
    assert half_crossings(lam, np.full(5, 0.1)) == []
    assert half_crossings(lam, np.array([0.9, 0.1, 0.9, 0.9, 0.9])) == [0.125, 0.375]
