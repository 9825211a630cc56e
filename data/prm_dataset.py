"""Merge PRM-data shards into a Hugging Face dataset, with its card and reports."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

from datasets import DatasetDict

from core.cards import settings_table, write_card
from data.mc_labels import first_zero_by_bisection
from data.shards import save_splits
from search.questions import Question
from search.step_format import StepFormat


def write_prm_dataset(out: Path, questions: list[Question], records: list[dict], cfg, fmt: StepFormat) -> DatasetDict:
    """Dataset on disk (`out/dataset`), JSONL per split, README card and `report.{json,md}`."""
    dataset, _ = save_splits(out, questions, records, cfg, fmt)
    by_question = {r["question"]: r for r in records}
    ordered = [by_question[q.text] for q in questions]
    report = build_report(ordered, cfg)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    markdown = report_markdown(report, {name: len(split) for name, split in dataset.items()}, cfg)
    (out / "report.md").write_text(markdown)
    write_card(out, {"pretty_name": "PRM training data (Monte-Carlo step labels)", "source_datasets": [cfg.task],
                     "base_model": cfg.policy, "tags": ["process-reward-model", "stepwise-supervision", "trl"]},
               "PRM training data (Monte-Carlo step labels)", dataset_card(dataset, cfg) + "\n" + markdown)  # fmt: skip
    print(markdown)
    return dataset


def build_report(records: list[dict], cfg) -> dict:
    """Filter counts, rollouts, label quality against ground truth, bisection vs exhaustive."""
    filtered = Counter()
    for r in records:
        filtered.update(r["counts"])
    rows = [row for r in records for row in r["rows"]]
    report = {
        "questions": len(records),
        "solutions_sampled": len(records) * cfg.samples_per_question,
        "solutions_kept": len(rows),
        "filtered": dict(filtered),
        "questions_without_rows": sum(not r["rows"] for r in records),
        "correct_solutions": sum(row["correct"] for row in rows),
        "pass@1": sum(r["sampled_correct"] for r in records) / (len(records) * cfg.samples_per_question),
        f"pass@{cfg.samples_per_question}": sum(r["sampled_correct"] > 0 for r in records) / len(records),
        "steps": sum(len(row["completions"]) for row in rows),
        "rollouts": sum(row["rollouts"] for row in rows),
        "label_mix": label_mix(rows),
    }
    if rows and rows[0]["gt_step_correct"] is not None:
        report["label_quality"] = label_quality(rows)
    else:
        report["needs_step_truth"] = "label accuracy, first-error accuracy and soft-label error need a step-level " \
            "ground truth, which only the arith task has"  # fmt: skip
    if cfg.mode == "exhaustive":
        report["binary_vs_exhaustive"] = bisection_comparison(rows, cfg.rollouts_per_step)
    return report


def label_mix(rows: list[dict]) -> dict:
    """What the labels say without any ground truth: positives, the MC values' histogram, and how
    often the hard label agrees with the soft one rounded at 0.5."""
    pairs = [(h, v) for row in rows for h, v in zip(row["hard_labels"], row["mc_values"], strict=True)]
    probed = [v for _, v in pairs if v is not None]
    histogram = [0] * 5
    for v in probed:
        histogram[min(int(v * 5), 4)] += 1
    return {
        "steps": len(pairs),
        "hard_positive_fraction": _mean([h for h, _ in pairs]),
        "mc_value_histogram": {f"{i / 5:.1f}-{(i + 1) / 5:.1f}": n for i, n in enumerate(histogram)},
        "hard_soft_agreement": _mean([h == float(v >= 0.5) for h, v in pairs if v is not None]),
    }


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
        f"correct: {report['correct_solutions']}; pass@1 {_fmt(report['pass@1'])}, "
        f"pass@{cfg.samples_per_question} {_fmt(report[f'pass@{cfg.samples_per_question}'])}",
        f"- filtered: {report['filtered']}; questions left with no solution: {report['questions_without_rows']}",
        f"- steps labelled: {report['steps']}, rollouts: {report['rollouts']} "
        f"(mode {cfg.mode}, K={cfg.rollouts_per_step})",
        "",
        "### Labels",
        "",
        "| metric | value |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in report["label_mix"].items()]
    if "label_quality" in report:
        lines += ["", "### Label quality against ground-truth step correctness", "", "| metric | value |", "|---|---:|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in report["label_quality"].items()]
    else:
        lines += ["", f"Not shown: {report['needs_step_truth']}."]
    if "binary_vs_exhaustive" in report:
        lines += ["", "### Binary search (OmegaPRM) vs exhaustive labelling, same solutions", ""]
        lines += ["| metric | value |", "|---|---:|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in report["binary_vs_exhaustive"].items()]
    return "\n".join(lines) + "\n"


def dataset_card(dataset: DatasetDict, cfg) -> str:
    settings = settings_table(cfg.settings())
    splits = "\n".join(f"- {name}: {len(split)} solutions" for name, split in dataset.items())
    return f"""Stepwise rows in TRL's schema: `prompt`, `completions` (one string per step, separator not
included), `labels` (one float per step: {cfg.label_kind} labels). Extra columns:
`mc_values` (fraction of rollouts from the step's prefix that reach the gold answer; null
where binary search did not probe), `hard_labels` (MC value > {cfg.hard_threshold}),
`gt_step_correct` / `gt_first_error` (ground truth from the arith checker; null for tasks
without one), `first_zero`, `rollouts`, `question`, `id`, `level`, `gold`, `final_answer`,
`correct`, `solution_index`. The step format of the prompts is in `dataset/step_format.json`.

Load with `datasets.load_from_disk("{Path(cfg.output_dir) / "dataset"}")`; JSONL copies sit beside it.

## Splits (by question)
{splits}

## Settings
{settings}
"""
