import pandas as pd
import pytest

from interp.studies.table import COLUMNS, load_table, measure_table, save_table


@pytest.fixture(scope="module")
def table(tiny_char_model):
    return measure_table(
        [tiny_char_model],
        {"operands": [(1.0, 0.0), (0.5, 0.5)], "bias_add": [(0.25, 0.75)]},
        tasks={"operands": ["copy_first", "sum"], "bias_add": ["add1", "add2"]},
        seeds=(0, 1),
        n_prompts=3,
        n_examples=4,
        progress=False,
    )


def test_one_row_per_prompt_and_task(table):
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == (2 + 1) * 2 * 3 * 2  # settings × seeds × prompts × tasks
    one = table[(table.family == "operands") & (table.proportions == "0.5,0.5") & (table.seed == 1)]
    assert sorted(one.task.unique()) == ["copy_first", "sum"] and one.target.tolist() == [0.5] * 6
    assert (table.prob.between(0, 1)).all() and (table.other >= 0).all()


def test_same_seed_same_numbers(table, tiny_char_model):
    again = measure_table(
        [tiny_char_model],
        {"bias_add": [(0.25, 0.75)]},
        tasks={"bias_add": ["add1", "add2"]},
        seeds=(0, 1),
        n_prompts=3,
        n_examples=4,
        progress=False,
    )
    mine = table[table.family == "bias_add"].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, again)


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_save_and_reload(table, tmp_path, suffix):
    path = save_table(table, tmp_path / f"study{suffix}")
    back = load_table(path)
    pd.testing.assert_frame_equal(back, table, check_dtype=False, atol=1e-15, rtol=0)


def test_bad_input_before_any_model_load():
    with pytest.raises(ValueError, match=r"families\['operands'\]: values must sum to 1"):
        measure_table(["no-such-model"], {"operands": [(0.5, 0.6, 0.0)]})
    with pytest.raises(ValueError, match="unknown family"):
        measure_table(["no-such-model"], {"nope": [(1.0,)]})
    with pytest.raises(ValueError, match="suffix must be .csv or .json"):
        save_table(pd.DataFrame(), "x.parquet")
