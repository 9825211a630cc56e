"""PRM metrics: within-question pairwise accuracy, ProcessBench-style first-error F1, step-level
ROC AUC and best-of-N accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.stats import Ratio, interval
from search.strategies.selection import majority_vote, naive_best_of_n, weighted_best_of_n
from search.verifiers.aggregation import AGGREGATIONS, aggregate


@dataclass
class ScoredSolution:
    """One sampled solution with its PRM step scores and the ground truth."""

    question: str
    answer: str | None
    correct: bool
    step_scores: list[float]
    step_correct: list[bool] | None = None  # ground truth per step (arith), None if unknown
    first_error: int | None = None  # ground truth: first wrong step, None if every step is right
    level: int | str | None = None


def pairwise_accuracy(groups: Sequence[Sequence[ScoredSolution]], how: str = "last") -> dict:
    """How often a right solution outscores a wrong one of the SAME question (ties count half):
    the figure that decides whether a verifier helps search. Overall (with its 95% interval over
    questions) and per level; a question with no right or no wrong solution has no pair. Chance is
    0.5. `per_question`: [pairs won, pairs] of each group, in order."""
    wins: dict = {}
    per_question = []
    for group in groups:
        scores = [aggregate(s.step_scores, how) for s in group]
        right = [x for x, s in zip(scores, group, strict=True) if s.correct]
        wrong = [x for x, s in zip(scores, group, strict=True) if not s.correct]
        pairs = [1.0 if r > w else 0.5 if r == w else 0.0 for r in right for w in wrong]
        per_question.append([sum(pairs), len(pairs)])
        for key in ("all", group[0].level):
            won, total = wins.get(key, (0.0, 0))
            wins[key] = (won + sum(pairs), total + len(pairs))
    table = {str(k): {"accuracy": won / total if total else None, "pairs": total} for k, (won, total) in wins.items()}
    overall = table.pop("all")
    if overall["pairs"]:
        won, total = np.array(per_question, dtype=float).T
        overall["interval"] = interval(Ratio(won, total)).to_dict()
    return {"all": overall, "by_level": table, "per_question": per_question}


def predicted_first_error(step_scores: Sequence[float], threshold: float) -> int | None:
    return next((i for i, s in enumerate(step_scores) if s < threshold), None)


def first_error_f1(solutions: Sequence[ScoredSolution], threshold: float) -> dict[str, float | None]:
    """Harmonic mean of the accuracy on erroneous solutions (exact first wrong step) and on
    correct ones (no step flagged), as in ProcessBench."""
    erroneous = [s for s in solutions if s.first_error is not None]
    clean = [s for s in solutions if s.first_error is None]
    acc_err = _mean([predicted_first_error(s.step_scores, threshold) == s.first_error for s in erroneous])
    acc_ok = _mean([predicted_first_error(s.step_scores, threshold) is None for s in clean])
    f1 = (
        2 * acc_err * acc_ok / (acc_err + acc_ok)
        if acc_err is not None and acc_ok is not None and acc_err + acc_ok
        else 0.0
    )
    return {"threshold": threshold, "erroneous_accuracy": acc_err, "correct_accuracy": acc_ok, "f1": f1,
            "erroneous": len(erroneous), "correct": len(clean)}  # fmt: skip


def best_threshold(solutions: Sequence[ScoredSolution], grid: Sequence[float] | None = None) -> float:
    """The threshold with the highest first-error F1 (chosen on validation solutions)."""
    grid = grid or [i / 50 for i in range(1, 50)]
    return max(grid, key=lambda t: (first_error_f1(solutions, t)["f1"], -abs(t - 0.5)))


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Probability that a random positive outranks a random negative (ties count half)."""
    pos = sum(labels)
    neg = len(labels) - pos
    if not pos or not neg:
        return None
    order = sorted(range(len(scores)), key=scores.__getitem__)
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):  # average ranks over ties
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def best_of_n_hits(groups: Sequence[Sequence[ScoredSolution]]) -> dict[str, list[float]]:
    """Per selection rule, each question's outcome (each group = one question's N samples). A pick is right if it
    is the answer of a solution the checker marked correct; `mean pass@1` is the question's fraction right."""
    hits: dict[str, list[float]] = {"majority": [], "pass@N (oracle)": [], "mean pass@1": []}
    for how in AGGREGATIONS:
        hits[f"weighted/{how}"], hits[f"naive/{how}"] = [], []
    for group in groups:
        answers = [s.answer for s in group]
        right = {s.answer for s in group if s.correct}
        hits["majority"].append(float(majority_vote(answers) in right))
        hits["pass@N (oracle)"].append(float(bool(right)))
        hits["mean pass@1"].append(sum(s.correct for s in group) / len(group))
        for how in AGGREGATIONS:
            scores = [aggregate(s.step_scores, how) for s in group]
            hits[f"weighted/{how}"].append(float(weighted_best_of_n(answers, scores) in right))
            hits[f"naive/{how}"].append(float(naive_best_of_n(answers, scores) in right))
    return hits


def best_of_n_accuracy(groups: Sequence[Sequence[ScoredSolution]]) -> dict[str, dict]:
    """Accuracy of each selection rule over questions, with its 95% interval (`core.stats`)."""
    return {k: interval(Ratio.mean(v)).to_dict() for k, v in best_of_n_hits(groups).items()}


def _mean(values: Sequence[float | bool]) -> float | None:
    return sum(values) / len(values) if values else None
