"""HTTP to vLLM's OpenAI-compatible servers: JSON requests, spread over servers, retried with a bound.

Standard library only (`http.client`, one keep-alive connection per thread and server). A request
goes to its home server; a failure that another try may cure (connection refused or reset, a
timeout, status 408, 429 or 5xx) is tried again on the next server in turn, after a back-off, at
most `retries` times; then, and at once for any other status (a context overflow is a 400: trying
again cannot cure it), a `ServerError` says in one line what the server answered.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, TypeVar
from urllib.parse import urlsplit

from core.config import UserError

T = TypeVar("T")
RETRIED_STATUS = frozenset({408, 429, 500, 502, 503, 504})
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)  # a kept-alive socket closed


class ServerError(UserError):
    """A server request that failed for good: reported in one line, without a traceback."""


class ServerPool:
    """Servers by base URL (`http://host:port`, a trailing `/v1` dropped), and a thread pool that sends
    up to `concurrency` requests per server at once."""

    def __init__(self, urls: Sequence[str], timeout: float, retries: int, concurrency: int, backoff: float = 1.0):
        self.urls = [url.rstrip("/").removesuffix("/v1") for url in urls]
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.executor = ThreadPoolExecutor(max_workers=concurrency * len(self.urls), thread_name_prefix="vllm")
        self.local = threading.local()  # per thread: base URL -> its open connection

    def request(self, home: int, path: str, body: dict | None = None) -> dict:
        """The JSON object answering GET `path` (POST `body` if given) from server `home`, or on a curable failure
        from the next servers in turn; a `ServerError` once `retries` more tries failed, or at once for an
        answer that another try cannot cure (an error status, an answer that is not a JSON object)."""
        failure = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            url = self.urls[(home + attempt) % len(self.urls)]
            try:
                status, answer = self._send(url, path, body)
            except (OSError, http.client.HTTPException) as err:  # refused, reset, timed out, malformed
                failure = f"{url}{path}: {type(err).__name__}: {err}"
                continue
            if status == 200:
                if not isinstance(answer, dict):
                    raise ServerError(f"{url}{path} answered 200 with something other than a JSON object: "
                                      f"{' '.join(str(answer).split())[:200]}")  # fmt: skip
                return answer
            failure = f"{url}{path} answered {status}: {error_message(answer)}"
            if status not in RETRIED_STATUS:
                raise ServerError(failure)
        raise ServerError(f"vLLM request failed {self.retries + 1} times; last: {failure}")

    def run_all(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """The results of `calls`, run concurrently, in order; the first failure cancels the calls not started
        and is raised."""
        futures = [self.executor.submit(call) for call in calls]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        failed = [f for f in futures if f in done and f.exception() is not None]
        if failed:
            raise failed[0].exception()  # type: ignore[misc]
        return [f.result() for f in futures]

    def _send(self, url: str, path: str, body: dict | None) -> tuple[int, Any]:
        """One request on this thread's connection to `url` (a new one if the server closed it while idle)."""
        connections = self.local.__dict__.setdefault("connections", {})
        kept = connections.pop(url, None)
        if kept is not None:
            try:
                answer = _exchange(kept, path, body)
            except STALE:
                pass
            else:
                connections[url] = kept
                return answer
        connection = self._connect(url)
        answer = _exchange(connection, path, body)
        connections[url] = connection
        return answer

    def _connect(self, url: str) -> http.client.HTTPConnection:
        parts = urlsplit(url)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        return kind(parts.hostname, parts.port, timeout=self.timeout)


def _exchange(connection: http.client.HTTPConnection, path: str, body: dict | None) -> tuple[int, Any]:
    """GET `path` (POST `body` as JSON if given): the status and the JSON answer (its text if not JSON). The
    connection is closed if the exchange fails."""
    try:
        if body is None:
            connection.request("GET", path)
        else:
            connection.request("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, _json(response.read())
    except BaseException:
        connection.close()
        raise


def _json(raw: bytes) -> Any:
    """The JSON value of an answer's body; a body that is not JSON as (the start of) its text, in brackets."""
    try:
        return json.loads(raw) if raw else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"<not JSON: {raw[:200].decode(errors='replace')}>"


def error_message(answer: Any) -> str:
    """The message of an error answer (OpenAI's `{"error": {"message"}}`, vLLM's `{"message"}` or `{"detail"}`),
    on one line."""
    if isinstance(answer, dict):
        inner = answer.get("error", answer)
        answer = inner.get("message", inner.get("detail", inner)) if isinstance(inner, dict) else inner
    return " ".join(str(answer).split())[:300]
