"""The nnsight engine equals the reference method (interp.reference) on every kind of model, within the suite's one
tolerance; and its traces give the same numbers when run through nnsight's local simulation of a remote request.

The reference runs on the same weights loaded on the default engine (``load_model(d)``); the engine under test is
``load_model(d, engine="nnsight")``. Models: the embedded model, the hand-built model (built in code: its
TransformerLens module wrapped by ``nnsight.NNsight``), and a tiny random model of every family
(tests/equivalence/test_architectures.py). Measured max |Δ| against the reference are in the test names' docstrings
where they matter (float32 kernels adding in different orders).
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import torch
from test_architectures import BRIDGE_ONLY, FAMILIES, build_dir
from test_equivalence import RTOL, TOL
from versions import bridge_only

from interp import reference
from interp.capture import capture_resid
from interp.generation import PromptCache
from interp.heads import COMPONENTS, attention_scores, direct_logit_attribution, head_outputs, logit_components
from interp.interventions import Intervention, orthonormal_basis
from interp.models import load_model
from interp.prompts import build_prompts, zero_shot_prompts
from interp.scoring import score_answers
from interp.sweeps import score_cells
from interp.tokenization import encode

pytest.importorskip("nnsight", reason='the nnsight engine needs pip install -e ".[nnsight]"')


def _family(name: str, *, slow: bool):
    marks = ([bridge_only] if name in BRIDGE_ONLY else []) + ([pytest.mark.slow] if slow else [])
    return pytest.param(name, marks=marks)


#: Families whose hook points sit at module paths of their own (nn_points.FAMILY_PATHS): GPT-NeoX (no resid_mid),
#: Llama (the path Llama, Mistral, Qwen2/3, Gemma 1 and Llama 4 share), Gemma 3 (the norm in front of the MLP is not
#: the post-attention one), OLMo 2 (post-norm: the MLP reads the stream itself); GPT-2 is the embedded model's.
DISTINCT_PATHS = ("neox", "llama", "gemma3", "olmo2")
#: Every test on the embedded and the hand-built model; on every family's tiny model the lean test below (in the
#: default suite for DISTINCT_PATHS, the others with ``-m slow``), and every test with ``-m slow`` (the reference's
#: unbatched passes cost ~5-10 s per family and test on 2 cores).
KINDS = ["embedded", "constructed", *(_family(name, slow=True) for name in sorted(FAMILIES))]
FAMILY_KINDS = [_family(name, slow=name not in DISTINCT_PATHS) for name in sorted(FAMILIES)]


def load_pair(name: str, tmp_path_factory):
    """(reference model, nnsight model, family of its prompts, a task pair) for a kind of model."""
    if name == "embedded":
        spec, family, tasks = "embedded", "bias_add", ("add1", "add7")
    elif name == "constructed":
        spec, family, tasks = "constructed:retrieval:K=2", "retrieval", ("pos1", "pos2")
    else:
        d = tmp_path_factory.mktemp(name)
        build_dir(FAMILIES[name], d)
        spec, family, tasks = str(d), "operands", ("copy_first", "sum")
    return load_model(spec, device="cpu"), load_model(spec, device="cpu", engine="nnsight"), family, tasks


@pytest.fixture(scope="module", params=KINDS)
def pair(request, tmp_path_factory):
    return load_pair(request.param, tmp_path_factory)


@pytest.mark.filterwarnings("ignore:.*merge their first token")
@pytest.mark.parametrize("name", FAMILY_KINDS)
def test_every_family_equals_the_reference(name, tmp_path_factory):
    """Per family, lean: multi-token answers, the cells that read and write through each kind of module path
    (block input, block output, attention output projection, the MLP side's input), capture, next-token
    log-probs."""
    ref_model, model, family, tasks = load_pair(name, tmp_path_factory)
    prompts = build_prompts(family, list(tasks), n_examples=3, n_prompts=2, seed=1)
    got = score_answers(model, prompts, include_newline=True).log_probs
    ref = reference.answer_log_probs(ref_model, prompts, include_newline=True)
    np.testing.assert_allclose(got, ref, atol=TOL, rtol=RTOL)
    cells = [c for i, c in enumerate(cells_for(model)) if i in (4, 5, 6)]  # z, resid_post + resid_pre, resid_mid
    prompts = prompts[:1]
    got = score_cells(model, prompts, cells)
    ref = np.stack([reference.answer_log_probs(ref_model, prompts, [c] if isinstance(c, Intervention) else list(c))
                    for c in cells])  # fmt: skip
    np.testing.assert_allclose(got, ref, atol=TOL, rtol=RTOL)
    layers = list(range(model.cfg.n_layers))
    torch.testing.assert_close(capture_resid(model, prompts), reference.capture(ref_model, prompts, layers),
                               atol=TOL, rtol=RTOL)  # fmt: skip
    ids = encode(model.tokenizer, prompts[0].text)
    got = PromptCache(model, [ids]).next_log_probs([0], [[]])[0]
    torch.testing.assert_close(got.double(), torch.log_softmax(reference.run(ref_model, ids)[-1].double(), dim=-1),
                               atol=TOL, rtol=RTOL)  # fmt: skip


def cells_for(model) -> list:
    """One cell of every intervention kind: each mode, each residual hook point, a head's ``z``, two points at once."""
    g = torch.Generator().manual_seed(0)
    d, last = model.cfg.d_model, model.cfg.n_layers - 1
    mid = [] if model.paths.mid is None else [Intervention(0, "add", torch.randn(d, generator=g), hook="resid_mid")]
    return [
        Intervention(0, "replace", torch.randn(d, generator=g)),
        Intervention(last, "add", torch.randn(d, generator=g), alpha=0.5),
        Intervention(0, "subspace", torch.randn(d, generator=g), basis=orthonormal_basis(torch.randn(2, d, generator=g))),  # noqa: E501
        Intervention(0, "steer", torch.randn(d, generator=g), hook="resid_pre", alpha=2.0),
        Intervention(last, "ablate", torch.randn(model.cfg.d_head, generator=g), hook="z", head=1),
        (Intervention(0, "add", torch.randn(d, generator=g)), Intervention(last, "replace", torch.randn(d, generator=g),
                                                                           hook="resid_pre")),
        *mid,
    ]  # fmt: skip


@pytest.mark.parametrize("include_newline", [False, True])
def test_scoring_equals_the_reference(pair, include_newline):
    ref_model, model, family, tasks = pair
    prompts = build_prompts(family, list(tasks), n_examples=4, n_prompts=3, seed=1)
    got = score_answers(model, prompts, include_newline=include_newline).log_probs
    ref = reference.answer_log_probs(ref_model, prompts, include_newline=include_newline)
    np.testing.assert_allclose(got, ref, atol=TOL, rtol=RTOL)


def test_one_forward_and_the_cached_answer_pass_give_the_same_scores(pair, monkeypatch):
    """Run here, a batch folds its answers' pass into the prompts' forward (one 4-D mask); where that mask would be
    too large (and in a request) the answers run from the prompts' cache: both equal the reference, cells too."""
    from interp.engines import nn_traces

    ref_model, model, family, tasks = pair
    prompts = build_prompts(family, list(tasks), n_examples=4, n_prompts=3, seed=2)
    cells = cells_for(model)[:2]
    folded = score_answers(model, prompts, include_newline=True).log_probs, score_cells(model, prompts, cells)
    monkeypatch.setattr(nn_traces, "ONE_PASS_MAX_MASK", 0)
    cached = score_answers(model, prompts, include_newline=True).log_probs, score_cells(model, prompts, cells)
    ref = reference.answer_log_probs(ref_model, prompts, include_newline=True)
    for got in (folded[0], cached[0]):
        np.testing.assert_allclose(got, ref, atol=TOL, rtol=RTOL)
    np.testing.assert_allclose(folded[1], cached[1], atol=TOL, rtol=RTOL)


@pytest.mark.filterwarnings("ignore:.*merge their first token")
def test_every_intervention_kind_equals_the_reference(pair):
    ref_model, model, family, tasks = pair
    zs = zero_shot_prompts(family, list(tasks), n_prompts=2, seed=2)
    cells = cells_for(model)
    got = score_cells(model, zs, cells, batch_size=2)
    ref = np.stack([reference.answer_log_probs(ref_model, zs, [c] if isinstance(c, Intervention) else list(c))
                    for c in cells])  # fmt: skip
    np.testing.assert_allclose(got, ref, atol=TOL, rtol=RTOL)


@pytest.mark.parametrize("hook", ["resid_pre", "resid_mid", "resid_post"])
def test_capture_equals_the_reference(pair, hook):
    ref_model, model, family, tasks = pair
    if hook == "resid_mid" and model.paths.mid is None:
        with pytest.raises(ValueError, match="^hook: resid_mid does not exist"):
            capture_resid(model, build_prompts(family, list(tasks), n_prompts=1), hook=hook)
        return
    prompts = build_prompts(family, list(tasks), n_examples=4, n_prompts=3, seed=1)
    layers = list(range(model.cfg.n_layers))[::-1]  # any order: visited in the forward's order, returned as asked
    got = capture_resid(model, prompts, layers=layers, hook=hook, batch_size=2)
    torch.testing.assert_close(got, reference.capture(ref_model, prompts, layers, hook), atol=TOL, rtol=RTOL)


def test_head_outputs_and_their_attribution_equal_the_default_engine(pair):
    ref_model, model, family, tasks = pair
    prompts = build_prompts(family, list(tasks), n_examples=4, n_prompts=3, seed=1)
    torch.testing.assert_close(head_outputs(model, prompts), head_outputs(ref_model, prompts), atol=TOL, rtol=RTOL)
    got, ref = _both_or_refused(direct_logit_attribution, model, ref_model, prompts)
    if ref is not None:
        np.testing.assert_allclose(got, ref, atol=TOL, rtol=1e-4)
    got, ref = _both_or_refused(logit_components, model, ref_model, prompts)
    if ref is not None:
        assert set(got) == set(COMPONENTS)
        for part in COMPONENTS:  # embeddings, every head, attention biases, MLPs, biases: each from nnsight's points
            np.testing.assert_allclose(got[part], ref[part], atol=TOL, rtol=1e-4, err_msg=part)
    got, ref = attention_scores(model, seq_len=6, n_seqs=2), attention_scores(ref_model, seq_len=6, n_seqs=2)
    for name in ref:
        np.testing.assert_allclose(got[name], ref[name], atol=TOL)


def _both_or_refused(fn, model, ref_model, prompts):
    """``(fn on the engine, fn on the default engine)``, or ``(None, None)`` where the default engine refuses the
    model's blocks (sublayers normalised before they are added): the engine must refuse them with the same line."""
    try:
        ref = fn(ref_model, prompts)
    except ValueError as refused:
        with pytest.raises(ValueError) as also:
            fn(model, prompts)
        assert str(also.value) == str(refused)
        return None, None
    return fn(model, prompts), ref


def test_generation_equals_the_reference(pair):
    ref_model, model, family, tasks = pair
    prompts = build_prompts(family, list(tasks), n_examples=4, n_prompts=2, seed=1)
    ids = [encode(model.tokenizer, p.text) for p in prompts]
    conts = [encode(model.tokenizer, p.text + p.answers[0])[len(i) :][:2] for p, i in zip(prompts, ids, strict=True)]
    got = PromptCache(model, ids).next_log_probs([0, 1, 1], [*conts, []])
    ref = [
        torch.log_softmax(reference.run(ref_model, [*i, *c])[-1].double(), dim=-1)
        for i, c in zip(ids, conts, strict=True)
    ]
    ref.append(torch.log_softmax(reference.run(ref_model, ids[1])[-1].double(), dim=-1))
    torch.testing.assert_close(got.double(), torch.stack(ref), atol=TOL, rtol=RTOL)


# --- remote="local": nnsight's simulation of a remote request ------------------------------------------------------


@pytest.fixture(scope="module")
def local_and_remote():
    """The embedded model on the nnsight engine twice: traces run here, and through nnsight's local simulation."""
    return load_model("embedded", device="cpu", engine="nnsight"), load_model(
        "embedded", device="cpu", engine="nnsight", remote="local"
    )


def test_the_simulated_remote_run_gives_the_same_numbers_and_records_its_requests(local_and_remote):
    here, remote = local_and_remote
    prompts = build_prompts("bias_add", ["add1", "add7"], n_examples=4, n_prompts=3, seed=1)
    zs = zero_shot_prompts("bias_add", ["add1", "add7"], n_prompts=2, seed=2)
    remote.ledger.reset()
    pairs = [
        (score_answers(m, prompts, include_newline=True, batch_size=2).log_probs for m in (here, remote)),
        (score_cells(m, zs, cells_for(m), batch_size=4) for m in (here, remote)),
        (capture_resid(m, prompts, layers=[3, 1], batch_size=2).numpy() for m in (here, remote)),
        (head_outputs(m, prompts).numpy() for m in (here, remote)),
    ]
    scores = next(pairs[0])  # here the answers' pass is folded into the prompts' forward, a request keeps it apart:
    np.testing.assert_allclose(scores, next(pairs[0]), rtol=0, atol=1e-8)  # the same sums, rounded apart
    for a, b in pairs[1:]:
        np.testing.assert_array_equal(a, b)
    ledger = remote.ledger
    # one request per call, one trace per batch of rows: scoring 3 prompts in 2 batches, each with a second trace
    # for the answers' second tokens (from the prompts' cache); 14 cell rows (7 cells x 2 queries, one-token answers:
    # no second trace) in 4; 3 prompts captured in 2; one batch of head outputs
    assert ledger.requests == 4 and ledger.traces == 2 * 2 + 4 + 2 + 1
    assert 0 < ledger.largest_request_bytes <= ledger.request_bytes < 200_000
    assert here.ledger.request_bytes is None  # nothing serialised when traces run here


def test_a_trace_that_cannot_be_serialised_fails_in_one_line_before_it_runs(local_and_remote):
    _, remote = local_and_remote
    lock, ran = threading.Lock(), []
    with pytest.raises(ValueError, match=r"^remote: this trace cannot be serialised for a remote run \(") as err:
        with remote.session("test", 1):
            with remote.nn.trace(torch.tensor([[1, 5, 6]])):
                with lock:
                    ran.append(True)
    assert "\n" not in str(err.value) and not ran


def test_the_hand_built_model_is_refused_remote_in_one_line():
    with pytest.raises(ValueError, match=r"^remote: 'constructed:retrieval:K=2' is built in code"):
        load_model("constructed:retrieval:K=2", device="cpu", engine="nnsight", remote="local")


def test_each_engine_call_saves_only_slices(local_and_remote):
    """Nothing the size of the logits or of a batch's activations comes back: a request's saved values are the
    answer log-probs or the captured rows."""
    here, _ = local_and_remote
    from interp.engines import nn_traces

    saved: list = []
    real = nn_traces.answer_terms

    def spy(*args):
        out = real(*args)
        saved.append(out)
        return out

    prompts = build_prompts("bias_add", ["add1", "add7"], n_examples=4, n_prompts=4, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nn_traces.answer_terms = spy
        try:
            score_answers(here, prompts, batch_size=4)
        finally:
            nn_traces.answer_terms = real
    assert [tuple(t.shape) for pair in saved for t in pair] == [(8,), (8,)]  # 4 prompts x 2 one-token answers


def test_the_nnsight_engine_writes_a_store_equal_to_the_default_engines(tmp_path):
    """Issue 39 item 5: a store captured through nnsight's traces holds the default engine's numbers, and its
    manifest says which engine wrote it (so a store is never resumed by the other engine)."""
    from interp.store import capture_to
    from interp.store.manifest import StoreError

    prompts = build_prompts("bias_add", ["add2"], n_examples=4, n_prompts=6, seed=0)
    ref = load_model("embedded", device="cpu")
    model = load_model("embedded", device="cpu", engine="nnsight")
    a = capture_to(tmp_path / "a", ref, prompts, shard_size=4)
    b = capture_to(tmp_path / "b", model, prompts, shard_size=4)
    torch.testing.assert_close(b.load(), a.load(), atol=TOL, rtol=RTOL)
    assert (
        b.manifest.config["engine"]["model_engine"] == "nnsight" and "model_engine" not in a.manifest.config["engine"]
    )
    with pytest.raises((StoreError, ValueError), match="engine"):
        capture_to(tmp_path / "a", model, prompts, shard_size=4)  # the default engine's store: refused, not mixed
