"""The compute-optimal analysis of an evaluation's outcomes (`eval.outcomes`), with intervals.

    report = analyse(outcomes, AnalysisSettings(bins=5, baseline="best_of_n:select=weighted"))

Per strategy and budget N, the test accuracy with its 95% interval (paired bootstrap over
questions, `core.stats`). Per kind of difficulty (oracle: pass@1; predicted: mean verifier score),
`bins` rank-quantile bins of each split, and per pool of strategies and generation budget the
compute-optimal choice per bin: made on the validation split and scored on the test split when
there is one, else 2-fold cross-validated on the test questions (`eval.compute_optimal`). Each pool
is compared with its own baseline at the same budget (a paired difference with its interval), and
the baseline budget that matches the compute-optimal accuracy is estimated. The runtime's schedule
(`search.strategies.compute_optimal`) takes the `all` pool's predicted-bin choices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.stats import Ratio, interval
from eval.compute_optimal import apply_choices, bin_edges, choose, cross_validated, matching_budget, rank_bins
from eval.outcomes import Outcomes, SplitOutcomes, parse_label

DIFFICULTY = {"oracle": "pass_at_1", "predicted": "probe_score"}
POOLS: dict[str, tuple[Callable[[str], bool], str | None]] = {  # name -> members, baseline (None: the setting)
    "search": (lambda strategy: not strategy.startswith("revision"), "best_of_n:select=weighted"),
    "revisions": (lambda strategy: strategy.startswith("revision"), "revision:l=1:select=weighted"),
    "all": (lambda strategy: True, None),
}


@dataclass(frozen=True)
class AnalysisSettings:
    bins: int = 5
    folds: int = 2  # without a validation split: cross-validation folds within each bin
    baseline: str = "best_of_n:select=weighted"  # the `all` pool's baseline
    seed: int = 0  # tie-breaks of the bins, folds and bootstrap resamples


def difficulty_bins(split: SplitOutcomes, kind: str, settings: AnalysisSettings) -> np.ndarray:
    return rank_bins(getattr(split, DIFFICULTY[kind]), settings.bins, settings.seed)


def compute_optimal(
    outcomes: Outcomes, kind: str, pool: str, generations: int, settings: AnalysisSettings
) -> tuple[np.ndarray, dict[int, str]] | None:
    """The test questions' outcomes under the compute-optimal choice per bin at `generations`, and the choices
    (made on validation; cross-validated: those made on all test questions, for the record); None if no
    strategy of the pool ran at that budget on every split."""
    member = POOLS[pool][0]
    test = outcomes.splits["test"]
    test_candidates = test.at_generations(generations, member)
    test_bins = difficulty_bins(test, kind, settings)
    validation = outcomes.splits.get("validation")
    if validation is None:
        if not test_candidates:
            return None
        held_out = cross_validated(test_candidates, test_bins, settings.folds, settings.seed)
        return held_out, choose(test_candidates, test_bins, settings.bins)
    candidates = validation.at_generations(generations, member)
    candidates = {k: v for k, v in candidates.items() if k in test_candidates}
    if not candidates:
        return None
    choices = choose(candidates, difficulty_bins(validation, kind, settings), settings.bins)
    return apply_choices(test_candidates, test_bins, choices), choices


def curve(split: SplitOutcomes, strategy: str, by: str = "budget") -> dict[int, np.ndarray]:
    """A strategy's per-question outcomes by budget N, or by generations spent."""
    return {(b if by == "budget" else split.generations(strategy, b)): split.correct(strategy, b)
            for b in split.budgets(strategy)}  # fmt: skip


def analyse(outcomes: Outcomes, settings: AnalysisSettings) -> dict:
    test = outcomes.splits["test"]
    generation_budgets = sorted({v["generations"] for v in test.results.values()})
    report: dict = {
        "questions": {name: len(split.ids) for name, split in outcomes.splits.items()},
        "choices_made_on": "validation" if "validation" in outcomes.splits else "test, 2-fold cross-validated",
        "generation_budgets": generation_budgets,
        "curves": {
            s: {b: interval(Ratio.mean(x), settings.seed).to_dict() for b, x in curve(test, s).items()}
            for s in test.strategies()
        },  # fmt: skip
        "binnings": {},
    }
    for kind in DIFFICULTY:
        assignment = difficulty_bins(test, kind, settings)
        rows = []
        for b in range(settings.bins):
            members = assignment == b
            rows.append({"bin": b, "questions": int(members.sum()),
                         "curves": {s: {n: float(x[members].mean()) for n, x in curve(test, s).items()}
                                    for s in test.strategies()}})  # fmt: skip
        binning: dict = {"by": DIFFICULTY[kind], "assignment": dict(zip(test.ids, map(int, assignment), strict=True)),
                         "bins": rows, "pools": {}}  # fmt: skip
        validation = outcomes.splits.get("validation")
        if kind == "predicted":
            source = validation or test
            binning["edges"] = bin_edges(source.probe_score, difficulty_bins(source, kind, settings))
            binning["probe_score_range"] = [float(min(source.probe_score)), float(max(source.probe_score))]
        for pool, (member, baseline_name) in POOLS.items():
            baseline_name = baseline_name or settings.baseline
            if not any(member(s) for s in test.strategies()):
                continue
            ran = baseline_name in test.strategies()
            baseline = curve(test, baseline_name, by="generations") if ran else {}
            result: dict = {"baseline_name": baseline_name, "choices": {}, "compute_optimal": {}, "baseline": {},
                            "difference": {}, "baseline_budget_to_match": {}}  # fmt: skip
            for g in generation_budgets:
                found = compute_optimal(outcomes, kind, pool, g, settings)
                if found is None:
                    continue
                held_out, choices = found
                optimal = interval(Ratio.mean(held_out), settings.seed)
                result["choices"][g] = {b: _split_choice(c) for b, c in choices.items()}
                result["compute_optimal"][g] = optimal.to_dict()
                if g not in baseline:  # the baseline did not run at this budget: no comparison
                    continue
                result["baseline"][g] = interval(Ratio.mean(baseline[g]), settings.seed).to_dict()
                result["difference"][g] = interval(Ratio.mean(held_out) - Ratio.mean(baseline[g]),
                                                   settings.seed).to_dict()  # fmt: skip
                means = {b: float(x.mean()) for b, x in baseline.items()}
                result["baseline_budget_to_match"][g] = matching_budget(means, optimal.estimate)
            binning["pools"][pool] = result
        report["binnings"][kind] = binning
    return report


def _split_choice(text: str) -> dict:
    strategy, budget = parse_label(text)
    return {"strategy": strategy, "budget": budget}
