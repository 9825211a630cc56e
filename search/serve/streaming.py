"""`stream: true`: the search as OpenAI server-sent events that ordinary clients read.

The events, each a `chat.completion.chunk` (or a `text_completion` piece):
1. the assistant role (an empty content delta);
2. progress, as chunks with an empty delta and a `ttc` object: `{"event": "probe", ...}` once auto has
   predicted the question's bin and chosen (strategy, budget, fallback), and `{"event": "round", "round",
   "best_partial", "score"}` after every round of a step-level search (beam, lookahead, DVTS: the best
   partial path so far); best-of-N and revision chains have no rounds to report;
3. the chosen solution, one chunk per step;
4. a chunk with `finish_reason` and the full `ttc` object; then, with `stream_options.include_usage`, a
   chunk with no choices and `usage`; then `data: [DONE]`.
An error after the stream has started (the time limit, a failed search) is an event `{"error": {...}}`,
which the OpenAI clients raise as an APIError. A client that disconnects cancels its search.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

from search.serve.errors import APIError
from search.serve.jobs import Job, SearchOutcome
from search.serve.limits import Slot
from search.serve.responses import chunk, finish_reason, usage
from search.serve.state import ServerState, error_of


def sse(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


async def stream(
    state: ServerState,
    job: Job,
    slot: Slot,
    cid: str,
    chat: bool,
    include_usage: bool,
    finish: Callable[[SearchOutcome], dict],
    record: Callable[[SearchOutcome | None, int], None],
) -> AsyncIterator[str]:
    """The events of one question's search; `finish(outcome)` gives the `ttc` object,
    `record(outcome, status)` counts the request once it ends (also when the client went away: 499)."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()
    job.on_event = lambda event: loop.call_soon_threadsafe(events.put_nowait, event)
    model = state.cfg.served_model_name
    deadline = time.monotonic() + state.cfg.search_timeout
    result = asyncio.wrap_future(job.future)
    result.add_done_callback(lambda _: events.put_nowait(None))
    outcome, status = None, 499  # until it ends otherwise: the client went away
    state.batcher.submit([job])
    try:
        yield sse(chunk(cid, model, chat, {"role": "assistant", "content": ""}))
        while True:
            try:
                event = await asyncio.wait_for(events.get(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                job.cancel()
                status = 504
                yield sse(
                    APIError(
                        504,
                        f"the search took longer than this server's search_timeout "
                        f"({state.cfg.search_timeout:g} s) and was cancelled",
                        None,
                        "timeout",
                    ).body()
                )
                break
            if event is not None:
                yield sse(chunk(cid, model, chat, ttc=event))
                continue
            try:
                outcome = result.result()
            except Exception as err:  # noqa: BLE001 - answered as an error event
                error = error_of(err)
                status = error.status
                yield sse(error.body())
                break
            info = finish(outcome)
            for step in outcome.result.solution:
                piece = step + state.runtime.format.step_separator
                yield sse(chunk(cid, model, chat, {"content": piece}, text=piece))
            yield sse(chunk(cid, model, chat, {}, finish=finish_reason(outcome), ttc=info))
            if include_usage:
                yield sse({**chunk(cid, model, chat), "choices": [], "usage": usage([outcome])})
            status = 200
            break
        yield sse("[DONE]")
    finally:
        if not job.future.done():
            job.cancel()
        slot.release()
        record(outcome, status)
