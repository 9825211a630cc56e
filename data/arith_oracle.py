"""The ground-truth process verifier of the arith task: step i scores 1 iff steps 0..i are right.

A perfect PRM, usable wherever the runtime takes a verifier: it shows what a search strategy
can do when the verifier is not the bottleneck, and how far a trained PRM is from that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from data.arith import ArithQuestion, check_solution
from search.step_format import StepFormat


class ArithOracleVerifier:
    aggregation = "last"

    def __init__(self, questions: Iterable[ArithQuestion], fmt: StepFormat):
        self.questions, self.format = {q.text: q for q in questions}, fmt

    def score(self, prompts: Sequence[str], solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        out = []
        for prompt, steps in zip(prompts, solutions, strict=True):
            question = self.questions.get(self.format.question_of(prompt) or "")
            if question is None:
                raise KeyError(f"the oracle does not know the question of prompt {prompt!r}")
            verdict = check_solution(question, self.format.render_steps(steps), self.format)
            out.append([float(ok) for ok in verdict.step_correct])
        return out

    def count_tokens(self, prompts: Sequence[str], solutions: Sequence[Sequence[str]]) -> list[int]:
        return [0] * len(prompts)  # no model runs
