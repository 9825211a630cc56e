"""Choosing one answer among N sampled solutions: majority, naive argmax, weighted best-of-N.

Solutions without an answer (None) never win; if no solution has an answer, the pick is None.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The most frequent answer; ties go to the answer seen first."""
    counts: dict[str, int] = defaultdict(int)
    for answer in answers:
        if answer is not None:
            counts[answer] += 1
    return max(counts, key=counts.__getitem__) if counts else None


def naive_best_of_n(answers: Sequence[str | None], scores: Sequence[float]) -> str | None:
    """The answer of the highest-scoring solution; ties go to the solution seen first."""
    best: tuple[str, float] | None = None
    for answer, score in zip(answers, scores, strict=True):
        if answer is not None and (best is None or score > best[1]):
            best = (answer, score)
    return None if best is None else best[0]


def weighted_best_of_n(answers: Sequence[str | None], scores: Sequence[float]) -> str | None:
    """Sum the scores of identical answers and take the argmax (Snell et al.'s default)."""
    totals: dict[str, float] = defaultdict(float)
    for answer, score in zip(answers, scores, strict=True):
        if answer is not None:
            totals[answer] += score
    return max(totals, key=totals.__getitem__) if totals else None


SELECTIONS: dict[str, Callable[..., str | None]] = {
    "majority": lambda answers, scores=None: majority_vote(answers),
    "naive": naive_best_of_n,
    "weighted": weighted_best_of_n,
}
