"""Against a real NDIF server: runs where ``INTERP_NDIF_HOST`` is set (with ``NDIF_API_KEY``), skips otherwise.

``INTERP_NDIF_MODEL`` names the Hugging Face repo id to use (default ``openai-community/gpt2``, which NDIF serves).
The same calls run through nnsight's local simulation in the default suite (tests/equivalence/test_nnsight.py);
here they cross the network: one request per call, and the numbers are finite log-probabilities.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from interp.models import load_model
from interp.prompts import build_prompts
from interp.scoring import score_answers

HOST = os.environ.get("INTERP_NDIF_HOST")
pytestmark = pytest.mark.skipif(not HOST, reason="set INTERP_NDIF_HOST (and NDIF_API_KEY) to test against NDIF")


def test_scoring_runs_on_ndif_in_one_request():
    pytest.importorskip("nnsight")
    spec = os.environ.get("INTERP_NDIF_MODEL", "openai-community/gpt2")
    model = load_model(spec, engine="nnsight", remote=True, host=HOST)
    prompts = build_prompts("operands", ["copy_first", "sum"], n_examples=3, n_prompts=4, seed=0)
    lp = score_answers(model, prompts, batch_size=8).log_probs
    assert lp.shape == (4, 2) and np.isfinite(lp).all() and (lp <= 0).all()
    assert model.ledger.requests == 1 and model.ledger.request_bytes > 0
