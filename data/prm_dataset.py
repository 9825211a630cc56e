"""Merge PRM-data shards into a Hugging Face dataset, with its card and reports."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

from datasets import Dataset, DatasetDict

from data.arith import ArithQuestion
from data.mc_labels import first_zero_by_bisection
from data.shards import split_of


def write_prm_dataset(out: Path, questions: list[ArithQuestion], records: list[dict], cfg) -> DatasetDict:
    """Dataset on disk (`out/dataset`), JSONL per split, README card and `report.{json,md}`."""
    by_question = {r["question"]: r for r in records}
    missing = [q.text for q in questions if q.text not in by_question]
    if missing:
        raise RuntimeError(f"{len(missing)} questions have no record (first: {missing[0]!r}); rerun to finish")
    ordered = [by_question[q.text] for q in questions]
    rows = {"train": [], "validation": []}
    for r in ordered:
        rows[split_of(r["question"], cfg.seed, cfg.validation_fraction)] += r["rows"]
    dataset = DatasetDict({name: Dataset.from_list(split_rows) for name, split_rows in rows.items() if split_rows})
    if not dataset:
        raise RuntimeError("no solution survived filtering: the policy never produced an answer line")
    dataset.save_to_disk(str(out / "dataset"))
    for name, split in dataset.items():
        split.to_json(str(out / f"{name}.jsonl"))

    report = build_report(ordered, cfg)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    markdown = report_markdown(report, {name: len(split) for name, split in dataset.items()}, cfg)
    (out / "report.md").write_text(markdown)
    (out / "README.md").write_text(dataset_card(report, dataset, cfg) + "\n" + markdown)
    print(markdown)
    return dataset


def build_report(records: list[dict], cfg) -> dict:
    """Filter counts, rollouts, label quality against ground truth, bisection vs exhaustive."""
    filtered = Counter()
    for r in records:
        filtered.update(r["filtered"])
    rows = [row for r in records for row in r["rows"]]
    report = {
        "questions": len(records),
        "solutions_sampled": len(records) * cfg.samples_per_question,
        "solutions_kept": len(rows),
        "filtered": dict(filtered),
        "questions_without_rows": sum(not r["rows"] for r in records),
        "correct_solutions": sum(row["correct"] for row in rows),
        "steps": sum(len(row["completions"]) for row in rows),
        "rollouts": sum(row["rollouts"] for row in rows),
        "label_quality": label_quality(rows),
    }
    if cfg.mode == "exhaustive":
        report["binary_vs_exhaustive"] = bisection_comparison(rows, cfg.rollouts_per_step)
    return report


def label_quality(rows: list[dict]) -> dict:
    """Agreement of hard and soft labels with the ground-truth step correctness."""
    pairs = [
        (h, v, gt)
        for row in rows
        for h, v, gt in zip(row["hard_labels"], row["mc_values"], row["gt_step_correct"], strict=True)
    ]
    if not pairs:
        return {}
    soft = [(v, gt) for _, v, gt in pairs if v is not None]
    first_error_hits = sum(
        next((i for i, h in enumerate(row["hard_labels"]) if h == 0), None) == row["gt_first_error"] for row in rows
    )
    return {
        "steps": len(pairs),
        "hard_accuracy": sum(h == gt for h, _, gt in pairs) / len(pairs),
        "hard_positive_fraction": sum(h for h, _, _ in pairs) / len(pairs),
        "gt_positive_fraction": sum(gt for _, _, gt in pairs) / len(pairs),
        "soft_mse": sum((v - gt) ** 2 for v, gt in soft) / len(soft) if soft else None,
        "soft_mean_on_gt_correct": _mean([v for v, gt in soft if gt]),
        "soft_mean_on_gt_wrong": _mean([v for v, gt in soft if not gt]),
        "first_error_accuracy": first_error_hits / len(rows),
    }


def bisection_comparison(rows: list[dict], k: int) -> dict:
    """What binary search would spend and find on the same solutions.

    Rollouts are seeded by prefix, so bisection over these MC values probes exactly the
    values binary mode would compute: this is a replay, not an approximation.
    """
    incorrect = [row for row in rows if not row["correct"]]
    agree, binary_rollouts, exhaustive_rollouts = 0, 0, 0
    for row in incorrect:
        values = row["mc_values"]
        found, probes = first_zero_by_bisection(len(values), values.__getitem__)
        agree += found == row["first_zero"]
        binary_rollouts += probes * k
        exhaustive_rollouts += (len(values) - 1) * k
    return {
        "incorrect_solutions": len(incorrect),
        "exhaustive_rollouts": exhaustive_rollouts,
        "binary_rollouts": binary_rollouts,
        "rollout_ratio": exhaustive_rollouts / binary_rollouts if binary_rollouts else None,
        "first_error_agreement": agree / len(incorrect) if incorrect else None,
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def report_markdown(report: dict, split_sizes: dict[str, int], cfg) -> str:
    lines = [
        "## PRM data report",
        "",
        f"- questions: {report['questions']} ({', '.join(f'{k}: {v} solutions' for k, v in split_sizes.items())})",
        f"- solutions sampled: {report['solutions_sampled']}, kept: {report['solutions_kept']}, "
        f"correct: {report['correct_solutions']}",
        f"- filtered: {report['filtered']}; questions left with no solution: {report['questions_without_rows']}",
        f"- steps labelled: {report['steps']}, rollouts: {report['rollouts']} "
        f"(mode {cfg.mode}, K={cfg.rollouts_per_step})",
        "",
        "### Label quality against ground-truth step correctness",
        "",
        "| metric | value |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in report["label_quality"].items()]
    if "binary_vs_exhaustive" in report:
        lines += ["", "### Binary search (OmegaPRM) vs exhaustive labelling, same solutions", ""]
        lines += ["| metric | value |", "|---|---:|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in report["binary_vs_exhaustive"].items()]
    return "\n".join(lines) + "\n"


def dataset_card(report: dict, dataset: DatasetDict, cfg) -> str:
    settings = "\n".join(f"- `{k}`: {v}" for k, v in cfg.settings().items())
    splits = "\n".join(f"- {name}: {len(split)} solutions" for name, split in dataset.items())
    return f"""# PRM training data (Monte-Carlo step labels)

Stepwise rows in TRL's schema: `prompt`, `completions` (one string per step, separator not
included), `labels` (one float per step: {cfg.label_kind} labels). Extra columns:
`mc_values` (fraction of rollouts from the step's prefix that reach the gold answer; null
where binary search did not probe), `hard_labels` (MC value > {cfg.hard_threshold}),
`gt_step_correct` / `gt_first_error` (ground truth from the arith checker), `first_zero`,
`rollouts`, `question`, `level`, `gold`, `final_answer`, `correct`, `solution_index`.

Load with `datasets.load_from_disk("{Path(cfg.output_dir) / "dataset"}")`; JSONL copies sit beside it.

## Splits (by question)
{splits}

## Settings
{settings}
"""
