"""GSM8K and MATH questions with gold answers and reference steps, from the Hub or local JSONL.

    load_gsm8k("openai/gsm8k")                 # hub id: datasets.load_dataset(id, "main", split="test")
    load_gsm8k("path/to/test.jsonl")           # the same rows from a local file
    load_math("HuggingFaceH4/MATH-500", step_separator="\\n")

GSM8K rows: `question`, `answer` (steps on lines, `<<a*b=c>>` calculator notes, final `#### N`).
MATH rows: `problem` (or `question`), `solution` (gold in the last `\\boxed{}`), optional `answer`
(MATH-500, used when present), `level` ("Level 3"). Reference steps are split by the step
format's separator (or `step_separator`) and end with the format's answer line. A row without a
usable gold answer (missing, NaN, true, an object), question (not text, or over
`MAX_QUESTION_CHARS`) or id (null, a list) is skipped and counted in `LoadedTask.skipped` by
reason (`search.questions`), never silently kept as text.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from core.config import UserError
from search.grading import last_boxed
from search.questions import as_text, question_problem
from search.step_format import GSM8K, MATH, StepFormat


@dataclass(frozen=True)
class MathQuestion:
    id: str
    question: str
    gold: str
    steps: list[str]  # reference steps, the answer line last
    level: int | None = None


@dataclass
class LoadedTask:
    questions: list[MathQuestion]
    skipped: Counter = field(default_factory=Counter)  # reason -> rows


def read_rows(source: str, split: str = "test", config: str | None = None) -> list[dict]:
    """Rows of a local JSONL file, or of a Hub dataset (by id) through `datasets`."""
    path = Path(source)
    if path.suffix == ".jsonl" or path.exists():
        if not path.is_file():
            raise UserError(f"dataset file not found: {source}")
        rows = []
        for n, line in enumerate(path.read_bytes().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise UserError(f"{source}:{n}: not a JSON object in UTF-8") from None
                if not isinstance(rows[-1], dict):
                    raise UserError(f"{source}:{n}: not a JSON object")
        return rows
    from datasets import load_dataset

    return list(load_dataset(source, config, split=split))


_CALCULATOR = re.compile(r"<<[^>]*>>")


def _steps(text: str, separator: str) -> list[str]:
    return [s.strip() for s in text.split(separator) if s.strip()]


def load_gsm8k(
    source: str = "openai/gsm8k",
    split: str = "test",
    fmt: StepFormat = GSM8K,
    step_separator: str | None = None,
) -> LoadedTask:
    task = LoadedTask([])
    for n, row in enumerate(read_rows(source, split, "main")):
        answer = row.get("answer")
        body, hashes, gold = (answer if isinstance(answer, str) else "").rpartition("####")
        gold = gold.strip().replace(",", "")
        question = row.get("question")
        why = "no gold answer" if not hashes or not gold else _problem(question, row.get("id", n))
        if why is not None:
            task.skipped[why] += 1
            continue
        steps = _steps(_CALCULATOR.sub("", body), step_separator or fmt.step_separator)
        steps.append(fmt.answer_step(gold))
        task.questions.append(MathQuestion(str(as_text(row.get("id", n))), question.strip(), gold, steps))
    return task


def _problem(question: object, qid: object) -> str | None:
    """Why a row's question or id cannot be used (None: they can)."""
    return question_problem(question if isinstance(question, str) and question.strip() else None) or (
        "bad id" if as_text(qid) is None else None
    )


_LEVEL = re.compile(r"(\d+)")


def load_math(
    source: str = "HuggingFaceH4/MATH-500",
    split: str = "test",
    fmt: StepFormat = MATH,
    step_separator: str | None = None,
) -> LoadedTask:
    task = LoadedTask([])
    for n, row in enumerate(read_rows(source, split)):
        solution = row.get("solution") or ""
        given = [row[k] for k in ("answer", "gt") if row.get(k) is not None and str(row[k]).strip()]
        gold = as_text(given[0]) if given else (last_boxed(solution) if isinstance(solution, str) else None)
        question = row.get("problem") or row.get("question")
        qid = row.get("unique_id", row.get("idx", n))
        why = "no gold answer" if gold is None or not gold.strip() else _problem(question, qid)
        if why is None and not isinstance(solution, str):
            why = "bad solution"
        if why is not None:
            task.skipped[why] += 1
            continue
        level = _LEVEL.search(str(row.get("level", "")))
        steps = _steps(solution, step_separator or fmt.step_separator)
        gold = gold.strip()  # an answer of 0 is an answer
        task.questions.append(MathQuestion(str(as_text(qid)), question.strip(), gold, [*steps, fmt.answer_step(gold)],
                                           int(level.group(1)) if level else None))  # fmt: skip
    return task
