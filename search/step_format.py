"""The one step format: how a question and its steps become text and tokens.

Every layer (data builders, trainers, the runtime) renders and parses solutions through a
`StepFormat`, so a PRM reads its scores at exactly the positions it was trained on. Layout:

    <prompt_template with the question><step 1><sep><step 2><sep>...<answer_prefix><answer><sep>

The answer line is the last step. A checkpoint stores its format (`to_dict`) and the
runtime refuses a checkpoint whose format differs from the one in use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from search.grading import last_boxed

CONFIG_KEY = "step_format"  # key under which a checkpoint's config carries its format


@dataclass(frozen=True)
class StepFormat:
    """Prompt template, step separator and answer line of one task family."""

    name: str = "arith"
    prompt_template: str = "Q:{question}\n"
    step_separator: str = "\n"
    answer_prefix: str = "A:"
    attempt_header: str = ""  # revision prompts: a line before each previous attempt ("" = none)
    revision_header: str = "Q:{question}"  # and a line before the revision ({question} allowed; "" = none)

    def __post_init__(self) -> None:
        if "{question}" not in self.prompt_template:
            raise ValueError(f"step format {self.name!r}: prompt_template must contain '{{question}}'")
        if not self.step_separator:
            raise ValueError(f"step format {self.name!r}: step_separator must not be empty")

    # ---- text ---------------------------------------------------------------------------
    def prompt(self, question: str) -> str:
        """The text the policy is conditioned on before the first step."""
        return self.prompt_template.format(question=question)

    def question_of(self, prompt: str) -> str | None:
        """The question inside a rendered prompt, or None if the prompt is not in this format."""
        head, tail = self.prompt_template.split("{question}")
        if len(prompt) < len(head) + len(tail) or not (prompt.startswith(head) and prompt.endswith(tail)):
            return None
        return prompt[len(head) : len(prompt) - len(tail)]

    def answer_step(self, answer: str) -> str:
        """The final step that states the answer."""
        return f"{self.answer_prefix}{answer}"

    def render_steps(self, steps: Sequence[str]) -> str:
        """Steps as solution text, each followed by the separator."""
        return "".join(step + self.step_separator for step in steps)

    def render(self, question: str, steps: Sequence[str]) -> str:
        """Prompt plus steps: the full text of a (partial) solution."""
        return self.prompt(question) + self.render_steps(steps)

    def split_steps(self, solution: str) -> list[str]:
        """Steps of a solution text (without the prompt); a trailing unfinished step is kept."""
        parts = solution.split(self.step_separator)
        if parts and parts[-1] == "":
            parts.pop()  # the separator after the last step
        return parts

    def is_answer_step(self, step: str) -> bool:
        return step.startswith(self.answer_prefix)

    def final_answer(self, steps: Sequence[str]) -> str | None:
        """The answer stated by the last step (its answer line, else its last `\\boxed{}`), or None."""
        if not steps:
            return None
        if not self.is_answer_step(steps[-1]):
            return last_boxed(steps[-1])  # how instruct models state answers
        answer = steps[-1][len(self.answer_prefix) :].strip()
        return answer or None

    def extract_answer(self, solution: str) -> str | None:
        """The final answer of a solution text, or None."""
        return self.final_answer(self.split_steps(solution))

    # ---- revisions ----------------------------------------------------------------------
    def revision_prompt(self, question: str, attempts: Sequence[Sequence[str]]) -> str:
        """The prompt of a revision model: the question, then its previous attempts (oldest first,
        each under `attempt_header` if the format has one), then `revision_header`; the completion
        is a solution in this format. Every attempt ends with its answer line. Arith restates the
        question as its revision header: its tiny model knows no words, and it knows what follows
        `Q:<question>`.

            Q:((2+7)*3)-5        Question: ...          <- arith | gsm8k (math: "\n\n" separators)
            2+7=9                Attempt:
            9*3=28               ...
            28-5=23              The answer is: 23
            A:23                 Revision:
            2+7=8                Answer:
            8*3=24
            A:24
            Q:((2+7)*3)-5

        With no attempts it is the ordinary prompt of the question: a first attempt is a policy's.
        The history sits inside the template's question slot, so `question_of`, `encode` and a
        verifier see an ordinary prompt (the revision ORM scores in context).
        """
        if not attempts:
            return self.prompt(question)
        lines = [question]
        for steps in attempts:
            lines += [self.attempt_header] if self.attempt_header else []
            lines += steps
        lines += [self.revision_header.format(question=question)] if self.revision_header else []
        return self.prompt(self.step_separator.join(lines))

    # ---- tokens -------------------------------------------------------------------------
    def encode(self, tokenizer: Any, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        """Token ids of a rendered prompt + steps and, per step, the index of its last token.

        Each step (with its separator) is tokenized on its own, so step boundaries never merge
        into a neighbouring token: the last token of a step is where a PRM reads its score.
        """
        ids = list(tokenizer(prompt)["input_ids"])
        step_ends = []
        for step in steps:
            ids += tokenizer(step + self.step_separator, add_special_tokens=False)["input_ids"]
            step_ends.append(len(ids) - 1)
        return ids, step_ends

    # ---- metadata -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StepFormat:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown step format keys: {', '.join(unknown)}")
        return cls(**values)


ARITH = StepFormat()
# Real math: one step per line (GSM8K) or per paragraph (MATH); the answer line as Math-Shepherd writes it.
GSM8K = StepFormat("gsm8k", "Question: {question}\nAnswer:\n", "\n", "The answer is: ", "Attempt:", "Revision:")
MATH = StepFormat("math", "Problem: {question}\n\nSolution:\n", "\n\n", "The answer is: ", "Attempt:", "Revision:")
FORMATS: dict[str, StepFormat] = {f.name: f for f in (ARITH, GSM8K, MATH)}


def get_format(name: str) -> StepFormat:
    """A registered step format by the name a recipe uses."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown step format {name!r}; known: {', '.join(sorted(FORMATS))}") from None


def check_compatible(expected: StepFormat, found: dict[str, Any] | None, where: str) -> None:
    """Raise if a checkpoint's stored format differs from the one in use."""
    if found is None:
        raise ValueError(f"{where}: checkpoint carries no step format (config key {CONFIG_KEY!r})")
    stored = StepFormat.from_dict(found)
    if stored != expected:
        raise ValueError(f"{where}: checkpoint step format {stored} does not match the one in use {expected}")
