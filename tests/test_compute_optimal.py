"""The compute-optimal analysis on synthetic numbers with known answers."""

import numpy as np
import pytest

from eval.compute_optimal import (
    apply_choices,
    at_budget,
    bin_edges,
    choose,
    cross_validated,
    matching_budget,
    rank_bins,
)
from search.strategies.compute_optimal import bin_of


def test_rank_bins_are_equal_quantiles_lowest_first():
    values = [i / 10 for i in range(10)]
    bins = rank_bins(values, 5)
    assert list(bins) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    edges = bin_edges(values, bins)
    assert edges == pytest.approx([0.15, 0.35, 0.55, 0.75])
    assert [bin_of(v, edges) for v in values] == list(bins)  # the runtime bins a new question by the same edges
    with pytest.raises(ValueError, match="cannot fill"):
        rank_bins([1.0], 5)


def test_ties_are_broken_by_a_seeded_random_rank():
    values = [0.0] * 12 + [0.5] * 4 + [1.0] * 4  # pass@1 of 0 for most questions: still five equal bins
    bins = rank_bins(values, 5, seed=0)
    assert np.bincount(bins).tolist() == [4, 4, 4, 4, 4]
    assert set(bins[:12]) == {0, 1, 2} and list(bins[16:]) == [4] * 4
    assert list(rank_bins(values, 5, seed=0)) == list(bins) and list(rank_bins(values, 5, seed=1)) != list(bins)


def test_choices_made_on_one_split_are_scored_on_another():
    validation = {"a": np.array([1.0, 1.0, 0.0, 0.0]), "b": np.array([0.0, 0.0, 1.0, 1.0])}
    choices = choose(validation, np.array([0, 0, 1, 1]), 2)
    assert choices == {0: "a", 1: "b"}
    test = {"a": np.array([0.0, 1.0, 1.0]), "b": np.array([1.0, 0.0, 0.0])}
    assert list(apply_choices(test, np.array([0, 1, 1]), choices)) == [0.0, 0.0, 0.0]  # no test question chose


def test_cross_validation_scores_each_fold_with_the_choice_of_the_other():
    rng = np.random.default_rng(0)
    n = 40
    folds = np.zeros(n, dtype=bool)
    folds[np.array_split(rng.permutation(np.arange(n)), 2)[0]] = True  # the split cross_validated makes (seed 0)
    # "a" is right on one fold only, "b" on the other, "c" on 60% of all: each fold's choice is the specialist
    # that fails on the other fold, so held out nothing is right, though "c" wins on all questions
    candidates = {"a": folds.astype(float), "b": (~folds).astype(float), "c": (np.arange(n) % 5 < 3).astype(float)}
    held_out = cross_validated(candidates, np.zeros(n, dtype=int), 2, seed=0)
    assert held_out.sum() == 0 and choose(candidates, np.zeros(n, dtype=int), 1) == {0: "c"}
    honest = {"c": candidates["c"], "d": np.ones(n)}
    assert cross_validated(honest, np.zeros(n, dtype=int)).mean() == 1.0


def test_a_bin_of_one_question_chooses_on_the_other_questions():
    candidates = {"a": np.array([1.0, 0.0, 0.0]), "b": np.array([0.0, 1.0, 1.0])}
    assert cross_validated(candidates, np.array([0, 1, 1]))[0] == 0.0  # chosen elsewhere ("b"), never on itself
    with pytest.raises(ValueError, match="nothing to choose on"):
        cross_validated({"a": np.array([1.0])}, np.array([0]))


def test_matching_budget_interpolates_in_log2_budget():
    curve = {1: 0.2, 4: 0.4, 16: 0.6}
    assert matching_budget(curve, 0.4) == 4
    assert matching_budget(curve, 0.5) == pytest.approx(8.0)  # half way between log2 4 and log2 16
    assert matching_budget(curve, 0.1) == 1
    assert matching_budget(curve, 0.7) is None
    assert matching_budget({1: 0.5, 2: 0.3, 4: 0.6}, 0.55) == pytest.approx(2 ** (1 + 5 / 6))  # from below


def test_per_question_outcomes_between_budgets():
    curve = {1: np.array([0.0, 1.0]), 4: np.array([1.0, 1.0])}
    assert at_budget(curve, 2) == pytest.approx([0.5, 1.0]) and at_budget(curve, 8) is None


def test_flops_matched_budgets_with_and_without_the_verifier():
    from eval.flops_matched import matched_budget, matched_budget_with_verifier

    assert matched_budget(14, 1) == 14 + 3 * 13  # X = M + 3(M-1)/R
    assert matched_budget(14, 22) == pytest.approx(14 + 39 / 22)
    assert matched_budget(1, 0.5) == 1  # same model: same budget
    with pytest.raises(ValueError):
        matched_budget(0.5, 1)
    # a verifier as large as the policy, free to train: every generation costs twice, X halves
    assert matched_budget_with_verifier(14, 1, 10, 10, 0.0, 100) == pytest.approx(53 / 2)
    # its training (6 N_v D_vb) is paid out of the same FLOPs: X shrinks further
    assert matched_budget_with_verifier(14, 1, 10, 10, 6 * 10 * 100, 100) == pytest.approx((53 - 3) / 2)
