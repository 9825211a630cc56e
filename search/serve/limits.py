"""What protects the server: the API key (401), the body size limit (413) and the in-flight limit (429).

`Guard` is plain ASGI middleware in front of every route: it checks the key (every path but /health), then
reads the body, at most `max_body_bytes` of it (a larger Content-Length is refused before any byte is read;
a chunked body is cut off once it passes the limit), and hands it on. `InFlight` admits at most
`max_in_flight` requests to the search at once; the next one gets 429 with `Retry-After`, the recent typical
latency in whole seconds (at least 1).
"""

from __future__ import annotations

import hmac
import json
import math

from search.serve.errors import APIError

OPEN_PATHS = ("/health",)


class Guard:
    def __init__(self, app, api_key: str | None, max_body_bytes: int):
        self.app, self.api_key, self.max_body_bytes = app, api_key, max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.api_key is not None and scope["path"] not in OPEN_PATHS:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
                error = APIError(401, "a valid API key is required: Authorization: Bearer KEY", None, "invalid_api_key",
                                 {"WWW-Authenticate": "Bearer"})  # fmt: skip
                return await _send(send, error)
        length = headers.get("content-length")
        too_large = APIError(413, f"the request body is larger than this server's limit of {self.max_body_bytes} "
                             "bytes", None, "request_too_large")  # fmt: skip
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return await _send(send, too_large)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                return await _send(send, too_large)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only http.disconnect comes

        return await self.app(scope, replay, send)


async def _send(send, error: APIError) -> None:
    payload = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (error.headers or {}).items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class InFlight:
    """Requests admitted to the search (queued or running); see the module docstring."""

    def __init__(self, limit: int):
        self.limit, self.count = limit, 0
        self.typical_s = 1.0  # a moving average of admitted requests' latency

    def retry_after(self) -> int:
        return max(1, math.ceil(self.typical_s))

    def observe(self, seconds: float) -> None:
        self.typical_s = 0.8 * self.typical_s + 0.2 * seconds

    def acquire(self) -> Slot:
        """A slot, held until its `release` (the event loop is single-threaded: no lock is needed); 429 if none."""
        if self.count >= self.limit:
            raise APIError(429, f"{self.count} requests are in flight, this server's limit; retry after "
                           f"{self.retry_after()} s", None, "too_many_requests",
                           {"Retry-After": str(self.retry_after())})  # fmt: skip
        self.count += 1
        return Slot(self)


class Slot:
    def __init__(self, gate: InFlight):
        self.gate, self.held = gate, True

    def release(self) -> None:
        """Free the slot (once; later calls do nothing)."""
        if self.held:
            self.held = False
            self.gate.count -= 1

    def __del__(self) -> None:  # a stream whose client left before it started never runs its own release
        self.release()
