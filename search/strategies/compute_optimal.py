"""Compute-optimal test-time scaling in the runtime: a schedule file written by `make eval` says,
per predicted-difficulty bin and generation budget, which strategy to run (Snell et al. sec. 3).

    {"format": "compute-optimal-schedule/1",
     "probe_samples": 4,                  # samples whose mean verifier score predicts difficulty
     "bin_edges": [0.21, 0.35, 0.48, 0.6], # thresholds between the bins, lowest scores first
     "choices": {"0": {"16": {"strategy": "beam:m=4", "budget": 16}, ...}, ...},
     "probe_score_range": [0.05, 0.93]}   # optional: the lowest and highest mean probe score of the
                                          # questions the bins were made on (the verifier's calibration)

For a new question the runtime samples `probe_samples` solutions, scores them with the
verifier, bins their mean score and runs the bin's choice at the largest budget that fits the
request. The probe's cost is part of the question's accounting. A probe score outside
`probe_score_range` says the verifier is out of the range it was calibrated on: the server then
falls back to majority voting (`search.serve`); files without the key load as before (no check).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.config import MAX_GENERATIONS, UserError
from search.generation.generator import stable_seed
from search.strategies.strategy import StrategySpec

FORMAT = "compute-optimal-schedule/1"


def probe_seed(seed: int) -> int:
    """The seed of the difficulty probe's samples: `make eval` bins the first `probe_samples` of
    its difficulty samples, drawn with this seed, so they are exactly the runtime's probe."""
    return stable_seed(seed, "difficulty-probe")


def bin_of(value: float, edges: Sequence[float]) -> int:
    """The difficulty bin a value falls in, given the thresholds between bins (lowest first)."""
    return sum(value > edge for edge in edges)


@dataclass(frozen=True)
class ScheduleEntry:
    strategy: str  # a strategy spec
    budget: int  # its budget N (lookahead spends N*(k+1) generations)


@dataclass
class ComputeOptimalSchedule:
    probe_samples: int
    bin_edges: list[float]
    choices: dict[int, dict[int, ScheduleEntry]]  # bin -> generation budget -> choice
    probe_score_range: tuple[float, float] | None = None  # mean probe scores the bins were made on (lowest, highest)

    def in_range(self, mean_score: float) -> bool:
        """Whether a probe's mean score lies within the calibration range (True when the file records none)."""
        if self.probe_score_range is None:
            return True
        low, high = self.probe_score_range
        return low <= mean_score <= high

    def choose(self, mean_score: float, generations: int) -> ScheduleEntry:
        """The choice for a question whose probe scored `mean_score`, at most `generations` spent."""
        by_budget = self.choices[bin_of(mean_score, self.bin_edges)]
        fitting = [b for b in by_budget if b <= generations]
        if not fitting:
            raise ValueError(
                f"the schedule has no choice within {generations} generations (smallest: {min(by_budget)})"
            )
        return by_budget[max(fitting)]

    def save(self, path: str | Path) -> None:
        record = {
            "format": FORMAT,
            "probe_samples": self.probe_samples,
            "bin_edges": self.bin_edges,
            "choices": {
                str(b): {str(g): {"strategy": c.strategy, "budget": c.budget} for g, c in sorted(by.items())}
                for b, by in sorted(self.choices.items())
            },
        }
        if self.probe_score_range is not None:
            record["probe_score_range"] = list(self.probe_score_range)
        Path(path).write_text(json.dumps(record, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ComputeOptimalSchedule:
        """The schedule of a file `make eval` wrote; a file that is not one, or a choice that is impossible or spends
        more generations than its budget key, is a one-line error."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"compute-optimal schedule file not found: {path} (written by make eval)")
        try:
            record = json.loads(path.read_text())
            if record.get("format") != FORMAT:
                raise ValueError(f"format is {record.get('format')!r}, expected {FORMAT!r}")
            choices = {
                int(b): {int(g): ScheduleEntry(str(c["strategy"]), _count(c["budget"])) for g, c in by.items()}
                for b, by in record["choices"].items()
            }
            span = record.get("probe_score_range")
            span = None if span is None else (float(span[0]), float(span[1]))
            if span is not None and (len(record["probe_score_range"]) != 2 or span[0] > span[1]):
                raise ValueError(f"probe_score_range must be [lowest, highest], got {record['probe_score_range']}")
            schedule = cls(_count(record["probe_samples"]), [float(e) for e in record["bin_edges"]], choices, span)
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise UserError(f"{path}: not a compute-optimal schedule file ({err})") from None
        try:
            schedule.check()
        except ValueError as err:
            raise UserError(f"{path}: {err}") from None
        return schedule

    def check(self) -> None:
        """Raise ValueError unless every bin has choices, the edges are finite and sorted, and every choice runs
        within its budget key (lookahead spends N*(k+1)) and `MAX_GENERATIONS`."""
        missing = sorted(set(range(len(self.bin_edges) + 1)) - set(self.choices))
        if missing or not 1 <= self.probe_samples <= MAX_GENERATIONS:
            raise ValueError(f"bins {missing} have no choices or probe_samples is outside 1..{MAX_GENERATIONS}")
        if not all(math.isfinite(e) for e in self.bin_edges) or self.bin_edges != sorted(self.bin_edges):
            raise ValueError(f"bin_edges must be finite and ascending, got {self.bin_edges}")
        span = self.probe_score_range
        if span is not None and not (all(math.isfinite(v) for v in span) and span[0] <= span[1]):
            raise ValueError(f"probe_score_range must be finite [lowest, highest], got {list(span)}")
        for b, by_budget in self.choices.items():
            if not by_budget:
                raise ValueError(f"bin {b} has no choices")
            for generations, entry in by_budget.items():
                spec = StrategySpec.parse(entry.strategy)
                spec.width(entry.budget)
                if not 1 <= generations <= MAX_GENERATIONS or spec.generations(entry.budget) > generations:
                    raise ValueError(f"bin {b}: the choice at {generations} generations ({spec} at N={entry.budget}) "
                                     f"spends {spec.generations(entry.budget)}, more than its budget")  # fmt: skip


def _count(value: object) -> int:
    """A JSON integer (not a boolean, not a float)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value
