"""The compute-optimal analysis on synthetic numbers with known answers."""

import pytest

from eval.compute_optimal import cross_validated_choice, fold_of, matching_budget, quantile_bins
from search.compute_optimal import bin_of


def test_quantile_bins_split_into_equal_groups_lowest_first():
    values = {f"q{i}": i / 10 for i in range(10)}
    bins, edges = quantile_bins(values, 5)
    assert [bins[f"q{i}"] for i in range(10)] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert edges == pytest.approx([0.15, 0.35, 0.55, 0.75])
    assert [bin_of(v, edges) for v in (0.0, 0.2, 0.5, 0.9)] == [0, 1, 2, 4]
    tied = quantile_bins({f"q{i}": 0.0 for i in range(10)}, 5)[0]  # all equal: still five bins of two
    assert sorted(tied.values()) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    with pytest.raises(ValueError, match="cannot fill"):
        quantile_bins({"a": 1.0}, 5)


def test_cross_validation_scores_each_fold_with_the_choice_of_the_other():
    pool = [f"q{i}" for i in range(200)]
    questions = [q for q in pool if fold_of(q) == 0][:20] + [q for q in pool if fold_of(q) == 1][:20]
    folds = {q: fold_of(q) for q in questions}
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
