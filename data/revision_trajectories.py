"""Revision trajectories as Snell et al. build them, from a question's sampled answers.

For each correct answer, draw k ~ U{0..min(max_incorrect, number of incorrect answers)}
incorrect answers to put in context before it (Snell et al.: k ~ U{0..min(4, #incorrect)}).
The LAST one in context is the incorrect answer closest to the correct one by character edit
distance; the others are drawn at random from the rest. The revision model learns to write
the correct answer after seeing those attempts.

`keep_correct` (not in the paper; 0 by default) makes that fraction of the trajectories end
their context with a correct answer instead, the target being that answer again: a model
trained only on incorrect contexts learns "change the last attempt", and at test time it
changes correct answers too (measured on arith: README, "Revisions").
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from search.strategies.revisions import CONTEXT_ATTEMPTS


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
    correct: Sequence[str],
    incorrect: Sequence[str],
    rng: random.Random,
    max_incorrect: int = CONTEXT_ATTEMPTS,
    keep_correct: float = 0.0,
) -> list[Trajectory]:
    """One trajectory per correct answer (see the module docstring)."""
    if max_incorrect < 0 or not 0 <= keep_correct <= 1:
        raise ValueError(f"need max_incorrect >= 0 and keep_correct in [0, 1], got {max_incorrect}, {keep_correct}")
    out = []
    for target in correct:
        k = rng.randint(0, min(max_incorrect, len(incorrect)))
        context = []
        if k:
            last = closest(target, incorrect)
            others = rng.sample([i for i in range(len(incorrect)) if i != last], k - 1)
            context = [incorrect[i] for i in others] + [incorrect[last]]
        if keep_correct and rng.random() < keep_correct:
            context = [*context, target][-max(max_incorrect, 1) :]  # the window still holds it
        out.append(Trajectory(context, target))
    return out
