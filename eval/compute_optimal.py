"""The compute-optimal analysis of Snell et al. on per-question results: difficulty bins,
cross-validated choice of strategy per bin and budget, and the budget best-of-N needs to match.

Inputs are plain numbers, so each step is tested on synthetic data with known answers:
- `quantile_bins`: up to 5 bins of near-equal size by a per-question value (oracle: pass@1, bin
  0 the hardest; predicted: the mean verifier score of the same samples, no gold answer used).
  Edges sit between distinct values and a value's bin is `search.compute_optimal.bin_of`, the
  runtime's own rule, so tied questions share a bin (with many ties there are fewer bins).
- `cross_validated_choice`: per bin and generation budget, the strategy with the best accuracy
  on one fold of the bin's questions is scored on the other fold, and the other way round; the
  held-out accuracy is what a user would see choosing by bin (the paper's 2-fold protocol).
  Folds are balanced (sizes differ by at most one); a bin too small to split chooses for a
  fold on the questions outside the bin, so no question is ever scored by a choice made on it.
- `matching_budget`: the smallest best-of-N budget whose accuracy reaches a target, with
  log2-linear interpolation between measured budgets (None: never reached).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from search.compute_optimal import bin_of
from search.generator import stable_seed

Outcomes = Mapping[str, Mapping[str, bool]]  # strategy -> question id -> correct


def quantile_bins(values: Mapping[str, float], bins: int = 5) -> tuple[dict[str, int], list[float]]:
    """Bin of each question (0 = lowest values) and the edges between bins (see the module
    docstring): each of the `bins - 1` quantile boundaries moves to the nearest change of value."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if len(values) < bins:
        raise ValueError(f"{len(values)} questions cannot fill {bins} bins")
    ranked = sorted(values.values())
    changes = [i for i in range(1, len(ranked)) if ranked[i - 1] < ranked[i]]
    cuts = {min(changes, key=lambda i: abs(i - b * len(ranked) / bins)) for b in range(1, bins)} if changes else set()
    edges = [(ranked[i - 1] + ranked[i]) / 2 for i in sorted(cuts)]
    return {q: bin_of(v, edges) for q, v in values.items()}, edges


def balanced_folds(questions: Sequence[str], folds: int = 2, seed: int = 0) -> list[list[str]]:
    """Questions dealt to `folds` folds in a seeded order: fold sizes differ by at most one."""
    order = sorted(questions, key=lambda q: (stable_seed(seed, "fold", q), q))
    return [order[f::folds] for f in range(folds)]


def accuracy(outcomes: Mapping[str, bool], questions: Sequence[str]) -> float:
    return sum(outcomes[q] for q in questions) / len(questions) if questions else 0.0


def best_strategy(outcomes: Outcomes, questions: Sequence[str]) -> str:
    """The strategy with the highest accuracy on `questions` (ties: the first in sorted order)."""
    return max(sorted(outcomes), key=lambda s: accuracy(outcomes[s], questions))


@dataclass(frozen=True)
class Choice:
    strategy: str  # chosen on all of the bin's questions (what the schedule file records)
    accuracy: float  # its accuracy on them (optimistic: chosen and scored on the same questions)
    held_out_accuracy: float  # 2-fold cross-validated: chosen on one fold, scored on the other
    held_out_correct: int
    questions: int


def cross_validated_choice(
    outcomes: Outcomes, questions: Sequence[str], folds: int = 2, seed: int = 0, outside: Sequence[str] = ()
) -> Choice:
    """The compute-optimal strategy among `outcomes` for one bin at one budget (module docstring);
    `outside` are the other bins' questions, for a bin too small to split."""
    if not questions:
        raise ValueError("no questions in this bin")
    split = balanced_folds(questions, folds, seed)
    correct = 0
    for f, held_out in enumerate(split):
        train = [q for g, part in enumerate(split) if g != f for q in part] or list(outside)
        if not train:
            raise ValueError("one question in all: nothing to choose on")
        chosen = best_strategy(outcomes, train)
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
