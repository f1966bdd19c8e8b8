import numpy as np
import pytest

from interp.tasks import Family, Task, countries, family_names, get_family, register_family, resolve_tasks, words


@pytest.mark.parametrize(
    ("family", "x", "expected"),
    [
        ("operands", (34, 57), {"copy_first": "34@57=34", "copy_second": "34@57=57", "sum": "34@57=91"}),
        ("retrieval", "qWeRtYuI", {"pos1": "qWeRtYuI>q", "pos2": "qWeRtYuI>W", "pos8": "qWeRtYuI>I"}),
        ("bias_add", 3, {"add0": "3>3", "add2": "3>5", "add9": "3>2"}),
        (
            "letters",
            "garden",
            {"first": "garden->g", "last": "garden->n", "first_upper": "garden->G", "last_upper": "garden->N"},
        ),
    ],
)
def test_family_examples_on_known_inputs(family, x, expected):
    fam = get_family(family)
    for task, text in expected.items():
        assert fam.example(x, task) == text


def test_add_translate_number_words():
    fam = get_family("add_translate")
    assert fam.example((57, 66), "sum") == "57+66->123"
    assert fam.task("english").answer((60, 63)) == "one hundred and twenty-three"
    assert fam.task("french").answer((30, 41)) == "soixante et onze"
    assert fam.task("spanish").answer((49, 50)) == "noventa y nueve"


def test_country_table():
    table = countries()
    assert len(table) >= 150
    by_name = {c.name: c for c in table}
    fam = get_family("country")
    assert fam.example(by_name["France"], "capital") == "France->Paris"
    assert fam.example(by_name["France"], "continent") == "France->Europe"
    assert fam.example(by_name["France"], "upper") == "France->FRANCE"
    assert {c.continent for c in table} <= {"Africa", "Asia", "Europe", "North America", "South America", "Oceania"}


def test_word_list_first_and_last_letters_differ():
    assert len(words()) >= 300
    assert all(w[0] != w[-1] and w.isalpha() for w in words())


def test_retrieval_inputs_are_eight_distinct_letters():
    fam = get_family("retrieval")
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = fam.sample_input(rng)
        assert len(s) == 8 and len(set(s)) == 8 and s.isalpha()


def test_unknown_family_and_task_name_valid_choices():
    with pytest.raises(ValueError, match="unknown family 'nope'.*operands"):
        get_family("nope")
    with pytest.raises(ValueError, match="unknown task 'mul'.*copy_first, copy_second, sum"):
        resolve_tasks(get_family("operands"), ["mul"])


def test_register_a_new_family_in_a_few_lines():
    fam = Family(
        "mod3",
        (Task("a", lambda x: str(x % 3)), Task("b", lambda x: str((x + 1) % 3))),
        sample_input=lambda rng: int(rng.integers(100)),
        render=str,
        separator=":",
    )
    register_family(fam, overwrite=True)
    assert "mod3" in family_names() and get_family("mod3").example(7, "b") == "7:2"
    with pytest.raises(ValueError, match="already registered"):
        register_family(fam)
