"""Write questions as the runtime's question JSONL (id, question, answer, level per line).

    python -m data.export_questions --policy outputs/arith-tiny/policy --split test --out test.jsonl
    python -m data.export_questions --task gsm8k --source openai/gsm8k --split test --out gsm8k.jsonl
    python -m data.export_questions --task math --source HuggingFaceH4/MATH-500 --out math500.jsonl

arith: the questions held out when the policy was trained (from its task.json), level = number
of operations. gsm8k / math: any source `data.math_tasks` reads (a Hub id or a local JSONL);
rows without a gold answer are skipped and counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from data.arith import ArithTask, first_per_level
from data.math_tasks import load_gsm8k, load_math
from search.config import UserError, cli, parse_config


@dataclass
class ExportConfig:
    task: str = "arith"  # or gsm8k, math
    policy: str = "outputs/arith-tiny/policy"  # arith: whose held-out questions
    source: str | None = None  # gsm8k/math: Hub id or local JSONL (default: the task's Hub dataset)
    split: str = "test"  # arith: test or validation; gsm8k/math: the dataset split
    out: str = "outputs/arith-tiny/test.jsonl"
    per_level: int | None = None  # arith: only the first questions of each level

    def __post_init__(self) -> None:
        if self.task not in ("arith", "gsm8k", "math"):
            raise ValueError(f"task must be arith, gsm8k or math, got {self.task!r}")
        if self.task == "arith" and self.split not in ("test", "validation"):
            raise ValueError(f"split must be 'test' or 'validation', got {self.split!r}")


def arith_rows(cfg: ExportConfig) -> list[dict]:
    questions = getattr(ArithTask.load(cfg.policy).splits(0), cfg.split)
    if not questions:
        raise UserError(f"{cfg.policy} has no {cfg.split} questions")
    position = {q.text: i for i, q in enumerate(questions)}  # ids do not depend on per_level
    if cfg.per_level is not None:
        questions = first_per_level(questions, cfg.per_level)
    return [
        {"id": f"{cfg.split}-{position[q.text]}", "question": q.text, "answer": q.answer, "level": q.level}
        for q in questions
    ]


def math_rows(cfg: ExportConfig) -> list[dict]:
    loader = load_gsm8k if cfg.task == "gsm8k" else load_math
    task = loader(cfg.source, cfg.split) if cfg.source else loader(split=cfg.split)
    if task.skipped:
        print(f"skipped: {dict(task.skipped)}")
    return [{"id": q.id, "question": q.question, "answer": q.gold, "level": q.level} for q in task.questions]


@cli
def main(argv: list[str] | None = None) -> Path:
    (cfg,) = parse_config([ExportConfig], argv)
    rows = arith_rows(cfg) if cfg.task == "arith" else math_rows(cfg)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"wrote {len(rows)} questions to {out}")
    return out


if __name__ == "__main__":
    main()
