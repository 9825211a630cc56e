"""Questions for a runtime run: a JSONL file, one object per line with `question` and `answer`
(the gold answer), optional `id` (default: the line number), `level` (kept in the results) and
`steps` (a reference solution as a list of steps: few-shot examples).
MATH-500's own field names are read too: `problem` for the question, `unique_id` for the id.

A line that is not a JSON object, or an id given twice, is a one-line error naming the line. A row
whose fields cannot be used is skipped and counted by reason: a question that is not text or is
longer than `MAX_QUESTION_CHARS` ("no question", "question over ..."), an answer that is missing,
NaN, Infinity, true, a list or an object ("no gold answer"), an id that is null, true, a list or an
object ("bad id"), a level that is not an integer or text, steps that are not a list of text.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from core.config import UserError

log = logging.getLogger(__name__)
MAX_QUESTION_CHARS = 20_000  # longer than any GSM8K or MATH question by 4x; a 50 MB "question" is a broken row


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    gold: str
    level: int | str | None = None
    steps: tuple[str, ...] = ()  # a reference solution, where the source has one (few-shot, replay)


def as_text(value: object) -> str | None:
    """A field as text: a string, or a finite number that is not a boolean; None for anything else (null, NaN,
    Infinity, true, a list, an object) and for blank text."""
    if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, int | float):
        return str(value)
    return value if isinstance(value, str) and value.strip() else None


def question_problem(text: str | None) -> str | None:
    """Why a question text cannot be used (None: it can)."""
    if text is None:
        return "no question"
    if len(text) > MAX_QUESTION_CHARS:
        return f"question over {MAX_QUESTION_CHARS} characters"
    return None


def read_questions(path: str | Path) -> tuple[list[Question], Counter]:
    """The usable questions of a file and the rows skipped, by reason (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"dataset not found: {path}")
    questions, seen, skipped = [], set(), Counter()
    with path.open("rb") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise UserError(f"{where}: not a JSON object in UTF-8") from None
            if not isinstance(row, dict):
                raise UserError(f"{where}: not a JSON object")
            question, why = _question(row, line_no)
            if why is not None:
                skipped[why] += 1
                continue
            if question.id in seen:
                raise UserError(f"{where}: duplicate id {question.id!r}")
            seen.add(question.id)
            questions.append(question)
    return questions, skipped


def _question(row: dict, line_no: int) -> tuple[Question | None, str | None]:
    """The row's question, or why it cannot be used."""
    text = row["question"] if "question" in row else row.get("problem")
    why = question_problem(text if isinstance(text, str) and text.strip() else None)
    if why is not None:
        return None, why
    gold = as_text(row.get("answer"))
    if gold is None:
        return None, "no gold answer"
    raw_id = row.get("id", row.get("unique_id", line_no))
    qid = as_text(raw_id)
    if qid is None:
        return None, "bad id"
    level = row.get("level")
    if level is not None and (isinstance(level, bool) or not isinstance(level, int | str)):
        return None, "bad level"
    steps = row.get("steps") or []
    if not isinstance(steps, list) or not all(isinstance(s, str) and s.strip() for s in steps):
        return None, "bad steps"
    return Question(qid, text, gold, level, tuple(steps)), None


def load_questions(path: str | Path) -> list[Question]:
    """The usable questions of a file; skipped rows are logged by reason; a file with none is an error."""
    questions, skipped = read_questions(path)
    if skipped:
        log.warning("%s: skipped %d rows: %s", path, sum(skipped.values()), dict(skipped))
    if not questions:
        raise UserError(f"{path}: no questions" + (f" (skipped: {dict(skipped)})" if skipped else ""))
    return questions
