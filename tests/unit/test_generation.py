"""Decoding: the key-value-cached beam search equals the plain re-run-everything beam search; the exact top-k
answers equal brute-force enumeration and agree with teacher-forced scoring."""

import itertools

import numpy as np
import pytest
import torch

from interp.generation import complete_outputs, complete_outputs_batch, superposed_answers, terminator_token_ids
from interp.prompts import build_prompts
from interp.scoring import score_answers
from interp.tokenization import encode


def plain_beam(model, text, beam_width, max_new_tokens):
    """Reference beam search: re-runs prompt + continuation, one sequence per forward, log-softmax in float64."""
    tok = model.tokenizer
    ends = terminator_token_ids(tok, "\n")
    prefix = encode(tok, text)
    beams, finished = [([], 0.0)], []
    for _ in range(max_new_tokens):
        expanded = []
        for cont, score in beams:
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([prefix + cont]))[0, -1].double(), dim=-1)
            top = logp.topk(beam_width)
            expanded += [
                (cont + [t], score + lp) for lp, t in zip(top.values.tolist(), top.indices.tolist(), strict=True)
            ]
        expanded.sort(key=lambda b: -b[1])
        beams = []
        for cont, score in expanded:
            if cont[-1] in ends:
                finished.append((cont, score))
            elif len(beams) < beam_width:
                beams.append((cont, score))
    finished.sort(key=lambda b: -b[1])
    return [(tok.decode(c), s) for c, s in finished]


@pytest.fixture(scope="module")
def peaked_char_model(tiny_char_pair, char_tokenizer):
    """The tiny seeded char model, unembedding scaled and newline favoured: peaked next-token distributions in which
    answers of several lengths compete."""
    import copy

    from interp.models import hooked_from_hf

    hf = copy.deepcopy(tiny_char_pair[0])
    with torch.no_grad():
        hf.lm_head.weight.mul_(4.0)  # tied with the embedding: scales both, still a valid model
    model = hooked_from_hf(hf, char_tokenizer, model_id="tiny-char-peaked")
    with torch.no_grad():
        model.unembed.b_U[char_tokenizer.convert_tokens_to_ids("\n")] += 4.0
    return model


def test_cached_beam_search_equals_plain_beam_search(peaked_char_model):
    texts = [p.text for p in build_prompts("operands", ["sum"], n_examples=3, n_prompts=3, seed=4)]
    got = complete_outputs_batch(peaked_char_model, texts, beam_width=3, max_new_tokens=3, batch_size=2)
    for text, outs in zip(texts, got, strict=True):
        ref = plain_beam(peaked_char_model, text, 3, 3)
        assert [t for t, _ in outs] == [t for t, _ in ref]
        np.testing.assert_allclose([s for _, s in outs], [s for _, s in ref], atol=1e-5)
    single = complete_outputs(peaked_char_model, texts[0], beam_width=3, max_new_tokens=3)
    assert [t for t, _ in single] == [t for t, _ in got[0]]
    np.testing.assert_allclose([s for _, s in single], [s for _, s in got[0]], atol=1e-5)
    assert any(outs for outs in got)


def brute_force(model, text, max_len):
    """Every answer of at most ``max_len`` tokens (last token holds a newline, no earlier one), by full forwards."""
    tok = model.tokenizer
    ends = torch.tensor(sorted(t for t in terminator_token_ids(tok, "\n") if t < model.cfg.d_vocab))
    prefix = encode(tok, text)
    open_tokens = [t for t in range(model.cfg.d_vocab) if t not in set(ends.tolist())]
    answers = {}
    for n in range(max_len):
        partials = torch.tensor(list(itertools.product(open_tokens, repeat=n)), dtype=torch.long).reshape(
            -1 if n else 1, n
        )
        for lo in range(0, len(partials), 1024):
            chunk = partials[lo : lo + 1024]
            x = torch.cat([torch.tensor(prefix).expand(len(chunk), -1), chunk], dim=1)
            with torch.no_grad():
                logp = torch.log_softmax(model(x).double(), dim=-1)
            steps = torch.arange(n) + len(prefix) - 1
            base = logp[:, steps].gather(2, chunk[:, :, None])[..., 0].sum(dim=1) if n else torch.zeros(len(chunk))
            final = base[:, None] + logp[:, -1, ends]
            for i, p in enumerate(chunk.tolist()):
                for j, t in enumerate(ends.tolist()):
                    answers[(*p, t)] = float(final[i, j])
    return sorted(answers.items(), key=lambda kv: -kv[1])


def test_superposed_answers_equal_brute_force_enumeration(peaked_char_model):
    text, k, max_len = "\n3@4=", 6, 3  # a short prompt: brute force runs 26k sequences
    got = superposed_answers(peaked_char_model, text, k, max_len=max_len, batch_size=16)
    ref = brute_force(peaked_char_model, text, max_len)[:k]
    assert [a.tokens for a in got] == [tokens for tokens, _ in ref]
    np.testing.assert_allclose([a.log_prob for a in got], [lp for _, lp in ref], atol=1e-5)
    assert got[0].text.endswith("\n") and len({len(a.tokens) for a in got}) > 1  # several answer lengths compete


def test_superposed_answers_hold_the_task_answers_with_scoring_probabilities(embedded_model):
    """On mixed add1/add7 prompts, each task answer is in the top k with score_answers' probability, or provably
    below the k-th answer (the search is exact); both tasks' answers appear in the top k on at least one prompt
    (1 of 8 at seed 0: at 20 examples the embedded model mostly commits to one task)."""
    prompts = build_prompts("bias_add", ["add1", "add7"], proportions=[0.5, 0.5], n_examples=20, n_prompts=8, seed=0)
    scores = score_answers(embedded_model, prompts, include_newline=True)
    k, both = 4, 0
    for p, row in zip(prompts, scores.log_probs, strict=True):
        top = superposed_answers(embedded_model, p.text, k, max_len=4)
        assert len(top) == k and all(a.log_prob >= b.log_prob for a, b in itertools.pairwise(top))
        answers = {a.text: a.log_prob for a in top}
        for task_answer, lp in zip(p.answers, row, strict=True):
            if task_answer + "\n" in answers:
                assert answers[task_answer + "\n"] == pytest.approx(lp, abs=1e-5)
            else:
                assert lp < top[-1].log_prob + 1e-6
        both += all(a + "\n" in answers for a in p.answers)
    assert both >= 1, f"only {both} of 8 mixed prompts hold both task answers in their top {k}"


def test_superposed_answers_validate_arguments(tiny_char_model):
    for kwargs, match in [
        ({"k": 0}, "k: must be an integer >= 1"),
        ({"k": 2, "max_len": 0}, "max_len: must be an integer >= 1"),
        ({"k": 2, "terminator": ""}, "terminator: must be a non-empty string"),
        ({"k": 2, "terminator": "\u2603"}, "terminator: no token of the vocabulary contains"),
        ({"k": 2, "max_len": 10_000}, "max_len: prompt of .* exceeds the context"),
    ]:
        with pytest.raises(ValueError, match=match):
            superposed_answers(tiny_char_model, "\n3=", **kwargs)


@pytest.mark.parametrize("model_fixture", ["tiny_gpt2_model", "embedded_model"])
def test_fused_prompt_cache_equals_transformer_lens_cache(model_fixture, request, monkeypatch):
    """The fused route's own keys and values give the same next-token log-probs as TransformerLens's key-value cache,
    for repeated prompt rows, continuations of different lengths and empty ones mixed in one call."""
    import interp.generation as generation
    from interp.prompts import build_prompts
    from interp.tokenization import encode_batch

    model = request.getfixturevalue(model_fixture)
    texts = [p.text for p in build_prompts("operands", n_examples=5, n_prompts=3, seed=3)]
    ids = encode_batch(model.tokenizer, texts)
    rows, conts = [2, 0, 1, 0, 2], [[5, 6], [7], [], [8, 9, 10], [6]]
    fused = generation.PromptCache(model, ids)
    assert fused.fused
    got = fused.next_log_probs(rows, conts, batch_size=2)
    monkeypatch.setattr(generation, "fused_forward_exact", lambda model: False)
    plain = generation.PromptCache(model, ids)
    assert not plain.fused
    ref = plain.next_log_probs(rows, conts, batch_size=2)
    assert (got - ref).abs().max().item() < 1e-4
    assert torch.equal(got[2], fused.last_logp[1])  # empty continuation: the prompt's own next token
