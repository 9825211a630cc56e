import pytest

from data.arith import ArithQuestion, check_solution
from data.build_prm_data import PRMDataConfig, label_chunk
from data.mc_labels import Bisection, MCLabeler, first_zero_by_bisection
from search.generation.generator import SamplingParams
from search.step_format import ARITH
from tests.conftest import ARITH_TASK, as_question
from tests.fakes import CUT, ScriptedGenerator

Q = ArithQuestion(2, (("+", 7), ("*", 3), ("-", 5), ("+", 1)))  # 2+7=9, 9*3=27, 27-5=22, 22+1=23, A:23
REF = Q.reference_steps()
WRONG = ["2+7=9", "9*3=27", "27-5=21", "21+1=22", "A:22"]  # first error at step 2
PROMPT = ARITH.prompt(Q.text)
# correct rollouts out of K=4 from a prefix of the reference with i steps
ON_PATH = {1: 3, 2: 2, 3: 1, 4: 1}


def script(prompt: str, n: int) -> list[str]:
    """Solutions for the bare prompt; rollouts: the first c of n finish correctly, where c
    depends on the prefix (0 once the prefix has left the reference path)."""
    if prompt == PROMPT:
        odd = ["2+7=9\n", "2+7=9\n\nA:23\n", "2+7=9\n9*3=27\nA:27\n" + CUT]  # no answer; blank line; cut off
        return [ARITH.render_steps(REF), ARITH.render_steps(WRONG), *odd][:n]
    prefix = ARITH.split_steps(prompt[len(PROMPT) :])
    on_path = prefix == REF[: len(prefix)]
    c = ON_PATH[len(prefix)] * n // 4 if on_path else 0
    rest_right = ARITH.render_steps(REF[len(prefix) :])
    return [rest_right if j < c else "A:0\n" for j in range(n)]


def grade(_, solution: str) -> bool:
    return check_solution(Q, solution).correct


def labeler(k=4):
    return MCLabeler(ScriptedGenerator(script), ARITH, grade, k, SamplingParams(), seed=0)


def test_exhaustive_mc_values_are_exact_fractions():
    lab = labeler()
    right, wrong = lab.label([(0, Q.text, REF, True), (0, Q.text, WRONG, False)], "exhaustive")
    assert right.mc_values == [0.75, 0.5, 0.25, 0.25, 1.0]  # the answer step is the solution's own outcome
    assert wrong.mc_values == [0.75, 0.5, 0.0, 0.0, 0.0]
    assert (right.rollouts, wrong.rollouts) == (16, 16)  # K per step, none for the answer step
    assert (right.first_zero, wrong.first_zero) == (None, 2)
    assert len(lab.generator.calls) == 1  # every rollout of the round in one batched call


def test_binary_search_finds_first_zero_with_log_rollouts():
    lab = labeler()
    right, wrong = lab.label([(0, Q.text, REF, True), (0, Q.text, WRONG, False)], "binary")
    assert wrong.first_zero == 2
    assert wrong.rollouts == 2 * 4  # ceil(log2 5) - 1 = 2 probes for 5 steps with the last known
    assert wrong.mc_values == [None, 0.5, 0.0, None, 0.0]
    assert right.rollouts == 0 and right.first_zero is None  # a correct solution needs no search


@pytest.mark.parametrize("first_zero", range(9))
def test_bisection_probe_count(first_zero):
    values = [1.0] * first_zero + [0.0] * (9 - first_zero)
    found, probes = first_zero_by_bisection(9, values.__getitem__)
    assert found == first_zero
    assert 3 <= probes <= 4  # ceil(log2 9) = 4 at most, vs 8 prefixes exhaustively


def test_bisection_state():
    b = Bisection(0, 4)
    assert b.probe == 2 and not b.done
    b.update(0.0)
    assert (b.lo, b.hi) == (0, 2)
    b.update(0.5)
    assert (b.lo, b.hi, b.probes) == (2, 2, 2) and b.done


def test_zero_rollouts_is_an_error():
    with pytest.raises(ValueError, match="rollouts"):
        labeler(k=0)


@pytest.mark.parametrize(
    ("kind", "threshold", "labels"),
    [
        ("soft", 0.0, [0.75, 0.5, 0.0, 0.0, 0.0]),
        ("hard", 0.0, [1.0, 1.0, 0.0, 0.0, 0.0]),
        ("hard", 0.6, [1.0, 0.0, 0.0, 0.0, 0.0]),
    ],
)
def test_rows_hold_both_label_kinds_and_filter_counts(kind, threshold, labels):
    cfg = PRMDataConfig(samples_per_question=5, rollouts_per_step=4, label_kind=kind, hard_threshold=threshold)
    (record,) = label_chunk([as_question(Q)], ARITH_TASK, ScriptedGenerator(script), ARITH, cfg)
    assert record["counts"] == {"no_answer": 1, "cut_off": 1} and record["sampled_correct"] == 2
    right, wrong, blank = record["rows"]
    assert blank["completions"] == ["2+7=9", "A:23"] and blank["correct"]  # a blank line is not a step
    assert blank["gt_step_correct"] == [True, False]  # right answer, skipped steps
    assert wrong["labels"] == labels
    assert wrong["mc_values"] == [0.75, 0.5, 0.0, 0.0, 0.0]
    assert wrong["hard_labels"] == [float(v > threshold) for v in wrong["mc_values"]]
    assert wrong["gt_step_correct"] == [True, True, False, False, False] and wrong["gt_first_error"] == 2
    assert wrong["completions"] == WRONG and wrong["prompt"] == PROMPT
    assert (right["correct"], wrong["correct"], wrong["final_answer"], wrong["gold"]) == (True, False, "22", "23")


def test_binary_rows_stop_at_the_first_error():
    cfg = PRMDataConfig(mode="binary", label_kind="hard")
    (record,) = label_chunk([as_question(Q)], ARITH_TASK, ScriptedGenerator(script), ARITH, cfg)
    right, wrong, _ = record["rows"]
    assert wrong["completions"] == WRONG[:3] and wrong["labels"] == [1.0, 1.0, 0.0]
    assert right["labels"] == [1.0] * 5 and right["rollouts"] == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rollouts_per_step": 0}, "rollouts_per_step"),
        ({"questions_per_level": 0}, "questions_per_level"),
        ({"task": "chess"}, "unknown task"),
        ({"mode": "binary"}, "hard labels only"),
        ({"label_kind": "medium"}, "label_kind"),
    ],
)
def test_impossible_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PRMDataConfig(**kwargs)
