"""Best-of-N: N whole solutions per question, scored by the verifier, one answer selected.

Budget sweeps without waste: sample j of a question depends only on the run seed, the
question and j (never on N), so the first b of N samples ARE the samples a run at budget b
would draw. `BestOfNSamples.at(b)` therefore gives every smaller budget from one run at the
largest, exactly (search-and-learn and ProcessBench-style evaluations subsample the same way).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from search.generation.generator import Generator, SamplingParams, stable_seed
from search.step_format import StepFormat
from search.strategies.accounting import Accounting
from search.strategies.strategy import Candidate, SearchResult, SearchSettings, pick, question_seeds
from search.verifiers.aggregation import aggregate
from search.verifiers.verifier import Verifier, score_solutions


@dataclass
class BestOfNSamples:
    """The N scored samples of one question and what each cost."""

    candidates: list[Candidate]
    costs: list[Accounting]

    def at(self, budget: int, select: str) -> SearchResult:
        """The result of best-of-`budget` with selection rule `select` (first `budget` samples)."""
        if not 1 <= budget <= len(self.candidates):
            raise ValueError(f"budget {budget} outside 1..{len(self.candidates)} (the samples drawn)")
        candidates = self.candidates[:budget]
        spent = sum(self.costs[:budget], Accounting(generations=budget))
        answer, solution = pick(candidates, select)
        return SearchResult(answer, solution, candidates, spent)


def sample_best_of_n(
    questions: Sequence[str],
    generator: Generator,
    verifier: Verifier | None,
    fmt: StepFormat,
    settings: SearchSettings,
    budget: int,
    seed: int | Sequence[int],
) -> list[BestOfNSamples]:
    """`budget` scored solutions per question, all questions in one batched call (`seed`: the run's, or one per
    question)."""
    params = SamplingParams(settings.temperature, settings.top_p, settings.max_new_tokens, "solution")
    prompts = [fmt.prompt(q) for q in questions]
    seeds = [stable_seed(s, "best_of_n", q) for q, s in zip(questions, question_seeds(seed, questions), strict=True)]
    generations = generator.generate(prompts, params, budget, seeds)
    flat = [(i, g) for i, gens in enumerate(generations) for g in gens]
    steps = [fmt.split_steps(g.text) for _, g in flat]
    scores, tokens = score_solutions(verifier, [prompts[i] for i, _ in flat], steps)
    out = [BestOfNSamples([], []) for _ in questions]
    for k, (i, gen) in enumerate(flat):
        answer = fmt.final_answer(steps[k]) if gen.stop_reason != "length" else None  # cut off: no answer
        out[i].candidates.append(Candidate(steps[k], answer, scores[k], aggregate(scores[k], settings.aggregation)))
        cost = Accounting(verifier_tokens=tokens[k])
        cost.add_generations([gen])
        out[i].costs.append(cost)
    return out
