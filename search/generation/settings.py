"""Which backend a stage generates with: transformers in this process, or vLLM servers over HTTP.

    backend: vllm
    server_urls: http://127.0.0.1:8000,http://127.0.0.1:8001

`BackendConfig` holds the keys; the runtime (and so the evaluation) and every data builder mix it
into their configs, so one recipe key switches all of them. Its values are checked when the config
is parsed, before any model loads (this module imports nothing heavy). `search.generation.backends.
load_generator` builds the generator for a checkpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.config import UserError

BACKENDS = ("hf", "vllm")
SPEED_ONLY = ("server_urls", "request_timeout", "max_retries", "concurrency")  # how fast, not what is sampled
DEVICES = re.compile(r"cpu|mps|cuda(:\d+)?")


def check_device(device: str | None) -> None:
    """Raise ValueError for a device string torch does not know here (None: the default)."""
    if device is not None and not DEVICES.fullmatch(device):
        raise ValueError(f"device must be cpu, cuda, cuda:N or mps (or null: cuda when there is one), got {device!r}")


def torch_device(device: str | None) -> str:
    """The device to load a model on: `device`, or cuda when there is one, else cpu; a GPU asked for on a machine
    without one is a user error."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device}: no CUDA GPU is available here (use --device cpu)")
    if device == "mps" and not torch.backends.mps.is_available():
        raise UserError("device mps: no Apple GPU is available here (use --device cpu)")
    return device


@dataclass
class BackendConfig:
    backend: str = "hf"  # hf: transformers in this process; vllm: vLLM OpenAI-compatible servers (server_urls)
    server_urls: str | None = None  # backend vllm: comma-separated http://host:port; questions spread over them
    request_timeout: float = 600.0  # backend vllm: seconds one request may take before it is retried
    max_retries: int = 3  # backend vllm: retries of a failed request, on the next server, before a one-line error
    concurrency: int = 64  # backend vllm: requests in flight per server (the server batches them)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend == "vllm" and not self.urls():
            raise ValueError("backend vllm needs server_urls (e.g. http://127.0.0.1:8000; make vllm-serve starts one)")
        for url in self.urls():
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"server_urls: {url!r} is not an http(s)://host[:port] URL")
        if self.request_timeout <= 0 or self.max_retries < 0 or self.concurrency < 1:
            raise ValueError("request_timeout must be > 0, max_retries >= 0 and concurrency >= 1")

    def urls(self) -> list[str]:
        """The server URLs, in order."""
        return [url.strip() for url in (self.server_urls or "").split(",") if url.strip()]

    def not_identity(self) -> tuple[str, ...]:
        """Keys that do not decide what is sampled: the speed-only ones, and `backend` itself at its default
        (so outputs recorded before these keys existed stay resumable)."""
        return SPEED_ONLY + (("backend",) if self.backend == "hf" else ())
