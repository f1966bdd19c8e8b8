"""Scaling study: per-model numbers recompute from the library's scoring, models sort by size, the figure's x axis
is log parameters, and the config refuses bad input before any model runs."""

import json

import numpy as np
import pytest
from golden import assert_close_tree

from interp.metrics import kl_divergence
from interp.prompts import build_prompts
from interp.results import ScalingPoint
from interp.scoring import greedy_correct, score_answers
from interp.studies.scaling import ScalingConfig, n_parameters, run, scaling_points, size_family


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="ks"):
        ScalingConfig(ks=[1, 2]).validate()
    with pytest.raises(ValueError, match="ks"):
        ScalingConfig(tasks=("add1", "add7"), ks=[2, 3]).validate()
    with pytest.raises(ValueError, match="beam_width"):
        ScalingConfig(beam_width=2).validate()
    with pytest.raises(ValueError, match="n_prompts"):
        ScalingConfig(n_prompts=0).validate()


def test_points_recompute_from_scoring_and_sort_by_size(embedded_model, tiny_char_model):
    cfg = ScalingConfig(tasks=("add1", "add7", "add4"), ks=[2, 3], n_prompts=5, n_examples=8, beam_width=4)
    points = scaling_points([embedded_model, tiny_char_model], cfg, progress=False)
    assert [p.n_params for p in points] == sorted(n_parameters(m) for m in (embedded_model, tiny_char_model))
    big = next(p for p in points if p.model == "embedded")
    for i, k in enumerate(cfg.ks):
        prompts = build_prompts("bias_add", list(cfg.tasks[:k]), proportions=[1 / k] * k, n_examples=8,
                                n_prompts=5, seed=0)  # fmt: skip
        probs = score_answers(embedded_model, prompts).probs
        assert big.kl.mean[i] == pytest.approx(kl_divergence(np.full(k, 1 / k), probs).mean(), abs=1e-6)
        assert big.other.mean[i] == pytest.approx((1 - probs.sum(axis=1)).mean(), abs=1e-6)
        assert big.kl_renormalized.mean[i] <= big.kl.mean[i] + 1e-9  # renormalising only removes "other" mass
        assert 0 <= big.solved.mean[i] <= k
    acc = [greedy_correct(embedded_model, build_prompts("bias_add", [t], n_examples=8, n_prompts=5, seed=0), t).mean()
           for t in cfg.tasks]  # fmt: skip
    np.testing.assert_allclose(big.accuracy.mean, acc)
    assert big.mean_accuracy == pytest.approx(np.mean(acc))
    frame = big.to_frame()
    assert set(frame["metric"]) == {"kl", "kl_renormalized", "other", "solved", "accuracy"}


def test_quick_study_writes_json_and_a_log_x_figure(tmp_path, embedded_model):
    out = run(embedded_model, ScalingConfig.quick(), tmp_path, progress=False)
    numbers = json.loads((tmp_path / "scaling.json").read_text())
    assert len(out["results"]) == len(size_family(["xs"])) + 1
    # the JSON keeps 10 significant digits: equal within that, and loadable as results
    assert_close_tree([json.loads(json.dumps(r.to_dict())) for r in out["results"]], numbers["points"], atol=1e-9)
    assert [ScalingPoint.from_dict(p).model for p in numbers["points"]] == [r.model for r in out["results"]]
    assert (tmp_path / "scaling.html").is_file()


def test_scaling_figure_has_log_parameter_axis(embedded_model):
    from interp.plots.scaling import scaling_figure

    cfg = ScalingConfig(tasks=("add1", "add7"), ks=[2], n_prompts=3, n_examples=6, beam_width=2)
    (point,) = scaling_points([embedded_model], cfg, progress=False)
    fig = scaling_figure([point], title="t")
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis4.type == "log"
    assert any(t.name == "K=2" for t in fig.data)


def test_committed_numbers_load_as_results_and_plot():
    from pathlib import Path

    from interp.plots import scaling_figure

    path = Path(__file__).resolve().parents[2] / "figures" / "scaling" / "scaling.json"
    numbers = json.loads(path.read_text())
    points = [ScalingPoint.from_dict(p) for p in numbers["points"]]
    assert [p.to_dict() for p in points] == numbers["points"]
    assert "\n" not in repr(points[0]) and "kl=Distribution(…)" in repr(points[0])
    assert [p.n_params for p in points] == sorted(p.n_params for p in points)
    assert len(scaling_figure(points, title="t").data) > 0


def test_seeds_and_pairs_recompute_from_scoring_and_the_verdicts_follow_the_units(tmp_path, embedded_model):
    """Issue 27: the scaling claim over seeds and pairs. Each unit's metrics recompute from scoring; the summary is
    the mean over units; a verdict's sign follows the units it is made from."""
    from interp.studies.scaling_pairs import PairsConfig, measure, pair_metrics, verdicts

    out = run(embedded_model, ScalingConfig.quick(), tmp_path, progress=False)
    pairs = json.loads((tmp_path / "scaling_pairs.json").read_text())
    assert pairs == json.loads(json.dumps(out["numbers"]["seeds_and_pairs"])) or pairs["units"]
    assert pairs["extra"] == ["embedded"] and "embedded" in pairs["summary"]
    unit = next(u for u in pairs["units"] if u["size"] == "embedded")
    cfg = PairsConfig("bias_add", ("add1", "add7", "add4"), 6, 16, 0)
    again = pair_metrics(embedded_model, tuple(unit["pair"]), cfg)
    for key, value in again.items():
        assert unit[key] == pytest.approx(value, abs=1e-9), key
    prompts = build_prompts("bias_add", unit["pair"], proportions=[0.5, 0.5], n_examples=16, n_prompts=6, seed=0)
    p = score_answers(embedded_model, prompts).probs
    share = p[:, 0] / p.sum(axis=1)
    assert unit["commitment"] == pytest.approx(share.var()) and unit["preference"] == pytest.approx(
        abs(share.mean() - 0.5)
    )
    xs = pairs["summary"]["xs"]
    mine = [u for u in pairs["units"] if u["size"] == "xs"]
    assert xs["kl"]["mean"] == pytest.approx(np.mean([u["kl"] for u in mine]))
    assert xs["n_units"] == len(mine) == 3 * len(xs["seeds"])  # 3 pairs of three tasks, one unit per seed and pair
    # verdicts: a metric that falls with size in every unit says so; one that rises does not
    fake = [{"size": s, "seed": k, "pair": ["a", "b"], "kl": 3 - i, "tv": i, "hedging": 0, "preference": 0,
             "commitment": 0} for k in (0, 1) for i, s in enumerate(("xs", "s", "m"))]  # fmt: skip
    v = verdicts(fake, {"xs": 1, "s": 2, "m": 3}, ["xs", "s", "m"])
    assert v["kl"]["falls_with_size_in_every_seed"] and v["kl"]["spearman_all_units"] == pytest.approx(-1)
    assert not v["tv"]["falls_with_size_in_every_seed"] and v["tv"]["spearman_per_seed"] == {"0": 1.0, "1": 1.0}
    # the trend test with seeds as blocks: both seeds strictly ordered, p = (1/3!)^2 = 0.028 in each direction
    assert v["kl"]["page"]["direction"] == "falls" and v["kl"]["page"]["monotone_falling"] == 2
    assert v["tv"]["page"]["direction"] == "rises"
    assert v["tv"]["page"]["words"].startswith("rises with size (Page's L = ")
    assert v["hedging"]["page"]["direction"] == "none"  # constant: no trend
    with pytest.raises(ValueError, match="^tasks: need at least two distinct tasks"):
        measure({}, PairsConfig(tasks=("add1",)))


def test_the_committed_verdicts_are_what_the_trend_rule_gives_for_the_committed_units():
    """Issue 37: "rises with size" only where Page's L test (seeds as blocks) says so; the committed verdicts are
    recomputed from the committed units (experiments/scaling_verdicts.py --check), and a planted change is caught."""
    import copy
    import json
    from pathlib import Path

    from scripts import load_script

    script = load_script("experiments/scaling_verdicts.py")
    assert script.main(["--check"]) == 0
    numbers = json.loads((Path(__file__).resolve().parents[2] / "figures" / "scaling" / "scaling.json").read_text())
    block = copy.deepcopy(numbers["seeds_and_pairs"])
    for u in block["units"]:  # plant a trend that falls with size in every seed
        if u["size"] in ("xs", "s", "m", "l"):
            u["kl"] = {"xs": 4.0, "s": 3.0, "m": 2.0, "l": 1.0}[u["size"]]
    v = script.recomputed(block)
    assert v["kl"]["page"]["direction"] == "falls" and v["kl"]["page"]["monotone_falling"] == 3
    assert v["kl"]["page"]["words"].startswith("falls with size (Page's L = ")
