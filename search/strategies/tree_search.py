"""Step-level searches guided by a PRM: beam search, lookahead search and DVTS.

All three grow solutions one step at a time (the policy stops after each step separator),
batched across questions and beams: one generate call and one verifier call per round.
A prefix is ranked by its aggregated step scores (`settings.aggregation`; Snell et al.: the
last step's score). A blank step (a separator alone) is not a step: the path goes on.

- beam search (budget N, width M): N/M roots each expanded by M (= N samples of the first
  step); of the unfinished candidates the top N/M survive and are expanded by M again.
  Finished candidates are all kept; the search stops when N have finished WITH an answer, no
  beam is left, or after `max_rounds`. The answer is best-of-N weighted over the N best
  finished ones (answered ones first: a path cut off by a token limit never takes a slot
  from an answer).
- lookahead (also k): beam search where each unfinished candidate is scored after rolling
  out k more steps at temperature 0 (the rollout only scores, it is not kept); it draws the
  same samples as beam search, so k = 0 IS beam search. Costs N*(k+1) generations.
- DVTS (search-and-learn): N/M independent subtrees; each keeps only its best of M
  candidates per step and never compares with another subtree, until its best candidate has
  finished. The answer is best-of-N weighted over all N completions of the last round of every
  subtree (its M children there, the best of which ended it), not over N/M subtree winners.

A path that hits a token limit or `max_rounds` without an answer line has no answer.

Prefix reuse (`search.generation.prefix_cache`): where the generator and the verifier support it, each
keeps the states of the live beams between rounds, so a round computes only the new step's
tokens, in the policy and in the verifier; the pruned beams' states are freed after each round.
The answers and scores are those of full passes (`reuse_prefixes=False`); the accounting says
how many tokens were read from the caches.

`progress` (optional; the server's streaming and cancellation) is called after every round with the
round and each question's best path so far (its steps and rank score; None before the first step);
it returns the indices of questions to stop: their search ends there (a client that went away).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

from search.generation.generator import Generation, Generator, SamplingParams, stable_seed
from search.generation.prefix_cache import PrefixReuse, prefix_reuse
from search.step_format import StepFormat
from search.strategies.accounting import Accounting
from search.strategies.strategy import Candidate, SearchResult, SearchSettings, StrategySpec, pick, question_seeds
from search.verifiers.aggregation import aggregate
from search.verifiers.verifier import Verifier

BestPath = tuple[list[str], float]  # a question's best path so far: its steps and rank score
Progress = Callable[[int, list[BestPath | None]], Collection[int] | None]  # round, best paths -> questions to stop


@dataclass
class _Path:
    steps: list[str]
    tokens: int = 0  # generated along this path
    subtree: int = 0
    finished: bool = False
    answer: str | None = None
    step_scores: list[float] = field(default_factory=list)
    rank_score: float = 0.0  # aggregated step scores (after the lookahead rollout, for lookahead)


@dataclass
class _Question:
    text: str
    seed: int  # the seed every sample derives from
    active: list[_Path]
    accounting: Accounting
    finished: list[_Path] = field(default_factory=list)
    last_round: dict[int, list[_Path]] = field(default_factory=dict)  # DVTS: subtree -> its last M children


def extend(path: _Path, gen: Generation, fmt: StepFormat, max_new_tokens: int) -> _Path:
    """`path` plus one generated step; finished at an answer line, EOS, or a token limit."""
    text, tokens = gen.text, path.tokens + gen.generated_tokens
    if gen.stop_reason == "step":
        step = text[: len(text) - len(fmt.step_separator)]
        if not step.strip():  # a blank line: not a step
            cut = tokens >= max_new_tokens
            return _Path(list(path.steps), tokens, path.subtree, cut)
        done = fmt.is_answer_step(step)
        cut = not done and tokens >= max_new_tokens
        new = _Path([*path.steps, step], tokens, path.subtree, done or cut)
    else:  # eos: the solution ended; length: the step never ended (cut)
        new = _Path([*path.steps, text] if text else list(path.steps), tokens, path.subtree, True)
        cut = gen.stop_reason == "length"
    new.answer = None if cut or not new.finished else fmt.final_answer(new.steps)
    return new


def tree_search(
    spec: StrategySpec,
    questions: Sequence[str],
    generator: Generator,
    verifier: Verifier,
    fmt: StepFormat,
    settings: SearchSettings,
    budget: int,
    seed: int | Sequence[int],
    reuse_prefixes: bool = True,
    progress: Progress | None = None,
) -> list[SearchResult]:
    """Beam search, lookahead or DVTS (by `spec.name`) for every question; see the module docstring. `seed`: the
    run's, or one per question."""
    m = spec.width(budget)
    roots = budget // m
    family = "dvts" if spec.name == "dvts" else "beam"  # lookahead samples what beam search samples
    states = [
        _Question(q, stable_seed(run_seed, family, q), [_Path([], subtree=s) for s in range(roots)], Accounting())
        for q, run_seed in zip(questions, question_seeds(seed, questions), strict=True)
    ]
    step_params = SamplingParams(settings.temperature, settings.top_p, settings.max_step_tokens, "step")
    with prefix_reuse(generator, verifier, reuse_prefixes) as reuse:  # freed when the search ends
        for round_ in range(settings.max_rounds):
            work = [(st, slot, path) for st in states for slot, path in enumerate(st.active)]
            if not work:
                break
            # a DVTS subtree draws from its own seeds whatever the other subtrees do
            seeds = [stable_seed(st.seed, round_, p.subtree if spec.name == "dvts" else slot) for st, slot, p in work]
            outs = generator.generate([fmt.render(st.text, p.steps) for st, _, p in work], step_params, m, seeds)
            candidates: list[tuple[_Question, _Path]] = []
            for (st, _, path), gens in zip(work, outs, strict=True):
                st.accounting.add_generations(gens)
                candidates += [(st, extend(path, g, fmt, settings.max_new_tokens)) for g in gens]
            _score(candidates, spec.k if spec.name == "lookahead" else 0, generator, verifier, fmt, settings, reuse)
            by_question: dict[int, list[_Path]] = {id(st): [] for st in states}
            for st, path in candidates:
                by_question[id(st)].append(path)
            for st in states:
                mine = by_question[id(st)]
                if spec.name == "dvts":
                    _keep_best_per_subtree(st, mine)
                else:
                    _keep_top(st, mine, roots, budget)
            if progress is not None:
                for i in progress(round_, [_best(st) for st in states]) or ():
                    states[i].active = []  # stopped: what it has finished so far is its pool
            reuse.keep([fmt.render(st.text, p.steps) for st in states for p in st.active])
    results = []
    for st in states:
        if spec.name == "dvts":  # every subtree's last M children (still running ones: no answer)
            pool = [p if p.finished else replace(p, answer=None) for kids in st.last_round.values() for p in kids]
        else:
            pool = st.finished + [replace(p, answer=None) for p in st.active]  # out of rounds: no answer
            pool = sorted(pool, key=lambda p: (p.answer is None, -p.rank_score))[:budget]
        candidates = [
            Candidate(p.steps, p.answer, p.step_scores, aggregate(p.step_scores, settings.aggregation)) for p in pool
        ]
        st.accounting.generations = spec.generations(budget)
        answer, solution = pick(candidates, "weighted")
        results.append(SearchResult(answer, solution, candidates, st.accounting))
    return results


def _best(st: _Question) -> BestPath | None:
    """The highest-ranked path of a question so far, live or finished."""
    paths = st.active + st.finished
    if not paths:
        return None
    best = max(paths, key=lambda p: p.rank_score)
    return list(best.steps), best.rank_score


def _keep_top(st: _Question, candidates: list[_Path], width: int, budget: int) -> None:
    st.finished += [c for c in candidates if c.finished]
    alive = sorted((c for c in candidates if not c.finished), key=lambda c: -c.rank_score)  # stable: ties keep order
    answered = sum(p.answer is not None for p in st.finished)
    st.active = [] if answered >= budget else alive[:width]


def _keep_best_per_subtree(st: _Question, candidates: list[_Path]) -> None:
    st.active = []
    for subtree in dict.fromkeys(c.subtree for c in candidates):
        children = [c for c in candidates if c.subtree == subtree]
        st.last_round[subtree] = children
        best = max(children, key=lambda c: c.rank_score)
        (st.finished if best.finished else st.active).append(best)


def _score(
    candidates: list[tuple[_Question, _Path]],
    k: int,
    generator: Generator,
    verifier: Verifier,
    fmt: StepFormat,
    settings: SearchSettings,
    reuse: PrefixReuse,
) -> None:
    """Set each candidate's step scores and rank score, rolling unfinished ones out k greedy steps first."""
    ends = [path for _, path in candidates]  # what gets scored: the candidate or its rollout
    greedy = SamplingParams(0.0, 1.0, settings.max_step_tokens, "step")
    for _ in range(k):
        going = [i for i, p in enumerate(ends) if not p.finished]
        if not going:
            break
        outs = generator.generate([fmt.render(candidates[i][0].text, ends[i].steps) for i in going], greedy, 1)
        for i, gens in zip(going, outs, strict=True):
            candidates[i][0].accounting.add_generations(gens)
            ends[i] = extend(ends[i], gens[0], fmt, settings.max_new_tokens)
    prompts = [fmt.prompt(st.text) for st, _ in candidates]
    steps = [p.steps for p in ends]
    scores = verifier.score(prompts, steps)
    read, cached = verifier.count_tokens(prompts, steps), reuse.verifier_reused(len(prompts))
    for (st, path), end_scores, tokens, from_cache in zip(candidates, scores, read, cached, strict=True):
        st.accounting.verifier_tokens += tokens
        st.accounting.cached_verifier_tokens += from_cache
        path.step_scores = end_scores[: len(path.steps)]
        path.rank_score = aggregate(end_scores, settings.aggregation)
