import random
from collections import Counter

import pytest

from data.revision_trajectories import build_trajectories, closest
from search.step_format import ARITH, GSM8K, MATH
from search.strategies.revisions import CONTEXT_ATTEMPTS, recent

CORRECT = "2+7=9\n9*3=27\n27-5=22\nA:22"
INCORRECT = ["2+7=9\n9*3=28\n28-5=23\nA:23", "2+7=8\n8*3=24\nA:24", "2*7=14\nA:14", "2+7=9\n9*3=27\n27-5=21\nA:21",
             "9\nA:9", "2+7=9\nA:9"]  # fmt: skip


def test_the_last_attempt_in_context_is_the_closest_incorrect_answer():
    assert closest(CORRECT, INCORRECT) == 3  # one character away
    for seed in range(50):
        for trajectory in build_trajectories([CORRECT], INCORRECT, random.Random(seed)):
            if trajectory.context:
                assert trajectory.context[-1] == INCORRECT[3]
                assert len(set(trajectory.context)) == len(trajectory.context)  # no attempt twice
            assert trajectory.target == CORRECT


def test_k_is_uniform_over_0_to_min_of_4_and_the_incorrect_answers():
    rng = random.Random(0)
    ks = Counter(len(t.context) for _ in range(2000) for t in build_trajectories([CORRECT], INCORRECT, rng))
    assert set(ks) == {0, 1, 2, 3, 4} and all(350 < n < 450 for n in ks.values())  # U{0..4}, 400 each expected
    capped = Counter(len(t.context) for _ in range(1500) for t in build_trajectories([CORRECT], INCORRECT[:2], rng))
    assert set(capped) == {0, 1, 2} and all(420 < n < 580 for n in capped.values())  # U{0..2}, not piled on 2
    assert all(not t.context for t in build_trajectories([CORRECT, CORRECT], [], rng))
    assert len(build_trajectories([CORRECT, CORRECT, CORRECT], INCORRECT, rng)) == 3  # one per correct answer


def test_context_window_keeps_the_four_most_recent_attempts():
    attempts = [f"A:{i}" for i in range(7)]
    assert CONTEXT_ATTEMPTS == 4 and recent(attempts) == ["A:3", "A:4", "A:5", "A:6"]
    assert recent(attempts[:2]) == ["A:0", "A:1"] and recent(attempts, 0) == []


def test_revision_prompt_holds_the_attempts_in_the_step_format():
    prompt = ARITH.revision_prompt("((2+7)*3)-5", [INCORRECT[0].split("\n"), ["2+7=9", "A:9"]])
    assert prompt == "Q:((2+7)*3)-5\n2+7=9\n9*3=28\n28-5=23\nA:23\n2+7=9\nA:9\nQ:((2+7)*3)-5\n"
    assert ARITH.question_of(prompt) is not None  # an ordinary prompt for encode() and the verifier
    assert ARITH.revision_prompt("1+1", []) == ARITH.prompt("1+1")  # attempt 0 is the policy's prompt
    assert GSM8K.revision_prompt("q", [["x", "The answer is: 1"]]) == (
        "Question: q\nAttempt:\nx\nThe answer is: 1\nRevision:\nAnswer:\n"
    )
    assert MATH.revision_prompt("q", []) == MATH.prompt("q")
    with pytest.raises(ValueError):
        closest(CORRECT, [])


def test_keep_correct_ends_some_contexts_with_the_correct_answer():
    rng = random.Random(0)
    kept = [t for _ in range(400) for t in build_trajectories([CORRECT], INCORRECT, rng, keep_correct=0.3)]
    ending_right = [t for t in kept if t.context and t.context[-1] == CORRECT]
    assert 0.2 < len(ending_right) / len(kept) < 0.4 and all(t.target == CORRECT for t in kept)
    assert all(len(t.context) <= CONTEXT_ATTEMPTS for t in kept)
    assert not any(t.context[-1:] == [CORRECT] for t in build_trajectories([CORRECT] * 50, INCORRECT, rng))
