"""The grading policy stated in search/grading.py, point by point."""

import pytest

from search.grading import answers_match, extract_answer


@pytest.mark.parametrize(
    "answer, gold",
    [("10,000", "10000"), ("1,234.5", "1234.5"), ("-1,000", "-1000"), ("10000", "10{,}000"), ("7.0", "7")],
)
def test_a_thousands_separator_is_read_as_one(answer, gold):
    assert answers_match(answer, gold)


@pytest.mark.parametrize("answer, gold", [("1,2", "12"), ("-2,1", "-21"), ("12,34", "1234"), ("1,2345", "12345")])
def test_a_comma_that_is_no_thousands_separator_never_joins_digits(answer, gold):
    assert not answers_match(answer, gold) and not answers_match(gold, answer)


@pytest.mark.parametrize("answer, gold", [("(1,2)", "\\{1,2\\}"), ("1,2", "(1,2)"), ("[1,2]", "\\{1,2\\}")])
def test_a_set_never_equals_a_pair_or_an_interval(answer, gold):
    assert not answers_match(answer, gold) and not answers_match(gold, answer)


def test_lists_compare_as_sets_and_pairs_by_order():
    assert answers_match("2,1", "1,2") and answers_match("1, 2", "\\{1,2\\}")
    assert answers_match("(1, 2)", "(1,2)") and not answers_match("(2,1)", "(1,2)")


def test_units_are_dropped_numbers_never():
    assert answers_match("5", "5\\text{ cm}") and answers_match("5 cm", "5")
    assert not answers_match("6 cm", "5\\text{ cm}")


def test_extraction_reads_the_last_marker_line_and_is_linear():
    assert extract_answer("a\n#### 3\nb\n####  1,234 \n") == "1234"
    assert extract_answer("#### 12,34") == "12,34"  # a list, left as written
    assert extract_answer("####   \n") is None
    assert extract_answer("#### " + " " * 200_000 + "x") == "x"  # a quadratic pattern took a minute here
