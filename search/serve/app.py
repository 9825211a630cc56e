"""The FastAPI application: the routes behind the guard (API key, body size) and the request recorder (metrics).

    app = create_app(cfg, runtime, schedule)   # a loaded Runtime; the schedule file or None

Its lifespan starts the batching queue's worker and, at shutdown (after uvicorn has drained the in-flight
requests, up to `drain_timeout`), lets it finish what is queued and stops it.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI

from search.runtime import Runtime
from search.serve import errors, routes
from search.serve.batcher import Batcher
from search.serve.engine import Engine
from search.serve.limits import Guard, InFlight
from search.serve.metrics import Metrics
from search.serve.settings import ServeConfig
from search.serve.state import ServerState
from search.strategies.compute_optimal import ComputeOptimalSchedule

ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/score", "/v1/models", "/health", "/metrics")


class Recorder:
    """Outermost ASGI middleware: counts every answer by endpoint, status and strategy (the routes put the
    strategy, and a stream's real outcome, in the scope), with its latency to the last byte."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.monotonic(), routes.GONE

        async def recording_send(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        except Exception:
            status = 500
            raise
        finally:
            endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"
            seconds = time.monotonic() - started if endpoint.startswith("/v1/") else None
            self.metrics.request(endpoint, scope.get("ttc_status", status), scope.get("ttc_strategy", "-"), seconds)


def create_app(cfg: ServeConfig, runtime: Runtime, schedule: ComputeOptimalSchedule | None) -> FastAPI:
    metrics = Metrics()
    engine = Engine(runtime, schedule, cfg.spec(cfg.fallback_strategy), cfg.spec(cfg.unscheduled_strategy))
    batcher = Batcher(engine.run, cfg.batch_window_ms / 1000, cfg.max_batch_questions, metrics.batch)
    state = ServerState(cfg, runtime, schedule, batcher, InFlight(cfg.max_in_flight), metrics, int(time.time()))
    metrics.in_flight_of = lambda: state.gate.count

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            await asyncio.to_thread(batcher.close, cfg.drain_timeout)

    app = FastAPI(title="ttc-search", summary="compute-optimal test-time search behind the OpenAI API",
                  lifespan=lifespan, docs_url=None, redoc_url=None)  # fmt: skip
    app.state.ttc = state
    errors.install(app)
    routes.register(app, state)
    app.add_middleware(Guard, api_key=cfg.key(), max_body_bytes=cfg.max_body_bytes)
    app.add_middleware(Recorder, metrics=metrics)  # added last: outermost, sees the guard's answers too
    return app
