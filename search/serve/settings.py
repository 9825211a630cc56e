"""The server's settings, importable without torch or FastAPI (so `--help` and `--dry-run` answer at once).

`ServeConfig` is the runtime's settings (`search.settings.RuntimeConfig`: policy, verifier, sampling, backend,
the schedule file as `compute_optimal`) plus what serving adds: where to listen, the API key, what a request
runs when it says nothing, the limits, and the batching queue. Every value is checked when the config is
parsed, before any model loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from search.settings import RuntimeConfig

AUTO = "auto"  # the strategy name of the schedule's choice per predicted difficulty
EFFORTS = ("low", "medium", "high")  # the values of OpenAI's reasoning_effort this server maps to budgets
API_KEY_ENV = "TTC_API_KEY"  # the environment variable the API key is read from when --api_key is not given


@dataclass
class ServeConfig(RuntimeConfig):
    host: str = "127.0.0.1"  # the address to listen on (0.0.0.0: every interface; then set an API key)
    port: int = 8000  # the port to listen on (0: a free one, printed at startup)
    served_model_name: str = "ttc-search"  # the model id requests name (GET /v1/models lists it)
    api_key: str | None = None  # require `Authorization: Bearer KEY` (default: $TTC_API_KEY; unset: no key)
    strategy: str = AUTO  # what a request that names none runs: auto (the schedule's choice) or a strategy spec
    budget: int = 16  # generations a request that names none may spend (auto: at most that; a strategy: its N)
    max_budget: int = 64  # the most generations one request may ask for (more: 400)
    reasoning_efforts: str = "low=4,medium=16,high=64"  # OpenAI's reasoning_effort -> the generations it may spend
    fallback_strategy: str = "best_of_n:select=majority"  # auto, when the probe scores lie outside the schedule's range
    unscheduled_strategy: str = "best_of_n"  # what auto runs without a schedule file (--compute_optimal)
    max_in_flight: int = 64  # requests searching or queued at once; more get 429 with Retry-After
    max_body_bytes: int = 1_000_000  # the largest request body accepted (larger: 413)
    max_score_items: int = 256  # solutions one /v1/score request may hold
    search_timeout: float = 300.0  # seconds a request may wait and search before it is cancelled (504)
    batch_window_ms: float = 10.0  # how long the queue waits for concurrent requests to join a batch
    max_batch_questions: int = 64  # the most questions (jobs: a request's prompts or score items) one batch merges
    drain_timeout: float = 30.0  # on SIGTERM: seconds in-flight requests get to finish before the server stops

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if not self.served_model_name.strip():
            raise ValueError("served_model_name must not be empty")
        if min(self.budget, self.max_budget, self.max_in_flight, self.max_body_bytes, self.max_score_items,
               self.max_batch_questions) < 1:  # fmt: skip
            raise ValueError("budget, max_budget, max_in_flight, max_body_bytes, max_score_items and "
                             "max_batch_questions must be >= 1")  # fmt: skip
        if self.budget > self.max_budget:
            raise ValueError(f"budget {self.budget} is above max_budget {self.max_budget}")
        if self.search_timeout <= 0 or self.batch_window_ms < 0 or self.drain_timeout < 0:
            raise ValueError("search_timeout must be > 0, batch_window_ms and drain_timeout >= 0")
        for budget in self.efforts().values():
            if not 1 <= budget <= self.max_budget:
                raise ValueError(f"reasoning_efforts: budgets must be in 1..max_budget ({self.max_budget})")
        for text in (self.fallback_strategy, self.unscheduled_strategy):
            self.spec(text)
        if self.strategy != AUTO:
            self.spec(self.strategy).width(self.budget)
        if self.compute_optimal and self.verifier.lower() == "none":
            raise ValueError("a schedule file (compute_optimal) needs a verifier to predict difficulty")

    def efforts(self) -> dict[str, int]:
        """reasoning_effort -> the generations a request with it may spend."""
        out = {}
        for part in filter(None, (p.strip() for p in self.reasoning_efforts.split(","))):
            name, eq, value = part.partition("=")
            if not eq or name.strip() not in EFFORTS or not value.strip().isdigit():
                raise ValueError(f"reasoning_efforts: {part!r} is not {'|'.join(EFFORTS)}=BUDGET")
            out[name.strip()] = int(value)
        return out

    def key(self) -> str | None:
        """The API key requests must carry: --api_key, else $TTC_API_KEY (read at startup, never printed)."""
        return self.api_key or os.environ.get(API_KEY_ENV) or None


CONFIG_TYPES = (ServeConfig,)  # what a serve recipe configures (`python -m search serve`)
