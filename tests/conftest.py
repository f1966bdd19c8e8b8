"""Shared fixtures: seeded models (no weights are ever downloaded) and hook hygiene."""

from __future__ import annotations

import os

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from interp.hooks import attached_hooks
from interp.models import LOADED_MODELS, hooked_from_hf, load_model, resolve_weights_dir
from interp.tokenization import build_char_tokenizer, build_gpt2_tokenizer, char_vocab

# Figures in tests are HTML + JSON: whether a browser is installed must not change what the suite does or how long
# it takes. tests/test_png.py turns PNG export on where it tests it (INTERP_PNG=1 pytest ... turns it on everywhere).
os.environ.setdefault("INTERP_PNG", "0")


@pytest.fixture(autouse=True)
def no_hooks_left_behind():
    """Fail any test that leaves a hook attached to a model built by interp.models."""
    yield
    dirty = [m.cfg.model_name for m in list(LOADED_MODELS) if attached_hooks(m)]
    for m in list(LOADED_MODELS):
        m.reset_hooks(including_permanent=True)
    assert not dirty, f"hooks left attached on models: {dirty}"


@pytest.fixture(scope="session")
def char_tokenizer():
    return build_char_tokenizer()


@pytest.fixture(scope="session")
def gpt2_tokenizer():
    return build_gpt2_tokenizer()


def seeded_gpt2(seed: int = 0, **config) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(**config)).eval()
    return model


@pytest.fixture(scope="session")
def tiny_char_pair(char_tokenizer):
    """(HF model, HookedTransformer) with the same seeded weights: 2 layers, width 64, char vocab."""
    hf = seeded_gpt2(1, n_layer=2, n_embd=64, n_head=4, n_positions=512, vocab_size=len(char_vocab()))
    return hf, hooked_from_hf(hf, char_tokenizer, model_id="tiny-char")


@pytest.fixture(scope="session")
def tiny_char_model(tiny_char_pair):
    return tiny_char_pair[1]


@pytest.fixture(scope="session")
def tiny_gpt2_pair(gpt2_tokenizer):
    """(HF model, HookedTransformer): 2 layers, width 64, GPT-2's 50257-token vocab and tokenizer."""
    hf = seeded_gpt2(2, n_layer=2, n_embd=64, n_head=4, n_positions=256)
    return hf, hooked_from_hf(hf, gpt2_tokenizer, model_id="tiny-gpt2")


@pytest.fixture(scope="session")
def tiny_gpt2_model(tiny_gpt2_pair):
    return tiny_gpt2_pair[1]


@pytest.fixture(scope="session")
def gpt2_small_dir(tmp_path_factory, gpt2_tokenizer):
    """A seeded GPT-2-small-architecture HF directory (12 layers, 768 wide, 12 heads, 50257 vocab)."""
    d = tmp_path_factory.mktemp("gpt2-small-seeded")
    model = seeded_gpt2(0)  # GPT2Config() defaults are GPT-2 small
    model.save_pretrained(d)
    gpt2_tokenizer.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def gpt2_small_pair(gpt2_small_dir):
    """(HF model, HookedTransformer loaded by load_model from the directory) with the same seeded weights."""
    hf = GPT2LMHeadModel.from_pretrained(str(gpt2_small_dir), local_files_only=True).eval()
    return hf, load_model(str(gpt2_small_dir), device="cpu")


@pytest.fixture(scope="session")
def real_gpt2():
    """Real GPT-2 small, or skip saying how to provide it."""
    try:
        resolve_weights_dir("gpt2")
    except FileNotFoundError as err:
        pytest.skip(f"needs real GPT-2 small weights: {err}")
    return load_model("gpt2", device="cpu")


@pytest.fixture(scope="session")
def embedded_model():
    return load_model("embedded", device="cpu")


def _png_switched(monkeypatch, value: str):
    import interp.png as png

    monkeypatch.setenv(png.SWITCH_ENV, value)
    png.reset_png_state()
    yield
    png.reset_png_state()


@pytest.fixture
def png_on(monkeypatch):
    """PNG export on as far as :mod:`interp.png` knows (state reset before and after)."""
    yield from _png_switched(monkeypatch, "1")


@pytest.fixture
def png_off(monkeypatch):
    """PNG export off, as on a machine without a browser (that machine itself: tests/acceptance/test_png.py)."""
    yield from _png_switched(monkeypatch, "0")
