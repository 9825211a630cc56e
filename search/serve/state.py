"""What every route shares: the settings, the runtime, the batching queue, the in-flight gate and the metrics;
and waiting for jobs (a client that disconnects, or a request past its time, cancels its jobs)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request

from search.runtime import Runtime
from search.serve.batcher import Batcher
from search.serve.errors import APIError
from search.serve.jobs import Cancelled, ClientError, Job
from search.serve.limits import InFlight
from search.serve.metrics import Metrics
from search.serve.settings import ServeConfig
from search.strategies.compute_optimal import ComputeOptimalSchedule


class ClientGone(Exception):
    """The client closed its connection before the answer: nothing is sent."""


@dataclass
class ServerState:
    cfg: ServeConfig
    runtime: Runtime
    schedule: ComputeOptimalSchedule | None
    batcher: Batcher
    gate: InFlight
    metrics: Metrics
    started: int  # unix time, for /v1/models

    def params(self, spec=None) -> tuple[int | None, int]:
        return self.runtime.parameter_counts(spec)


async def wait_disconnect(request: Request) -> None:
    """Return when the client disconnects (the ASGI server sends http.disconnect once the body is read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def wait_jobs(state: ServerState, request: Request, jobs: Sequence[Job], timeout: float) -> list:
    """The jobs' results, in order; raises ClientGone, or APIError (504 past `timeout`, 400 for a ClientError,
    503 when cancelled by a shutdown). Either way a job not finished is cancelled."""
    state.batcher.submit(jobs)
    results = asyncio.gather(*(asyncio.wrap_future(j.future) for j in jobs))
    gone = asyncio.ensure_future(wait_disconnect(request))
    try:
        done, _ = await asyncio.wait({results, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for job in jobs:
            if not job.future.done():
                job.cancel()
        gone.cancel()
    if results in done:
        return unwrap(results)
    results.cancel()
    if gone in done:
        raise ClientGone()
    raise APIError(504, f"the search took longer than this server's search_timeout ({timeout:g} s) and was "
                   "cancelled", None, "timeout")  # fmt: skip


def unwrap(results: asyncio.Future) -> list:
    try:
        return results.result()
    except Exception as err:  # noqa: BLE001 - a failure is logged with its trace by the engine
        raise error_of(err) from None


def error_of(err: BaseException) -> APIError:
    """The API error a job's exception is answered with."""
    if isinstance(err, APIError):
        return err
    if isinstance(err, ClientError):
        return APIError(400, str(err), None, "invalid_request")
    if isinstance(err, Cancelled):
        return APIError(503, f"cancelled: {err or 'the server is shutting down'}", None, "cancelled")
    return APIError(500, f"the search failed: {type(err).__name__}: {err}", None, "search_failed")
