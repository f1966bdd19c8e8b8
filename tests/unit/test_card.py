import pytest

from interp.card import select_checkpoint, trained_pairs
from interp.results import CheckpointRecord


def history(*rows):
    return [CheckpointRecord(i, {"fam": dict(zip("abc", row, strict=False))}, ()) for i, row in enumerate(rows)]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (((0.96, 0.99), (0.97, 0.95), (0.5, 1.0)), (1, True)),  # the last checkpoint with every task >= 0.95
        (((0.2, 0.9), (0.5, 0.7), (0.1, 0.1)), (1, False)),  # none qualifies: highest mean accuracy
        (((0.5, 0.5), (0.9, 0.1), (0.1, 0.9)), (2, False)),  # ties on the mean: the latest
    ],
)
def test_select_checkpoint_follows_the_stated_rule(rows, expected):
    assert select_checkpoint(history(*rows)) == expected


def test_trained_pairs_keeps_only_trained_families_and_tasks():
    cfg = {"families": {"retrieval": 1.0, "bias_add": 1.0}, "tasks": {"retrieval": ["pos1", "pos8", "pos2"]}}
    assert trained_pairs(cfg) == [
        ("retrieval", "pos1", "pos8"),
        ("bias_add", "add1", "add7"),
        ("bias_add", "add2", "add5"),
    ]
