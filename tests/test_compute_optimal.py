"""The compute-optimal analysis on synthetic numbers with known answers."""

import pytest

from eval.compute_optimal import balanced_folds, cross_validated_choice, matching_budget, quantile_bins
from search.compute_optimal import bin_of


def test_quantile_bins_split_into_equal_groups_lowest_first():
    values = {f"q{i}": i / 10 for i in range(10)}
    bins, edges = quantile_bins(values, 5)
    assert [bins[f"q{i}"] for i in range(10)] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert edges == pytest.approx([0.15, 0.35, 0.55, 0.75])
    assert [bin_of(v, edges) for v in (0.0, 0.2, 0.5, 0.9)] == [0, 1, 2, 4]
    with pytest.raises(ValueError, match="cannot fill"):
        quantile_bins({"a": 1.0}, 5)


def test_tied_questions_share_a_bin_exactly_as_the_runtime_bins_them():
    values = {f"q{i}": v for i, v in enumerate([0.0] * 6 + [0.25, 0.5, 0.5, 0.75, 1.0, 1.0])}
    bins, edges = quantile_bins(values, 5)
    assert all(bins[q] == bin_of(v, edges) for q, v in values.items())  # the runtime's rule, ties included
    assert {bins[f"q{i}"] for i in range(6)} == {0} and len(set(bins.values())) == len(edges) + 1 <= 5
    assert quantile_bins({f"q{i}": 0.0 for i in range(10)}, 5) == ({f"q{i}": 0 for i in range(10)}, [])


def test_folds_are_balanced_and_never_empty():
    for n in (2, 3, 7, 40):
        folds = balanced_folds([f"q{i}" for i in range(n)], 2)
        assert sorted(q for f in folds for q in f) == sorted(f"q{i}" for i in range(n))
        assert abs(len(folds[0]) - len(folds[1])) <= 1 and all(folds)


def test_cross_validation_scores_each_fold_with_the_choice_of_the_other():
    questions = [f"q{i}" for i in range(40)]
    folds = {q: f for f, part in enumerate(balanced_folds(questions)) for q in part}
    # "a" is right on every fold-0 question only, "b" on every fold-1 question only, "c" on 60% of all:
    # picked on fold 1, "b" scores 0 on fold 0; picked on fold 0, "a" scores 0 on fold 1.
    outcomes = {
        "a": {q: folds[q] == 0 for q in questions},
        "b": {q: folds[q] == 1 for q in questions},
        "c": {q: i % 5 < 3 for i, q in enumerate(questions)},
    }
    choice = cross_validated_choice(outcomes, questions)
    # on its own fold "a" is 100% > "c"; so each fold's choice is the specialist that fails on the other
    assert choice.held_out_correct == 0 and choice.held_out_accuracy == 0.0
    assert choice.strategy == "c" and choice.accuracy == pytest.approx(0.6)  # all questions: "c" wins
    honest = cross_validated_choice({"c": outcomes["c"], "d": {q: True for q in questions}},
                                    questions)  # fmt: skip
    assert honest.strategy == "d" and honest.held_out_accuracy == 1.0


def test_a_bin_too_small_to_split_chooses_on_the_other_bins():
    outcomes = {"a": {"x": True, "o1": False, "o2": False}, "b": {"x": False, "o1": True, "o2": True}}
    choice = cross_validated_choice(outcomes, ["x"], outside=["o1", "o2"])
    assert choice.held_out_correct == 0  # chosen elsewhere ("b"), never on the question it is scored on
    with pytest.raises(ValueError, match="nothing to choose on"):
        cross_validated_choice(outcomes, ["x"])


def test_matching_budget_interpolates_in_log2_budget():
    curve = {1: 0.2, 4: 0.4, 16: 0.6}
    assert matching_budget(curve, 0.4) == 4
    assert matching_budget(curve, 0.5) == pytest.approx(8.0)  # half way between log2 4 and log2 16
    assert matching_budget(curve, 0.1) == 1
    assert matching_budget(curve, 0.7) is None
    assert matching_budget({1: 0.5, 2: 0.3, 4: 0.6}, 0.55) == pytest.approx(2 ** (1 + 5 / 6))  # from below


def test_flops_matched_budget_and_reading_the_curve():
    from eval.flops_matched import accuracy_at, matched_budget

    assert matched_budget(14, 1) == 14 + 3 * 13  # X = M + 3(M-1)/R
    assert matched_budget(14, 22) == pytest.approx(14 + 39 / 22)
    assert matched_budget(1, 0.5) == 1  # same model: same budget
    with pytest.raises(ValueError):
        matched_budget(0.5, 1)
    curve = {1: 0.2, 4: 0.4, 16: 0.6}
    assert accuracy_at(curve, 8) == pytest.approx(0.5) and accuracy_at(curve, 16) == 0.6
    assert accuracy_at(curve, 17) is None and accuracy_at(curve, 0.5) is None
