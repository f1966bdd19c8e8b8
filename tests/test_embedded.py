"""The shipped embedded model: its hash matches the card, and the card's numbers re-evaluate exactly."""

import json

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


def test_card_accuracy_reevaluates_exactly(card_numbers, embedded_model):
    from interp.card import icl_accuracy_table

    fam = "bias_add"
    task = next(iter(card_numbers["icl_accuracy"][fam]))
    n_prompts = 200
    got = icl_accuracy_table(embedded_model, {fam: [task]}, n_examples=[20], n_prompts=n_prompts,
                             seed=card_numbers["eval_seed"])
    assert got[fam][task]["20"]["accuracy"] == card_numbers["icl_accuracy"][fam][task]["20"]["accuracy"]


def test_card_mixture_point_reevaluates_within_its_ci(card_numbers, embedded_model):
    from interp.studies.mixture_sweep import mixture_curve

    sweep = card_numbers["mixture_sweep"]
    curve = next(c for c in sweep["curves"] if c["family"] == "bias_add")
    i = curve["d"].index(0.5)
    # the first 100 of the card's prompts (prompt i depends only on the seed and i)
    again = mixture_curve(embedded_model, "bias_add", *curve["tasks"], [0.5], n_prompts=100,
                          n_examples=sweep["n_examples"], seed=card_numbers["eval_seed"])
    lo, hi = curve["a"]["ci95"][i]
    half = (hi - lo) / 2
    assert lo - half <= again["a"]["mean"][0] <= hi + half  # a quarter of the prompts: allow twice the CI


def test_card_readme_lists_every_task(card_numbers):
    text = (CARD / "README.md").read_text()
    for fam, tasks in card_numbers["icl_accuracy"].items():
        for task in tasks:
            assert f"| {fam} | {task} |" in text
