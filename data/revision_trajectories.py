"""Revision trajectories as Snell et al. build them, from a question's sampled answers.

For each correct answer, draw k ~ U{0..min(max_incorrect, number of incorrect answers)}
incorrect answers to put in context before it (Snell et al.: k ~ U{0..min(4, #incorrect)}).
The LAST one in context is the incorrect answer closest to the correct one by character edit
distance; the others are drawn at random from the rest. The revision model learns to write
the correct answer after seeing those attempts.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from search.revisions import CONTEXT_ATTEMPTS


@dataclass(frozen=True)
class Trajectory:
    context: list[str]  # incorrect attempts, oldest first; the last is the closest to the target
    target: str  # a correct answer


def closest(target: str, candidates: Sequence[str]) -> int:
    """Index of the candidate with the smallest character edit distance to `target` (first on ties)."""
    if not candidates:
        raise ValueError("closest() needs at least one candidate")
    distances = [Levenshtein.distance(target, c) for c in candidates]
    return distances.index(min(distances))


def build_trajectories(
    correct: Sequence[str], incorrect: Sequence[str], rng: random.Random, max_incorrect: int = CONTEXT_ATTEMPTS
) -> list[Trajectory]:
    """One trajectory per correct answer (see the module docstring)."""
    if max_incorrect < 0:
        raise ValueError(f"max_incorrect must be >= 0, got {max_incorrect}")
    out = []
    for target in correct:
        k = rng.randint(0, min(max_incorrect, len(incorrect)))
        if k == 0:
            out.append(Trajectory([], target))
            continue
        last = closest(target, incorrect)
        others = rng.sample([i for i in range(len(incorrect)) if i != last], k - 1)
        out.append(Trajectory([incorrect[i] for i in others] + [incorrect[last]], target))
    return out
