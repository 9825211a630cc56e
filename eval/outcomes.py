"""Per-question outcomes of an evaluation, in one small file that every figure is computed from.

For each split of questions (`validation`: where choices are made; `test`: where they are scored)
the file holds the question ids and levels in a fixed order, each question's difficulty (oracle:
pass@1 of the difficulty samples; predicted: their mean verifier score) and, per strategy, budget
and sampling seed, a string of 0/1 (one character per question, in that order):

    {"format": "ttc-outcomes/1", "meta": {...},
     "splits": {"test": {"ids": [...], "levels": [...], "pass_at_1": [...], "probe_score": [...],
                         "results": {"beam:m=4 @ N=16": {"generations": 16, "seeds": {"0": "0110..."}}}}}}

A question's outcome is the mean over seeds (a fraction), so seeds stay with their question when
questions are resampled (`core.stats`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.config import UserError
from core.jsonl import read_jsonl

FORMAT = "ttc-outcomes/1"


def label(strategy: str, budget: int) -> str:
    return f"{strategy} @ N={budget}"


def parse_label(text: str) -> tuple[str, int]:
    strategy, budget = text.rsplit(" @ N=", 1)
    return strategy, int(budget)


@dataclass
class SplitOutcomes:
    ids: list[str]
    levels: list
    pass_at_1: list[float]
    probe_score: list[float]
    results: dict[str, dict] = field(default_factory=dict)  # label -> {"generations": g, "seeds": {seed: "0110"}}

    def correct(self, strategy: str, budget: int) -> np.ndarray:
        """Each question's outcome at (strategy, budget): the mean over seeds."""
        entry = self.results.get(label(strategy, budget))
        if entry is None:
            raise KeyError(f"no results for {label(strategy, budget)}")
        seeds = [np.frombuffer(bits.encode(), dtype=np.uint8) - ord("0") for bits in entry["seeds"].values()]
        return np.mean(seeds, axis=0)

    def strategies(self) -> list[str]:
        return sorted({parse_label(k)[0] for k in self.results})

    def budgets(self, strategy: str) -> list[int]:
        return sorted(parse_label(k)[1] for k in self.results if parse_label(k)[0] == strategy)

    def generations(self, strategy: str, budget: int) -> int:
        return self.results[label(strategy, budget)]["generations"]

    def at_generations(self, generations: int, member=lambda strategy: True) -> dict[str, np.ndarray]:
        """label -> outcomes of every run that spends `generations` (lookahead with k steps at N spends N*(k+1))."""
        return {k: self.correct(*parse_label(k)) for k, v in sorted(self.results.items())
                if v["generations"] == generations and member(parse_label(k)[0])}  # fmt: skip

    def subset(self, keep: np.ndarray) -> SplitOutcomes:
        """The questions where `keep` is true, in order."""
        pick = [i for i, k in enumerate(keep) if k]
        results = {k: {"generations": v["generations"], "seeds": {s: "".join(b[i] for i in pick)
                   for s, b in v["seeds"].items()}} for k, v in self.results.items()}  # fmt: skip
        ids, levels = [self.ids[i] for i in pick], [self.levels[i] for i in pick]
        return SplitOutcomes(ids, levels, [self.pass_at_1[i] for i in pick], [self.probe_score[i] for i in pick],
                             results)  # fmt: skip


@dataclass
class Outcomes:
    splits: dict[str, SplitOutcomes]
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "meta": self.meta,
                "splits": {name: vars(split) for name, split in self.splits.items()}}  # fmt: skip

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), separators=(",", ":")) + "\n")

    @classmethod
    def from_dict(cls, record: dict, where: str = "outcomes") -> Outcomes:
        if record.get("format") != FORMAT:
            raise UserError(f"{where}: not an outcomes file (format {record.get('format')!r}, expected {FORMAT!r})")
        return cls({name: SplitOutcomes(**split) for name, split in record["splits"].items()}, record.get("meta", {}))

    @classmethod
    def load(cls, path: str | Path) -> Outcomes:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"outcomes file not found: {path}")
        return cls.from_dict(json.loads(path.read_text()), str(path))


def collect_split(questions: list, difficulty: dict[str, dict], results_by_seed: dict[int, Path]) -> SplitOutcomes:
    """One split's outcomes from its questions, difficulty rows (id -> row) and each seed's results.jsonl; only
    the (strategy, budget) runs complete on every question of every seed are kept."""
    ids = [q.id for q in questions]
    position = {q: i for i, q in enumerate(ids)}
    seen: dict[str, dict] = defaultdict(lambda: {"generations": None, "seeds": defaultdict(dict)})
    for seed, path in results_by_seed.items():
        for row in read_jsonl(path):
            if row["id"] in position and row["strategy"] != "compute_optimal":
                entry = seen[label(row["strategy"], row["budget"])]
                entry["generations"] = row["accounting"]["generations"]
                entry["seeds"][str(seed)][position[row["id"]]] = "1" if row["correct"] else "0"
    results = {}
    for key, entry in sorted(seen.items()):
        seeds = entry["seeds"]
        if len(seeds) == len(results_by_seed) and all(len(bits) == len(ids) for bits in seeds.values()):
            bits_of = {s: "".join(bits[i] for i in range(len(ids))) for s, bits in seeds.items()}
            results[key] = {"generations": entry["generations"], "seeds": bits_of}
    return SplitOutcomes(ids, [q.level for q in questions], [difficulty[q]["pass_at_1"] for q in ids],
                         [difficulty[q]["probe_score"] for q in ids], results)  # fmt: skip
