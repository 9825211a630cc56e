from collections import Counter

import pytest

from search.strategies.selection import majority_vote, naive_best_of_n, weighted_best_of_n
from tests.conftest import ROOT
from tests.rm_samples import load_rm_samples

REAL = ROOT.parent / "shared/realdata/math_cot_100_samples.jsonl"


def test_selection_rules_on_scripted_answers():
    answers = ["3", "5", "5", None, "3", "7"]
    scores = [0.9, 0.2, 0.3, 1.0, 0.8, 0.95]
    assert majority_vote(answers) == "3"  # 2 votes each for 3 and 5: the first seen wins the tie
    assert naive_best_of_n(answers, scores) == "7"  # the None answer never wins
    assert weighted_best_of_n(answers, scores) == "3"  # 1.7 against 0.5 and 0.95
    assert majority_vote([None, None]) is None and weighted_best_of_n([None], [1.0]) is None


@pytest.mark.skipif(not REAL.is_file(), reason="shared/realdata is not beside this checkout")
def test_selection_on_real_samples_with_real_reward_scores():
    questions = load_rm_samples(REAL)
    assert len(questions) == 100 and all(len(q.answers) == 8 for q in questions)
    hits = Counter()
    for q in questions:
        right = {a for a, ok in zip(q.answers, q.correct, strict=True) if ok}
        hits["majority"] += majority_vote(q.answers) in right
        hits["naive"] += naive_best_of_n(q.answers, q.rm_scores) in right
        hits["weighted"] += weighted_best_of_n(q.answers, q.rm_scores) in right
        hits["oracle"] += bool(right)
        hits["pass@1"] += sum(q.correct) / 8
    # recorded verdicts: 91% of single samples right, 96 questions with some right answer
    assert hits["pass@1"] == pytest.approx(91.0) and hits["oracle"] == 96
    assert (hits["majority"], hits["naive"], hits["weighted"]) == (93, 94, 94)
