"""The compute-optimal analysis of Snell et al. on per-question results: difficulty bins,
cross-validated choice of strategy per bin and budget, and the budget best-of-N needs to match.

Inputs are plain numbers, so each step is tested on synthetic data with known answers:
- `quantile_bins`: 5 bins of equal size by a per-question value (oracle: pass@1, bin 0 the
  hardest; predicted: the mean verifier score of the same samples, no gold answer used).
- `cross_validated_choice`: per bin and generation budget, the strategy with the best accuracy
  on one fold of the bin's questions is scored on the other fold, and the other way round; the
  held-out accuracy is what a user would see choosing by bin (the paper's 2-fold protocol).
- `matching_budget`: the smallest best-of-N budget whose accuracy reaches a target, with
  log2-linear interpolation between measured budgets (None: never reached).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from search.generator import stable_seed

Outcomes = Mapping[str, Mapping[str, bool]]  # strategy -> question id -> correct


def quantile_bins(values: Mapping[str, float], bins: int = 5) -> tuple[dict[str, int], list[float]]:
    """Bin of each question (0 = lowest values) and the bin edges (the `bins - 1` thresholds
    between consecutive bins). Questions are ranked by value (ties by id) and split into `bins`
    groups of near-equal size, so every bin is used even when many values tie."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if len(values) < bins:
        raise ValueError(f"{len(values)} questions cannot fill {bins} bins")
    ranked = sorted(values, key=lambda q: (values[q], q))
    assignment = {q: rank * bins // len(ranked) for rank, q in enumerate(ranked)}
    edges = []
    for b in range(1, bins):
        first = next(rank for rank, q in enumerate(ranked) if assignment[q] == b)
        edges.append((values[ranked[first - 1]] + values[ranked[first]]) / 2)
    return assignment, edges


def fold_of(question_id: str, folds: int = 2, seed: int = 0) -> int:
    return stable_seed(seed, "fold", question_id) % folds


def accuracy(outcomes: Mapping[str, bool], questions: Sequence[str]) -> float:
    return sum(outcomes[q] for q in questions) / len(questions) if questions else 0.0


def best_strategy(outcomes: Outcomes, questions: Sequence[str]) -> str:
    """The strategy with the highest accuracy on `questions` (ties: the first in sorted order)."""
    return max(sorted(outcomes), key=lambda s: accuracy(outcomes[s], questions))


@dataclass(frozen=True)
class Choice:
    strategy: str  # chosen on all of the bin's questions (what the policy file records)
    accuracy: float  # its accuracy on them (optimistic: chosen and scored on the same questions)
    held_out_accuracy: float  # 2-fold cross-validated: chosen on one fold, scored on the other
    held_out_correct: int
    questions: int


def cross_validated_choice(outcomes: Outcomes, questions: Sequence[str], folds: int = 2, seed: int = 0) -> Choice:
    """The compute-optimal strategy among `outcomes` for one bin at one budget (module docstring)."""
    if not questions:
        raise ValueError("no questions in this bin")
    split = [[q for q in questions if fold_of(q, folds, seed) == f] for f in range(folds)]
    correct = 0
    for f, held_out in enumerate(split):
        train = [q for g, part in enumerate(split) if g != f for q in part]
        chosen = best_strategy(outcomes, train or held_out)  # a bin too small to split: no held-out fold
        correct += sum(outcomes[chosen][q] for q in held_out)
    overall = best_strategy(outcomes, questions)
    n = len(questions)
    return Choice(overall, accuracy(outcomes[overall], questions), correct / n, correct, n)


def matching_budget(curve: Mapping[int, float], target: float) -> float | None:
    """The smallest budget at which the curve (budget -> accuracy) reaches `target`, interpolated
    linearly in log2(budget) between measured points; the first budget if already reached there."""
    points = sorted(curve.items())
    if not points:
        return None
    if points[0][1] >= target:
        return float(points[0][0])
    for (b0, a0), (b1, a1) in zip(points, points[1:], strict=False):
        if a1 >= target > a0:
            t = (target - a0) / (a1 - a0)
            return 2 ** (math.log2(b0) + t * (math.log2(b1) - math.log2(b0)))
    return None
