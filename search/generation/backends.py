"""The generator of a checkpoint on the backend its settings name (`search.generation.settings`)."""

from __future__ import annotations

from pathlib import Path

from search.generation.generator import Generator
from search.generation.hf_generator import HFGenerator
from search.generation.settings import BackendConfig
from search.generation.vllm_generator import VLLMGenerator
from search.step_format import StepFormat


def load_generator(
    path: str | Path, fmt: StepFormat, backend: BackendConfig, batch_size: int = 64, device: str | None = None
) -> Generator:
    """The generator of a checkpoint on the configured backend (`batch_size` and `device`: hf only)."""
    if backend.backend == "vllm":
        return VLLMGenerator.connect(path, fmt, backend)
    return HFGenerator.from_pretrained(path, fmt, batch_size=batch_size, device=device)
