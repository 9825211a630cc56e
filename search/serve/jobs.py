"""What the batching queue carries: one job per question (a search, or the scoring of one solution), and
what comes back. Jobs are made on the server's event loop and run on the queue's worker thread; a job's
`future` and `cancelled` flag are the thread-safe bridge between the two."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from search.strategies.accounting import Accounting
from search.strategies.strategy import SearchResult, StrategySpec


class ClientError(Exception):
    """A request that cannot run as asked, found only while running it (say no schedule choice fits its
    budget): answered with 400."""


class Cancelled(Exception):
    """The job's client went away, or its time ran out, before its search ran."""


@dataclass(frozen=True)
class Sampling:
    """Per-request sampling settings (the server's unless a request sets them)."""

    temperature: float
    top_p: float
    max_new_tokens: int


@dataclass(eq=False)
class Job:
    question: str
    kind: str = "search"  # "search" or "score"
    spec: StrategySpec | None = None  # search: None is auto (the schedule's choice for the predicted difficulty)
    budget: int = 16  # search: the strategy's N; auto: the most generations the chosen search may spend
    seed: int = 0
    sampling: Sampling | None = None  # None: the server's settings
    steps: list[str] = field(default_factory=list)  # score: the solution's steps
    aggregation: str | None = None  # score: how step scores become one (None: the server's)
    on_event: Callable[[dict], None] | None = None  # progress events; called on the worker thread
    future: Future = field(default_factory=Future)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Stop this job: dropped if it has not started, its search stopped at the next round if it has."""
        self.cancelled.set()

    def emit(self, event: dict) -> None:
        if self.on_event is not None and not self.cancelled.is_set():
            self.on_event(event)


@dataclass
class Probe:
    """auto's difficulty probe of one question."""

    samples: int
    mean_score: float
    predicted_bin: int
    cost: Accounting

    def to_dict(self) -> dict:
        return {"samples": self.samples, "mean_score": round(self.mean_score, 6), "predicted_bin": self.predicted_bin,
                "generations": self.cost.generations, "generated_tokens": self.cost.generated_tokens,
                "verifier_tokens": self.cost.verifier_tokens}  # fmt: skip


@dataclass
class SearchOutcome:
    """A finished search: what ran, its result (its accounting includes auto's probe) and how it was batched."""

    spec: StrategySpec
    budget: int
    result: SearchResult
    auto: bool = False
    probe: Probe | None = None
    fallback: str | None = None  # why auto did not follow the schedule (the verifier out of its range)
    note: str | None = None  # how auto chose without a schedule
    group_requests: int = 1  # questions in the same runtime call (same strategy, budget and sampling)
    batch_requests: int = 1  # requests the queue merged into this batch


@dataclass
class ScoreOutcome:
    step_scores: list[float]
    score: float
    verifier_tokens: int
    batch_requests: int = 1
