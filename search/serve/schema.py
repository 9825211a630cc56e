"""Request bodies (the OpenAI schema plus this server's fields) and their checks against the server's settings.

A chat or completion request becomes a `SearchRequest`: its questions and what to run. This server's own
fields ride in the JSON body (the OpenAI clients' `extra_body`):

    strategy            "auto" (the default) or a strategy spec (best_of_n, beam:m=4, ...; docs/search.md)
    budget              a strategy's N; for auto the most generations the chosen search may spend
    return_candidates   true: every candidate's answer and score in the response's `ttc`

`reasoning_effort` (low/medium/high) sets the budget when `budget` is absent; `seed`, `temperature`, `top_p`
and `max_tokens` (per solution) are honoured. Parameters the search cannot honour (tools, logprobs, n > 1,
stop, ...) are refused with 400, not ignored; so is an unknown one (a misspelt `strategy` would otherwise run auto).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from search.serve.errors import APIError
from search.serve.jobs import Sampling
from search.serve.settings import AUTO, EFFORTS, ServeConfig
from search.strategies.strategy import StrategySpec
from search.verifiers.aggregation import AGGREGATIONS

# OpenAI fields a client may send that do not change what this server computes
IGNORED = {"user", "metadata", "store", "service_tier", "parallel_tool_calls", "modalities", "verbosity",
           "prompt_cache_key", "safety_identifier", "presence_penalty", "frequency_penalty"}  # fmt: skip
# OpenAI fields the search cannot honour: refused unless at their neutral value
UNSUPPORTED = {"tools": (None, []), "functions": (None, []), "tool_choice": (None, "none", "auto"),
               "logprobs": (None, False), "top_logprobs": (None, 0), "stop": (None, [], ""), "logit_bias": (None, {}),
               "response_format": (None, {"type": "text"}), "echo": (None, False), "suffix": (None, ""),
               "best_of": (None, 1), "audio": (None,), "prediction": (None,)}  # fmt: skip


class StreamOptions(BaseModel):
    include_usage: bool = False


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    n: int | None = None
    reasoning_effort: str | None = None
    strategy: str | None = None
    budget: int | None = None
    return_candidates: bool = False


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            parts = [p.get("text", "") for p in self.content if p.get("type") == "text"]
            if len(parts) != len(self.content):
                raise APIError(400, "only text content parts are supported", "messages", "unsupported_content")
            return "".join(parts)
        return self.content or ""


class ChatRequest(_Body):
    messages: list[Message] = Field(min_length=1)


class CompletionRequest(_Body):
    prompt: str | list[str]


class ScoreItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str
    steps: list[str]


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    question: str | None = None  # one solution: its question and steps ...
    steps: list[str] | None = None
    items: list[ScoreItem] | None = None  # ... or a batch of them
    aggregation: str | None = None  # last, min, prod or mean (default: the verifier's)


@dataclass
class SearchRequest:
    """What a chat or completion request asks the search for."""

    questions: list[str]
    spec: StrategySpec | None  # None: auto
    budget: int
    budget_from: str  # "request", "reasoning_effort" or "server"
    seed: int
    sampling: Sampling | None
    stream: bool
    include_usage: bool
    return_candidates: bool
    ignored_messages: int = 0  # chat: messages before the question, which the prompt format does not show


def check_model(cfg: ServeConfig, model: str | None) -> None:
    if model is not None and model != cfg.served_model_name:
        raise APIError(404, f"model {model!r} is not served here; this server serves {cfg.served_model_name!r}",
                       "model", "model_not_found")  # fmt: skip


def search_request(cfg: ServeConfig, body: _Body, questions: list[str], check) -> SearchRequest:
    """Check `body` against the server's settings; `check(spec, budget)` raises ValueError for a pair the loaded
    runtime cannot run (no verifier, N not divisible by M)."""
    check_model(cfg, body.model)
    extra = body.model_extra or {}
    for key, value in extra.items():
        if key in UNSUPPORTED and value not in UNSUPPORTED[key]:
            raise APIError(400, f"{key} is not supported by this server (a test-time search)", key, "unsupported")
        if key not in UNSUPPORTED and key not in IGNORED:
            raise APIError(400, f"unknown parameter {key!r}", key, "unknown_parameter")
    if body.n not in (None, 1):
        raise APIError(400, "n must be 1: the search returns its one chosen solution (the candidates: "
                       "return_candidates)", "n", "unsupported")  # fmt: skip
    if any(not q.strip() for q in questions):
        raise APIError(400, "the question is empty", "messages" if isinstance(body, ChatRequest) else "prompt")
    spec, budget, budget_from = _strategy(cfg, body)
    if spec is not None:
        try:
            check(spec, budget)
        except ValueError as err:
            raise APIError(400, str(err), "strategy", "invalid_strategy") from None
    seed = cfg.seed if body.seed is None else body.seed
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return SearchRequest(questions, spec, budget, budget_from, seed, _sampling(cfg, body), body.stream, include_usage,
                         body.return_candidates)  # fmt: skip


def _strategy(cfg: ServeConfig, body: _Body) -> tuple[StrategySpec | None, int, str]:
    name = body.strategy or cfg.strategy
    try:
        spec = None if name == AUTO else StrategySpec.parse(name, cfg.beam_width, cfg.lookahead, cfg.selection,
                                                             cfg.revision_length)  # fmt: skip
    except ValueError as err:
        raise APIError(400, str(err), "strategy", "invalid_strategy") from None
    budget, budget_from = cfg.budget, "server"
    if body.reasoning_effort is not None:
        efforts = cfg.efforts()
        if body.reasoning_effort not in efforts:
            known = ", ".join(e for e in EFFORTS if e in efforts)
            raise APIError(400, f"reasoning_effort must be one of {known}", "reasoning_effort", "invalid_value")
        budget, budget_from = efforts[body.reasoning_effort], "reasoning_effort"
    if body.budget is not None:
        budget, budget_from = body.budget, "request"
    spent = budget if spec is None else spec.generations(budget)
    if budget < 1 or spent > cfg.max_budget:
        raise APIError(400, f"budget {budget} ({spent} generations) is outside 1..{cfg.max_budget}, this server's "
                       "max_budget", "budget", "budget_too_large" if budget >= 1 else "invalid_value")  # fmt: skip
    return spec, budget, budget_from


def _sampling(cfg: ServeConfig, body: _Body) -> Sampling | None:
    max_tokens = body.max_completion_tokens or body.max_tokens
    if max_tokens is not None and max_tokens > cfg.max_new_tokens:
        raise APIError(400, f"max_tokens {max_tokens} is above this server's max_new_tokens ({cfg.max_new_tokens})",
                       "max_tokens", "invalid_value")  # fmt: skip
    sampling = Sampling(cfg.temperature if body.temperature is None else body.temperature,
                        cfg.top_p if body.top_p is None else body.top_p, max_tokens or cfg.max_new_tokens)  # fmt: skip
    return None if sampling == Sampling(cfg.temperature, cfg.top_p, cfg.max_new_tokens) else sampling


def chat_question(body: ChatRequest) -> tuple[str, int]:
    """The question (the last message, which must be the user's) and how many messages before it are not shown."""
    last = body.messages[-1]
    if last.role != "user":
        raise APIError(400, "the last message must be the user's question", "messages", "invalid_value")
    return last.text(), len(body.messages) - 1


def score_items(cfg: ServeConfig, body: ScoreRequest, separator: str) -> list[ScoreItem]:
    check_model(cfg, body.model)
    if (body.items is None) == (body.question is None):
        raise APIError(400, "give either question and steps, or items (a list of them)", "items", "invalid_value")
    items = body.items if body.items is not None else [ScoreItem(question=body.question, steps=body.steps or [])]
    if not 1 <= len(items) <= cfg.max_score_items:
        raise APIError(400, f"items: 1..{cfg.max_score_items} solutions per request", "items", "invalid_value")
    if body.aggregation is not None and body.aggregation not in AGGREGATIONS:
        raise APIError(400, f"aggregation must be one of {', '.join(AGGREGATIONS)}", "aggregation", "invalid_value")
    for item in items:
        if not item.question.strip():
            raise APIError(400, "a question is empty", "question", "invalid_value")
        if any(separator in step or not step.strip() for step in item.steps):
            raise APIError(400, f"a step is blank or holds the step separator {separator!r}: give each step "
                           "on its own", "steps", "invalid_value")  # fmt: skip
    return items
