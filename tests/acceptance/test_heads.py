"""Head-level measurements single out the heads a model was built with (issue 28), equal the reference method, and
find nothing in a head built not to matter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from versions import tl3_only

from interp import reference
from interp.heads import (
    attention_scores,
    causal_indirect_effects,
    direct_logit_attribution,
    function_vector,
    head_outputs,
    mean_ablation_effects,
)
from interp.interventions import Intervention
from interp.models import load_model
from interp.prompts import build_prompts
from interp.sweeps import score_cells

FAMILY = "retrieval"


@pytest.fixture(scope="module")
def built():
    """K = 2 with a third head in every layer that is built to do nothing (``heads=3``)."""
    return load_model("constructed:retrieval:K=2:heads=3", device="cpu")


def test_the_task_head_has_the_causal_indirect_effect_and_the_idle_head_none(built):
    """The task fractions are written by head 0 of layer 2 (averaging each example's task flag): its mean output
    patched into corrupted prompts restores the task; no other head does, the idle head least of all."""
    for task in ("pos1", "pos2"):
        cie = causal_indirect_effects(built, FAMILY, task, n_prompts=12, n_examples=12)
        assert cie.top(1) == [(2, 0)] and cie.mean[2, 0] > 0.5 and cie.clear_of_zero()[2, 0]
        assert np.abs(cie.mean[:, 2]).max() < 1e-6  # the idle head


def test_a_head_map_of_another_task_is_said(built):
    """Issue 36: a CIE map of another task went into a function vector unwarned (task vectors warn); the own map
    does not warn, and the vector is the sum over the map's top heads either way."""
    import warnings

    cie = causal_indirect_effects(built, FAMILY, "pos1", n_prompts=4, n_examples=4)
    with pytest.warns(UserWarning, match=r"^cie: the head map of retrieval:pos1 is used for .* retrieval:pos2"):
        other = function_vector(built, FAMILY, "pos2", cie, top_k=1, n_prompts=4, n_examples=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        own = function_vector(built, FAMILY, "pos1", cie, top_k=1, n_prompts=4, n_examples=4)
    assert own.shape == other.shape == (built.cfg.d_model,) and own.norm() > 0


def test_mean_ablation_finds_each_tasks_lookup_head(built):
    """Head k of layer 3 copies task k's answer from the query: mean-ablating it takes task k's answer away (its
    mass goes to the other task); the idle head changes nothing."""
    prompts = build_prompts(FAMILY, ["pos1", "pos2"], counts=(6, 6), n_prompts=8, seed=2)
    effect = mean_ablation_effects(built, prompts).mean(axis=2)  # [layer, head, task]
    for k in (0, 1):
        assert np.unravel_index(np.argmin(effect[..., k]), effect.shape[:2]) == (3, k)
        assert effect[3, k, k] < -0.4 and effect[3, k, 1 - k] > 0.4
    assert np.abs(effect[:, 2]).max() < 1e-4  # float noise of two batch layouts (seen: 7.7e-6)


def test_direct_logit_attribution_finds_no_direct_path_where_none_is_built(built, embedded_model):
    """The hand-built model's logits are written by its last MLP only: every head's direct attribution is 0. On the
    embedded model the attributions are real numbers that sum, over heads, to less than the logits' spread."""
    prompts = build_prompts(FAMILY, ["pos1", "pos2"], counts=(6, 6), n_prompts=4, seed=2)
    assert np.abs(direct_logit_attribution(built, prompts)).max() < 1e-6
    mixed = build_prompts("bias_add", ["add1", "add7"], proportions=[0.5, 0.5], n_examples=8, n_prompts=4, seed=0)
    dla = direct_logit_attribution(embedded_model, mixed)
    assert dla.shape == (4, 4, 4, 2) and np.isfinite(dla).all() and np.abs(dla).max() > 1e-3
    np.testing.assert_allclose(dla.sum(axis=-1), 0, atol=1e-9)  # centred over the candidates


def test_head_interventions_equal_the_reference(built, tiny_char_model):
    """A cell that replaces one head's output (hook z) runs on the engines exactly as in one plain forward."""
    for model, family, tasks in ((built, FAMILY, ["pos1", "pos2"]), (tiny_char_model, "bias_add", ["add1", "add7"])):
        prompts = build_prompts(family, tasks, counts=(3, 3), n_prompts=3, seed=1)
        z = head_outputs(model, prompts)
        cells = [Intervention(la, "replace", z[la, 0, h] * 2, hook="z", head=h) for la, h in ((0, 1), (1, 0))]
        got = score_cells(model, prompts, cells)
        for c, iv in enumerate(cells):
            np.testing.assert_allclose(got[c], reference.answer_log_probs(model, prompts, [iv]), atol=1e-4, rtol=1e-5)


def test_head_outputs_are_the_hooked_z_at_the_last_token(tiny_char_model):
    from interp.hooks import forward_logits, hooked
    from interp.tokenization import encode

    prompts = build_prompts("bias_add", ["add1"], n_examples=3, n_prompts=2, seed=4)
    z = head_outputs(tiny_char_model, prompts, batch_size=1)
    seen: dict = {}

    def keep(act, hook):
        seen["z"] = act

    for i, p in enumerate(prompts):
        with torch.inference_mode(), hooked(tiny_char_model, [("blocks.1.attn.hook_z", keep)]):
            forward_logits(tiny_char_model, torch.tensor([encode(tiny_char_model.tokenizer, p.text)]))
        torch.testing.assert_close(z[1, i], seen["z"][0, -1], atol=1e-6, rtol=0)


@tl3_only  # an attention-only model without norms, built as a HookedTransformer (4.x builds only GPT-2-style blocks)
def test_attention_scores_and_logit_attribution_on_a_model_built_for_them():
    """A two-head attention-only model with hand-set weights: head 0 attends to the previous position (positions
    one-hot in the residual) and copies that token into the logits; head 1 attends to earlier copies of its own token
    (tokens one-hot) and writes nothing. Each score singles out its head; the attribution finds head 0's copy."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from interp.models import attach_tokenizer
    from interp.tokenization import build_char_tokenizer

    tok = build_char_tokenizer()
    n_ctx, v = 64, len(tok)
    cfg = HookedTransformerConfig(
        n_layers=1, d_model=n_ctx + v, n_ctx=n_ctx, d_head=n_ctx + v, n_heads=2, d_vocab=v, attn_only=True,
        normalization_type=None, act_fn="relu", seed=0,
    )  # fmt: skip
    model = HookedTransformer(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.pos_embed.W_pos[:, :n_ctx] = torch.eye(n_ctx)
        model.embed.W_E[:, n_ctx:] = torch.eye(v)
        big = 40.0 * (n_ctx + v) ** 0.5  # TransformerLens divides scores by sqrt(d_head)
        shift = torch.zeros(n_ctx, n_ctx)
        shift[torch.arange(n_ctx - 1), torch.arange(1, n_ctx)] = 1.0  # key j reads as position j + 1
        model.blocks[0].attn.W_Q[0, :n_ctx, :n_ctx] = big * torch.eye(n_ctx)
        model.blocks[0].attn.W_K[0, :n_ctx, :n_ctx] = shift
        model.blocks[0].attn.W_Q[1, n_ctx:, n_ctx:] = big * torch.eye(v)
        model.blocks[0].attn.W_K[1, n_ctx:, n_ctx:] = torch.eye(v)
        # head 0 also copies the token it attends to into the logits: its direct attribution is built in
        model.blocks[0].attn.W_V[0, n_ctx:, n_ctx:] = torch.eye(v)
        model.blocks[0].attn.W_O[0, n_ctx:, n_ctx:] = torch.eye(v)
        model.unembed.W_U[n_ctx:] = torch.eye(v)
    attach_tokenizer(model, tok)
    scores = attention_scores(model, seq_len=10, n_seqs=6, seed=0)
    assert scores["previous_token"][0, 0] > 0.99 and scores["induction"][0, 0] < 0.01
    assert 0.45 < scores["duplicate_token"][0, 1] < 0.55  # itself and its earlier copy tie
    assert scores["previous_token"][0, 1] < 0.01
    from interp.prompts import Prompt

    prompt = Prompt("xyab", "letters", ("prev", "other"), ("a", "c"), (), "b", None, (), 0, 0)  # last token b, before a
    dla = direct_logit_attribution(model, [prompt])[0, 0]  # [head, task]
    assert dla[0, 0] > 0.4 and dla[0, 1] < -0.4  # head 0 pushes the previous token, "a", over "c"
    np.testing.assert_allclose(dla[1], 0, atol=1e-9)  # head 1 writes nothing


def test_quick_study_writes_every_model_and_the_figures(tmp_path, embedded_model):
    from interp.studies.heads import HeadsConfig, run

    out = run(embedded_model, HeadsConfig.quick(), tmp_path, progress=False)
    summary = json.loads((tmp_path / "heads_all.json").read_text())
    assert [m["model"] for m in summary["models"]] == ["embedded", "size_family/xs"]
    first = summary["models"][0]
    assert set(first["cie"]) == {"add1", "add7"} and len(first["cie"]["add1"]["mean"]) == embedded_model.cfg.n_layers
    steering = first["function_vector_steering"]["add1"]
    assert len(steering["rise"]) == len(steering["passes"]) == embedded_model.cfg.n_layers
    for name in ("heads.html", "heads.json", "heads_dla.html", "heads_dla.json"):
        assert (tmp_path / name).is_file(), name
    assert out["paths"]["all_json"] == str(tmp_path / "heads_all.json")
    roles = first["roles"]["per_task"]
    assert set(roles) == {"add1", "add7", "add4"} and first["roles"]["seeds"] == [0]
    assert set(first["attribution"]) == {"add1", "add7"} and "agreement" in first["attribution"]["add1"]
    assert first["timings"]["weights_gathered_s"] >= 0 and first["timings"]["exact_cie_s"] > 0
    from scripts import load_script

    bullet = load_script("experiments/readme_numbers.py").heads_bullet(summary)  # the README's heads text
    assert "Attribution patching (one backward pass) against the exact CIE: add1: Spearman" in bullet
    assert "hurts add1 most" not in bullet and "size_family/xs:" in bullet


@pytest.fixture(scope="module")
def uneven_norm_model(char_tokenizer):
    """A seeded 2-layer GPT-2 whose final LayerNorm has a weight far from 1 and a bias (γ in [0.5, 2], β ≠ 0): what a
    TransformerBridge keeps in ``ln_final`` rather than folding into ``W_U``."""
    from conftest import seeded_gpt2

    from interp.models import hooked_from_hf
    from interp.tokenization import char_vocab

    hf = seeded_gpt2(3, n_layer=2, n_embd=64, n_head=4, n_positions=512, vocab_size=len(char_vocab()))
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        hf.transformer.ln_f.weight.copy_(0.5 + 1.5 * torch.rand(64, generator=g))
        hf.transformer.ln_f.bias.copy_(0.5 * torch.randn(64, generator=g))
        hf.lm_head.weight.mul_(20.0)  # logits of a few nats, so that a wrong factor shows
    return hooked_from_hf(hf, char_tokenizer, model_id="uneven-norm")


def _centred_candidate_logits(model, prompts, remove=None) -> np.ndarray:
    """``[prompt, task]``: the model's own logits of each candidate's first token at the last token, centred over the
    candidates; with ``remove = (layer, head)``, the change when that head's write leaves the final residual there,
    the final norm's scale held at its value on the prompt (the direct effect, through the model's own modules)."""
    from interp.hooks import forward_logits, hooked
    from interp.tokenization import encode

    out = []
    tok = model.tokenizer
    for p in prompts:
        ids = encode(tok, p.text)
        seen: dict = {}

        def keep(name, seen=seen):
            def fn(act, hook):
                seen[name] = act[0, -1].detach().clone()

            return fn

        names = [f"blocks.{model.cfg.n_layers - 1}.hook_resid_post", "ln_final.hook_scale"]
        names += [f"blocks.{la}.attn.hook_z" for la in range(model.cfg.n_layers)]
        with torch.inference_mode(), hooked(model, [(n, keep(n)) for n in names]):
            logits = forward_logits(model, torch.tensor([ids]))[0, -1]
        cand = [tok(a, add_special_tokens=False)["input_ids"][0] for a in p.answers]
        if remove is not None:
            la, h = remove
            resid = seen[names[0]] - seen[f"blocks.{la}.attn.hook_z"][h] @ model.blocks[la].attn.W_O[h].detach()
            held = seen["ln_final.hook_scale"]
            hold = [("ln_final.hook_scale", lambda act, hook, held=held: held.expand(act.shape))]
            with torch.inference_mode(), hooked(model, hold):
                logits = logits - model.unembed(model.ln_final(resid[None, None]))[0, 0]
        c = logits[cand].double().cpu().numpy()
        out.append(c - c.mean())
    return np.array(out)


@pytest.mark.parametrize("which", ["embedded", "uneven_norm"])
def test_logit_attribution_is_each_heads_direct_effect_and_the_parts_sum_to_the_logits(
    which, embedded_model, uneven_norm_model
):
    """Issue 37 point 6: the final norm's weight γ (1.12-1.45 on the embedded model, 0.5-2 here) and its centring
    were left out (L0H1 read 0.729 where its direct effect is 0.976). Each head's attribution is the change of the
    model's centred logits when its write leaves the final residual (scale held), and all parts sum to the logits."""
    model = embedded_model if which == "embedded" else uneven_norm_model
    gamma = [p for n, p in model.ln_final.named_parameters() if n.endswith(("weight", "w"))][0]
    assert (gamma - 1).abs().max() > 0.1  # a model where γ matters
    prompts = build_prompts("bias_add", ["add1", "add7"], proportions=[0.5, 0.5], n_examples=8, n_prompts=3, seed=0)
    dla = direct_logit_attribution(model, prompts, batch_size=2)  # [prompt, layer, head, task]
    for la, h in ((0, 1), (model.cfg.n_layers - 1, 0)):
        direct = _centred_candidate_logits(model, prompts, remove=(la, h))
        np.testing.assert_allclose(dla[:, la, h], direct, atol=1e-4, rtol=1e-4)
    from interp.heads import COMPONENTS, logit_components

    parts = logit_components(model, prompts)
    assert tuple(parts) == COMPONENTS
    total = sum(p.reshape(len(prompts), -1, p.shape[-1]).sum(axis=1) for p in parts.values())
    logits = _centred_candidate_logits(model, prompts)
    assert np.abs(logits).max() > 0.5
    np.testing.assert_allclose(total, logits, atol=1e-4, rtol=1e-4)


def test_attribution_patching_flags_every_head_it_gets_wrong_on_the_hand_built_model(built):
    """Issue 40: the linear estimate misses the task head entirely (a step: a dead ReLU before the patch, a saturated
    softmax after it, so both ends have zero gradient), and the lookup head's loss; its checks flag both, and every
    head whose estimate is off by more than the tolerance. Where nothing is patched in effect (layers 0, 1, 4) the
    estimate is exact and unflagged."""
    from interp.attribution import agreement, attribution_patching

    kw = dict(n_prompts=12, n_examples=12)
    exact = causal_indirect_effects(built, FAMILY, "pos1", **kw)
    atp = attribution_patching(built, FAMILY, "pos1", **kw)
    assert atp.estimate.mean.shape == exact.mean.shape
    assert abs(atp.estimate.mean[2, 0]) < 0.05 < 0.5 < exact.mean[2, 0]  # the task head: linear estimate blind
    assert atp.unreliable[2, 0] and "layer patch" in atp.why[2][0]
    report = agreement(exact, atp, top_k=1)
    assert report["wrong"] and report["missed"] == 0, report["wrong"]
    assert not atp.unreliable[[0, 1, 4]].any()
    np.testing.assert_allclose(atp.estimate.mean[[0, 1, 4]], exact.mean[[0, 1, 4]], atol=1e-3)
    assert atp.layer_exact[2] > 0.5  # patching all of layer 2 at once restores the task: the exact check


def test_head_roles_label_the_hand_built_models_heads_as_built():
    """Issue 37: sufficiency (CIE), necessity (mean-ablation on single-task prompts) and specificity give each head
    of the hand-built model with a query reader the role it was built for, in every one of 3 prompt seeds: the task
    head (layer 2, head 0) is shared, each lookup head (layer 3, heads 0 and 1) specific to its task, the query
    reader (layer 3, head 2) reads the query, every other head none."""
    from interp.head_roles import head_roles

    model = load_model("constructed:retrieval:K=2:reader=yes", device="cpu")
    roles = head_roles(model, FAMILY, ["pos1", "pos2"], seeds=(0, 1, 2), n_prompts=6, n_examples=10)
    built = {(2, 0): ("shared", "shared"), (3, 0): ("task-specific", "none"), (3, 1): ("none", "task-specific"),
             (3, 2): ("reads the query", "reads the query")}  # fmt: skip
    for la in range(model.cfg.n_layers):
        for h in range(model.cfg.n_heads):
            for t, task in enumerate(roles.tasks):
                expected = built.get((la, h), ("none", "none"))[t]
                assert roles.modal_label(task, la, h) == expected, (task, la, h)
                assert roles.agreement(task, la, h) == 3, (task, la, h)
    _, lo, _ = roles.over_seeds("necessity", "pos1", 3, 2)
    assert lo > 0.1 and roles.accuracy.min() == 1.0  # the reader is needed: P(correct) falls without it
    assert not roles.induction.any()
    drops = roles.set_ablation[0]["pos1"]
    assert drops["function vector heads"]["heads"] == [[[2, 0]]] and drops["function vector heads"]["drop"][0] > 0.4


def test_the_committed_study_labels_the_heads_of_every_shipped_model_over_three_seeds():
    """Issue 37: head labels (with intervals over prompt seeds) for the embedded model, the size family, the two-digit
    model and the hand-built one; the hand-built model's labels are the ones it was built with."""
    summary = json.loads((Path(__file__).resolve().parents[2] / "figures/heads/heads_all.json").read_text())
    labelled = {m["model"]: m["roles"] for m in summary["models"]} | {
        m["model"]: m["roles"] for m in summary["roles_only"]
    }
    shipped = {"embedded", "two_digit", "constructed:retrieval:K=4"} | {f"size_family/{s}" for s in "xs s m l".split()}
    assert shipped <= set(labelled), shipped - set(labelled)
    assert all(len(r["seeds"]) >= 3 for r in labelled.values())
    built = labelled["constructed:retrieval:K=4"]["per_task"]
    for k, task in enumerate(("pos1", "pos2", "pos3")):  # the task head (2, 0) shared, lookup head (3, k) task-specific
        got = {tuple(e["head"]): e["label"] for e in built[task]["heads"]}
        assert got == {(2, 0): "shared", (3, k): "task-specific"}, (task, got)
