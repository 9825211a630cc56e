"""Tasks: where a stage's questions come from, how a solution is graded, and the step format.

    task = load_task("gsm8k", source="gsm8k_test.jsonl")  # a local copy of the GSM8K test split
    questions = task.questions("test", limit=8)
    verdict = task.check(questions[0], "2 + 3 = 5\\nThe answer is: 5\\n", task.step_format)

Every data builder, report and evaluation loads its questions through a `Task`, so each works
for `arith` (the embedded task: questions from the policy's `task.json`), `gsm8k` and `math`
(a Hub id or a local JSONL). One grading rule everywhere: a solution is right iff its final
answer `answers_match` the gold answer. Arith also knows the truth of every step
(`Verdict.step_correct`); the real tasks do not (None), and reports say which figures need it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from core.config import UserError
from data.arith import ArithQuestion, ArithTask, check_solution, first_per_level
from data.math_tasks import MathQuestion, load_gsm8k, load_math
from search.generation.settings import BackendConfig
from search.grading import answers_match
from search.prompting import PromptConfig, resolve_format
from search.questions import Question
from search.step_format import GSM8K, MATH, StepFormat

TASKS = ("arith", "gsm8k", "math")


@dataclass
class Verdict:
    """A solution text graded against its question."""

    steps: list[str]
    answer: str | None
    correct: bool  # answers_match(answer, gold)
    step_correct: list[bool] | None = None  # per step, where the task knows the truth (arith)
    first_error: int | None = None  # the first wrong step (arith), None if none or unknown


def grade(fmt: StepFormat, question: Question, solution: str) -> Verdict:
    """The verdict every task without step-level truth gives: steps, final answer, correctness."""
    steps = fmt.split_steps(solution)
    answer = fmt.final_answer(steps)
    return Verdict(steps, answer, answers_match(answer, question.gold))


class Task(Protocol):
    name: str
    step_format: StepFormat  # the format its reference solutions are written in
    has_step_truth: bool  # whether `check` knows each step's correctness

    def questions(
        self, split: str, per_level: int | None = None, limit: int | None = None, stream: str = "train"
    ) -> list[Question]:
        """The split's questions (at most `per_level` per level, then `limit` in all). Arith's
        train split is drawn fresh per `stream` (never a held-out question)."""
        ...

    def check(self, question: Question, solution: str, fmt: StepFormat) -> Verdict: ...


@dataclass
class Arith:
    """The embedded arith task of a policy checkpoint (its `task.json`)."""

    task: ArithTask
    name: str = "arith"
    has_step_truth: bool = True

    @property
    def step_format(self) -> StepFormat:
        return self.task.step_format

    def questions(
        self, split: str, per_level: int | None = None, limit: int | None = None, stream: str = "train"
    ) -> list[Question]:
        if split == "train":
            if per_level is None:
                raise UserError("arith train questions are drawn fresh: set questions_per_level")
            try:
                drawn = self.task.splits(per_level, train_stream=stream, distinct_train=True).train
            except ValueError as err:
                raise UserError(str(err)) from None
            ids = [f"{stream}-{i}" for i in range(len(drawn))]
        elif split in ("validation", "test"):
            held_out = getattr(self.task.splits(0), split)
            ids_of = {q.text: f"{split}-{i}" for i, q in enumerate(held_out)}  # ids do not depend on per_level
            drawn = held_out if per_level is None else first_per_level(held_out, per_level)
            ids = [ids_of[q.text] for q in drawn]
        else:
            raise UserError(f"arith splits are train, validation and test, got {split!r}")
        pairs = zip(ids, drawn, strict=True)
        return [Question(i, q.text, q.answer, q.level, tuple(q.reference_steps())) for i, q in pairs][:limit]

    def check(self, question: Question, solution: str, fmt: StepFormat) -> Verdict:
        try:
            parsed = ArithQuestion.parse(question.text)
        except ValueError:
            raise UserError(f"question {question.id}: {question.text!r} is not an arith question") from None
        result = check_solution(parsed, solution, fmt)
        return Verdict(result.steps, result.final_answer, result.correct, result.step_correct, result.first_error)


@dataclass
class MathTask:
    """GSM8K or MATH questions from a Hub id or a local JSONL (`data.math_tasks`)."""

    name: str
    source: str | None = None  # default: the task's Hub dataset
    step_format: StepFormat = MATH
    has_step_truth: bool = False
    skipped: dict = field(default_factory=dict)  # rows without a gold answer, by reason

    def questions(
        self, split: str, per_level: int | None = None, limit: int | None = None, stream: str = "train"
    ) -> list[Question]:
        loader = load_gsm8k if self.name == "gsm8k" else load_math
        loaded = loader(self.source, split, self.step_format) if self.source else loader(split=split)
        self.skipped = dict(loaded.skipped)
        chosen: list[MathQuestion] = loaded.questions
        if per_level is not None:
            chosen = first_per_level(chosen, per_level)
        return [Question(q.id, q.question, q.gold, q.level, tuple(q.steps)) for q in chosen][:limit]

    def check(self, question: Question, solution: str, fmt: StepFormat) -> Verdict:
        return grade(fmt, question, solution)


def load_task(name: str, source: str | None = None) -> Task:
    """A task by name. Arith reads `task.json` from `source` (a policy or revision-model folder);
    gsm8k and math read `source` (a Hub id or a local JSONL; default: the task's Hub dataset)."""
    if name == "arith":
        if source is None:
            raise UserError("task arith needs a source: the policy folder that holds task.json")
        return Arith(ArithTask.load(Path(source)))
    if name in ("gsm8k", "math"):
        return MathTask(name, source, GSM8K if name == "gsm8k" else MATH)
    raise UserError(f"unknown task {name!r}; known: {', '.join(TASKS)}")


@dataclass
class TaskConfig:
    """Where a stage's questions come from: the keys every builder, report and evaluation shares."""

    task: str = "arith"  # arith, gsm8k or math
    source: str | None = None  # arith: the folder with task.json (default: the model); gsm8k/math: Hub id or JSONL
    split: str = "train"  # train (arith: fresh questions), validation or test
    questions_per_level: int | None = 25  # questions per difficulty level (arith train: how many to draw); null: all
    limit: int | None = None  # at most this many questions in all

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; known: {', '.join(TASKS)}")
        for name in ("questions_per_level", "limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 (or null: all), got {getattr(self, name)}")

    def task_and_questions(self, model: str, stream: str) -> tuple[Task, list[Question]]:
        """The task (arith's source defaults to `model`) and this stage's questions, distinct by text."""
        task = load_task(self.task, self.source or (model if self.task == "arith" else None))
        questions = task.questions(self.split, self.questions_per_level, self.limit, stream)
        texts = [q.text for q in questions]
        if len(set(texts)) != len(texts):
            raise UserError(f"task {self.task}: the {self.split} split repeats a question text")
        if not questions:
            raise UserError(f"task {self.task}: no {self.split} questions")
        return task, questions


@dataclass
class StageConfig(TaskConfig, PromptConfig, BackendConfig):
    """The questions of a stage, how its model is prompted and what it generates with."""

    def __post_init__(self) -> None:
        TaskConfig.__post_init__(self)
        PromptConfig.__post_init__(self)
        BackendConfig.__post_init__(self)

    def prepare(self, model: str, stream: str) -> tuple[Task, StepFormat, list[Question]]:
        """The task, the format `model` is prompted with (checked against the task's) and the questions."""
        task, questions = self.task_and_questions(model, stream)
        fmt = resolve_format(model, self, task.step_format)
        check_task_format(task, fmt)
        return task, fmt, questions


def check_task_format(task: Task, fmt: StepFormat) -> None:
    """A recipe whose task and the policy's step format disagree is a user error."""
    if fmt.name != task.step_format.name:
        raise UserError(f"task {task.name} uses step format {task.step_format.name!r}, the policy {fmt.name!r}")
