"""Oracle: the fused-attention forward equals TransformerLens's own forward on every model kind the toolkit ships."""

import pytest
import torch

from interp.construction import load_constructed
from interp.engines.exact import fused_forward_exact
from interp.engines.fused import fused_resid
from interp.engines.packed import block_mask
from interp.hooks import final_resid, hooked
from interp.prompts import build_prompts
from interp.tokenization import encode_batch, pad_id, right_pad


def tokens_for(model, family: str, n: int = 5, n_examples: int = 10) -> torch.Tensor:
    texts = [p.text for p in build_prompts(family, n_examples=n_examples, n_prompts=n, seed=2)]
    return right_pad(encode_batch(model.tokenizer, texts), pad_id(model.tokenizer))


@pytest.mark.parametrize(
    ("model_fixture", "family"),
    [("tiny_gpt2_model", "add_translate"), ("tiny_char_model", "operands"), ("embedded_model", "retrieval")],
)
def test_fused_forward_equals_transformer_lens(model_fixture, family, request):
    model = request.getfixturevalue(model_fixture)
    assert fused_forward_exact(model)
    x = tokens_for(model, family)
    with torch.inference_mode():
        ref = final_resid(model, x)
        got = fused_resid(model, x)
    scale = ref.abs().max().item()
    assert (got - ref).abs().max().item() <= 1e-5 * max(scale, 1.0)


def test_fused_forward_equals_transformer_lens_on_the_constructed_model():
    model = load_constructed("constructed:retrieval:K=2")
    assert fused_forward_exact(model)
    x = tokens_for(model, "retrieval", n=3, n_examples=10)
    with torch.inference_mode():
        ref = final_resid(model, x)
        got = fused_resid(model, x)
    assert (got - ref).abs().max().item() <= 1e-5 * max(ref.abs().max().item(), 1.0)


def test_positions_and_visibility_are_honoured(tiny_char_model):
    """Row ``[a b c | d]`` with ``d`` at position 2 seeing only ``a b`` equals the plain forward of ``[a b d]``."""
    model = tiny_char_model
    x = tokens_for(model, "operands", n=1)[:, :6]
    alone = torch.cat([x[:, :5], x[:, 5:6]], dim=1)
    packed = torch.cat([x[:, :5], x[:, 4:5], x[:, 5:6]], dim=1)  # a decoy token in its own segment before d
    positions = torch.tensor([[0, 1, 2, 3, 4, 5, 5]])
    segments = torch.tensor([[0, 0, 0, 0, 0, 1, 2]])
    with torch.inference_mode():
        ref = final_resid(model, alone)
        got = fused_resid(model, packed, positions=positions, visible=block_mask(segments))
    assert (got[0, -1] - ref[0, -1]).abs().max().item() < 1e-5
    assert (got[0, :5] - ref[0, :5]).abs().max().item() < 1e-5


def test_not_used_where_it_would_differ(tiny_char_model):
    with hooked(tiny_char_model, [("blocks.0.hook_resid_post", lambda act, hook: act)]):
        assert not fused_forward_exact(tiny_char_model)  # a user's hook must run: TransformerLens's forward is used
    assert fused_forward_exact(tiny_char_model)


@pytest.mark.parametrize("model_fixture", ["tiny_gpt2_model", "embedded_model"])
def test_keep_returns_the_full_forward_at_those_places(model_fixture, request):
    """``keep`` runs the last block at a few places only; the residuals there equal the full forward's (repeats and
    any order allowed), also with the packed layout's visibility mask and causal prefix."""
    model = request.getfixturevalue(model_fixture)
    x = tokens_for(model, "operands" if model_fixture == "embedded_model" else "add_translate", n=4)
    rows = torch.tensor([3, 0, 0, 2, 1, 0])
    cols = torch.tensor([5, x.shape[1] - 1, 0, 7, 2, x.shape[1] - 1])
    segments = torch.zeros_like(x)
    segments[:, -3:] = torch.tensor([1, 1, 2])  # two "suffixes" at the end of each row
    with torch.inference_mode():
        full = fused_resid(model, x)
        got = fused_resid(model, x, keep=(rows, cols))
        masked = fused_resid(model, x, visible=block_mask(segments), causal_prefix=x.shape[1] - 3)
        masked_kept = fused_resid(
            model, x, visible=block_mask(segments), causal_prefix=x.shape[1] - 3, keep=(rows, cols)
        )
    assert got.shape == (len(rows), model.cfg.d_model)
    assert (got - full[rows, cols]).abs().max().item() < 1e-5
    assert (masked_kept - masked[rows, cols]).abs().max().item() < 1e-5
    assert (masked[:, -1] - full[:, -1]).abs().max().item() > 1e-3  # the mask did change what the last token sees
    with torch.inference_mode():  # every query inside the causal prefix: the mask has nothing left to act on
        whole_prefix = fused_resid(model, x, visible=block_mask(segments), causal_prefix=x.shape[1])
    assert (whole_prefix - full).abs().max().item() < 1e-5


def test_heads_and_mlps_that_write_nothing_are_skipped_exactly(tiny_char_model):
    """A head with zero output weights and an MLP with zero output weights add exactly nothing: the fused forward
    skips them and still equals TransformerLens's forward; changing the weights back is noticed."""
    import copy

    from interp.engines.block_weights import attention_weights

    model = copy.deepcopy(tiny_char_model)
    x = tokens_for(model, "operands", n=3)
    assert attention_weights(model.blocks[0].attn).live is None  # every head writes
    with torch.no_grad():
        model.blocks[0].attn.W_O[1] = 0.0
        model.blocks[-1].attn.W_V[0] = 0.0
        model.blocks[-1].attn.b_V[0] = 0.0
        model.blocks[1 % model.cfg.n_layers].mlp.W_out.zero_()
    assert attention_weights(model.blocks[0].attn).live.tolist() == [h for h in range(model.cfg.n_heads) if h != 1]
    with torch.inference_mode():
        ref = final_resid(model, x)
        got = fused_resid(model, x)
        kept = fused_resid(model, x, keep=(torch.tensor([0, 2]), torch.tensor([4, 9])))
    assert (got - ref).abs().max().item() < 1e-5
    assert (kept - ref[[0, 2], [4, 9]]).abs().max().item() < 1e-5
    with torch.no_grad():
        model.blocks[0].attn.W_O.copy_(tiny_char_model.blocks[0].attn.W_O)
    assert attention_weights(model.blocks[0].attn).live is None


def test_weights_made_under_inference_mode_work(tiny_char_model):
    """Weights created under ``torch.inference_mode`` keep no version counter: the fused forward still runs (and
    sees a weight change) without caching what it derives from them."""
    import copy

    with torch.inference_mode():
        model = copy.deepcopy(tiny_char_model)
        for p in model.parameters():
            p.data = p.data.clone()  # inference tensors now
        assert model.blocks[0].attn.W_O.is_inference()
        x = tokens_for(model, "operands", n=2)
        ref = final_resid(tiny_char_model, x)
        assert (fused_resid(model, x) - ref).abs().max().item() < 1e-5
        model.blocks[0].attn.W_O.zero_()
        assert (fused_resid(model, x) - ref).abs().max().item() > 1e-4


def fresh_tiny_char(char_tokenizer):
    """A model of the ``tiny_char_model`` kind that this test alone holds (it edits the weights)."""
    from conftest import seeded_gpt2

    from interp.models import hooked_from_hf
    from interp.tokenization import char_vocab

    hf = seeded_gpt2(1, n_layer=2, n_embd=64, n_head=4, n_positions=512, vocab_size=len(char_vocab()))
    return hooked_from_hf(hf, char_tokenizer, model_id="tiny-char-edited")


def in_graph(module, forward) -> set[str]:
    """The parameters of ``module`` that ``forward()`` (autograd on) puts in the graph, by name; never empty."""
    module.zero_grad(set_to_none=True)
    forward().square().sum().backward()
    reached = {name for name, p in module.named_parameters() if p.grad is not None}
    assert reached
    return reached


def test_derived_weights_follow_edits_and_autograd(char_tokenizer):
    """What the fused forward derives from the weights (side-by-side Q/K/V, live heads, dead MLPs) is rebuilt when a
    weight changes in place, works after being built under inference mode, and never cuts gradients."""
    model = fresh_tiny_char(char_tokenizer)
    x = tokens_for(model, "operands", n=2)
    with torch.inference_mode():
        before = fused_resid(model, x)  # builds the cache under inference mode
    with torch.no_grad():
        model.blocks[0].attn.W_Q.mul_(0.5)
        ref = final_resid(model, x)
    with torch.inference_mode():
        after = fused_resid(model, x)
    assert (after - ref).abs().max().item() < 1e-5 and (after - before).abs().max().item() > 1e-4
    # autograd on: the weights stay in the graph, the same ones the model's own forward trains
    assert in_graph(model.blocks[0].attn, lambda: fused_resid(model, x)) == in_graph(
        model.blocks[0].attn, lambda: final_resid(model, x)
    )


def test_neurons_that_write_nothing_are_skipped_and_slices_add_up(char_tokenizer, monkeypatch):
    """Neurons whose output weights are zero are dropped exactly; an MLP run a few tokens at a time (slices smaller
    than the batch) adds up to the whole; gradients still reach every weight."""
    import interp.engines.fused as fused
    from interp.engines.block_weights import mlp_weights

    model = fresh_tiny_char(char_tokenizer)
    mlp = model.blocks[0].mlp
    with torch.no_grad():
        mlp.W_out[::3] = 0.0  # a third of the neurons write nothing
    assert fused.plain_mlp_activation(mlp) is not None  # the fast path runs this MLP (either generation)
    with torch.no_grad():
        w_in, _, w_out, _ = mlp_weights(mlp)
    assert w_in.shape[1] == w_out.shape[0] == mlp.W_out.shape[0] - len(range(0, mlp.W_out.shape[0], 3))
    monkeypatch.setattr(fused, "MLP_SLICE_BYTES", 7 * mlp.W_in.shape[1] * 4)  # 7 tokens per slice
    x = tokens_for(model, "operands", n=3)
    with torch.inference_mode():
        ref = final_resid(model, x)
        got = fused_resid(model, x)
    assert x.numel() > 7 and (got - ref).abs().max().item() < 1e-5
    assert in_graph(mlp, lambda: fused_resid(model, x)) == in_graph(mlp, lambda: final_resid(model, x))


def test_continuation_splits_at_any_layer_and_equals_the_full_forward(tiny_char_model):
    """``fused_continue`` from the prompts' own keys and values equals one forward of prompt + continuation; run
    to layer ``s`` and resumed from that residual (``resid``, ``start_at_layer``) it gives the same, and leaves
    the residual it was given untouched."""
    from interp.engines.fused import fused_continue

    model = tiny_char_model
    texts = [p.text for p in build_prompts("letters", n_examples=4, n_prompts=3, seed=1)]
    ids = encode_batch(model.tokenizer, texts)
    prompts, tails = [x[:-2] for x in ids], torch.tensor([x[-2:] for x in ids])
    lengths = torch.tensor([len(x) for x in prompts])
    assert len(set(lengths.tolist())) > 1  # right padding in the cache
    rows = torch.tensor([0, 2, 1, 2])  # repeats allowed
    with torch.inference_mode():
        kv: list = []
        fused_resid(model, right_pad(prompts, pad_id(model.tokenizer)), keys_values=kv)
        whole = fused_continue(model, kv, lengths, rows, tails[rows])
        ref = torch.stack([final_resid(model, torch.tensor([ids[r]]))[0, -2:] for r in rows])
        assert (whole - ref).abs().max().item() <= 1e-5 * max(ref.abs().max().item(), 1.0)
        for s in range(model.cfg.n_layers + 1):
            below = fused_continue(model, kv, lengths, rows, tails[rows], stop_at_layer=s)
            kept = below.clone()
            resumed = fused_continue(model, kv, lengths, rows, resid=below, start_at_layer=s)
            assert torch.equal(below, kept)
            assert (resumed - whole).abs().max().item() <= 1e-5 * max(whole.abs().max().item(), 1.0)


def test_continuation_rejects_ambiguous_inputs(tiny_char_model):
    from interp.engines.fused import fused_continue

    model = tiny_char_model
    kv: list = []
    x = torch.tensor([[3, 4, 5]])
    with torch.inference_mode():
        fused_resid(model, x, keys_values=kv)
        resid = torch.zeros(1, 1, model.cfg.d_model)
        with pytest.raises(ValueError, match="exactly one of tokens and resid"):
            fused_continue(model, kv, torch.tensor([3]), torch.tensor([0]), x[:, :1], resid=resid)
        with pytest.raises(ValueError, match="exactly one of tokens and resid"):
            fused_continue(model, kv, torch.tensor([3]), torch.tensor([0]))
        with pytest.raises(ValueError, match="start_at_layer"):
            fused_continue(model, kv, torch.tensor([3]), torch.tensor([0]), x[:, :1], start_at_layer=1)
        bad = [
            ((kv[:1], torch.tensor([3]), torch.tensor([0])), {"resid": resid}, "keys_values: has 1 layers"),
            ((kv, torch.tensor([3]), torch.tensor([1])), {"resid": resid}, "rows: must index prompt_lengths"),
            ((kv, torch.tensor([4]), torch.tensor([0])), {"resid": resid}, "prompt_lengths: at most the cached"),
            ((kv, torch.tensor([3]), torch.tensor([0, 0])), {"resid": resid}, r"resid: need \[len\(rows\)=2"),
        ]
        for args, kwargs, message in bad:
            with pytest.raises(ValueError, match=message):
                fused_continue(model, *args, **kwargs)
        with pytest.raises(ValueError, match="keep, keys_values"):
            fused_resid(model, x, keys_values=[], keep=(torch.tensor([0]), torch.tensor([2])))
        for start, stop in ((1, 0), (0, model.cfg.n_layers + 1), (-1, None)):
            with pytest.raises(ValueError, match="start_at_layer, stop_at_layer"):
                fused_continue(model, kv, torch.tensor([3]), torch.tensor([0]), resid=resid, start_at_layer=start,
                               stop_at_layer=stop)  # fmt: skip


def test_block_weights_are_kept_until_a_parameter_changes(char_tokenizer, monkeypatch):
    """What the fused forward reads of an attention is gathered once and kept (no weight property read per call),
    regathered after any in-place change of any of the module's parameters, never kept for layers above
    ``QKV_CACHE_MAX`` or with autograd on (the weights must be in the graph)."""
    from interp.engines import block_weights
    from interp.engines.block_weights import attention_weights

    model = fresh_tiny_char(char_tokenizer)
    attn = model.blocks[0].attn
    with torch.no_grad():
        first = attention_weights(attn)
        assert attention_weights(attn) is first
        for param in attn.parameters():  # whichever parameter changes, in place
            param.mul_(1.0)
            again = attention_weights(attn)
            assert again is not first and torch.equal(again.w_qkv, first.w_qkv)
            first = again
        monkeypatch.setattr(block_weights, "QKV_CACHE_MAX", 0)
        assert attention_weights(attn) is not attention_weights(attn)
    with torch.enable_grad():
        assert attention_weights(attn).w_qkv.requires_grad
    with torch.enable_grad(), block_weights.constant_weights():  # a gradient with respect to activations only
        monkeypatch.setattr(block_weights, "QKV_CACHE_MAX", 4_000_000)
        kept = attention_weights(attn)
        assert not kept.w_qkv.requires_grad and attention_weights(attn) is kept


def test_weights_are_gathered_once_per_model_and_the_first_call_finds_them(char_tokenizer, monkeypatch):
    """Issue 40 item 4: the weight gathering that made a study's first call cost about two warm ones happens once
    per model, up front (gather_weights, whose seconds studies and benchmarks report); the first scoring call then
    gathers nothing."""
    from interp.engines import block_weights
    from interp.engines.block_weights import gather_weights
    from interp.prompts import zero_shot_prompts
    from interp.scoring import score_answers

    model = fresh_tiny_char(char_tokenizer)
    gathered = []
    real = block_weights._gather_attention
    monkeypatch.setattr(block_weights, "_gather_attention", lambda attn: gathered.append(attn) or real(attn))
    report = gather_weights(model)
    assert len(gathered) == model.cfg.n_layers  # every block's attention gathered, up front
    assert gather_weights(model) == report and len(gathered) == model.cfg.n_layers  # once: nothing gathered again

    def refuse(*args, **kwargs):
        raise AssertionError("weights gathered during a call")

    monkeypatch.setattr(block_weights, "_gather_attention", refuse)
    monkeypatch.setattr(block_weights, "_gather_mlp", refuse)
    score_answers(model, zero_shot_prompts("bias_add", ["add1", "add2"], n_prompts=3, seed=0))


def _with_dead_heads(model):
    """A copy of ``model`` with block 0's head 1 writing nothing for its zero ``W_O`` alone (its ``z`` is not zero)
    and the last block's head 0 for its zero values (its ``z`` is zero): neither left out at the end of the heads."""
    import copy

    model = copy.deepcopy(model)
    with torch.no_grad():
        model.blocks[0].attn.W_O[1] = 0.0
        model.blocks[-1].attn.W_V[0] = 0.0
        model.blocks[-1].attn.b_V[0] = 0.0
    return model


@pytest.mark.parametrize(
    ("model_fixture", "family"),
    [("tiny_gpt2_model", "add_translate"), ("tiny_char_model", "operands"), ("constructed", "retrieval"),
     ("dead heads", "operands")],
)  # fmt: skip
def test_head_outputs_and_early_stops_equal_the_hooked_forward(model_fixture, family, request):
    """``z_tap`` hands over every head's ``z`` as ``hook_z`` reads it (zeros where a head's values are all zero: the
    hand-built model has such heads), so ``head_outputs`` on the fused forward equals its hooked path; where a head
    is left out for its zero ``W_O`` alone, ``head_outputs`` takes the hooked path and still reads its ``z``. A last
    block run ``through="z"`` or ``through="keys_values"`` hands over the same ``z`` and keys/values as a whole run,
    and returns nothing; a bad ``through``, or one without what it hands over, is refused by name."""
    import interp.heads as heads
    from interp.engines.block_weights import silent_heads_only

    if model_fixture == "constructed":
        model = load_constructed("constructed:retrieval:K=2")
    elif model_fixture == "dead heads":
        model = _with_dead_heads(request.getfixturevalue("tiny_char_model"))
    else:
        model = request.getfixturevalue(model_fixture)
    prompts = build_prompts(family, n_examples=10, n_prompts=3, seed=5)
    x = tokens_for(model, family, n=3, n_examples=10)
    n_layers = model.cfg.n_layers
    seen: dict = {}
    names = [f"blocks.{la}.attn.hook_z" for la in range(n_layers)]

    def keep(layer: int):  # keyed by the layer: a bridge calls its hooks by their own (aliased) names
        def fn(act, hook):
            seen[layer] = act.transpose(1, 2).clone()  # [batch, head, pos, d_head]

        return fn

    tapped: dict = {}
    with torch.inference_mode():
        with hooked(model, [(n, keep(la)) for la, n in enumerate(names)]):
            final_resid(model, x)
        fused_resid(model, x, z_tap=lambda la, z: tapped.__setitem__(la, z.clone()))
        kv_all: list = []
        fused_resid(model, x, keys_values=kv_all)
        kv_stop: list = []
        assert fused_resid(model, x, keys_values=kv_stop, through="keys_values") is None
        stopped: dict = {}
        assert fused_resid(model, x, z_tap=lambda la, z: stopped.__setitem__(la, z.clone()), through="z") is None
    assert sorted(tapped) == sorted(stopped) == list(range(n_layers))
    for la in range(n_layers):
        ref = seen[la].clone()
        if not silent_heads_only(model.blocks[la].attn):  # block 0 of "dead heads": its head 1 is reported as zeros
            assert model_fixture == "dead heads" and la == 0 and bool(ref[:, 1].ne(0).any())
            ref[:, 1] = 0.0
        torch.testing.assert_close(tapped[la], ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(stopped[la], tapped[la], atol=1e-6, rtol=1e-6)
        for got, want in zip(kv_stop[la], kv_all[la], strict=True):
            torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    if model_fixture in ("constructed", "dead heads"):  # heads whose z is zero, read as zero
        assert any(bool((ref == 0).all()) for ref in (seen[la][:, h] for la in seen for h in range(model.cfg.n_heads)))
    fused = heads.head_outputs(model, prompts, batch_size=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(heads, "fused_forward_exact", lambda m: False)
        hooked_z = heads.head_outputs(model, prompts, batch_size=2)
    torch.testing.assert_close(fused, hooked_z, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(heads.head_outputs(model, prompts, layers=[0]), fused[:1], atol=1e-6, rtol=1e-6)
    with torch.inference_mode():
        with pytest.raises(ValueError, match="through: one of 'resid', 'z', 'keys_values', got 'kv'"):
            fused_resid(model, x, keys_values=[], through="kv")
        with pytest.raises(ValueError, match="through='z': needs z_tap"):
            fused_resid(model, x, through="z")
        with pytest.raises(ValueError, match="through='keys_values': needs keys_values"):
            fused_resid(model, x, z_tap=lambda la, z: None, through="keys_values")


def test_joining_continuation_equals_one_continuation_per_join_and_rejects_bad_joins(tiny_char_model):
    """``fused_continue_joining``: each join's rows equal ``fused_continue`` of its copies from its block on (a
    residual patch before the block, a head's edit inside it); bad joins are refused before any work."""
    from interp.engines.fused import Join, fused_continue, fused_continue_joining

    model = tiny_char_model
    n_layers = model.cfg.n_layers
    kv: list = []
    x = torch.tensor([[3, 4, 5, 6], [7, 3, 2, 9]])
    g = torch.Generator().manual_seed(0)
    shift = torch.randn(model.cfg.d_model, generator=g)

    def patch(act):
        return act.add_(shift)

    def edit(z):
        z[:, 1, -1] = 2.0
        return z

    with torch.inference_mode():
        fused_resid(model, x[:, :3], keys_values=kv)
        lengths, rows = torch.tensor([3, 3]), torch.tensor([0, 1])
        base = fused_continue(model, kv, lengths, rows, x[:, 3:], stop_at_layer=0)
        joins = [Join(1, 2, edit_z=edit), Join(0, 1, patch=patch), Join(n_layers, 1, patch=patch)]
        kept: dict = {}
        h, first = fused_continue_joining(model, kv, lengths, rows, base, joins, start_at_layer=0, kept=kept)
        assert sorted(kept) == list(range(n_layers + 1))
        torch.testing.assert_close(h[:2], fused_continue(model, kv, lengths, rows, resid=base), atol=1e-5, rtol=0)
        at1 = kept[1].repeat(2, 1, 1)
        want = fused_continue(model, kv, lengths, rows.repeat(2), resid=at1, start_at_layer=1, edit_z=(1, edit))
        torch.testing.assert_close(h[first[0] : first[0] + 4], want, atol=1e-5, rtol=0)
        want = fused_continue(model, kv, lengths, rows, resid=base + shift)
        torch.testing.assert_close(h[first[1] : first[1] + 2], want, atol=1e-5, rtol=0)
        torch.testing.assert_close(h[first[2] : first[2] + 2], kept[n_layers] + shift, atol=1e-5, rtol=0)
        assert not torch.allclose(h[first[0] : first[0] + 2], h[:2], atol=1e-4)  # the edit changed something
        for bad, message in [
            (Join(0, 1), "exactly one of patch and edit_z"),
            (Join(0, 1, patch=patch, edit_z=edit), "exactly one of patch and edit_z"),
            (Join(n_layers + 1, 1, patch=patch), "joins at a block"),
            (Join(0, 0, patch=patch), "count >= 1"),
            (Join(n_layers, 1, edit_z=edit), "after the last block"),
        ]:
            with pytest.raises(ValueError, match=message):
                fused_continue_joining(model, kv, lengths, rows, base, [bad], start_at_layer=0)
    with pytest.raises(ValueError, match="without autograd"):
        fused_continue_joining(model, kv, lengths, rows, base, [], start_at_layer=0)
