"""The routes: chat and text completions, step scoring, models, health and metrics.

A search request is checked (`search.serve.schema`), admitted (`InFlight`: 429 when full), turned into one
job per question and queued (`search.serve.batcher`); its answer is built from the outcomes
(`search.serve.responses`) or streamed (`search.serve.streaming`).
"""

from __future__ import annotations

import logging
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from search.serve.errors import APIError
from search.serve.jobs import Job, SearchOutcome
from search.serve.responses import chat_completion, completion, ttc, usage
from search.serve.schema import (
    ChatRequest,
    CompletionRequest,
    ScoreRequest,
    SearchRequest,
    chat_question,
    score_items,
    search_request,
)
from search.serve.state import ClientGone, ServerState, wait_jobs
from search.serve.streaming import stream

log = logging.getLogger("search.serve")
GONE = 499  # the status counted for a client that closed its connection before its answer (nginx's)


def register(app: FastAPI, state: ServerState) -> None:
    cfg = state.cfg

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": cfg.served_model_name, "in_flight": state.gate.count,
                "schedule": state.schedule is not None}  # fmt: skip

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": cfg.served_model_name, "object": "model", "created": state.started,
                                            "owned_by": "ttc-search"}]}  # fmt: skip

    @app.get("/metrics")
    async def metrics() -> Response:
        return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest, request: Request) -> Response:
        question, ignored = chat_question(body)
        search = search_request(cfg, body, [question], state.runtime.check)
        search.ignored_messages = ignored
        return await _search(state, request, search, chat=True)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not 1 <= len(prompts) <= cfg.max_batch_questions:
            raise APIError(400, f"prompt: 1..{cfg.max_batch_questions} prompts per request", "prompt")
        if body.stream and len(prompts) > 1:
            raise APIError(400, "stream needs a single prompt", "prompt")
        return await _search(state, request, search_request(cfg, body, prompts, state.runtime.check), chat=False)

    @app.post("/v1/score")
    async def score(body: ScoreRequest, request: Request) -> Response:
        items = score_items(cfg, body, state.runtime.format.step_separator)
        if state.runtime.verifier is None:
            raise APIError(400, "this server runs without a verifier (verifier: none): nothing can score steps")
        slot = state.gate.acquire()
        jobs = [Job(item.question, kind="score", steps=list(item.steps), aggregation=body.aggregation)
                for item in items]  # fmt: skip
        try:
            outcomes = await wait_jobs(state, request, jobs, cfg.search_timeout)
        except ClientGone:
            request.scope["ttc_status"] = GONE
            return Response(status_code=GONE)
        finally:
            slot.release()
        tokens = sum(o.verifier_tokens for o in outcomes)
        state.metrics.spent({"verifier_tokens": tokens})
        data = [{"object": "score", "index": k, "step_scores": [round(s, 6) for s in o.step_scores],
                 "score": round(o.score, 6)} for k, o in enumerate(outcomes)]  # fmt: skip
        return JSONResponse({"object": "list", "model": cfg.served_model_name,
                             "aggregation": body.aggregation or state.runtime.settings.aggregation, "data": data,
                             "usage": {"verifier_tokens": tokens, "total_tokens": tokens},
                             "ttc": {"batched_with": outcomes[0].batch_requests - 1}})  # fmt: skip


async def _search(state: ServerState, request: Request, search: SearchRequest, chat: bool) -> Response:
    started = time.monotonic()
    slot = state.gate.acquire()
    trace = uuid.uuid4().hex
    cid = f"{'chatcmpl' if chat else 'cmpl'}-{trace}"
    jobs = [Job(q, spec=search.spec, budget=search.budget, seed=search.seed, sampling=search.sampling)
            for q in search.questions]  # fmt: skip

    def info(outcome: SearchOutcome) -> dict:
        return ttc(outcome, search, trace, state.params(outcome.spec))

    def record(outcomes: list[SearchOutcome], status: int) -> None:
        seconds = time.monotonic() - started
        request.scope["ttc_status"] = status
        if outcomes:
            request.scope["ttc_strategy"] = ",".join(sorted({str(o.spec) for o in outcomes}))
            state.metrics.spent(usage(outcomes), any(o.fallback for o in outcomes))
            state.gate.observe(seconds)
        log.info("trace %s: %d %s, %d question(s), %s generations, %.2f s", trace, status,
                 request.scope.get("ttc_strategy", "-"), len(jobs), usage(outcomes)["generations"] if outcomes else 0,
                 seconds)  # fmt: skip

    if search.stream:
        events = stream(state, jobs[0], slot, cid, chat, search.include_usage, info,
                        lambda outcome, status: record([outcome] if outcome else [], status))  # fmt: skip
        return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    try:
        outcomes = await wait_jobs(state, request, jobs, state.cfg.search_timeout)
    except ClientGone:
        record([], GONE)
        return Response(status_code=GONE)
    except APIError as err:
        record([], err.status)
        raise
    finally:
        slot.release()
    record(outcomes, 200)
    name, render = state.cfg.served_model_name, state.runtime.format.render_steps
    texts = [render(o.result.solution) for o in outcomes]
    if chat:
        return JSONResponse(chat_completion(cid, name, texts[0], outcomes[0], info(outcomes[0])))
    return JSONResponse(completion(cid, name, texts, outcomes, [info(o) for o in outcomes]))
