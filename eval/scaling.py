"""Compute-optimal test-time scaling for your checkpoints (Snell et al. 2024): `make eval`.

    python -m eval.scaling --config recipes/arith-tiny/eval.yaml
    python -m eval.scaling --task math --source HuggingFaceH4/MATH-500 --split test --dataset null ...

Questions: `dataset` (the runtime's question JSONL: the test questions), or with `dataset: null` a
task's split (`task`, `source`, `split`, `questions_per_level`, `limit`; see `data.tasks`), written
to `<out>/questions.jsonl` first. `validation_dataset`: questions where every choice is made (the
strategy per difficulty bin; the runtime's bin edges); null: choices are 2-fold cross-validated on
the test questions (the paper's protocol).

1. Every strategy at every budget (powers of 2 up to `max_budget`) on each split, through the
   runtime; the test split `repeats` times with sampling seeds `seed`, `seed`+1, ... (`eval.sweep`,
   resumable), and each question's difficulty from `difficulty_samples` policy samples.
2. One outcomes file (`<out>/outcomes.json`, `eval.outcomes`): every figure below is computed from it.
3. The analysis (`eval.scaling_analysis`): accuracies with 95% intervals, difficulty bins, the
   compute-optimal choice per pool, bin and budget against the pool's baseline as a paired difference.
4. report.{json,md}, plots (`eval.plots`), and schedule.json: the `all` pool's predicted-bin choices,
   which the runtime follows with `--strategies compute_optimal --compute_optimal schedule.json`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from core.config import UserError, cli, parse_config
from core.outputs import OutputGuard, claim_report_dir
from data.tasks import TaskConfig
from eval.plots import plot_report
from eval.scaling_analysis import AnalysisSettings, analyse
from eval.scaling_report import report_markdown
from eval.sweep import sweep
from search.questions import load_questions
from search.settings import RuntimeConfig
from search.strategies.compute_optimal import ComputeOptimalSchedule, ScheduleEntry


@dataclass
class EvalConfig(RuntimeConfig, TaskConfig, OutputGuard):
    """The runtime's settings (`search.settings.RuntimeConfig`), where the questions come from
    (`data.tasks.TaskConfig`) and what the evaluation adds."""

    revision_model: str | None = "outputs/arith-tiny/revision"  # null or "": no revision strategies
    revision_verifier: str | None = "outputs/arith-tiny/revision_orm"
    dataset: str | None = "outputs/arith-tiny/test_questions.jsonl"  # the test questions; null: the task's
    validation_dataset: str | None = None  # where choices are made; null: 2-fold cross-validation on the test split
    split: str = "test"
    questions_per_level: int | None = 10
    strategies: str = (  # the paper's settings: beam M=sqrt(N) and 4; lookahead k=3 with both, k=1 with sqrt(N)
        "best_of_n,best_of_n:select=majority,beam:m=sqrt,beam:m=4,lookahead:m=sqrt:k=3,lookahead:m=4:k=3,"
        "lookahead:m=sqrt:k=1,dvts:m=4,revision:l=1,revision:l=2,revision:l=4,revision:l=all"
    )
    max_budget: int = 16  # budgets 1, 2, 4, ... up to this
    repeats: int = 1  # the test sweep with sampling seeds seed, seed+1, ...
    baseline: str = "best_of_n:select=weighted"  # what the `all` pool's compute-optimal is compared with
    difficulty_samples: int = 16  # policy samples per question: oracle and predicted difficulty (the probe)
    bins: int = 5  # difficulty bins (rank quantiles, ties broken by a seeded random rank)
    folds: int = 2  # without validation_dataset: cross-validation folds of each bin's questions
    chunk_size: int = 16  # questions per batched call (and per resume checkpoint)
    output_dir: str = "outputs/arith-tiny/eval"

    def __post_init__(self) -> None:
        RuntimeConfig.__post_init__(self)
        TaskConfig.__post_init__(self)
        if min(self.max_budget, self.bins, self.difficulty_samples, self.repeats) < 1 or self.folds < 2:
            raise ValueError("max_budget, bins, difficulty_samples and repeats must be >= 1, folds >= 2")
        for name in self.strategies.split(","):
            self.spec(name.strip())  # a bad spec is refused before anything runs, --dry-run included

    def budgets(self) -> list[int]:
        return [2**i for i in range(int(math.log2(self.max_budget)) + 1)]


CONFIG_TYPES = (EvalConfig,)


def write_questions(cfg: EvalConfig) -> str:
    """The question JSONL the evaluation runs on: `dataset`, or the task's questions written out."""
    if cfg.dataset:
        return cfg.dataset
    _, questions = cfg.task_and_questions(cfg.policy, stream="eval")
    path = Path(cfg.output_dir) / "questions.jsonl"
    path.write_text("".join(json.dumps({"id": q.id, "question": q.text, "answer": q.gold, "level": q.level}) + "\n"
                            for q in questions))  # fmt: skip
    return str(path)


def schedule_file(cfg: EvalConfig, report: dict) -> ComputeOptimalSchedule:
    """The `all` pool's predicted-bin choices and the probe scores they were calibrated on, for the runtime."""
    predicted = report["binnings"]["predicted"]
    choices: dict[int, dict[int, ScheduleEntry]] = {}
    for g, by_bin in predicted["pools"]["all"]["choices"].items():
        for b, choice in by_bin.items():
            choices.setdefault(int(b), {})[int(g)] = ScheduleEntry(choice["strategy"], choice["budget"])
    span = predicted.get("probe_score_range")  # the mean probe scores the bins were made on
    return ComputeOptimalSchedule(cfg.difficulty_samples, predicted["edges"], choices, span and tuple(span))


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    out = claim_report_dir(cfg.output_dir, "eval.scaling", cfg.overwrite_output_dir)
    cfg.dataset = write_questions(cfg)
    splits = {"test": cfg.dataset}
    if cfg.validation_dataset:
        splits["validation"] = cfg.validation_dataset
    for name, path in splits.items():
        if len(load_questions(path)) < cfg.bins:
            raise UserError(f"{path}: {len(load_questions(path))} {name} questions cannot fill {cfg.bins} bins")
    outcomes = sweep(cfg, splits)
    settings = AnalysisSettings(cfg.bins, cfg.folds, cfg.baseline, cfg.seed)
    report = analyse(outcomes, settings)
    report.update(meta=outcomes.meta, settings=asdict(settings))
    schedule_file(cfg, report).save(out / "schedule.json")
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(report_markdown(report, outcomes.meta))
    plot_report(report, out)
    print((out / "report.md").read_text())
    return report


if __name__ == "__main__":
    main()
