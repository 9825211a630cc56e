"""How a solution's step scores become one score: last (Snell et al.'s default), min, prod or mean."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

AGGREGATIONS: dict[str, Callable[[Sequence[float]], float]] = {
    "last": lambda s: s[-1],  # Snell et al.'s default
    "min": min,
    "prod": math.prod,
    "mean": lambda s: sum(s) / len(s),
}


def check_aggregation(how: str) -> str:
    """`how` if it names an aggregation, else a ValueError listing them (the one check every stage uses)."""
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; known: {', '.join(AGGREGATIONS)}")
    return how


def aggregate(step_scores: Sequence[float], how: str | None = "last") -> float:
    """One score per solution (`how` None: "last", Snell et al.'s default); a solution with no step scores 0."""
    return AGGREGATIONS[check_aggregation(how or "last")](step_scores) if step_scores else 0.0
