import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interp.prompts import build_prompts, exact_counts, zero_shot_prompts


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6).filter(lambda w: sum(w) > 1e-3), st.integers(0, 60))
def test_exact_counts_is_largest_remainder(weights, n):
    props = [w / sum(weights) for w in weights]
    counts = exact_counts(props, n)
    assert sum(counts) == n
    # each count is the floor or the ceiling of its quota
    for c, p in zip(counts, props, strict=True):
        assert math.floor(p * n + 1e-9) <= c <= math.floor(p * n + 1e-9) + 1


def test_exact_counts_known_values():
    assert exact_counts([1 / 3] * 3, 20) == (7, 7, 6)
    assert exact_counts([0.5, 0.5], 5) == (3, 2)
    assert exact_counts([0.1, 0.9], 20) == (2, 18)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(0, 10), min_size=3, max_size=3).filter(lambda w: sum(w) > 0),
    st.integers(3, 30),
    st.integers(0, 1000),
)
def test_prompt_counts_follow_rounding_rule(weights, n, seed):
    props = [w / sum(weights) for w in weights]
    p = build_prompts("operands", proportions=props, n_examples=n, n_prompts=1, seed=seed)[0]
    assert tuple(p.example_tasks.count(t) for t in p.tasks) == exact_counts(props, n)
    assert p.text.count("\n") == n


@pytest.mark.parametrize("family", ["operands", "retrieval", "bias_add", "country", "letters", "add_translate"])
def test_query_not_among_examples_and_answers_distinct(family):
    for p in build_prompts(family, n_examples=20, n_prompts=30, seed=3):
        lines = p.text.split("\n")
        assert lines[-1] == p.query
        assert len(lines) == 21
        assert all(not line.startswith(p.query) for line in lines[:-1]), p.text  # query input never an example
        assert len(set(p.answers)) == len(p.answers)


def test_examples_are_solved_by_their_labelled_task():
    from interp.tasks import get_family

    fam = get_family("operands")
    p = build_prompts("operands", proportions=[0.2, 0.3, 0.5], n_examples=10, n_prompts=1, seed=1)[0]
    for line, task in zip(p.text.split("\n")[:-1], p.example_tasks, strict=True):
        a, b = line.split("=")[0].split("@")
        assert line == fam.example((int(a), int(b)), task)


def test_same_seed_same_prompts_and_queries_shared_across_mixtures():
    a = build_prompts("retrieval", ["pos1", "pos8"], proportions=[0.3, 0.7], n_prompts=5, seed=7)
    b = build_prompts("retrieval", ["pos1", "pos8"], proportions=[0.3, 0.7], n_prompts=5, seed=7)
    c = build_prompts("retrieval", ["pos1", "pos8"], proportions=[0.9, 0.1], n_prompts=5, seed=7)
    d = build_prompts("retrieval", ["pos1", "pos8"], proportions=[0.3, 0.7], n_prompts=5, seed=8)
    assert a == b
    assert [p.query for p in a] == [p.query for p in c]
    assert [p.text for p in a] != [p.text for p in d]
    assert [p.query for p in zero_shot_prompts("retrieval", ["pos1", "pos8"], n_prompts=5, seed=7)] == [
        p.query for p in a
    ]


def test_iid_sampling_draws_each_example_independently():
    prompts = build_prompts(
        "bias_add", ["add1", "add2"], proportions=[0.25, 0.75], n_examples=40, n_prompts=50, seed=0, sampling="iid"
    )
    frac = sum(p.example_tasks.count("add1") for p in prompts) / (40 * 50)
    assert abs(frac - 0.25) < 0.05
    assert len({p.example_tasks.count("add1") for p in prompts}) > 3  # counts vary per prompt


def test_zero_shot_prompt_form():
    p = zero_shot_prompts("operands", n_prompts=1, seed=0)[0]
    assert p.text == "\n" + p.query and p.n_examples == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"proportions": [-0.5, 1.5, 0.0]}, "proportions: values must be finite and >= 0"),
        ({"proportions": [0.5, 0.4, 0.0]}, "proportions: values must sum to 1"),
        ({"proportions": [0.5, 0.5]}, "proportions: expected 3 values"),
        ({"n_examples": 2}, "n_examples: 2 examples cannot hold 3 tasks"),
        ({"tasks": ["copy_first", "nope"]}, "unknown task 'nope'"),
        ({"sampling": "stratified"}, "sampling: 'stratified' not supported; valid: exact, iid"),
        ({"n_prompts": 0}, "n_prompts"),
    ],
)
def test_bad_input_names_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_prompts("operands", **kwargs)


def test_family_that_cannot_give_distinct_answers():
    from interp.tasks import Family, Task

    same = Family(
        "same", (Task("a", lambda x: "1"), Task("b", lambda x: "1")), lambda rng: int(rng.integers(9)), str, ">"
    )
    with pytest.raises(ValueError, match="pairwise distinct"):
        build_prompts(same, n_examples=4, n_prompts=1)


def test_seed_must_be_a_non_negative_integer_and_named():
    """Issue 24: seed=-1 or 1.5 gave numpy's 14-frame error that never named the seed."""
    for seed in (-1, 1.5, True, None, "3"):
        with pytest.raises(ValueError, match="^seed: must be an integer >= 0"):
            build_prompts("bias_add", ["add1"], n_prompts=1, seed=seed)
    assert build_prompts("bias_add", ["add1"], n_prompts=1, seed=np.int64(3)) == build_prompts(
        "bias_add", ["add1"], n_prompts=1, seed=3
    )


def test_a_single_task_name_is_one_task_not_its_characters():
    """Issue 24: build_prompts("bias_add", "add1") split the name into 'a', 'd', 'd', '1'."""
    assert build_prompts("bias_add", "add1", n_prompts=2, seed=0) == build_prompts("bias_add", ["add1"], n_prompts=2)
