"""Questions for a runtime run: a JSONL file, one object per line with `question` and `answer`
(the gold answer), optional `id` (default: the line number), `level` (kept in the results) and
`steps` (a reference solution as a list of steps: few-shot examples).
MATH-500's own field names are read too: `problem` for the question, `unique_id` for the id."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.config import UserError


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    gold: str
    level: int | str | None = None
    steps: tuple[str, ...] = ()  # a reference solution, where the source has one (few-shot, replay)


def load_questions(path: str | Path) -> list[Question]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"dataset not found: {path}")
    questions, seen = [], set()
    for line_no, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UserError(f"{where}: not a JSON object in UTF-8") from None
        if not isinstance(row, dict):
            raise UserError(f"{where}: not a JSON object")
        if "question" not in row and "problem" in row:
            row["question"] = row["problem"]
        for key in ("question", "answer"):
            if not isinstance(row.get(key), str | int | float) or not str(row[key]).strip():
                raise UserError(f"{where}: missing or empty {key!r}")
        qid = str(row.get("id", row.get("unique_id", line_no)))
        if qid in seen:
            raise UserError(f"{where}: duplicate id {qid!r}")
        seen.add(qid)
        steps = row.get("steps") or []
        if not isinstance(steps, list) or not all(isinstance(s, str) and s.strip() for s in steps):
            raise UserError(f"{where}: 'steps' must be a list of non-empty strings")
        questions.append(Question(qid, str(row["question"]), str(row["answer"]), row.get("level"), tuple(steps)))
    if not questions:
        raise UserError(f"{path}: no questions")
    return questions
