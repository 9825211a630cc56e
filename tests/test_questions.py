import json

import pytest

from core.config import UserError
from search.questions import load_questions
from search.step_format import ARITH, MATH


def test_questions_jsonl_with_our_fields_and_math500_fields(tmp_path):
    path = tmp_path / "q.jsonl"
    rows = [{"id": "a", "question": "1+1", "answer": "2", "level": 1},
            {"problem": "Compute $1+2$.", "answer": "3", "unique_id": "test/algebra/1.json", "level": 2}]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    first, second = load_questions(path)
    assert (first.id, first.text, first.gold, first.level) == ("a", "1+1", "2", 1)
    assert (second.id, second.text, second.gold) == ("test/algebra/1.json", "Compute $1+2$.", "3")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"question": "1+1"}'], r"no questions \(skipped: \{'no gold answer': 1\}\)"),  # a bad row is counted
        (['{"question": "1+1", "answer": "2"}', "not json"], "q.jsonl:2: not a JSON object"),
        (['{"id": 1, "question": "a", "answer": "1"}', '{"id": 1, "question": "b", "answer": "2"}'], "duplicate id"),
        ([], "no questions"),
    ],
)
def test_bad_question_files_name_the_line(tmp_path, lines, message):
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(UserError, match=message):
        load_questions(path)


def test_final_answer_from_the_answer_line_or_the_last_box():
    assert MATH.final_answer(["Add them.", "So the sum is $\\boxed{\\frac{1}{2}}$."]) == "\\frac{1}{2}"
    assert MATH.final_answer(["Add them.", MATH.answer_step("3")]) == "3"
    assert ARITH.final_answer(["1+1=2"]) is None and MATH.final_answer([]) is None
