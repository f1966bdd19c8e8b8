"""Generation collapse: the metrics on a toy next-token model whose answers are known exactly, then the study on the
embedded model (first-token and full-answer numbers equal teacher-forced scoring; samples match the exact odds)."""

import json

import numpy as np
import pytest
import torch
from golden import assert_close_tree

from interp.prompts import build_prompts
from interp.scoring import score_answers
from interp.studies.generation_collapse import (
    GenerationCollapseConfig,
    answer_token_ids,
    collapse_metrics,
    run,
    sample_completions,
)

NL, V = 10, 11  # toy vocabulary: digits 0-9 and a newline


class ToyLM:
    """Next-token distributions set by hand per prefix (anything not listed ends with the newline)."""

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]]):
        self.table = table

    def next_log_probs(self, prompt_rows, conts):
        out = torch.full((len(conts), V), -torch.inf, dtype=torch.float64)
        for r, cont in enumerate(conts):
            for token, p in self.table.get(tuple(cont), {NL: 1.0}).items():
                out[r, token] = float(np.log(p))
        return out


# Task A answers "34\n", task B "56\n". Token 1: 3 (0.6), 5 (0.3), 7 (0.1). After 3: 4 (0.9) or 6 (0.1);
# after 5: 6 (0.8) or 4 (0.2); then the newline.
COMMITTING = ToyLM({(): {3: 0.6, 5: 0.3, 7: 0.1}, (3,): {4: 0.9, 6: 0.1}, (5,): {6: 0.8, 4: 0.2}})
A, B = (3, 4, NL), (5, 6, NL)


def metrics(lm, answers, n=4000, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return collapse_metrics(lm, 0, answers, {NL}, n_samples=n, max_new_tokens=4, generator=gen)


def test_toy_superposition_at_token_one_and_commitment_after():
    m = metrics(COMMITTING, [A, B])
    np.testing.assert_allclose(m["first"], [0.6, 0.3], atol=1e-12)
    assert m["first_other"] == pytest.approx(0.1)
    np.testing.assert_allclose(m["continuation"], [[0.9, 0.1], [0.2, 0.8]], atol=1e-12)
    np.testing.assert_allclose(m["full"], [0.54, 0.24], atol=1e-12)
    assert m["greedy_commit"] == pytest.approx(0.9) and m["greedy_none"] == 0.0  # greedy token 1 is task A's
    assert m["sampled_commit"] == pytest.approx((0.54 + 0.24) / 0.9)
    # 4000 samples: the standard error of a fraction is <= 0.008; allow 4 of them
    np.testing.assert_allclose(m["sampled"], [0.54, 0.24], atol=0.032)
    assert m["sampled_hybrid"] == pytest.approx(0.06 + 0.06, abs=0.032)  # "36\n" and "54\n"
    assert m["sampled_none"] == pytest.approx(1 - 0.78, abs=0.032)  # hybrids and "7\n"


def test_toy_greedy_token_of_no_task_and_shared_first_token():
    lm = ToyLM({(): {7: 0.5, 3: 0.3, 5: 0.2}, (3,): {4: 0.5, 6: 0.5}})
    m = metrics(lm, [A, B], n=200)
    assert m["greedy_commit"] == 0.0 and m["greedy_none"] == 1.0
    # tasks sharing token 1 ("34" and "36"): its mass is split, and finishing either answer counts as committing
    m = metrics(lm, [A, (3, 6, NL)], n=200)
    np.testing.assert_allclose(m["first"], [0.15, 0.15], atol=1e-12)
    assert m["first_other"] == pytest.approx(0.7)
    assert m["greedy_commit"] == 0.0  # greedy is 7
    lm.table[()] = {3: 0.8, 7: 0.2}
    m = metrics(lm, [A, (3, 6, NL)], n=200)
    assert m["greedy_commit"] == pytest.approx(1.0) and m["sampled_commit"] == pytest.approx(1.0)
    assert m["sampled_hybrid"] == 0.0  # 3 then 6 is task B's answer, not a hybrid


def test_sampling_is_seeded_and_stops_at_the_terminator():
    runs = [sample_completions(COMMITTING, 0, 50, {NL}, 4, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert runs[0] == runs[1]
    assert all(s[-1] == NL for s in runs[0]) and len(runs[0]) == 50
    other = sample_completions(COMMITTING, 0, 50, {NL}, 4, torch.Generator().manual_seed(4))
    assert other != runs[0]
    cut = sample_completions(COMMITTING, 0, 20, {NL}, 1, torch.Generator().manual_seed(0))
    assert all(len(s) == 1 and s[0] != NL for s in cut)  # unfinished after one token: kept, counted as no answer


def test_answer_tokens_follow_the_prompt(char_tokenizer):
    prompt, answers = answer_token_ids(char_tokenizer, "3>4\n5>", ["6\n", "12\n"])
    assert prompt[0] == char_tokenizer.bos_token_id and len(prompt) == 7
    assert [char_tokenizer.decode(list(a)) for a in answers] == ["6\n", "12\n"]


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="n_samples"):
        GenerationCollapseConfig(n_samples=0).validate()
    with pytest.raises(ValueError, match="proportions"):
        GenerationCollapseConfig(proportions=[(0.5, 0.2)]).validate()
    with pytest.raises(ValueError, match="task"):
        GenerationCollapseConfig(settings=[("bias_add", ("add1", "nope"))]).validate()
    with pytest.raises(ValueError, match=r"^superposition_threshold: must be a number in \(0, 1\)"):
        GenerationCollapseConfig(superposition_threshold=0).validate()


def test_quick_study_on_the_embedded_model_agrees_with_scoring(tmp_path, embedded_model):
    cfg = GenerationCollapseConfig.quick()
    out = run(embedded_model, cfg, tmp_path, progress=False)
    (curve,) = out["results"]
    fam, tasks = cfg.settings[0]
    for i, props in enumerate(cfg.proportions):
        prompts = build_prompts(fam, list(tasks), proportions=props, n_examples=cfg.n_examples,
                                n_prompts=cfg.n_prompts, seed=cfg.seed)  # fmt: skip
        first = score_answers(embedded_model, prompts).probs  # single-character answers: token 1 is the answer
        full = score_answers(embedded_model, prompts, include_newline=True).probs
        np.testing.assert_allclose(curve.first_token[i], first.mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(curve.full_answer[i], full.mean(axis=0), atol=1e-5)
        # sampled shares follow the exact odds: 6 prompts x 100 samples, standard error <= 0.02
        np.testing.assert_allclose(curve.sampled[i], curve.full_answer[i], atol=0.08)
    assert curve.answer_tokens == (2, 2, 2)
    numbers = json.loads((tmp_path / "generation_collapse.json").read_text())
    stored = dict(numbers["curves"][0])
    precondition = stored.pop("precondition")  # beside the curve: is there superposition to collapse, per point
    assert_close_tree(json.loads(json.dumps(curve.to_dict())), stored, atol=1e-9)  # 10 digits kept
    assert [p["superposed"] for p in precondition] == [
        bool(min(row) >= cfg.superposition_threshold) for row in curve.first_token
    ]
    assert precondition[0]["superposed"] is False  # all add7 examples: add1 gets none of the first token
    assert type(curve).from_dict(stored).tasks == curve.tasks
    assert (tmp_path / "generation_collapse.html").is_file()


def test_committed_numbers_load_as_results_and_plot():
    from pathlib import Path

    from interp.plots import generation_collapse_figure
    from interp.results import CollapseCurve

    path = Path(__file__).resolve().parents[2] / "figures" / "generation_collapse" / "generation_collapse.json"
    numbers = json.loads(path.read_text())
    stored = [{k: v for k, v in c.items() if k != "precondition"} for c in numbers["curves"]]  # written beside it
    curves = [CollapseCurve.from_dict(c) for c in stored]
    assert [c.to_dict() for c in curves] == stored
    assert "\n" not in repr(curves[0]) and "[5×2]" in repr(curves[0])
    frame = curves[0].to_frame()
    assert {"point", "tasks", "first_token", "sampled"} <= set(frame.columns)
    assert len(generation_collapse_figure(curves, title="t").data) > 0
    for c in curves:  # sampled shares follow the exact probabilities of the whole answers (40 x 200 samples)
        np.testing.assert_allclose(c.sampled, c.full_answer, atol=0.03)
