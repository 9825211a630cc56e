"""Sampled pass@1 and pass@k of a policy on a task's questions, per difficulty level."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from core.stats import Ratio, interval
from data.tasks import Task
from search.generation.generator import Generator, SamplingParams, stable_seed
from search.questions import Question
from search.step_format import StepFormat


def sampled_pass_at_1(
    generator: Generator,
    task: Task,
    fmt: StepFormat,
    questions: Sequence[Question],
    samples: int,
    params: SamplingParams,
    seed: int,
    chunk: int = 64,
) -> dict:
    """Per level (None: no level): pass@1 (mean correctness of samples, with its 95% interval over questions),
    pass@k (a question with a right sample among its k), the rate of solutions with no answer, of cut-off ones
    and, where the task knows step truth, of solutions with a wrong step."""
    stats: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    per_question: dict[int, list[float]] = defaultdict(list)
    for start in tqdm(range(0, len(questions), chunk), desc="pass@1", unit="chunk"):
        batch = questions[start : start + chunk]
        prompts = [fmt.prompt(q.text) for q in batch]
        seeds = [stable_seed(seed, q.text) for q in batch]
        for q, gens in zip(batch, generator.generate(prompts, params, n=samples, seeds=seeds), strict=True):
            s = stats[q.level]
            right = 0
            for gen in gens:
                result = task.check(q, gen.text, fmt)
                s["samples"] += 1
                right += result.correct
                s["step_error"] += result.first_error is not None
                s["no_answer"] += result.answer is None
                s["unfinished"] += gen.stop_reason == "length"
            s["correct"] += right
            s["solved"] += right > 0
            per_question[q.level].append(right / len(gens))
            s["questions"] += 1
    return {
        level: {
            "questions": int(s["questions"]),
            "samples": int(s["samples"]),
            "pass@1": s["correct"] / s["samples"],
            "pass@1_interval": interval(Ratio.mean(per_question[level])).to_dict(),
            f"pass@{samples}": s["solved"] / s["questions"],
            "step_error_rate": s["step_error"] / s["samples"] if task.has_step_truth else None,
            "no_answer_rate": s["no_answer"] / s["samples"],
            "unfinished_rate": s["unfinished"] / s["samples"],
        }
        for level, s in sorted(stats.items(), key=lambda item: (item[0] is None, str(item[0]).zfill(4)))
    }


def write_pass_at_1_report(report: dict, out_dir: Path, header: str) -> Path:
    """JSON plus a markdown table; returns the markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "pass_at_1.json").write_text(json.dumps({str(k): v for k, v in report.items()}, indent=2))
    k = next(key for key in next(iter(report.values())) if key[5:].isdigit() and key != "pass@1")
    lines = [
        f"# {header}",
        "",
        f"| level | questions | samples | pass@1 [95% interval] | {k} | solutions with a wrong step | no answer "
        "| unfinished |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level, r in report.items():
        wrong_step = "n/a" if r["step_error_rate"] is None else f"{r['step_error_rate']:.3f}"
        lines.append(
            f"| {level} | {r['questions']} | {r['samples']} | {r['pass@1']:.3f} {_band(r.get('pass@1_interval'))} "
            f"| {r[k]:.3f} "
            f"| {wrong_step} | {r['no_answer_rate']:.3f} | {r['unfinished_rate']:.3f} |"
        )
    if report and next(iter(report.values()))["step_error_rate"] is None:
        lines += ["", "n/a: a wrong step needs a step-level ground truth, which only the arith task has."]
    lines += ["", "Intervals: paired bootstrap over questions (a question's samples stay with it)."]
    path = out_dir / "pass_at_1.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _band(value: dict | None) -> str:
    return "" if value is None else f"[{value['low']:.2f}, {value['high']:.2f}]"
