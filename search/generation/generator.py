"""The `Generator` interface that strategies and data builders sample through."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

StopAt = Literal["step", "solution"]


def stable_seed(*parts: object) -> int:
    """A seed derived from its parts (say a run seed and a question), the same in every process."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class SamplingParams:
    """How to continue a prompt. temperature 0 is greedy decoding."""

    temperature: float = 1.0  # sampling temperature (0: greedy decoding)
    top_p: float = 1.0  # nucleus sampling: sample from the smallest set of tokens holding this much probability
    max_new_tokens: int = 256  # the most tokens one whole solution may have (longer ones are cut off and counted)
    stop_at: StopAt = "solution"  # "step": stop after the next step separator

    def __post_init__(self) -> None:
        if not self.temperature >= 0:  # NaN fails this test, not `< 0`
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.stop_at not in ("step", "solution"):
            raise ValueError(f"stop_at must be 'step' or 'solution', got {self.stop_at!r}")


def check_sampling(temperature: float, top_p: float, max_new_tokens: int, *counts: int) -> None:
    """Raise ValueError for sampling settings no generator accepts, or a batch/chunk size below 1:
    configs call it so a bad value is refused before any model loads or any file is written."""
    SamplingParams(temperature, top_p, max_new_tokens)
    if any(not isinstance(n, int) or n < 1 for n in counts):
        raise ValueError(f"batch and chunk sizes must be integers >= 1, got {', '.join(map(str, counts))}")


@dataclass(frozen=True)
class Generation:
    """One continuation of a prompt."""

    text: str  # the generated text, ending at the stop (separator included in step mode)
    prompt_tokens: int  # tokens of the prompt the policy read
    generated_tokens: int  # tokens produced up to and including the stop token
    stop_reason: Literal["step", "eos", "length"]
    cached_tokens: int = 0  # of the prompt tokens, those read from a prefix cache (not computed again)


class Generator(Protocol):
    """Samples continuations of prompts.

    `seeds[i]` fixes the randomness of prompt i, so a result does not depend on which other
    prompts share its batch: sample j of prompt i is the same in any batch layout.
    """

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, n: int = 1, seeds: Sequence[int] | None = None
    ) -> list[list[Generation]]:
        """`n` continuations for each prompt, in prompt order."""
        ...


def generation_seeds(prompts: Sequence[str], n: int, seeds: Sequence[int] | None) -> list[int]:
    """The seed of each prompt for `Generator.generate` (default: its index), after checking `n` and `seeds`."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seeds = list(range(len(prompts))) if seeds is None else list(seeds)
    if len(seeds) != len(prompts):
        raise ValueError(f"got {len(seeds)} seeds for {len(prompts)} prompts")
    return seeds
