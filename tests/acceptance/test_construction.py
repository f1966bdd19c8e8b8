"""The hand-built superposition model: its known right answers, and the toolkit's methods recovering them.

The model's numbers are known in closed form (docs/construction.md): P(task k's answer) = in-context fraction of
task k; the task vector at TASK_LAYER is a task-independent vector plus the designed direction e_{F_k}. These tests
check the construction against that maths and use it as a regression test of scoring, capture, task vectors,
patching and decomposition.
"""

import numpy as np
import pytest
import torch

from interp.bridge import is_bridge, tl_major
from interp.construction import (
    TASK_LAYER,
    build_constructed_model,
    construction_of,
    load_constructed,
    parse_spec,
    predicted_probs,
    probability_error_bound,
    task_directions,
)
from interp.decomposition import decompose
from interp.heldout import held_out_seed
from interp.hooks import forward_logits, hooked
from interp.models import LOADED_MODELS, model_info
from interp.prompts import build_prompts, zero_shot_prompts
from interp.scoring import greedy_correct, score_answers
from interp.sweeps import best_layer, lambda_sweep
from interp.tasks import get_family
from interp.tokenization import encode
from interp.vectors import task_vector

FAMILY = "retrieval"
TOL = 0.02


@pytest.fixture(scope="module")
def models():
    return {k: load_constructed(f"constructed:retrieval:K={k}") for k in (2, 3, 4)}


def tasks_of(model) -> list[str]:
    return list(construction_of(model).tasks)


def test_model_looks_like_a_load_model_result(models):
    m = models[4]
    built_as = is_bridge(m) if tl_major() >= 4 else type(m).__name__ == "HookedTransformer"
    assert built_as and m in LOADED_MODELS
    assert m.cfg.normalization_type == "LN" and m.cfg.n_layers == 5 and m.cfg.n_heads == 4
    assert m.tokenizer.padding_side == "right" and m.cfg.tokenizer_prepends_bos is False
    info = model_info(m)
    assert info.model_id == "constructed:retrieval:K=4" and info.processing.fold_ln is False
    assert tasks_of(m) == ["pos1", "pos2", "pos3", "pos4"]
    again = build_constructed_model(FAMILY, ["pos1", "pos2", "pos3", "pos4"])  # no randomness anywhere
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), again.state_dict().values(), strict=True))


def test_attention_heads_do_what_they_were_built_for(models):
    m = models[3]
    prompt = build_prompts(FAMILY, tasks_of(m), counts=(2, 1, 2), n_prompts=1, seed=8)[0]
    ids = torch.tensor([encode(m.tokenizer, prompt.text)])
    patterns = {}

    def keep(act, hook):
        patterns[hook.name] = act[0].detach().clone()  # [head, query pos, key pos]

    with torch.inference_mode(), hooked(m, [(f"blocks.{la}.attn.hook_pattern", keep) for la in (1, 2, 3)]):
        forward_logits(m, ids)
    period, last = 11, ids.shape[1] - 1
    answers = [period * j + 10 for j in range(prompt.n_examples)]  # BOS, then "x1..x8>a\n" per example
    for j, a in enumerate(answers):  # layer 1: each answer finds the equal letter of its own string
        i = construction_of(m).positions[tasks_of(m).index(prompt.example_tasks[j])]
        assert patterns["blocks.1.attn.hook_pattern"][0, a, a - 10 + i] > 0.999
    uniform = patterns["blocks.2.attn.hook_pattern"][0, last, answers]  # layer 2: the query averages the answers
    torch.testing.assert_close(uniform, torch.full((len(answers),), 1 / len(answers)), atol=1e-6, rtol=0)
    for k, i in enumerate(construction_of(m).positions):  # layer 3: head k reads the query's letter i_k
        assert patterns["blocks.3.attn.hook_pattern"][k, last, last - 9 + i] > 0.999


def test_spec_parsing_and_its_errors():
    assert parse_spec("constructed:retrieval:K=4") == {
        "family": "retrieval",
        "tasks": ["pos1", "pos2", "pos3", "pos4"],
        "n_heads": None,
    }
    m = load_constructed("constructed:retrieval:tasks=pos8+pos2:heads=3")
    assert construction_of(m).positions == (8, 2) and m.cfg.n_heads == 3
    assert model_info(m).model_id == "constructed:retrieval:tasks=pos8+pos2:heads=3"
    bad = {
        "constructed:bias_add:K=2": "family: 'bias_add' has no construction; valid: retrieval",
        "constructed:retrieval:K=9": "valid: 1..8",
        "constructed:retrieval:K=0": "K must be an integer >= 1",
        "constructed:retrieval:K=2:tasks=pos1": "K or tasks, not both",
        "constructed:retrieval:depth=3": "options: K=, tasks=, heads=",
        "constructed:retrieval:tasks=pos1+pos9": "unknown task 'pos9'",
        "embedded": "must start with 'constructed:<family>'",
    }
    for spec, msg in bad.items():
        with pytest.raises(ValueError, match=msg):
            load_constructed(spec)
    with pytest.raises(ValueError, match="dtype"):
        build_constructed_model(tasks=["pos1"], dtype="float16")
    with pytest.raises(ValueError, match=r"n_ctx: must be an integer in 22\.\.2826"):
        build_constructed_model(tasks=["pos1"], n_ctx=4096)


COUNTS = {
    2: [(10, 10), (5, 15), (1, 19), (16, 4)],
    3: [(4, 8, 8), (12, 6, 2), (1, 1, 18)],
    4: [(5, 5, 5, 5), (2, 4, 6, 8), (1, 1, 1, 17), (9, 0, 3, 8)],
}


@pytest.mark.parametrize("k", [2, 3, 4])
def test_mixed_prompts_put_the_in_context_fraction_on_each_answer(models, k):
    m = models[k]
    for counts in COUNTS[k]:
        prompts = build_prompts(FAMILY, tasks_of(m), counts=counts, n_prompts=12, seed=sum(counts) + k)
        scores = score_answers(m, prompts)
        fractions = np.array(counts) / sum(counts)
        bound = probability_error_bound(k, m.cfg.d_vocab)  # the closed form's bound, for every K (about 2.2e-3)
        assert np.abs(scores.probs - fractions).max() <= bound, (counts, scores.probs.mean(0))
        assert scores.probs.sum(axis=1).min() >= 0.98
        np.testing.assert_allclose(scores.probs, predicted_probs(m, np.tile(fractions, (12, 1))), atol=1e-3)


def test_the_whole_context_down_to_one_example_in_185(models):
    m = models[2]
    prompts = build_prompts(FAMILY, tasks_of(m), counts=(1, 184), n_prompts=2, seed=6)
    scored = len(encode(m.tokenizer, prompts[0].text)) + 1  # BOS + prompt + answer
    assert scored <= m.cfg.n_ctx < scored + 11  # one more example would not fit
    np.testing.assert_allclose(score_answers(m, prompts).probs, np.tile([1 / 185, 184 / 185], (2, 1)), atol=1e-3)


def test_iid_prompts_follow_each_prompts_realised_fractions(models):
    m = models[3]
    prompts = build_prompts(FAMILY, tasks_of(m), proportions=[0.2, 0.3, 0.5], n_examples=15, n_prompts=16, seed=4,
                            sampling="iid")  # fmt: skip
    realised = np.array([p.fractions() for p in prompts])
    assert len({tuple(r) for r in realised}) > 1  # the prompts really differ
    assert np.abs(score_answers(m, prompts).probs - realised).max() <= TOL


def test_single_task_prompts_are_solved_with_the_newline_after_the_answer(models):
    m = models[4]
    for task in tasks_of(m):
        prompts = build_prompts(FAMILY, [task], n_examples=8, n_prompts=25, seed=7)
        assert greedy_correct(m, prompts, task).mean() >= 0.99
        assert score_answers(m, prompts, include_newline=True).probs.min() >= 0.99


def test_zero_shot_queries_spread_evenly_over_the_tasks(models):
    m = models[4]  # no answers in context: every letter of the query string votes once (docs/construction.md)
    probs = score_answers(m, zero_shot_prompts(FAMILY, tasks_of(m), n_prompts=8, seed=1)).probs
    np.testing.assert_allclose(probs, 0.25, atol=TOL)


def test_capacity_more_tasks_than_heads_is_refused():
    with pytest.raises(ValueError, match=r"5 tasks need 5 heads .* n_heads=4"):
        build_constructed_model(FAMILY, ["pos1", "pos2", "pos3", "pos4", "pos5"], n_heads=4)


def test_capacity_a_task_without_a_head_degrades_as_the_maths_predicts(models):
    m = models[2]  # heads for pos1, pos2 only; the prompts also hold pos3 examples
    counts = (4, 8, 8)
    prompts = build_prompts(FAMILY, ["pos1", "pos2", "pos3"], counts=counts, n_prompts=12, seed=3)
    with pytest.warns(UserWarning, match="built for pos1, pos2, not pos3"):  # said, and then shown to be right
        probs = score_answers(m, prompts).probs
    np.testing.assert_allclose(probs[:, :2], np.tile([1 / 3, 2 / 3], (12, 1)), atol=TOL)
    assert probs[:, 2].max() < 1e-6  # the third task's answer is never computed
    np.testing.assert_allclose(probs[:, :2], predicted_probs(m, np.tile([0.2, 0.4], (12, 1))), atol=1e-3)


@pytest.fixture(scope="module")
def single_vectors(models):
    m = models[3]
    return m, {t: task_vector(m, FAMILY, t, n_prompts=16, n_examples=12, seed=5) for t in tasks_of(m)}


def test_task_vectors_are_the_designed_directions(single_vectors):
    m, vecs = single_vectors
    dirs = task_directions(m)
    tasks = tasks_of(m)
    for k, t in enumerate(tasks):
        v = vecs[t]
        np.testing.assert_allclose((dirs @ v.at(TASK_LAYER)).numpy(), np.eye(len(tasks))[k], atol=1e-4)
        for t2 in tasks:
            diff = vecs[t].mean - vecs[t2].mean
            assert diff[: v.layers.index(TASK_LAYER)].abs().max() < 1e-4  # no task information before TASK_LAYER
            expected = dirs[k] - dirs[tasks.index(t2)]
            torch.testing.assert_close(diff[TASK_LAYER], expected, atol=1e-4, rtol=0)
        assert v.std[TASK_LAYER].max() < 1e-3  # the query's residual is the same for every prompt


def test_convex_patching_at_the_task_layer_is_linear_in_lambda(single_vectors):
    m, vecs = single_vectors
    lambdas = np.linspace(0, 1, 6)
    sweep = lambda_sweep(m, FAMILY, "pos1", "pos3", vecs["pos1"], vecs["pos3"], lambdas=lambdas,
                         layers=[TASK_LAYER], n_prompts=12, n_examples=10, seed=9)  # fmt: skip
    p_a = sweep.at_layer(TASK_LAYER)[:, 0]  # λ is the weight of task A: v(λ) = λ·v_A + (1 − λ)·v_B
    assert np.abs(p_a - lambdas).max() <= TOL
    assert np.abs(sweep.at_layer(TASK_LAYER)[:, 1] - (1 - lambdas)).max() <= TOL
    slope, intercept = np.polyfit(lambdas, p_a, 1)
    assert abs(slope - 1) < TOL and abs(intercept) < TOL
    assert np.abs(sweep.real_probs[:, 0] - sweep.real_fractions[:, 0]).max() <= TOL  # the real prompts agree
    assert np.allclose(sweep.real_fractions[:, 0], lambdas)


def test_best_layer_is_the_task_layer(single_vectors):
    m, vecs = single_vectors
    result = best_layer(m, FAMILY, "pos2", vecs["pos2"], n_prompts=10, n_examples=8, seed=2)
    assert result.best == TASK_LAYER and result.candidate_accuracy[TASK_LAYER] == 1.0
    assert result.icl_candidate_accuracy == 1.0 and result.p_correct[TASK_LAYER] > 0.99
    assert result.p_correct[TASK_LAYER + 1 :].max() < 0.9  # past the task layer the query's own answers are lost


@pytest.mark.parametrize("proportions", [[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
def test_decomposition_of_a_mixed_vector_gives_the_proportions(single_vectors, proportions):
    m, vecs = single_vectors
    tasks = tasks_of(m)
    held_out = held_out_seed(5)  # the basis comes from seed 5: the mixture from prompts it was not made from
    mixed = task_vector(m, FAMILY, tasks, proportions=proportions, n_prompts=16, n_examples=10, seed=held_out)
    basis = [vecs[t] for t in tasks]
    exact = decompose(mixed, basis, normalize=False, intercept=False, layers=None)
    np.testing.assert_allclose(exact.coefs[mixed.layers.index(TASK_LAYER)], proportions, atol=1e-3)
    paper = decompose(mixed, basis)  # unit-normalised, with an intercept: the paper's setting
    np.testing.assert_allclose(paper.coefs[mixed.layers.index(TASK_LAYER)], proportions, atol=1e-2)
    assert paper.residual_norm[mixed.layers.index(TASK_LAYER)] < 1e-3


def test_float64_build_matches_the_prediction_more_tightly():
    m = build_constructed_model(FAMILY, ["pos4", "pos6"], dtype="float64")
    prompts = build_prompts(FAMILY, ["pos4", "pos6"], counts=(3, 7), n_prompts=6, seed=0)
    probs = score_answers(m, prompts).probs
    np.testing.assert_allclose(probs, predicted_probs(m, np.tile([0.3, 0.7], (6, 1))), atol=1e-6)
    assert get_family(FAMILY).task("pos4").answer(prompts[0].query_input) == prompts[0].answers[0]


def test_load_model_serves_constructed_specs_and_the_study_compares_models(tmp_path, embedded_model):
    """``load_model("constructed:...")`` builds the model; ``interp figures construction`` draws it beside a trained
    one: the constructed curve is the diagonal, within the construction's tolerance."""
    from interp.models import load_model
    from interp.studies import run_studies

    m = load_model("constructed:retrieval:K=2", device="cpu")
    assert model_info(m).model_id == "constructed:retrieval:K=2"
    with pytest.raises(ValueError, match="spec"):
        load_model("constructed:nope:K=2")
    out = run_studies(["construction"], model=embedded_model, quick=True, out=tmp_path, progress=False)["construction"]
    assert (tmp_path / "construction" / "construction.json").is_file()
    assert (tmp_path / "construction" / "construction.html").is_file()
    built = [c for label, c in out["results"] if label == "constructed"]
    assert built and all(np.abs(c.a.mean - np.array(c.d)).max() <= TOL for c in built)
    assert {label for label, _ in out["results"]} == {"constructed", "embedded"}
