"""Intervals for accuracies and their differences: a paired bootstrap over questions.

Questions are the unit of resampling: a question's samples, seeds and chains stay with it (a
clustered bootstrap), and both arms of a comparison are resampled together (paired). The
interval is the 2.5% and 97.5% quantiles of the resampled statistic. Statistics are ratios of
per-question sums (`Ratio`), so a mean over questions (`num` = the outcome, `den` = 1) and a
pooled rate (pairs right / pairs compared) are one case.

A verdict reads a difference's interval in the paper's direction: "reproduced" when it
excludes 0 that way, "contradicted" when it excludes 0 the other way, else "inconclusive".
`detectable` is the smallest true difference these questions would show at 80% power with a
two-sided 5% test: (1.96 + 0.84) standard errors of the bootstrap distribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

RESAMPLES = 4000
Z_POWER = 1.96 + 0.84  # two-sided 5% test, 80% power
VERDICTS = ("reproduced", "contradicted", "inconclusive")


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    detectable: float  # the smallest true difference these questions would detect (module docstring)
    questions: int

    def verdict(self, direction: int = 1) -> str:
        """`direction` +1: the paper says the difference is positive; -1: negative."""
        low, high = (self.low, self.high) if direction > 0 else (-self.high, -self.low)
        return "reproduced" if low > 0 else "contradicted" if high < 0 else "inconclusive"

    def to_dict(self) -> dict:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}

    def text(self, digits: int = 3) -> str:
        return f"{self.estimate:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def resamples(questions: int, seed: int = 0, count: int = RESAMPLES) -> np.ndarray:
    """(count, questions) indices of questions drawn with replacement: one row per bootstrap resample."""
    if questions < 1:
        raise ValueError("no questions to resample")
    return np.random.default_rng(seed).integers(0, questions, size=(count, questions))


@dataclass(frozen=True)
class Ratio:
    """Per-question numerators and denominators; the statistic is sum(num) / sum(den)."""

    num: np.ndarray
    den: np.ndarray

    @classmethod
    def mean(cls, values: Sequence[float]) -> Ratio:
        """The mean over questions of one value each (a question's accuracy, averaged over its seeds)."""
        values = np.asarray(values, dtype=float)
        return cls(values, np.ones_like(values))

    def value(self, index: np.ndarray | None = None) -> np.ndarray | float:
        if index is None:
            return float(self.num.sum() / self.den.sum()) if self.den.sum() else float("nan")
        den = self.den[index].sum(axis=-1)
        return np.divide(self.num[index].sum(axis=-1), den, out=np.full(den.shape, np.nan), where=den > 0)

    def __sub__(self, other: Ratio) -> Difference:
        return Difference((self, other), (1.0, -1.0))


@dataclass(frozen=True)
class Difference:
    """A signed sum of statistics on the same questions: a - b, or (a - b) - (c - d)."""

    terms: tuple[Ratio, ...]
    signs: tuple[float, ...]

    def value(self, index: np.ndarray | None = None) -> np.ndarray | float:
        return sum(s * t.value(index) for t, s in zip(self.terms, self.signs, strict=True))

    def __sub__(self, other: Difference) -> Difference:
        return Difference(self.terms + other.terms, self.signs + tuple(-s for s in other.signs))


def interval(statistic: Ratio | Difference, seed: int = 0, count: int = RESAMPLES) -> Interval:
    """The statistic on all questions, and its 95% paired-bootstrap interval over questions."""
    terms = statistic.terms if isinstance(statistic, Difference) else (statistic,)
    questions = len(terms[0].num)
    if any(len(t.num) != questions or len(t.den) != questions for t in terms):
        raise ValueError("every arm of a comparison needs the same questions, in the same order")
    draws = statistic.value(resamples(questions, seed, count))
    draws = draws[~np.isnan(draws)]
    low, high = np.quantile(draws, [0.025, 0.975]) if len(draws) else (float("nan"), float("nan"))
    spread = float(np.std(draws)) if len(draws) else float("nan")
    return Interval(float(statistic.value()), float(low), float(high), Z_POWER * spread, questions)
