"""GSM8K and MATH questions with gold answers and reference steps, from the Hub or local JSONL.

    load_gsm8k("openai/gsm8k")                 # hub id: datasets.load_dataset(id, "main", split="test")
    load_gsm8k("path/to/test.jsonl")           # the same rows from a local file
    load_math("HuggingFaceH4/MATH-500", step_separator="\\n")

GSM8K rows: `question`, `answer` (steps on lines, `<<a*b=c>>` calculator notes, final `#### N`).
MATH rows: `problem` (or `question`), `solution` (gold in the last `\\boxed{}`), optional `answer`
(MATH-500, used when present), `level` ("Level 3"). Reference steps are split by the step
format's separator (or `step_separator`) and end with the format's answer line. A row without
a gold answer is skipped and counted in `LoadedTask.skipped`, never silently.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from core.config import UserError
from search.grading import last_boxed
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
        body, hashes, gold = str(row.get("answer", "")).rpartition("####")
        gold = gold.strip().replace(",", "")
        if not hashes or not gold:
            task.skipped["no gold answer"] += 1
            continue
        question = str(row.get("question") or "").strip()
        if not question:
            task.skipped["no question"] += 1
            continue
        steps = _steps(_CALCULATOR.sub("", body), step_separator or fmt.step_separator)
        steps.append(fmt.answer_step(gold))
        task.questions.append(MathQuestion(str(row.get("id", n)), question, gold, steps))
    return task


_LEVEL = re.compile(r"(\d+)")


def load_math(
    source: str = "HuggingFaceH4/MATH-500",
    split: str = "test",
    fmt: StepFormat = MATH,
    step_separator: str | None = None,
) -> LoadedTask:
    task = LoadedTask([])
    for n, row in enumerate(read_rows(source, split)):
        solution = str(row.get("solution", ""))
        given = next((row[k] for k in ("answer", "gt") if row.get(k) is not None and str(row[k]).strip()), None)
        gold = str(given if given is not None else last_boxed(solution) or "").strip()  # an answer of 0 is an answer
        if not gold:
            task.skipped["no gold answer"] += 1
            continue
        level = _LEVEL.search(str(row.get("level", "")))
        steps = _steps(solution, step_separator or fmt.step_separator)
        question = str(row.get("problem") or row.get("question") or "").strip()
        if not question:
            task.skipped["no question"] += 1
            continue
        qid = str(row.get("unique_id") or row.get("idx") or n)
        task.questions.append(
            MathQuestion(qid, question, gold, [*steps, fmt.answer_step(gold)], int(level.group(1)) if level else None)
        )
    return task
