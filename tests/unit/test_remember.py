"""Scores remembered inside ``remembering()``: reused only for the same model, weights and hook state."""

import dataclasses

import numpy as np
import pytest
import torch

import interp.engines as engines
from interp.hooks import hooked
from interp.prompts import build_prompts
from interp.remember import remembering
from interp.scoring import score_answers, score_answers_alone_and_complete


@pytest.fixture
def scored_texts(monkeypatch):
    """The prompt texts that reach a forward pass, per call."""
    calls: list[list[str]] = []
    real = engines.candidates_batch

    def spy(tokenizer, texts, answers):
        calls.append(list(texts))
        return real(tokenizer, texts, answers)

    monkeypatch.setattr(engines, "candidates_batch", spy)
    return calls


def test_only_prompts_not_scored_before_run_again(tiny_char_model, scored_texts):
    first = build_prompts("operands", ["copy_first", "sum"], n_examples=3, n_prompts=6, seed=1)
    later = build_prompts("operands", ["copy_first", "sum"], n_examples=3, n_prompts=9, seed=1)  # 6 shared + 3 new
    fresh = score_answers(tiny_char_model, later)
    with remembering():
        score_answers(tiny_char_model, first)
        got = score_answers(tiny_char_model, later)
    assert [len(c) for c in scored_texts] == [9, 6, 3]
    assert scored_texts[2] == [p.text for p in later[6:]]
    np.testing.assert_allclose(got.log_probs, fresh.log_probs, atol=1e-6, rtol=0)
    assert got.n_merged == fresh.n_merged


def test_answers_are_remembered_by_text_whatever_the_task_order_or_suffix(tiny_char_model, scored_texts):
    ab = build_prompts("operands", ["copy_first", "sum"], n_examples=3, n_prompts=4, seed=2)
    ba = [dataclasses.replace(p, tasks=p.tasks[::-1], answers=p.answers[::-1]) for p in ab]  # same texts
    with remembering():
        alone, complete = score_answers_alone_and_complete(tiny_char_model, ab)
        swapped = score_answers(tiny_char_model, ba)
        complete_again = score_answers(tiny_char_model, ab, include_newline=True)
    assert len(scored_texts) == 1  # everything after the first call was read back
    np.testing.assert_array_equal(swapped.log_probs, alone.log_probs[:, ::-1])
    np.testing.assert_array_equal(complete_again.log_probs, complete.log_probs)
    assert complete_again.include_newline and not swapped.include_newline


def test_nothing_is_kept_outside_the_block(tiny_char_model, scored_texts):
    prompts = build_prompts("operands", n_examples=3, n_prompts=3, seed=3)
    with remembering():
        score_answers(tiny_char_model, prompts)
    score_answers(tiny_char_model, prompts)
    score_answers(tiny_char_model, prompts)
    assert len(scored_texts) == 3


def test_a_weight_edited_in_place_is_seen(tiny_char_model, scored_texts):
    prompts = build_prompts("operands", n_examples=3, n_prompts=3, seed=4)
    w = tiny_char_model.blocks[0].mlp.W_out
    saved = w.detach().clone()
    try:
        with remembering():
            before = score_answers(tiny_char_model, prompts)
            with torch.no_grad():
                w.mul_(3.0)
            after = score_answers(tiny_char_model, prompts)
        with torch.no_grad():
            expected = score_answers(tiny_char_model, prompts)
    finally:
        with torch.no_grad():
            w.copy_(saved)
    assert len(scored_texts) == 3
    assert np.abs(after.log_probs - before.log_probs).max() > 1e-3
    np.testing.assert_allclose(after.log_probs, expected.log_probs, atol=1e-6, rtol=0)


def test_hooked_scores_are_neither_read_nor_kept(tiny_char_model, scored_texts):
    prompts = build_prompts("operands", n_examples=3, n_prompts=3, seed=5)

    def scale(resid, hook):
        return resid * 0.5

    with remembering():
        plain = score_answers(tiny_char_model, prompts)
        with hooked(tiny_char_model, [("blocks.0.hook_resid_post", scale)]):
            with_hook = score_answers(tiny_char_model, prompts)
        again = score_answers(tiny_char_model, prompts)
    assert len(scored_texts) == 2  # plain, hooked; the third read back the plain scores
    assert np.abs(with_hook.log_probs - plain.log_probs).max() > 1e-3
    np.testing.assert_array_equal(again.log_probs, plain.log_probs)


def test_studies_run_together_share_scores(tiny_char_model, scored_texts):
    from interp.remember import remembering as shared_results

    prompts = build_prompts("operands", n_examples=3, n_prompts=3, seed=6)
    with shared_results():
        score_answers(tiny_char_model, prompts)
        score_answers(tiny_char_model, prompts)
    assert len(scored_texts) == 1


def test_prompts_built_before_are_the_same_objects_and_equal_fresh_ones(monkeypatch):
    import interp.prompts as prompts_module

    built: list[int] = []
    real = prompts_module._one_prompt

    def spy(*args):
        built.append(args[-1])
        return real(*args)

    monkeypatch.setattr(prompts_module, "_one_prompt", spy)
    fresh = build_prompts("retrieval", ["pos1", "pos2"], proportions=[0.3, 0.7], n_prompts=5, seed=7)
    with remembering():
        first = build_prompts("retrieval", ["pos1", "pos2"], proportions=[0.3, 0.7], n_prompts=3, seed=7)
        again = build_prompts("retrieval", ["pos1", "pos2"], proportions=[0.3, 0.7], n_prompts=5, seed=7)
        other = build_prompts("retrieval", ["pos1", "pos2"], proportions=[0.7, 0.3], n_prompts=2, seed=7)
    assert built == [0, 1, 2, 3, 4] + [0, 1, 2] + [3, 4] + [0, 1]
    assert again == fresh and all(a is b for a, b in zip(again, first, strict=False))
    assert [p.example_tasks for p in other] != [p.example_tasks for p in again[:2]]
