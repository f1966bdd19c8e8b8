"""The README's Python examples run as written (on the embedded model)."""

import copy
import re
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_blocks_run(embedded_model):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own documentation
    sweep = namespace["sweep"]
    assert sweep.probs.shape == (3, 1, 3) and "\n" not in repr(sweep) and len(repr(sweep)) < 400
    assert namespace["frame"]["probs"].notna().sum() == 3 * 1 * 3  # one row per (point, layer, outcome)


def test_readme_names_the_two_commands_and_ci_runs_the_test_one():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci


def _readme_numbers():
    sys.path.insert(0, str(README.parent / "experiments"))
    try:
        import readme_numbers
    finally:
        sys.path.pop(0)
    return readme_numbers


def test_readme_numbers_block_equals_what_the_committed_json_renders():
    rn = _readme_numbers()
    text = README.read_text()
    for marks, block in rn.rendered_blocks(rn.load_sources()).items():
        assert rn.readme_block(text, *marks) == block, (
            f"README block {marks[0]} differs from the committed JSON: "
            "run `python experiments/readme_numbers.py --write`"
        )


def test_the_science_page_states_the_measured_rates_of_the_claim_rules():
    rn = _readme_numbers()
    text = rn.SCIENCE.read_text()
    for marks, block in rn.science_blocks(rn.load_sources()).items():
        assert rn.readme_block(text, *marks) == block, (
            f"docs/science.md block {marks[0]} differs from the committed JSON: "
            "run `python experiments/readme_numbers.py --write`"
        )


def test_claim_sentences_are_worded_by_the_rules_from_their_records():
    """The README's null sentences come from the claim records in the study's JSON: planting other p-values in a
    record changes the verdict words, and nothing in a non-rejection says "in the span"."""
    rn = _readme_numbers()
    sources = rn.load_sources()
    block = rn.render(sources)
    assert "lies in the span" not in block and "in every seed (Spearman" not in block
    changed = copy.deepcopy(sources)
    residual = next(c for c in changed["vectors"]["claims"] if c["key"].endswith("/residual"))
    residual["p_values"] = [0.001, 0.002, 0.003]
    assert "residual" in rn.render(changed) and rn.render(changed) != block
    assert "its out-of-span residual" in rn.render(changed)
    words = next(line for line in rn.render(changed).splitlines() if "its out-of-span residual" in line)
    assert "detected at n = " in words and "(p = 0.001, 0.002, 0.003 over 3 prompt seeds)" in words
    residual["p_values"] = [0.4, 0.5, 0.6]
    words = next(line for line in rn.render(changed).splitlines() if "its out-of-span residual" in line)
    assert "not detected at n = " in words and "(p = 0.4, 0.5, 0.6 over 3 prompt seeds), detectable ≥ " in words


def test_readme_numbers_follow_the_json():
    rn = _readme_numbers()
    sources = rn.load_sources()
    changed = copy.deepcopy(sources)
    curve = changed["mixture"]["curves"][0]
    curve["a"]["mean"][curve["d"].index(0.5)] = 0.987654
    assert "0.988" in rn.render(changed) and rn.render(changed) != rn.render(sources)
    with pytest.raises(ValueError):
        rn.readme_block("no markers here")


def test_the_beyond_one_machine_block_follows_the_nnsight_benchmark():
    rn = _readme_numbers()
    sources = rn.load_sources()
    changed = copy.deepcopy(sources)
    row = next(r for r in changed["bench_nnsight"]["rows"] if r["name"].startswith(rn.REQUESTS_ROW))
    row["info"]["studies"]["task_vectors"]["requests"] = 98765
    assert "task_vectors 98765 requests" in rn.render_beyond(changed["bench_nnsight"])
    assert "98765" not in rn.render_beyond(sources["bench_nnsight"])
