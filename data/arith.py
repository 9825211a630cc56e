"""The embedded `arith` task: multi-step arithmetic read left to right, with exact checking.

A question such as `((2+7)*3)-5` is solved one operation per step (`2+7=9`, `9*3=27`,
`27-5=22`) and ends with the answer line `A:22`. Because every step can be verified, the
checker gives the ground-truth index of the first wrong step for any text, which no public
benchmark offers. Difficulty is the number of operations and the operand digits.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from core.config import UserError
from search.generation.generator import stable_seed
from search.grading import answers_match
from search.step_format import ARITH, StepFormat

log = logging.getLogger(__name__)

OPS = ("+", "-", "*")
_TERM = re.compile(r"([+\-*])(\d+)")
Q = TypeVar("Q")  # any question with a `level`


@dataclass(frozen=True)
class ArithConfig:
    """Difficulty knobs of the task."""

    min_ops: int = 1
    max_ops: int = 8
    operand_digits: int = 1
    # every intermediate value stays in [0, max_value]; default 10**(digits+1) - 1
    max_value: int | None = None

    def __post_init__(self) -> None:
        if self.min_ops < 1 or self.max_ops < self.min_ops:
            raise ValueError(f"arith: need 1 <= min_ops <= max_ops, got min_ops={self.min_ops}, max_ops={self.max_ops}")
        if not 1 <= self.operand_digits <= 4:
            raise ValueError(f"arith: operand_digits must be in 1..4, got {self.operand_digits}")
        if self.value_limit < 10**self.operand_digits - 1:
            raise ValueError(f"arith: max_value={self.max_value} is below the largest operand")

    @property
    def value_limit(self) -> int:
        return self.max_value if self.max_value is not None else 10 ** (self.operand_digits + 1) - 1

    @property
    def levels(self) -> list[int]:
        return list(range(self.min_ops, self.max_ops + 1))


@dataclass(frozen=True)
class ArithQuestion:
    """A start value and a chain of (operator, operand) applied left to right."""

    start: int
    ops: tuple[tuple[str, int], ...]

    @property
    def level(self) -> int:
        return len(self.ops)

    @classmethod
    def parse(cls, text: str) -> ArithQuestion:
        """The question of a `text` as `ArithQuestion.text` writes it; ValueError if it is not one."""
        flat = text.replace("(", "").replace(")", "").strip()
        start = re.match(r"\d+", flat)
        terms = _TERM.findall(flat[start.end() :]) if start else []
        question = cls(int(start.group()), tuple((op, int(x)) for op, x in terms)) if start else None
        if question is None or not terms or question.text != text.strip():
            raise ValueError(f"not an arith question: {text!r}")
        return question

    @property
    def text(self) -> str:
        """Fully parenthesised, so the left-to-right reading is the only one."""
        expr = str(self.start)
        for i, (op, operand) in enumerate(self.ops):
            expr = f"{expr}{op}{operand}" if i == 0 else f"({expr}){op}{operand}"
        return expr

    def reference_steps(self) -> list[str]:
        """The exact solution steps, answer line included."""
        steps, value = [], self.start
        for op, operand in self.ops:
            new = _apply(value, op, operand)
            steps.append(f"{value}{op}{operand}={new}")
            value = new
        return [*steps, ARITH.answer_step(str(value))]

    @property
    def answer(self) -> str:
        return ARITH.final_answer(self.reference_steps())  # type: ignore[return-value]


def _apply(value: int, op: str, operand: int) -> int:
    return value + operand if op == "+" else value - operand if op == "-" else value * operand


def sample_question(rng: random.Random, n_ops: int, config: ArithConfig) -> ArithQuestion:
    """One question with `n_ops` operations, every intermediate value within the limit."""
    hi = 10**config.operand_digits - 1
    value = rng.randint(0, hi)
    start, ops = value, []
    for _ in range(n_ops):
        valid = [
            (op, x)
            for op in OPS
            for x in range(hi + 1)
            if 0 <= _apply(value, op, x) <= config.value_limit and not (op == "*" and x < 2)  # no trivial *0, *1
        ]
        op, x = rng.choice(valid)  # never empty: "+0" always stays in range
        ops.append((op, x))
        value = _apply(value, op, x)
    return ArithQuestion(start, tuple(ops))


@dataclass
class ArithSplits:
    train: list[ArithQuestion]
    validation: list[ArithQuestion]
    test: list[ArithQuestion]


def make_splits(
    config: ArithConfig,
    seed: int,
    train_per_level: int,
    validation_per_level: int,
    test_per_level: int,
    train_stream: str = "train",
    distinct_train: bool = False,
) -> ArithSplits:
    """Train/validation/test questions per level, deterministic by seed.

    Validation and test questions are distinct and never appear in train; train may repeat
    a question (easy levels have only a few hundred distinct questions) unless
    `distinct_train`, where a level whose pool runs out gives all it has (a warning says so).
    Held-out questions depend only on the seed, the task and the held-out counts; train
    questions come from the named stream, so a later stage (say PRM data) can draw fresh
    training questions with `train_stream="prm"`.
    """
    splits = ArithSplits([], [], [])
    for level in config.levels:
        rng = random.Random(stable_seed(seed, "held-out", level))
        held_out: set[str] = set()
        for chosen, count in ((splits.validation, validation_per_level), (splits.test, test_per_level)):
            for _ in range(count):
                chosen.append(_draw(rng, level, config, exclude=held_out))
                held_out.add(chosen[-1].text)
        rng = random.Random(stable_seed(seed, train_stream, level))
        exclude = set(held_out)
        for drawn in range(train_per_level):
            try:
                splits.train.append(_draw(rng, level, config, exclude=exclude))
            except ValueError:
                if not distinct_train:
                    raise
                log.warning("arith level %d: only %d distinct fresh questions, not %d", level, drawn, train_per_level)
                break
            if distinct_train:
                exclude.add(splits.train[-1].text)
    return splits


def first_per_level(questions: Sequence[Q], count: int) -> list[Q]:
    """The first `count` questions of each level, in their original order."""
    seen: dict[int, int] = defaultdict(int)
    chosen = []
    for q in questions:
        seen[q.level] += 1
        if seen[q.level] <= count:
            chosen.append(q)
    return chosen


def _draw(rng: random.Random, level: int, config: ArithConfig, exclude: set[str]) -> ArithQuestion:
    for _ in range(10_000):
        q = sample_question(rng, level, config)
        if q.text not in exclude:
            return q
    raise ValueError(
        f"arith: cannot draw another distinct question with {level} operation(s) and "
        f"{config.operand_digits}-digit operands; ask for fewer questions at this level"
    )


@dataclass(frozen=True)
class ArithTask:
    """The task, its split settings and step format: saved beside a policy, read by later stages."""

    FILE = "task.json"

    config: ArithConfig
    seed: int  # the seed every sample derives from
    validation_per_level: int
    test_per_level: int
    step_format: StepFormat = ARITH

    def splits(self, train_per_level: int, train_stream: str = "train", distinct_train: bool = False) -> ArithSplits:
        counts = (train_per_level, self.validation_per_level, self.test_per_level)
        return make_splits(self.config, self.seed, *counts, train_stream, distinct_train)

    def save(self, directory: str | Path) -> None:
        (Path(directory) / self.FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> ArithTask:
        path = Path(directory) / cls.FILE
        if not path.is_file():
            raise UserError(f"policy checkpoint not found or not an arith policy: {path} is missing")
        record = json.loads(path.read_text())
        return cls(
            ArithConfig(**record.pop("config")), step_format=StepFormat.from_dict(record.pop("step_format")), **record
        )


@dataclass
class CheckResult:
    """The verdict on one solution text."""

    steps: list[str]
    final_answer: str | None
    correct: bool  # the final answer equals the gold answer
    first_error: int | None  # index of the first step that differs from the reference, None if none
    step_correct: list[bool] = field(default_factory=list)  # ground truth per present step


def check_solution(question: ArithQuestion, solution: str, fmt: StepFormat = ARITH) -> CheckResult:
    """Check any solution text (also empty, truncated or malformed) against the exact reference.

    A step is correct iff it is the reference step at its position and every step before it
    is correct: once a step goes wrong, later steps build on a wrong state. The answer is
    graded as in every stage (`answers_match`: `A:7.0` is right for 7), and an answer line
    with a right answer after right steps is a right step.
    """
    steps = fmt.split_steps(solution)
    reference = question.reference_steps()
    step_correct, first_error = [], None
    answer = fmt.final_answer(steps)
    correct = answers_match(answer, question.answer)
    for i, step in enumerate(steps):
        same = step.strip() == reference[i] if i < len(reference) else False
        if i == len(reference) - 1 and fmt.is_answer_step(step.strip()):
            same = correct
        ok = first_error is None and same
        if not ok and first_error is None:
            first_error = i
        step_correct.append(ok)
    return CheckResult(steps, answer, correct, first_error, step_correct)
