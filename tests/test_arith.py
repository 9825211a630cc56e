import random
from collections import Counter

import pytest

from data.arith import ArithConfig, ArithQuestion, check_solution, make_splits, sample_question

Q = ArithQuestion(start=2, ops=(("+", 7), ("*", 3), ("-", 5)))


def test_question_text_is_parenthesised_left_to_right():
    assert Q.text == "((2+7)*3)-5"
    assert Q.reference_steps() == ["2+7=9", "9*3=27", "27-5=22", "A:22"]
    assert Q.answer == "22"


def test_correct_solution():
    r = check_solution(Q, "2+7=9\n9*3=27\n27-5=22\nA:22\n")
    assert (r.correct, r.first_error, r.final_answer) == (True, None, "22")
    assert r.step_correct == [True, True, True, True]


@pytest.mark.parametrize(
    ("text", "correct", "first_error", "answer"),
    [
        ("2+7=9\n9*3=28\n28-5=23\nA:23\n", False, 1, "23"),  # arithmetic slip, then consistent
        ("2+7=9\n9*3=27\n27-5=22\nA:21\n", False, 3, "21"),  # wrong answer line only
        ("2+7=9\n9*3=27\nA:27\n", False, 2, "27"),  # skipped an operation
        ("2+7=9\n9*3=27\n27-5=22\nA:22\nA:22\n", True, 4, "22"),  # extra step after the answer
        ("2*7=14\n14*3=42\n42-5=37\nA:22\n", True, 0, "22"),  # right answer, wrong process
        # the answer line is graded as in every stage (answers_match): equal values are right
        ("2+7=9\n9*3=27\n27-5=22\nA:022\n", True, None, "022"),
        ("2+7=9\n9*3=27\n27-5=22\nA:22.0\n", True, None, "22.0"),
        ("2+7=9\n9*3=27\n27-5=22\nA:44/2\n", True, None, "44/2"),
    ],
)
def test_incorrect_or_odd_solutions(text, correct, first_error, answer):
    r = check_solution(Q, text)
    assert (r.correct, r.first_error, r.final_answer) == (correct, first_error, answer)
    assert r.step_correct == [first_error is None or i < first_error for i in range(len(r.steps))]


@pytest.mark.parametrize(
    ("text", "steps", "first_error"),
    [
        ("", [], None),  # empty
        ("2+7=9\n9*3=2", ["2+7=9", "9*3=2"], 1),  # truncated mid-step
        ("2+7=9\n9*3=27\n", ["2+7=9", "9*3=27"], None),  # truncated between steps: no wrong step yet
        ("\n\n", [], None),  # blank lines are not steps
        ("2+7=9\n\n9*3=27\n", ["2+7=9", "9*3=27"], None),  # a blank line between steps
        ("hello world", ["hello world"], 0),  # garbage
        ("2+7=9\nA:", ["2+7=9", "A:"], 1),  # answer line without a value
    ],
)
def test_malformed_solutions_never_crash(text, steps, first_error):
    r = check_solution(Q, text)
    assert r.steps == steps
    assert r.first_error == first_error
    assert r.correct is False


def test_sampled_questions_respect_difficulty():
    cfg = ArithConfig(min_ops=3, max_ops=5)
    rng = random.Random(0)
    for n in cfg.levels:
        for _ in range(50):
            q = sample_question(rng, n, cfg)
            assert q.level == n
            assert all(0 <= x <= 9 for _, x in q.ops)
            values = [int(s.split("=")[1]) for s in q.reference_steps()[:-1]]
            assert all(0 <= v <= 99 for v in values)
            assert check_solution(q, "\n".join(q.reference_steps()) + "\n").correct


def test_splits_are_deterministic_and_disjoint():
    cfg = ArithConfig(max_ops=4)
    a, b = make_splits(cfg, 7, 30, 10, 10), make_splits(cfg, 7, 30, 10, 10)
    assert [q.text for q in a.train] == [q.text for q in b.train]
    assert [q.text for q in a.test] == [q.text for q in b.test]
    held_out = {q.text for q in a.validation + a.test}
    assert len(held_out) == len(a.validation) + len(a.test) == 80
    assert not held_out & {q.text for q in a.train}
    # held-out questions do not depend on how many train questions were drawn
    assert [q.text for q in make_splits(cfg, 7, 3, 10, 10).test] == [q.text for q in a.test]
    assert [q.text for q in make_splits(cfg, 8, 30, 10, 10).test] != [q.text for q in a.test]


@pytest.mark.parametrize(
    "kwargs", [{"min_ops": 0}, {"min_ops": 3, "max_ops": 2}, {"operand_digits": 0}, {"max_value": 5}]
)
def test_impossible_difficulty_is_rejected(kwargs):
    with pytest.raises(ValueError, match="arith"):
        ArithConfig(**kwargs)


def test_too_many_distinct_held_out_questions_is_an_error():
    with pytest.raises(ValueError, match="1 operation"):
        make_splits(ArithConfig(max_ops=1), 0, 1, 400, 400)


def test_a_level_with_fewer_fresh_questions_gives_all_it_has(caplog):
    splits = make_splits(ArithConfig(max_ops=3), 0, 400, 50, 50, train_stream="prm", distinct_train=True)
    by_level = Counter(q.level for q in splits.train)
    texts = [q.text for q in splits.train]
    assert len(set(texts)) == len(texts) and not set(texts) & {q.text for q in splits.validation + splits.test}
    assert 0 < by_level[1] < 400 and by_level[3] == 400  # one-operation questions run out, longer ones do not
    assert f"arith level 1: only {by_level[1]} distinct fresh questions, not 400" in caplog.text


def test_ground_truth_verifier_scores_each_step_by_the_truth():
    from data.arith_oracle import ArithOracleVerifier
    from search.step_format import ARITH

    oracle = ArithOracleVerifier([Q], ARITH)
    prompt = ARITH.prompt(Q.text)
    solutions = [Q.reference_steps(), ["2+7=9", "9*3=28", "28-5=23", "A:23"], ["2+7=9"], []]
    assert oracle.score([prompt] * 4, solutions) == [[1.0] * 4, [1.0, 0.0, 0.0, 0.0], [1.0], []]
    with pytest.raises(KeyError, match="does not know"):
        oracle.score([ARITH.prompt("1+1")], [["1+1=2"]])
