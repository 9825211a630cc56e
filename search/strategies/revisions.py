"""Sequential revisions (Snell et al. section 6): chains of attempts by a revision model.

A budget N is spent as N/L parallel chains of L attempts each (L = the sequential/parallel
ratio's sequential part). Attempt t of a chain is sampled from
`StepFormat.revision_prompt(question, history)`, where the history is the chain's last
`CONTEXT_ATTEMPTS` (4) answered attempts, oldest first; attempt 0 has no history. An attempt
cut off without an answer still costs its generation but stays out of later prompts (the
revision model was trained on answered attempts only). A model with a short context keeps
fewer: the oldest attempts go until the prompt leaves room for one more attempt as long as
the latest (training dropped the rows that did not fit, so the model never saw such prompts).

Selection, as in the paper:
- `weighted` (or `naive`): hierarchical. Within each chain the revision ORM's scores pick an
  answer by weighted best-of-N; the chain then stands for that answer with the score of its
  best attempt giving it; across chains the same rule picks one answer.
- `majority`: one flat majority vote over all N attempts (no verifier).

Budget sweeps without waste: attempt t of chain c depends only on the run seed, the question,
c, t and the chain's own history, never on the number of chains, so the first b/L chains of a
run at budget N are exactly a run at budget b (`RevisionChains.at`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from search.generation.generator import Generator, SamplingParams, stable_seed
from search.step_format import StepFormat
from search.strategies.accounting import Accounting
from search.strategies.strategy import Candidate, SearchResult, SearchSettings, pick, question_seeds
from search.verifiers.aggregation import aggregate
from search.verifiers.verifier import Verifier, score_solutions

CONTEXT_ATTEMPTS = 4  # previous attempts a revision prompt holds, at training and at test time


def recent(attempts: Sequence, window: int = CONTEXT_ATTEMPTS) -> list:
    """The `window` most recent attempts (what a revision prompt keeps)."""
    return list(attempts[-window:]) if window > 0 else []


def history_window(
    fmt: StepFormat,
    question: str,
    answered: Sequence[Sequence[str]],
    count_tokens: Callable[[str], int] | None = None,
    context: int | None = None,
) -> list:
    """The attempts a revision prompt shows: the most recent answered ones, at most
    `CONTEXT_ATTEMPTS`, the oldest dropped until the prompt leaves `context` room for one more
    attempt as long as the latest (no limit without a token counter and a context)."""
    window = recent(answered)
    if count_tokens is None or context is None or not window:
        return window
    room = context - count_tokens(fmt.render_steps(window[-1]))
    while window and count_tokens(fmt.revision_prompt(question, window)) > room:
        window = window[1:]
    return window


@dataclass
class Attempt:
    """One attempt of a chain: the prompt it was sampled from, and the scored candidate."""

    prompt: str
    candidate: Candidate
    cost: Accounting


@dataclass
class RevisionChains:
    """The chains of one question: `chains[c][t]` is attempt t of chain c."""

    chains: list[list[Attempt]]

    def at(self, budget: int, select: str, length: int | None = None) -> SearchResult:
        """The result at `budget` with selection rule `select`: its first budget/L chains of L
        attempts (L = `length`, default the chains' own; a chain's first L attempts ARE a chain
        of L, so one long chain serves every fully sequential budget)."""
        length = length or len(self.chains[0])
        if budget % length or not 1 <= budget // length <= len(self.chains) or length > len(self.chains[0]):
            raise ValueError(f"budget {budget} is not {length}-attempt chains out of those drawn")
        used = [chain[:length] for chain in self.chains[: budget // length]]
        chains = [[a.candidate for a in chain] for chain in used]
        spent = sum((a.cost for chain in used for a in chain), Accounting(generations=budget))
        answer, solution = select_revisions(chains, select)
        return SearchResult(answer, solution, [c for chain in chains for c in chain], spent)


def select_revisions(chains: Sequence[Sequence[Candidate]], select: str) -> tuple[str | None, list[str]]:
    """Flat majority over every attempt, or hierarchical selection (see the module docstring)."""
    if select == "majority":
        return pick([c for chain in chains for c in chain], "majority")
    winners = []
    for chain in chains:
        answer, steps = pick(chain, select)
        if answer is not None:
            best = max(c.score for c in chain if c.steps == steps and c.answer == answer)
            winners.append(Candidate(steps, answer, score=best))
    return pick(winners, select)


def sample_revision_chains(
    questions: Sequence[str],
    reviser: Generator,
    verifier: Verifier | None,
    fmt: StepFormat,
    settings: SearchSettings,
    chains: int,
    length: int,
    seed: int | Sequence[int],
) -> list[RevisionChains]:
    """`chains` chains of `length` attempts per question; every chain advances in one batched call per step.

    A reviser with `count_tokens` and `context_length` (like `HFGenerator`) gets prompts that fit
    its context (`history_window`)."""
    if chains < 1 or length < 1:
        raise ValueError(f"need at least one chain of at least one attempt, got {chains} x {length}")
    params = SamplingParams(settings.temperature, settings.top_p, settings.max_new_tokens, "solution")
    keys = [(i, c) for i in range(len(questions)) for c in range(chains)]
    run_seeds = question_seeds(seed, questions)  # the run's seed, or one per question
    histories: list[list[list[str]]] = [[] for _ in keys]  # answered attempts' steps, per chain
    out = [RevisionChains([[] for _ in range(chains)]) for _ in questions]
    count_tokens, context = getattr(reviser, "count_tokens", None), getattr(reviser, "context_length", None)
    for t in range(length):
        prompts = [
            fmt.revision_prompt(questions[i], history_window(fmt, questions[i], h, count_tokens, context))
            for (i, _), h in zip(keys, histories, strict=True)
        ]
        seeds = [stable_seed(run_seeds[i], "revision", questions[i], c, t) for i, c in keys]
        generations = [gens[0] for gens in reviser.generate(prompts, params, 1, seeds)]
        steps = [fmt.split_steps(g.text) for g in generations]
        cut = [g.stop_reason == "length" for g in generations]  # cut off: no answer
        answers = [None if c else fmt.final_answer(s) for s, c in zip(steps, cut, strict=True)]
        scores, tokens = score_solutions(verifier, prompts, steps)
        for k, (i, c) in enumerate(keys):
            cost = Accounting(verifier_tokens=tokens[k])
            cost.add_generations([generations[k]])
            candidate = Candidate(steps[k], answers[k], scores[k], aggregate(scores[k], settings.aggregation))
            out[i].chains[c].append(Attempt(prompts[k], candidate, cost))
            if answers[k] is not None:
                histories[k].append(steps[k])
    return out
