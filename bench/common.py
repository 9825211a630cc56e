"""Shared by the benchmarks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def at_least_one(config: Any, *names: str) -> None:
    """Raise ValueError for the first of a config's counts that is below 1."""
    for name in names:
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")


def spread(items: Sequence[T], count: int) -> list[T]:
    """`count` items at a stride of len(items) // count (so across every level of a level-ordered
    list when count <= len(items) / 2), from the start otherwise, repeating if too few."""
    pool = list(items) * (count // len(items) + 1)
    return pool[:: max(len(items) // count, 1)][:count]
