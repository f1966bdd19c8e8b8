"""The shipped embedded model: its hash matches the card, and a seeded sample of the card's numbers re-evaluates."""

import json

import numpy as np
import pytest

from interp.models import embedded_model_dir, model_info, sha256_file

CARD = embedded_model_dir()


@pytest.fixture(scope="module")
def card_numbers():
    path = CARD / "eval.json"
    if not path.is_file():
        pytest.fail(f"the embedded model's eval.json is missing at {path}")
    return json.loads(path.read_text())


def test_weights_hash_matches_card(card_numbers, embedded_model):
    sha = sha256_file(CARD / "model.safetensors")
    assert sha == card_numbers["weights_sha256"]
    assert sha in (CARD / "README.md").read_text()
    assert model_info(embedded_model).weights_sha256 == sha


def test_shipped_checkpoint_is_small_and_standard():
    assert (CARD / "model.safetensors").stat().st_size < 20 * 2**20
    config = json.loads((CARD / "config.json").read_text())
    assert config["model_type"] == "gpt2"


#: Seed of the sample of card cells re-evaluated here (a different sample each time this seed changes).
SAMPLE_SEED = 20261126
ACCURACY_PROMPTS, HISTORY_PROMPTS = 200, 40  # experiments/embedded_card.py defaults, with which the card was made


def _accuracy_cells(card_numbers, k=3):
    cells = [(f, t, n) for f, tasks in card_numbers["icl_accuracy"].items() for t, by_n in tasks.items() for n in by_n]
    rng = np.random.default_rng(SAMPLE_SEED)
    picked = [cells[i] for i in rng.choice(len(cells), size=k, replace=False)]
    retrieval = [c for c in cells if c[0] == "retrieval" and c[2] != "20"]  # a non-trivial family and position
    return picked + [retrieval[int(rng.integers(len(retrieval)))]]


def test_card_accuracy_cells_reevaluate_within_their_ci(card_numbers, embedded_model):
    """A seeded random sample of the card's single-task accuracy cells (retrieval included), same prompts."""
    from interp.card import icl_accuracy_table

    for fam, task, n in _accuracy_cells(card_numbers):
        got = icl_accuracy_table(
            embedded_model,
            {fam: [task]},
            n_examples=[int(n)],
            n_prompts=ACCURACY_PROMPTS,
            seed=card_numbers["eval_seed"],
        )[fam][task][n]["accuracy"]
        cell = card_numbers["icl_accuracy"][fam][task][n]
        lo, hi = cell["ci95"]
        assert lo - 1e-9 <= got <= hi + 1e-9, (fam, task, n, got, cell)
        assert abs(got - cell["accuracy"]) <= 2 / ACCURACY_PROMPTS, (fam, task, n, got, cell)  # ties may flip one


def test_card_mixture_cells_reevaluate_within_their_ci(card_numbers, embedded_model):
    """A seeded random sample of (pair, d) cells of the card's 1,000-prompt sweeps, on the first 200 of its prompts
    (prompt i depends only on the seed and i): within the card's CI widened by sqrt(1000 / 200)."""
    from interp.studies.mixture_sweep import mixture_curve

    sweep = card_numbers["mixture_sweep"]
    rng = np.random.default_rng(SAMPLE_SEED)
    cells = [(c, i) for c in sweep["curves"] for i, d in enumerate(c["d"]) if 0 < d < 1]
    n = 200
    widen = np.sqrt(sweep["n_prompts"] / n)
    for k in rng.choice(len(cells), size=2, replace=False):
        curve, i = cells[k]
        again = mixture_curve(
            embedded_model,
            curve["family"],
            *curve["tasks"],
            [curve["d"][i]],
            n_prompts=n,
            n_examples=sweep["n_examples"],
            seed=card_numbers["eval_seed"],
        )
        lo, hi = curve["a"]["ci95"][i]
        mid, half = (lo + hi) / 2, (hi - lo) / 2 * widen
        assert mid - half - 1e-3 <= again.a.mean[0] <= mid + half + 1e-3, (curve["tasks"], curve["d"][i])


def test_card_history_row_of_the_chosen_checkpoint_reevaluates(card_numbers, embedded_model):
    """The across-training record at the shipped step: its accuracies and 50/50 probabilities, recomputed."""
    from interp.card import icl_accuracy_table, pair_at_half, trained_pairs

    step = int(card_numbers["chosen_checkpoint"].removeprefix("step"))
    row = next(h for h in card_numbers["history"] if h["step"] == step)
    cfg = card_numbers["train_config"]
    families = {f: cfg.get("tasks", {}).get(f) for f in cfg["families"]}
    acc = icl_accuracy_table(
        embedded_model, families, n_examples=[20], n_prompts=HISTORY_PROMPTS, seed=card_numbers["eval_seed"]
    )
    for fam, tasks in row["accuracy"].items():
        for task, value in tasks.items():
            assert abs(acc[fam][task]["20"]["accuracy"] - value) <= 1 / HISTORY_PROMPTS, (fam, task)
    pairs = pair_at_half(
        embedded_model, trained_pairs(cfg), n_prompts=HISTORY_PROMPTS, n_examples=20, seed=card_numbers["eval_seed"]
    )
    for got, logged in zip(pairs, row["pairs"], strict=True):
        assert list(got.tasks) == logged["tasks"]
        np.testing.assert_allclose(
            [got.p_a, got.p_b, got.var_a], [logged["p_a"], logged["p_b"], logged["var_a"]], atol=1e-4
        )


def test_card_readme_lists_every_task(card_numbers):
    text = (CARD / "README.md").read_text()
    for fam, tasks in card_numbers["icl_accuracy"].items():
        for task in tasks:
            assert f"| {fam} | {task} |" in text
