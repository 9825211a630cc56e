"""Write a policy's held-out arith questions as the runtime's question JSONL.

    python -m data.export_questions --policy outputs/arith-tiny/policy --split test --out test.jsonl

One line per question: id, question, answer (gold), level (number of operations); the
questions are exactly the ones held out when the policy was trained (from its task.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from data.arith import ArithTask, first_per_level
from search.config import UserError, cli, parse_config


@dataclass
class ExportConfig:
    policy: str = "outputs/arith-tiny/policy"
    split: str = "test"  # or validation
    out: str = "outputs/arith-tiny/test.jsonl"
    per_level: int | None = None  # only the first questions of each level

    def __post_init__(self) -> None:
        if self.split not in ("test", "validation"):
            raise ValueError(f"split must be 'test' or 'validation', got {self.split!r}")


@cli
def main(argv: list[str] | None = None) -> Path:
    (cfg,) = parse_config([ExportConfig], argv)
    questions = getattr(ArithTask.load(cfg.policy).splits(0), cfg.split)
    if not questions:
        raise UserError(f"{cfg.policy} has no {cfg.split} questions")
    position = {q.text: i for i, q in enumerate(questions)}  # ids do not depend on per_level
    if cfg.per_level is not None:
        questions = first_per_level(questions, cfg.per_level)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": f"{cfg.split}-{position[q.text]}", "question": q.text, "answer": q.answer, "level": q.level}
        for q in questions
    ]
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"wrote {len(rows)} questions to {out}")
    return out


if __name__ == "__main__":
    main()
