"""Sampled pass@1 of a policy on arith questions, per difficulty level."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from data.arith import ArithQuestion, check_solution
from search.generator import Generator, SamplingParams, stable_seed
from search.step_format import StepFormat


def sampled_pass_at_1(
    generator: Generator,
    fmt: StepFormat,
    questions: Sequence[ArithQuestion],
    samples: int,
    params: SamplingParams,
    seed: int,
    chunk: int = 64,
) -> dict[int, dict[str, float]]:
    """Per level: pass@1 (mean correctness of samples), first-error rate and unfinished rate."""
    stats: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for start in tqdm(range(0, len(questions), chunk), desc="pass@1", unit="chunk"):
        batch = questions[start : start + chunk]
        prompts = [fmt.prompt(q.text) for q in batch]
        seeds = [stable_seed(seed, q.text) for q in batch]
        for q, gens in zip(batch, generator.generate(prompts, params, n=samples, seeds=seeds), strict=True):
            s = stats[q.level]
            for gen in gens:
                result = check_solution(q, gen.text, fmt)
                s["samples"] += 1
                s["correct"] += result.correct
                s["step_error"] += result.first_error is not None
                s["unfinished"] += gen.stop_reason == "length"
            s["questions"] += 1
    return {
        level: {
            "questions": int(s["questions"]),
            "samples": int(s["samples"]),
            "pass@1": s["correct"] / s["samples"],
            "step_error_rate": s["step_error"] / s["samples"],
            "unfinished_rate": s["unfinished"] / s["samples"],
        }
        for level, s in sorted(stats.items())
    }


def write_pass_at_1_report(report: dict[int, dict[str, float]], out_dir: Path, header: str) -> Path:
    """JSON plus a markdown table; returns the markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "pass_at_1.json").write_text(json.dumps({str(k): v for k, v in report.items()}, indent=2))
    lines = [
        f"# {header}",
        "",
        "| operations | questions | samples | pass@1 | solutions with a wrong step | unfinished |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for level, r in report.items():
        lines.append(
            f"| {level} | {r['questions']} | {r['samples']} | {r['pass@1']:.3f} "
            f"| {r['step_error_rate']:.3f} | {r['unfinished_rate']:.3f} |"
        )
    path = out_dir / "pass_at_1.md"
    path.write_text("\n".join(lines) + "\n")
    return path
