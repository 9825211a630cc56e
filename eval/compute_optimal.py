"""The compute-optimal analysis of Snell et al. on per-question outcomes: difficulty bins, the
strategy chosen per bin and budget, and the budget a baseline needs to match it.

Inputs are plain arrays (one entry per question), so each step is tested on synthetic data:
- `rank_bins`: `bins` quantile bins of equal size (sizes differ by at most one) by a per-question
  value, bin 0 the lowest (oracle: pass@1, the hardest; predicted: the mean verifier score). Tied
  values are ordered by a seeded random rank, so many ties (pass@1 of 0 or 1) still give 5 bins.
  `bin_edges` gives the thresholds the runtime bins a new question by (`search.strategies.compute_optimal`).
- `choose`: per bin, the strategy with the best mean accuracy on the questions it is chosen on
  (ties: the first label in sorted order). With a validation split the choice is made there and
  scored on the test questions of the same bin (`apply_choices`): no test question decides
  anything. Without one, `cross_validated` is the paper's 2-fold protocol: each fold of a bin is
  scored with the choice made on the other fold.
- `matching_budget`: the smallest baseline budget whose accuracy reaches a target, log2-linear
  between measured budgets (None: never reached).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

Candidates = Mapping[str, np.ndarray]  # label -> per-question outcome in [0, 1]


def rank_bins(values: Sequence[float], bins: int = 5, seed: int = 0) -> np.ndarray:
    """The bin of each question (module docstring)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if len(values) < bins:
        raise ValueError(f"{len(values)} questions cannot fill {bins} bins")
    tie_break = np.random.default_rng(seed).permutation(len(values))
    order = np.lexsort((tie_break, np.asarray(values, dtype=float)))
    assignment = np.empty(len(values), dtype=int)
    for b, members in enumerate(np.array_split(order, bins)):
        assignment[members] = b
    return assignment


def bin_edges(values: Sequence[float], assignment: np.ndarray) -> list[float]:
    """Thresholds between consecutive bins for a new question's value: the midpoint between the highest value
    of bin b and the lowest of bin b+1 (a value equal to a threshold falls in the lower bin)."""
    values = np.asarray(values, dtype=float)
    edges = []
    for b in range(int(assignment.max())):
        edges.append(float((values[assignment == b].max() + values[assignment == b + 1].min()) / 2))
    return edges


def best(candidates: Candidates, members: np.ndarray) -> str:
    """The label with the highest mean outcome on `members` (a boolean mask); ties: the first sorted label."""
    return max(sorted(candidates), key=lambda k: float(candidates[k][members].mean()))


def choose(candidates: Candidates, assignment: np.ndarray, bins: int) -> dict[int, str]:
    """bin -> the chosen label, chosen on the questions of each bin."""
    return {b: best(candidates, assignment == b) for b in range(bins) if (assignment == b).any()}


def apply_choices(candidates: Candidates, assignment: np.ndarray, choices: Mapping[int, str]) -> np.ndarray:
    """Each question's outcome under the choice of its bin."""
    return np.array([candidates[choices[int(b)]][i] for i, b in enumerate(assignment)], dtype=float)


def cross_validated(candidates: Candidates, assignment: np.ndarray, folds: int = 2, seed: int = 0) -> np.ndarray:
    """Each question's outcome under the choice made on the other folds of its bin (module docstring); a bin of
    one question is scored with the choice made on all other questions."""
    out = np.empty(len(assignment), dtype=float)
    rng = np.random.default_rng(seed)
    for b in np.unique(assignment):
        members = np.flatnonzero(assignment == b)
        split = np.array_split(rng.permutation(members), folds) if len(members) > 1 else [members]
        for held_out in split:
            train = np.zeros(len(assignment), dtype=bool)
            train[members] = True
            train[held_out] = False
            if not train.any():
                train[:] = True
                train[held_out] = False
            if not train.any():
                raise ValueError("one question in all: nothing to choose on")
            chosen = best(candidates, train)
            out[held_out] = candidates[chosen][held_out]
    return out


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


def at_budget(curve: Mapping[int, np.ndarray], budget: float) -> np.ndarray | None:
    """Per-question outcomes at a budget between measured ones, log2-linear; None outside the measured range."""
    points = sorted(curve.items())
    if not points or not points[0][0] <= budget <= points[-1][0]:
        return None
    for (b0, a0), (b1, a1) in zip(points, points[1:], strict=False):
        if b0 <= budget <= b1:
            t = 0.0 if b1 == b0 else (math.log2(budget) - math.log2(b0)) / (math.log2(b1) - math.log2(b0))
            return (1 - t) * a0 + t * a1
    return points[-1][1]
