"""Write a task's questions as the runtime's question JSONL (id, question, answer, level, steps).

    python -m data.export_questions --policy outputs/arith-tiny/policy --split test --output_file test.jsonl
    python -m data.export_questions --task gsm8k --source openai/gsm8k --split test --output_file gsm8k.jsonl
    python -m data.export_questions --task math --source HuggingFaceH4/MATH-500 --output_file math500.jsonl

arith: the questions held out when the policy was trained (from its task.json), level = number
of operations. gsm8k / math: any source `data.math_tasks` reads (a Hub id or a local JSONL);
rows without a gold answer are skipped and counted. The file is written whole or not at all, and
never over another stage's output (`core.outputs.claim_output_file`). `steps` is the reference solution in the
task's step format, so an export of a train split serves as few-shot examples (`few_shot_source`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.config import cli, parse_config
from core.outputs import OutputFileGuard, claim_output_file, write_atomic
from data.tasks import TaskConfig


@dataclass
class ExportConfig(TaskConfig, OutputFileGuard):
    policy: str = "outputs/arith-tiny/policy"  # arith: whose held-out questions
    split: str = "test"
    questions_per_level: int | None = None  # all
    skip_per_level: int = 0  # leave out the first questions of each level (ones already looked at)
    output_file: str = "outputs/arith-tiny/test.jsonl"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.skip_per_level < 0:
            raise ValueError("skip_per_level must be >= 0")


@cli
def main(argv: list[str] | None = None) -> Path:
    (cfg,) = parse_config([ExportConfig], argv)
    out = claim_output_file(cfg.output_file, "data.export_questions", cfg.overwrite_output_file)
    wanted = cfg.questions_per_level
    if cfg.skip_per_level and wanted is not None:
        cfg.questions_per_level = wanted + cfg.skip_per_level
    task, questions = cfg.task_and_questions(cfg.policy, stream="export")
    if cfg.skip_per_level:
        seen: dict = {}
        kept = []
        for q in questions:
            seen[q.level] = seen.get(q.level, 0) + 1
            if seen[q.level] > cfg.skip_per_level:
                kept.append(q)
        questions = kept
    skipped = getattr(task, "skipped", None)
    if skipped:
        print(f"skipped: {skipped}")
    rows = [{"id": q.id, "question": q.text, "answer": q.gold, "level": q.level, "steps": list(q.steps)}
            for q in questions]  # fmt: skip
    write_atomic(out, "".join(json.dumps(row) + "\n" for row in rows))
    print(f"wrote {len(rows)} questions to {out}")
    return out


if __name__ == "__main__":
    main()
