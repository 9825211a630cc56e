"""Test helper: sampled solutions with recorded verdicts and reward-model scores (real data).

The format is Qwen2.5-Math's `evaluation/data/eval_rm_maj_example/*.jsonl`: one question per
line with N sampled solutions (`code`), their extracted answers (`pred`), whether each was
graded correct (`score`) and one reward-model logit per solution (`pred_score`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SampledQuestion:
    question: str
    gold: str
    answers: list[str | None]
    correct: list[bool]
    rm_scores: list[float]  # sigmoid of the recorded logits: non-negative, as weighted voting needs


def load_rm_samples(path: str | Path) -> list[SampledQuestion]:
    """One SampledQuestion per line; a line whose lists disagree in length is an error naming it."""
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        row = json.loads(line)
        answers, correct, logits = row["pred"], row["score"], row["pred_score"]
        if not len(answers) == len(correct) == len(logits):
            raise ValueError(f"{path}:{n}: pred, score and pred_score differ in length")
        scores = [1 / (1 + math.exp(-(s[0] if isinstance(s, list) else s))) for s in logits]
        out.append(SampledQuestion(row["question"], str(row["gt"]), [a or None for a in answers], correct, scores))
    return out
