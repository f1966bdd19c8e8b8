"""Every scoring route × dtype × family, on prompts of mixed lengths in one batch, equals :mod:`interp.reference`.

A route is forced (``interp.engines.choose_route`` replaced) wherever it is exact for the model
(:mod:`interp.engines.exact`): ``packed`` for learned absolute positions, ``kv_cache`` where TransformerLens's cache is
exact, ``full_rows`` and ``per_cell`` everywhere, ``shared_prefix`` where its plan exists. The prompts mix in-context
prompts longer than the sliding window (Mistral, Gemma 3: 16 tokens) or the attention chunk (Llama 4) with zero-shot
queries a few tokens long, so that a short row's pads lie past the window of its last real token (issue 36: in float64
those rows came back NaN on ``full_rows``).

The default suite runs a GPT-2 model (absolute positions: every route) and Mistral (sliding window) in float64, the
corner the other equivalence tests (float32) do not reach; ``-m slow`` runs the whole cross-product (about 2.5 min of
CPU).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from test_architectures import BRIDGE_ONLY, FAMILIES, build_dir
from versions import bridge_only

import interp.engines as engines
from interp import reference
from interp.engines.exact import absolute_positions, cache_exact, fused_forward_exact
from interp.engines.plan import candidates_batch
from interp.engines.shared_prefix import shared_prefix_plan
from interp.generation import PromptCache
from interp.interventions import Intervention, orthonormal_basis
from interp.models import load_model
from interp.prompts import build_prompts, zero_shot_prompts
from interp.tokenization import encode

#: |a − b| <= TOL[dtype] (nats). float32: kernels that add in different orders. float64: what is left is the
#: families' rotary tables, which both implementations build in float32 (measured up to 6e-8 on Mistral).
TOL = {"float32": 1e-4, "float64": 1e-6}
SLOW = pytest.mark.slow
#: The default subset (the rest is marked slow).
DEFAULT = (("gpt2", "float64"), ("mistral", "float64"))
NAMES = ["gpt2", *sorted(FAMILIES)]


def _param(name: str, dtype: str):
    marks = [bridge_only] if name in BRIDGE_ONLY else []
    if (name, dtype) not in DEFAULT:
        marks.append(SLOW)
    return pytest.param(name, dtype, marks=marks, id=f"{name}-{dtype}")


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """Each family's tiny random model saved once, loaded per dtype by the tests."""
    made: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in made:
            d = tmp_path_factory.mktemp(name)
            if name == "gpt2":
                from transformers import GPT2Config, GPT2LMHeadModel

                from interp.tokenization import build_gpt2_tokenizer

                torch.manual_seed(0)
                GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=256)).save_pretrained(d)
                build_gpt2_tokenizer().save_pretrained(d)
            else:
                build_dir(FAMILIES[name], d)
            made[name] = str(d)
        return made[name]

    return get


def mixed_length_prompts():
    """Two in-context prompts (30+ tokens) and two zero-shot queries (a few tokens) of the same candidates."""
    tasks = ["copy_first", "sum"]
    return [
        *build_prompts("operands", tasks, n_examples=5, n_prompts=2, seed=1),
        *zero_shot_prompts("operands", tasks, n_prompts=2, seed=2),
    ]


def exact_routes(model, texts, answers, cells) -> list[str]:
    """The routes :func:`interp.engines.score` may take for this model and these cells (each exact here)."""
    if not cells:
        return [*(["packed"] if absolute_positions(model) else []), *(["kv_cache"] if cache_exact(model) else []),
                "full_rows"]  # fmt: skip
    cands = candidates_batch(model.tokenizer, texts, answers)
    last = [g[0].prompt_len - 1 for g in cands]
    shared = (cache_exact(model) or fused_forward_exact(model)) and shared_prefix_plan(cands, last) is not None
    return [*(["shared_prefix"] if shared else []), "per_cell"]


def cells_for(model) -> list[Intervention]:
    g = torch.Generator().manual_seed(0)
    d = model.cfg.d_model
    return [
        Intervention(0, "add", torch.randn(d, generator=g), alpha=0.7),
        Intervention(1, "replace", torch.randn(d, generator=g)),
        Intervention(
            0, "subspace", torch.randn(d, generator=g), basis=orthonormal_basis(torch.randn(2, d, generator=g))
        ),
    ]


@pytest.mark.parametrize(("name", "dtype"), [_param(n, dt) for n in NAMES for dt in ("float64", "float32")])
def test_every_route_equals_the_reference_on_mixed_lengths(name, dtype, model_dirs, monkeypatch):
    model = load_model(model_dirs(name), device="cpu", dtype=dtype)
    assert model.cfg.dtype == getattr(torch, dtype)
    prompts = mixed_length_prompts()
    lengths = [len(encode(model.tokenizer, p.text)) for p in prompts]
    assert max(lengths) > 16 + max(lengths[2:]) + 1  # a short row's pads reach past a 16-token window
    texts, answers = [p.text for p in prompts], [list(p.answers) for p in prompts]
    ref = reference.answer_log_probs(model, prompts)
    cells = cells_for(model)
    ref_cells = np.stack([reference.answer_log_probs(model, prompts, [iv]) for iv in cells])
    assert np.isfinite(ref).all() and np.isfinite(ref_cells).all()
    checked = []
    for interventions, want in ((None, ref[None]), (cells, ref_cells)):
        for route in exact_routes(model, texts, answers, interventions):
            monkeypatch.setattr(engines, "explain_route", lambda *a, route=route: (route, "forced by the test"))
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*merge their first token")  # unpatched in both
                got = engines.score(model, texts, answers, interventions, batch_size=32)
            assert got.route == route
            np.testing.assert_allclose(got.log_probs, want, atol=TOL[dtype], rtol=0, err_msg=f"{name} {route}")
            checked.append(route)
    assert "full_rows" in checked and "per_cell" in checked
    # generation's prompt cache: the same mixed lengths in one batch, continuations of two tokens
    ids = [encode(model.tokenizer, p.text) for p in prompts]
    conts = [encode(model.tokenizer, p.text + p.answers[0])[len(i) :][:2] for p, i in zip(prompts, ids, strict=True)]
    got = PromptCache(model, ids).next_log_probs(range(len(ids)), conts)
    want = torch.stack(
        [torch.log_softmax(reference.run(model, [*i, *c])[-1].double(), -1) for i, c in zip(ids, conts, strict=True)]
    )
    torch.testing.assert_close(got.double(), want, atol=TOL[dtype], rtol=0)
