"""Oracle: batched, padded, prefix-sharing scoring equals a plain per-candidate loop."""

import dataclasses

import numpy as np
import pytest
import torch

from interp.engines.plan import candidates_for
from interp.prompts import build_prompts
from interp.scoring import score_answers
from interp.tasks import Family, Task
from interp.tokenization import encode


def loop_log_prob(model, prompt_text: str, answer: str) -> float:
    """Reference: one unpadded forward pass of prompt+answer, gather each answer token's log-prob."""
    tok = model.tokenizer
    prompt_ids = encode(tok, prompt_text)
    full = encode(tok, prompt_text + answer)
    start = next((i for i, (a, b) in enumerate(zip(prompt_ids, full, strict=False)) if a != b), len(prompt_ids))
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([full]))[0].double(), dim=-1)
    return float(sum(logp[j - 1, full[j]] for j in range(start, len(full))))


def merge_family() -> Family:
    # "x=" followed by an answer starting with "=": GPT-2 merges "==" into one token.
    return Family(
        "merge_test",
        (Task("eq", lambda x: f"={x}"), Task("plain", lambda x: f"{x + 1}")),
        lambda rng: int(rng.integers(10, 99)),
        lambda x: f"v{x}",
        "=",
    )


@pytest.mark.parametrize("model_fixture", ["tiny_gpt2_model", "tiny_char_model", "gpt2_small_model"])
@pytest.mark.parametrize("include_newline", [False, True])
@pytest.mark.parametrize("route", ["packed", "cache"])
def test_batched_scoring_equals_unbatched_loop(model_fixture, include_newline, route, request, monkeypatch):
    """Both execution routes (answers packed after the prompt in one row; answers run from a key-value cache)."""
    if model_fixture == "gpt2_small_model" and (include_newline or route == "cache"):
        pytest.skip("one GPT-2-small-architecture case is enough (and costs ~20 s on 2 cores)")
    model = request.getfixturevalue(model_fixture)
    if route == "cache":
        import interp.engines as engines

        monkeypatch.setattr(engines, "absolute_positions", lambda model: False)
    families = ["operands", "country", "add_translate"] if model_fixture != "gpt2_small_model" else ["operands"]
    for fam in families:
        prompts = build_prompts(fam, n_examples=4, n_prompts=3, seed=5)
        scores = score_answers(model, prompts, include_newline=include_newline, batch_size=4)
        suffix = "\n" if include_newline else ""
        expected = np.array([[loop_log_prob(model, p.text, a + suffix) for a in p.answers] for p in prompts])
        np.testing.assert_allclose(scores.log_probs, expected, atol=1e-5, rtol=0)
        assert np.all(scores.log_probs < 0)


@pytest.fixture(scope="module")
def gpt2_small_model(gpt2_small_pair):
    return gpt2_small_pair[1]


def test_merged_answer_token_is_detected_and_scored(tiny_gpt2_model):
    tok = tiny_gpt2_model.tokenizer
    cands = candidates_for(tok, "\nv12=", ["=12", "13"])
    assert cands[0].merged and not cands[1].merged  # "==" is one GPT-2 token
    prompts = build_prompts(merge_family(), n_examples=2, n_prompts=2, seed=0)
    scores = score_answers(tiny_gpt2_model, prompts)
    assert scores.n_merged == 2
    expected = [[loop_log_prob(tiny_gpt2_model, p.text, a) for a in p.answers] for p in prompts]
    np.testing.assert_allclose(scores.log_probs, expected, atol=1e-5, rtol=0)


def test_probabilities_and_other(tiny_char_model):
    prompts = build_prompts("bias_add", ["add1", "add2"], n_examples=4, n_prompts=4, seed=0)
    s = score_answers(tiny_char_model, prompts)
    np.testing.assert_allclose(s.probs.sum(axis=1) + s.other, 1.0)
    assert s.probs.shape == (4, 2) and s.tasks == ("add1", "add2")


@pytest.mark.parametrize("route", ["packed", "cache"])
def test_single_token_candidates_share_one_row(tiny_char_model, monkeypatch, route):
    import interp.engines as engines
    import interp.engines.kv_cache as kv_cache
    import interp.engines.packed as packed

    seen = []
    name, module = ("packed_forward", packed) if route == "packed" else ("forward_resid", kv_cache)
    original = getattr(module, name)

    def counting(model, first, *args, **kwargs):
        seen.append(first.tokens.shape if route == "packed" else first.shape)
        return original(model, first, *args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    if route == "cache":
        monkeypatch.setattr(engines, "absolute_positions", lambda model: False)
    prompts = build_prompts("bias_add", n_examples=10, n_prompts=3)
    score_answers(tiny_char_model, prompts, batch_size=64)
    assert sum(shape[0] for shape in seen) == 3  # ten single-character answers per prompt, one row per prompt
    if route == "packed":  # no answer token is fed: each answer is read at the prompt's last position
        assert seen[0][1] == max(len(encode(tiny_char_model.tokenizer, p.text)) for p in prompts)


def test_context_overflow_raises_before_forward(tiny_gpt2_model, monkeypatch):
    import interp.engines.kv_cache as kv_cache
    import interp.engines.packed as packed

    monkeypatch.setattr(kv_cache, "forward_resid", lambda *a, **k: pytest.fail("forward pass ran"))
    monkeypatch.setattr(packed, "packed_forward", lambda *a, **k: pytest.fail("forward pass ran"))
    prompts = build_prompts("operands", n_examples=60, n_prompts=1)
    with pytest.raises(ValueError, match="prompts: longest sequence has .* context of 256"):
        score_answers(tiny_gpt2_model, prompts)


def test_mixed_task_sets_rejected(tiny_char_model):
    a = build_prompts("operands", ["sum", "copy_first"], n_examples=4, n_prompts=1)
    b = build_prompts("operands", ["sum", "copy_second"], n_examples=4, n_prompts=1)
    with pytest.raises(ValueError, match="same candidate tasks"):
        score_answers(tiny_char_model, a + b)


def test_greedy_correct_agrees_with_stepwise_greedy_decoding(tiny_char_model):
    from interp.scoring import greedy_correct

    prompts = build_prompts("operands", ["sum"], n_examples=3, n_prompts=6, seed=2)
    got = greedy_correct(tiny_char_model, prompts, "sum")
    tok = tiny_char_model.tokenizer
    for p, flag in zip(prompts, got, strict=True):
        ids = encode(tok, p.text)
        answer = encode(tok, p.text + p.answer("sum"))[len(ids) :]
        produced = []
        with torch.no_grad():
            for _ in answer:
                nxt = int(tiny_char_model(torch.tensor([ids + produced]))[0, -1].argmax())
                produced.append(nxt)
        assert flag == (produced == answer)


def test_warns_on_untrained_family_and_positions(embedded_model):
    import warnings

    from interp.models import trained_examples
    from interp.prompts import build_prompts
    from interp.scoring import score_answers

    n = trained_examples(embedded_model)["bias_add"]
    inside = build_prompts("bias_add", ["add1", "add7"], n_examples=n - 1, n_prompts=2, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score_answers(embedded_model, inside)  # within the trained positions: no warning
    past = build_prompts("bias_add", ["add1", "add7"], n_examples=n, n_prompts=2, seed=0)
    with pytest.warns(UserWarning, match=f"training prompts held {n}; the query sits at untrained positions"):
        score_answers(embedded_model, past)
    other = build_prompts("operands", ["copy_first", "sum"], n_examples=4, n_prompts=2, seed=0)
    with pytest.warns(UserWarning, match="not on 'operands'"):
        score_answers(embedded_model, other)


def test_greedy_correct_warns_like_score_answers(embedded_model):
    from interp.models import trained_examples
    from interp.prompts import build_prompts
    from interp.scoring import greedy_correct

    n = trained_examples(embedded_model)["bias_add"]
    past = build_prompts("bias_add", ["add1"], n_examples=n, n_prompts=2, seed=0)
    with pytest.warns(UserWarning, match="the query sits at untrained positions"):
        greedy_correct(embedded_model, past, "add1")


# --- HF-only references (issue 12, item 22) and precision (item 19) ------------------------------------------------


def hf_log_prob(hf, tok, prompt_text: str, answer: str) -> float:
    """Plain Hugging Face: one unbatched forward of BOS + prompt + answer, log-softmax in float64."""
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    prompt_ids = [bos] + tok(prompt_text, add_special_tokens=False)["input_ids"]
    full = [bos] + tok(prompt_text + answer, add_special_tokens=False)["input_ids"]
    start = next((i for i, (a, b) in enumerate(zip(prompt_ids, full, strict=False)) if a != b), len(prompt_ids))
    with torch.no_grad():
        logits = hf(torch.tensor([full])).logits[0]
    logp = torch.log_softmax(logits.double(), dim=-1)
    return float(sum(logp[j - 1, full[j]] for j in range(start, len(full))))


def test_scores_equal_hf_only_reference_on_embedded_model(embedded_model):
    from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

    from interp.models import hooked_from_hf, resolve_weights_dir

    _, d = resolve_weights_dir("embedded")
    hf = GPT2LMHeadModel.from_pretrained(str(d), local_files_only=True).eval()
    tok = PreTrainedTokenizerFast(tokenizer_file=str(d / "tokenizer.json"), bos_token="<|bos|>", eos_token="<|eos|>")
    prompts = build_prompts("bias_add", ["add1", "add7"], proportions=[0.5, 0.5], n_examples=12, n_prompts=4, seed=3)
    got = score_answers(embedded_model, prompts, include_newline=True, batch_size=3)
    expected = np.array([[hf_log_prob(hf, tok, p.text, a + "\n") for a in p.answers] for p in prompts])
    # float32: TransformerLens's processed weights alone (one unbatched forward, no cache) differ from HF by
    # 1.4e-5 at log p = -13.8, so the bound grows with |log p|; float64 below checks exactness to 1e-9.
    np.testing.assert_allclose(got.log_probs, expected, atol=1e-5, rtol=2e-6)
    assert np.exp(got.log_probs).max() > 0.5  # a trained model: not comparing noise floors
    hf64 = copy_to_float64(hf)
    model64 = hooked_from_hf(hf64, embedded_model.tokenizer, model_id="embedded-f64", dtype="float64")
    got64 = score_answers(model64, prompts, include_newline=True, batch_size=3)
    expected64 = [[hf_log_prob(hf64, tok, p.text, a + "\n") for a in p.answers] for p in prompts]
    np.testing.assert_allclose(got64.log_probs, expected64, atol=1e-9, rtol=0)


def test_scores_equal_hf_only_reference_on_gpt2_small_architecture(gpt2_small_pair, gpt2_small_dir):
    from transformers import AutoTokenizer

    hf, model = gpt2_small_pair
    tok = AutoTokenizer.from_pretrained(str(gpt2_small_dir), local_files_only=True)
    prompts = build_prompts("add_translate", n_examples=4, n_prompts=2, seed=1)  # number words: multi-token answers
    got = score_answers(model, prompts, include_newline=True, batch_size=2)
    assert max(len(c.ids) - c.start for c in candidates_for(model.tokenizer, prompts[0].text, prompts[0].answers)) > 1
    expected = [[hf_log_prob(hf, tok, p.text, a + "\n") for a in p.answers] for p in prompts]
    np.testing.assert_allclose(got.log_probs, expected, atol=1e-5, rtol=0)


def test_float64_model_agrees_with_float64_reference_within_1e9(tiny_gpt2_pair, gpt2_tokenizer):
    from interp.models import hooked_from_hf

    hf, _ = tiny_gpt2_pair
    hf64 = copy_to_float64(hf)
    model = hooked_from_hf(hf64, gpt2_tokenizer, model_id="tiny-gpt2-f64", dtype="float64")
    assert model.cfg.dtype == torch.float64
    prompts = build_prompts("add_translate", n_examples=4, n_prompts=3, seed=2)
    got = score_answers(model, prompts, include_newline=True, batch_size=2)
    expected = [[hf_log_prob(hf64, gpt2_tokenizer, p.text, a + "\n") for a in p.answers] for p in prompts]
    np.testing.assert_allclose(got.log_probs, expected, atol=1e-9, rtol=0)


def copy_to_float64(hf):
    import copy

    return copy.deepcopy(hf).to(torch.float64).eval()


def test_check_fits_ignores_the_last_answer_token(char_tokenizer):
    """The last answer token is never fed: a prompt whose fed tokens fill the context exactly is accepted."""
    from interp.models import hooked_from_hf
    from interp.tokenization import char_vocab
    from tests.conftest import seeded_gpt2

    prompts = build_prompts("bias_add", ["add1", "add2"], n_examples=3, n_prompts=1, seed=0)
    fed = max(c.n_fed for c in candidates_for(char_tokenizer, prompts[0].text, [a + "\n" for a in prompts[0].answers]))

    def model_with(n_ctx):
        hf = seeded_gpt2(4, n_layer=1, n_embd=32, n_head=2, n_positions=n_ctx, vocab_size=len(char_vocab()))
        return hooked_from_hf(hf, char_tokenizer, model_id=f"ctx{n_ctx}")

    s = score_answers(model_with(fed), prompts, include_newline=True)
    assert np.all(np.isfinite(s.log_probs))
    with pytest.raises(ValueError, match=f"longest sequence has {fed} tokens, more than the model's context"):
        score_answers(model_with(fed - 1), prompts, include_newline=True)


@pytest.mark.filterwarnings("ignore:.*merge their first token")  # the warning itself is the engines' (tested there)
def test_merged_answers_under_per_cell_interventions_equal_plain_scoring(tiny_gpt2_model):
    """Interventions run as prompt-pass hooks on the per-cell route (answers then run from the cache without them):
    an intervention that changes nothing gives the plain scores, also for answers merged into the prompt's last
    token."""
    import torch

    from interp.engines import score
    from interp.interventions import Intervention

    prompts = build_prompts(merge_family(), n_examples=2, n_prompts=3, seed=0)
    nothing = Intervention(0, "add", torch.zeros(tiny_gpt2_model.cfg.d_model))
    texts, answers = [p.text for p in prompts], [list(p.answers) for p in prompts]
    patched = score(tiny_gpt2_model, texts, answers, [nothing], batch_size=2)
    assert patched.route == "per_cell" and patched.merged.any()
    plain = score_answers(tiny_gpt2_model, prompts)
    np.testing.assert_allclose(patched.log_probs[0], plain.log_probs, atol=1e-5)


def test_batch_size_validated(tiny_char_model):
    prompts = build_prompts("bias_add", ["add1"], n_examples=2, n_prompts=1)
    with pytest.raises(ValueError, match="batch_size: must be an integer >= 1"):
        score_answers(tiny_char_model, prompts, batch_size=0)


def test_joined_candidates_equal_tokenising_prompt_and_answer_together(char_tokenizer, gpt2_tokenizer, monkeypatch):
    """The character tokenizer concatenates, so prompt and answers are tokenised apart and joined: same candidates."""
    import interp.engines.plan as scoring
    from interp.tokenization import concatenates

    assert concatenates(char_tokenizer) and not concatenates(gpt2_tokenizer)
    prompts = build_prompts("bias_add", n_examples=12, n_prompts=4, seed=1)
    texts, answers = [p.text for p in prompts], [[a + "\n" for a in p.answers] for p in prompts]
    joined = scoring.candidates_batch(char_tokenizer, texts, answers)
    monkeypatch.setattr(scoring, "concatenates", lambda tok: False)
    assert scoring.candidates_batch(char_tokenizer, texts, answers) == joined
    monkeypatch.undo()
    monkeypatch.setattr(scoring, "_joined_candidates", lambda *a: pytest.fail("special-token text must not be joined"))
    scoring.candidates_batch(char_tokenizer, [texts[0] + "<|bos|>"], answers[:1])


@pytest.mark.parametrize("model_fixture", ["tiny_char_model", "tiny_gpt2_model"])
def test_with_and_without_newline_in_one_pass_equals_two_calls(model_fixture, request):
    from interp.scoring import score_answers_alone_and_complete

    model = request.getfixturevalue(model_fixture)
    family = "bias_add" if model_fixture == "tiny_char_model" else "operands"
    prompts = build_prompts(family, n_examples=12, n_prompts=4, seed=1)
    alone, complete = score_answers_alone_and_complete(model, prompts)
    ref_alone, ref_complete = score_answers(model, prompts), score_answers(model, prompts, include_newline=True)
    assert not alone.include_newline and complete.include_newline
    np.testing.assert_allclose(alone.log_probs, ref_alone.log_probs, atol=1e-5)
    np.testing.assert_allclose(complete.log_probs, ref_complete.log_probs, atol=1e-5)
    assert (alone.n_merged, complete.n_merged) == (ref_alone.n_merged, ref_complete.n_merged)
    assert (complete.log_probs < alone.log_probs).all()  # the newline costs some probability


def test_identical_prompts_run_once(tiny_char_model, monkeypatch):
    """A prompt list with repeats (e.g. two proportions that round to the same example counts) scores each distinct
    prompt once and gives every copy the same numbers."""
    import interp.engines.packed as scoring

    prompts = build_prompts("bias_add", n_examples=12, n_prompts=3, seed=4)
    ref = score_answers(tiny_char_model, prompts).log_probs
    seen = []
    original = scoring.packed_forward

    def counting(model, batch, **kwargs):
        seen.append(int((batch.segments == 0).any(dim=1).sum()))
        return original(model, batch, **kwargs)

    monkeypatch.setattr(scoring, "packed_forward", counting)
    repeated = [prompts[0], prompts[1], prompts[0], prompts[2], prompts[1]]
    got = score_answers(tiny_char_model, repeated).log_probs
    assert sum(seen) == 3  # three distinct prompts, three rows
    np.testing.assert_allclose(got, ref[[0, 1, 0, 2, 1]], atol=1e-6)


def test_unembed_equals_the_module_with_and_without_an_output_bias(tiny_char_model):
    """``unembed`` skips a bias of zeros and adds any other: both equal TransformerLens's ``Unembed``."""
    from interp.engines.readout import unembed

    model = tiny_char_model
    x = torch.randn(5, model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    bias = model.unembed.b_U
    kept = bias.detach().clone()
    try:
        with torch.no_grad():
            for value in (0.0, 0.5):
                bias.fill_(value)
                bias[3] = 2.0 * value
                ref = model.unembed(x[None])[0]
                torch.testing.assert_close(unembed(model, x), ref, atol=1e-6, rtol=1e-6)
            assert not torch.allclose(unembed(model, x), x @ model.unembed.W_U)  # the bias was really added
    finally:
        with torch.no_grad():
            bias.copy_(kept)


def test_hand_built_model_warns_outside_what_it_was_built_for():
    """Issue 24: a K=2 retrieval construction (pos1, pos2) asked about pos8, or about bias_add, answered silently."""
    import warnings

    from interp.models import load_model

    model = load_model("constructed:retrieval:K=2", device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        score_answers(model, build_prompts("retrieval", ["pos1", "pos2"], n_prompts=2))
    with pytest.warns(UserWarning, match="built for pos1, pos2, not pos8.*constructed:retrieval:tasks=pos1\\+pos8"):
        score_answers(model, build_prompts("retrieval", ["pos1", "pos8"], n_prompts=2))
    with pytest.warns(UserWarning, match="computes retrieval tasks only, not 'bias_add'"):
        score_answers(model, build_prompts("bias_add", ["add1", "add2"], n_prompts=2))


def test_score_texts_equals_score_answers_on_the_same_strings_and_checks_the_same(embedded_model):
    """Issue 24: one's own prompt strings are scored like built prompts, with the context check and the warning for
    more examples than the model was trained on (71 example lines on a model trained on 24 gave no warning)."""
    import warnings

    from interp.scoring import score_texts

    prompts = build_prompts("bias_add", ["add1", "add7"], n_examples=10, n_prompts=6, seed=2)
    ours = score_texts(embedded_model, [p.text for p in prompts], [list(p.answers) for p in prompts], labels=["x", "y"])
    reference = score_answers(embedded_model, prompts)
    np.testing.assert_allclose(ours.log_probs, reference.log_probs, atol=1e-6, rtol=0)
    assert ours.tasks == ("x", "y")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        score_texts(embedded_model, ["3>4\n5>6\n7>"], [["8", "2"]])  # two example lines: trained positions
    long_prompt = build_prompts("bias_add", ["add1"], n_examples=71, n_prompts=1, seed=0)[0]
    with pytest.warns(UserWarning, match="up to 71 example lines, but this model's training prompts held at most 24"):
        score_texts(embedded_model, [long_prompt.text], [[long_prompt.answers[0]]])
    with pytest.raises(ValueError, match="more than the model's context"):
        score_texts(embedded_model, ["1>2\n" * 400 + "3>"], [["4"]])
    for bad_prompts, bad_answers, words in [
        ("3>", [["4"]], "^prompts: need a sequence of prompt strings, got str"),
        (["3>"], ["4"], "^answers: need one list of candidate strings per prompt"),
        (["3>", "4>"], [["4"], ["5", "6"]], "^answers: every prompt needs the same number"),
        (["3>"], [[""]], r"^answers\[0\]: need non-empty answer strings"),
    ]:
        with pytest.raises(ValueError, match=words):
            score_texts(embedded_model, bad_prompts, bad_answers)


def test_text_the_tokenizer_cannot_read_and_repeated_candidates_are_refused(tiny_char_model, tiny_gpt2_model):
    """Issue 36: an answer or a prompt mapped to the tokenizer's unknown token was scored (P = 1.9e-8) and a
    candidate given twice made P(other) = -0.999, with no word; both are refused, naming the argument."""
    from interp.capture import capture_resid
    from interp.scoring import score_texts

    m = tiny_char_model
    with pytest.raises(ValueError, match=r"^answers\[0\]\[0\]: '€' holds characters .* \('€', read as <\|unk\|>\)"):
        score_texts(m, ["3>4\n5>"], [["€", "6"]])
    with pytest.raises(ValueError, match=r"^prompts\[1\]: '3>€\\n5>' holds characters"):
        score_texts(m, ["3>4\n5>", "3>€\n5>"], [["7", "6"], ["7", "6"]])
    with pytest.raises(ValueError, match=r"^prompts\[0\]: '3€' holds characters"):
        capture_resid(m, ["3€"])
    with pytest.raises(ValueError, match=r"^answers\[0\]: candidate '6' is given more than once"):
        score_texts(m, ["3>4\n5>"], [["6", "6"]])
    p = build_prompts("operands", ["copy_first", "sum"], n_examples=2, n_prompts=1, seed=0)[0]
    with pytest.raises(ValueError, match=r"^answers\[0\]: candidate .* is given more than once"):
        score_answers(m, [dataclasses.replace(p, answers=(p.answers[0], p.answers[0]))])
    assert np.isfinite(score_texts(tiny_gpt2_model, ["3>4\n5>"], [["€", "6"]]).log_probs).all()  # byte-level: reads €


def test_an_intervention_that_overflows_the_forward_is_named_not_returned_as_nan(tiny_char_model):
    """Issue 36: an intervention that made the forward pass non-finite returned NaN probabilities."""
    from interp.interventions import add
    from interp.prompts import zero_shot_prompts
    from interp.sweeps import score_cells

    zs = zero_shot_prompts("operands", ["copy_first", "sum"], n_prompts=2, seed=0)
    d = tiny_char_model.cfg.d_model
    with pytest.raises(ValueError, match=r"^interventions\[1\]: the forward pass with .* gave non-finite"):
        score_cells(tiny_char_model, zs, [add(torch.ones(d), 0), add(torch.ones(d), 0, alpha=1e38)])
