"""What every search strategy shares: its spec, its settings, its candidates and its result.

A strategy spec is a short string, the strategy's name and optional hyper-parameters:

    best_of_n                   N full solutions, one answer by `select` (weighted by default)
    best_of_n:select=majority   (also naive)
    beam:m=4                    beam search, N beams, keep N/M, expand each by M per step
    beam:m=sqrt                 M = sqrt(N) (N must be a perfect square)
    lookahead:m=4:k=2           beam search, each candidate scored after k greedy steps
    dvts:m=4                    N/M independent subtrees, each greedy over M candidates
    revision:l=4                N/L chains of L sequential revisions (a revision model), selected
                                hierarchically with the revision ORM (or select=majority: flat vote);
                                l=1 is parallel sampling, l=all one chain of N (fully sequential)

Omitted hyper-parameters come from the run's defaults (`beam_width`, `lookahead`,
`revision_length`, `selection`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from core.config import MAX_GENERATIONS
from search.grading import group_equivalent
from search.strategies.accounting import Accounting
from search.strategies.selection import SELECTIONS
from search.verifiers.aggregation import check_aggregation

STRATEGIES = ("best_of_n", "beam", "lookahead", "dvts", "revision")
NEEDS_WIDTH = ("beam", "lookahead", "dvts")


@dataclass(frozen=True)
class SearchSettings:
    """Sampling and limits shared by all strategies."""

    temperature: float = 1.0  # sampling temperature (0: greedy decoding)
    top_p: float = 1.0  # nucleus sampling: sample from the smallest set of tokens holding this much probability
    max_step_tokens: int = 32  # one step of a step-level search
    max_new_tokens: int = 256  # one whole solution
    max_rounds: int = 40  # step-level searches: rounds of expansion (Snell et al.: 40)
    aggregation: str | None = None  # step scores -> one solution score; None: the verifier's own (its metadata)

    def __post_init__(self) -> None:
        if self.aggregation is not None:
            check_aggregation(self.aggregation)
        if self.max_rounds < 1 or self.max_step_tokens < 1 or self.max_new_tokens < 1:
            raise ValueError("max_rounds, max_step_tokens and max_new_tokens must be >= 1")


@dataclass(frozen=True)
class StrategySpec:
    """A strategy and its hyper-parameters; `str(spec)` is its canonical spec string."""

    name: str
    m: int | str | None = None  # beam width: an int or "sqrt"
    k: int = 0  # lookahead steps
    length: int | str = 1  # attempts per revision chain (L), or "all": one chain of N
    select: str = "weighted"  # best_of_n's and revision's selection rule

    @classmethod
    def parse(
        cls,
        text: str,
        beam_width: int | str = 4,
        lookahead: int = 1,
        selection: str = "weighted",
        revision_length: int = 4,
    ):
        name, *options = text.strip().split(":")
        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
        values: dict[str, str] = {}
        for option in options:
            key, eq, value = option.partition("=")
            allowed = {"best_of_n": ("select",), "lookahead": ("m", "k"), "revision": ("l", "select")}.get(name, ("m",))
            if not eq or key not in allowed:
                raise ValueError(f"strategy {text!r}: bad option {option!r}; {name} takes {', '.join(allowed)}")
            values[key] = value
        spec = cls(name, select=values.get("select", selection))
        if name in NEEDS_WIDTH:
            m = values.get("m", str(beam_width))
            spec = replace(spec, m=m if m == "sqrt" else _int(m, f"strategy {text!r}: m"))
        if name == "lookahead":
            spec = replace(spec, k=_int(values.get("k", str(lookahead)), f"strategy {text!r}: k"))
        if name == "revision":
            length = values.get("l", str(revision_length))
            spec = replace(spec, length=length if length == "all" else _int(length, f"strategy {text!r}: l"))
        spec.validate()
        return spec

    def validate(self) -> None:
        if self.select not in SELECTIONS:
            raise ValueError(f"unknown selection {self.select!r}; known: {', '.join(SELECTIONS)}")
        if isinstance(self.m, int) and self.m < 1:
            raise ValueError(f"{self}: beam width m must be >= 1")
        if self.k < 0:
            raise ValueError(f"{self}: lookahead k must be >= 0, got {self.k}")
        if self.length != "all" and (not isinstance(self.length, int) or self.length < 1):
            raise ValueError(f"{self}: revision chain length l must be >= 1 or 'all', got {self.length}")

    def width(self, budget: int) -> int:
        """The beam width M at budget N (1 without beams); raises ValueError if the pair is impossible or spends
        more than `MAX_GENERATIONS`."""
        if budget < 1:
            raise ValueError(f"budget must be >= 1, got {budget}")
        if self.generations(budget) > MAX_GENERATIONS:
            raise ValueError(f"{self} at N={budget} spends {self.generations(budget)} generations per question, over "
                             f"MAX_GENERATIONS ({MAX_GENERATIONS})")  # fmt: skip
        if self.name == "revision" and budget % self.chain_length(budget):
            raise ValueError(f"{self}: budget N={budget} is not a multiple of the chain length L={self.length}")
        if self.name not in NEEDS_WIDTH:
            return 1
        if self.m == "sqrt":
            m = math.isqrt(budget)
            if m * m != budget:
                raise ValueError(f"{self}: beam width sqrt(N) needs N to be a perfect square, got N={budget}")
            return m
        assert isinstance(self.m, int)
        if budget % self.m:
            raise ValueError(f"{self}: budget N={budget} is not divisible by the beam width M={self.m}")
        return self.m

    def chain_length(self, budget: int) -> int:
        """Attempts per revision chain at budget N."""
        return budget if self.length == "all" else int(self.length)

    def generations(self, budget: int) -> int:
        """The paper's budget units this strategy spends at budget N."""
        return budget * (self.k + 1) if self.name == "lookahead" else budget

    def __str__(self) -> str:
        if self.name == "best_of_n":
            return f"best_of_n:select={self.select}"
        if self.name == "lookahead":
            return f"lookahead:m={self.m}:k={self.k}"
        if self.name == "revision":
            return f"revision:l={self.length}:select={self.select}"
        return f"{self.name}:m={self.m}"


def parse_budgets(text: str) -> list[int]:
    """Comma-separated budgets N, sorted and distinct; each must be in 1..MAX_GENERATIONS (ValueError otherwise)."""
    try:
        budgets = sorted({int(b) for b in text.split(",")})
    except ValueError:
        raise ValueError(f"budgets must be comma-separated integers, got {text!r}") from None
    if budgets[0] < 1 or budgets[-1] > MAX_GENERATIONS:
        raise ValueError(f"budgets must be >= 1 and <= {MAX_GENERATIONS} (MAX_GENERATIONS), got {text!r}")
    return budgets


def question_seeds(seed: int | Sequence[int], questions: Sequence[str]) -> list[int]:
    """Each question's run seed: one seed for all, or one per question (the server batches requests whose seeds
    differ; a question's samples depend only on its own seed)."""
    seeds = [seed] * len(questions) if isinstance(seed, int) else list(seed)
    if len(seeds) != len(questions):
        raise ValueError(f"got {len(seeds)} seeds for {len(questions)} questions")
    return seeds


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what} must be an integer, got {text!r}") from None


@dataclass
class Candidate:
    """A finished (or abandoned) solution and its verifier scores."""

    steps: list[str]
    answer: str | None  # None: no answer line, cut by a token limit, or not finished
    step_scores: list[float] = field(default_factory=list)
    score: float = 0.0  # aggregated step scores (0 without a verifier)


@dataclass
class SearchResult:
    """A strategy's answer to one question and what it spent."""

    answer: str | None
    solution: list[str]  # steps of the chosen candidate; [] when no candidate has an answer
    candidates: list[Candidate]
    accounting: Accounting


def pick(candidates: Sequence[Candidate], select: str) -> tuple[str | None, list[str]]:
    """The answer chosen by `select` (equivalent answers count as one) and the best-scoring
    candidate that gives it."""
    answers = group_equivalent([c.answer for c in candidates])
    answer = SELECTIONS[select](answers, [c.score for c in candidates])
    if answer is None:
        return None, []
    best = max((c for c, a in zip(candidates, answers, strict=True) if a == answer), key=lambda c: c.score)
    return best.answer, list(best.steps)
