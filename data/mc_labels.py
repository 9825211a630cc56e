"""Monte-Carlo step labels (Math-Shepherd, Snell et al.) and OmegaPRM-style binary search.

For a solution with steps s_1..s_m, the MC value of step i is the fraction of K rollouts
from the prefix s_1..s_i whose final answer is correct. The last step needs no rollout: its
value is the solution's own correctness. Soft label = the MC value; hard label = value >
threshold (threshold 0: "any rollout correct", Math-Shepherd).

Binary search (OmegaPRM) finds the first step whose MC value is 0 by bisection, using
ceil(log2 m) probes instead of m - 1, assuming values stay 0 after the first error.

Rollouts from a prefix are seeded by the prefix text, so the same prefix gets the same
rollouts in either mode, in any batch and in any process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from search.generation.generator import Generator, SamplingParams, stable_seed
from search.step_format import StepFormat

Mode = Literal["exhaustive", "binary"]


@dataclass
class Bisection:
    """Search for the first step index whose MC value is 0; the last step is known to be 0."""

    lo: int
    hi: int
    probes: int = 0

    @property
    def done(self) -> bool:
        return self.lo >= self.hi

    @property
    def probe(self) -> int:
        return (self.lo + self.hi) // 2

    def update(self, value: float) -> None:
        self.probes += 1
        if value == 0:
            self.hi = self.probe
        else:
            self.lo = self.probe + 1


def first_zero_by_bisection(n_steps: int, value_of: Callable[[int], float]) -> tuple[int, int]:
    """(first zero step, probes) for an incorrect solution of `n_steps` steps."""
    search = Bisection(0, n_steps - 1)
    while not search.done:
        search.update(value_of(search.probe))
    return search.lo, search.probes


@dataclass
class LabeledSolution:
    """One solution with its MC values (None where binary search did not probe)."""

    steps: list[str]
    correct: bool
    mc_values: list[float | None]
    rollouts: int
    first_zero: int | None  # first step with MC value 0 (binary: found by bisection)


@dataclass
class MCLabeler:
    """Computes MC values for many solutions at once, batching every rollout of a round."""

    generator: Generator
    fmt: StepFormat
    grade: Callable[[int, str], bool]  # (question index, full solution text) -> correct
    rollouts: int  # K
    params: SamplingParams
    seed: int  # the seed every sample derives from

    def __post_init__(self) -> None:
        if self.rollouts < 1:
            raise ValueError(f"rollouts per step must be >= 1, got {self.rollouts}")

    def values(self, probes: Sequence[tuple[int, str, Sequence[str]]]) -> list[float]:
        """MC value of each (question index, question text, prefix steps), in one batched call."""
        prompts = [self.fmt.render(question, prefix) for _, question, prefix in probes]
        seeds = [stable_seed(self.seed, "rollout", p) for p in prompts]
        outs = self.generator.generate(prompts, self.params, n=self.rollouts, seeds=seeds)
        values = []
        for (qi, _, prefix), gens in zip(probes, outs, strict=True):
            done = self.fmt.render_steps(prefix)
            values.append(sum(self.grade(qi, done + g.text) for g in gens) / self.rollouts)
        return values

    def label(self, solutions: Sequence[tuple[int, str, list[str], bool]], mode: Mode) -> list[LabeledSolution]:
        """Label (question index, question text, steps, correct) tuples."""
        results = [
            LabeledSolution(steps, correct, [None] * (len(steps) - 1) + [float(correct)], 0, None)
            for _, _, steps, correct in solutions
        ]
        if mode == "exhaustive":
            todo = [(s, i) for s, (_, _, steps, _) in enumerate(solutions) for i in range(len(steps) - 1)]
            self._fill(solutions, results, todo)
            for r in results:
                r.first_zero = next((i for i, v in enumerate(r.mc_values) if v == 0), None)
            return results
        searches = {s: Bisection(0, len(sol[2]) - 1) for s, sol in enumerate(solutions) if not sol[3]}
        while active := [s for s, b in searches.items() if not b.done]:
            self._fill(solutions, results, [(s, searches[s].probe) for s in active])
            for s in active:
                searches[s].update(results[s].mc_values[searches[s].probe])
        for s, b in searches.items():
            results[s].first_zero = b.lo
        return results

    def _fill(self, solutions, results: list[LabeledSolution], todo: list[tuple[int, int]]) -> None:
        probes = [(solutions[s][0], solutions[s][1], solutions[s][2][: i + 1]) for s, i in todo]
        for (s, i), value in zip(todo, self.values(probes), strict=True):
            results[s].mc_values[i] = value
            results[s].rollouts += self.rollouts
