"""Loaders, grading and selection on the real public files in ../shared/realdata."""

import json
import time
from collections import Counter

import pytest

from data.math_tasks import load_gsm8k, load_math
from search import grading
from search.grading import _number, answers_match, extract_answer, group_equivalent
from search.step_format import GSM8K, MATH
from search.strategies.selection import majority_vote, naive_best_of_n, weighted_best_of_n
from tests.conftest import ROOT
from tests.rm_samples import load_rm_samples

REAL = ROOT.parent / "shared/realdata"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="shared/realdata is not beside this checkout")


@needs_real
def test_gsm8k_test_split_loads_with_parsed_gold_answers_and_steps():
    task = load_gsm8k(str(REAL / "gsm8k_test.jsonl"))
    assert len(task.questions) == 1319 and not task.skipped
    assert all(_number(q.gold) is not None for q in task.questions)  # every gold answer is a number
    first = task.questions[0]
    assert first.gold == "18" and first.steps[-1] == GSM8K.answer_step("18")
    assert first.steps[0] == "Janet sells 16 - 3 - 4 = 9 duck eggs a day."  # calculator notes removed
    assert all(len(q.steps) >= 2 and "<<" not in "".join(q.steps) for q in task.questions)


@needs_real
def test_math_questions_load_with_levels_and_paragraph_steps():
    task = load_math(str(REAL / "math_cot_100_samples.jsonl"))
    assert len(task.questions) == 100 and {q.level for q in task.questions} == {1, 2, 3, 4, 5}
    assert all(q.steps[-1] == MATH.answer_step(q.gold) and all(q.steps) for q in task.questions)
    lines = load_math(str(REAL / "math_cot_100_samples.jsonl"), step_separator="\n")
    assert sum(len(q.steps) for q in lines.questions) > sum(len(q.steps) for q in task.questions)


@needs_real
def test_grader_agrees_with_the_recorded_verdicts_on_800_real_solutions():
    rows = [json.loads(line) for line in (REAL / "math_cot_100_samples.jsonl").read_text().splitlines()]
    disagreements = [
        (row["idx"], row["gt"], extract_answer(text), recorded)
        for row in rows
        for text, recorded in zip(row["code"], row["score"], strict=True)
        if answers_match(extract_answer(text), row["gt"]) != recorded
    ]
    # the one disagreement: gold "10{,}000" (LaTeX thousands separator), answer 10000; the recorded
    # grader said wrong, math-verify says right, and right it is
    assert disagreements == [(72, "10{,}000", "10000", False)]


@needs_real
def test_selection_with_our_grader_and_the_recorded_reward_scores():
    rows = [json.loads(line) for line in (REAL / "math_cot_100_samples.jsonl").read_text().splitlines()]
    samples = load_rm_samples(REAL / "math_cot_100_samples.jsonl")
    hits = Counter()
    for row, sample in zip(rows, samples, strict=True):
        answers = group_equivalent([extract_answer(text) for text in row["code"]])
        right = [answers_match(a, row["gt"]) for a in answers]
        hits["majority"] += answers_match(majority_vote(answers), row["gt"])
        hits["naive"] += answers_match(naive_best_of_n(answers, sample.rm_scores), row["gt"])
        hits["weighted"] += answers_match(weighted_best_of_n(answers, sample.rm_scores), row["gt"])
        hits["pass@1 x8"] += sum(right)
        hits["pass@8"] += any(right)
    assert dict(hits) == {"majority": 93, "naive": 95, "weighted": 95, "pass@1 x8": 729, "pass@8": 97}


def test_equivalent_answers_and_extraction():
    assert answers_match("0.5", "\\frac{1}{2}") and answers_match("10000", "10{,}000")
    assert answers_match("\\dfrac{3}{4}", "0.75") and not answers_match("3/5", "0.75")
    assert not answers_match(None, "1") and not answers_match("", "1")
    assert group_equivalent(["1/2", "0.5", None, "\\frac12", "2"]) == ["1/2", "1/2", None, "1/2", "2"]
    assert extract_answer("so $x=\\boxed{\\frac{a}{b}}$.") == "\\frac{a}{b}"
    assert extract_answer("steps\n#### 1,000") == "1000" and extract_answer("no answer") is None
    assert extract_answer("cut \\boxed{\\frac{1}{") is None  # unbalanced: cut off mid-answer


def test_a_pathological_answer_is_bounded_by_the_timeout():
    assert answers_match("(" * 300 + "1" + ")" * 300 + "+x", "1", timeout_s=1) is False


@pytest.mark.parametrize("answer", ["1e999999999", "1e30000000", "9" * 100_000, "2^{2^{100}}"])
def test_grading_is_bounded_in_time_and_size(answer):
    start = time.monotonic()
    assert answers_match(answer, "1", timeout_s=1) is False and answers_match(answer, answer)
    assert time.monotonic() - start < 5  # a huge exponent is never expanded, a huge text never parsed


def test_voting_over_pathological_answers_is_bounded(monkeypatch):
    monkeypatch.setattr(grading, "GROUPING_BUDGET_S", 2.0)
    start = time.monotonic()
    grouped = grading.group_equivalent(["2^{2^{100}}", "3^{3^{100}}", "4^{4^{100}}", "0.5", "0.5"], timeout_s=1)
    assert time.monotonic() - start < 8 and grouped[-1] == grouped[-2] == "0.5"  # equal texts never graded


@needs_real
def test_gsm8k_exports_to_the_runtime_question_format(tmp_path):
    from data import export_questions
    from search.questions import load_questions

    out = tmp_path / "gsm8k.jsonl"
    export_questions.main(["--task", "gsm8k", "--source", str(REAL / "gsm8k_test.jsonl"), "--output_file", str(out)])
    questions = load_questions(out)
    assert len(questions) == 1319 and questions[0].gold == "18"
