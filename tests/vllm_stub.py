"""A stub of vLLM's OpenAI-compatible server on 127.0.0.1, in a thread: what the vLLM backend's tests talk to.

It serves `/v1/models`, `/tokenize` (with the tokenizer it is given) and `/v1/completions`, whose answers
come from `complete(body) -> (status, answer)`: scripted in the mapping tests, or the tiny policy
itself through the HF backend (`policy_completions`), so that whole searches and builds run through it.
Every completion request body is recorded; `fail_next` makes the next completions fail with a status.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from search.generation.generator import SamplingParams
from search.generation.hf_generator import HFGenerator

Complete = Callable[[dict], tuple[int, Any]]


def answer(text: str, finish: str, stop: str | int | None, prompt: int, generated: int, cached: int = 0) -> dict:
    """A `/v1/completions` answer of one sample, as vLLM writes it."""
    choice = {"index": 0, "text": text, "finish_reason": finish, "stop_reason": stop}
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": generated,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    return {"object": "text_completion", "choices": [choice], "usage": usage}


def policy_completions(generator: HFGenerator) -> Complete:
    """Completions by the HF backend's model, seeded by the request's seed (one model call at a time)."""
    lock = threading.Lock()

    def complete(body: dict) -> tuple[int, Any]:
        ids, stop = body["prompt"], body["stop"]
        prompt = generator.tokenizer.decode(ids, skip_special_tokens=True)
        params = SamplingParams(body["temperature"], body["top_p"], body["max_tokens"], "step" if stop else "solution")
        with lock:
            [[gen]] = generator.generate([prompt], params, 1, [body["seed"]])
        reason = {"step": ("stop", stop[0] if stop else None), "eos": ("stop", None), "length": ("length", None)}
        return 200, answer(gen.text, *reason[gen.stop_reason], len(ids), gen.generated_tokens)

    return complete


class StubServer:
    """The stub, started on a free port of 127.0.0.1 until `close()` (or the end of a `with` block)."""

    def __init__(self, tokenizer: Any, complete: Complete, model: str = "stub-policy", max_model_len: int = 256):
        self.tokenizer, self.complete, self.model, self.max_model_len = tokenizer, complete, model, max_model_len
        self.requests: list[dict] = []
        self.failures: list[tuple[int, str]] = []  # (status, message) of the next completions to fail
        self.lock = threading.Lock()
        self.connections: list[socket.socket] = []  # open client connections, cut by close()
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.http.daemon_threads = True
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    def fail_next(self, count: int, status: int = 503, message: str = "overloaded") -> None:
        with self.lock:
            self.failures += [(status, message)] * count

    def close(self) -> None:
        """Stop serving and cut the open connections: a server that went down."""
        self.http.shutdown()
        self.http.server_close()
        for connection in self.connections:
            with contextlib.suppress(OSError):  # closed already
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> StubServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def route(self, method: str, path: str, body: dict | None) -> tuple[int, Any]:
        if method == "GET" and path == "/v1/models":
            card = {"id": self.model, "object": "model", "root": self.model, "max_model_len": self.max_model_len}
            return 200, {"object": "list", "data": [card]}
        if method == "POST" and path == "/tokenize":
            tokens = self.tokenizer(body["prompt"], add_special_tokens=body.get("add_special_tokens", True))
            return 200, {"count": len(tokens["input_ids"]), "tokens": tokens["input_ids"]}
        if method == "POST" and path == "/v1/completions":
            with self.lock:
                self.requests.append(body)
                failure = self.failures.pop(0) if self.failures else None
            if failure is not None:
                return failure[0], {"error": {"message": failure[1], "type": "BadRequestError", "code": failure[0]}}
            return self.complete(body)
        return 404, {"detail": "Not Found"}


def _handler(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn

        def setup(self) -> None:
            super().setup()
            stub.connections.append(self.connection)

        def do_GET(self) -> None:
            self._answer(*stub.route("GET", self.path, None))

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._answer(*stub.route("POST", self.path, body))

        def _answer(self, status: int, payload: Any) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args) -> None:  # quiet
            pass

    return Handler
