"""Test-time compute vs a larger model at matched FLOPs (Snell et al. section 7).

    python -m eval.flops_matched --large_policy outputs/arith-tiny/policy-large \\
        --eval_report outputs/arith-tiny/eval/report.json

A model M times larger, pre-trained on the same D_pre tokens, costs 6*M*N*D_pre to train and
2*M*N*D_inf to serve D_inf tokens. The small model (N parameters) matches that total when it
spends X times more inference tokens:

    6*N*D_pre + 2*N*X*D_inf = 6*M*N*D_pre + 2*M*N*D_inf   =>   X = M + 3*(M - 1) / R,

with R = D_inf / D_pre. X is a generation budget (one generation ~ one answer, as for the large
model); like the paper, the verifier's FLOPs are left out. For each R the report compares the
small model's compute-optimal (and best-of-N) accuracy at budget X, read off `make eval`'s
curves (log2-linear between measured budgets), with the large model's sampled pass@1 on the
same questions. An X beyond the largest measured budget is reported as such (the small model's
accuracy there is at least the last measured value only if its curve keeps rising).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoConfig, AutoModelForCausalLM

from search.config import UserError, check_model_path, cli, parse_config
from search.generator import SamplingParams, stable_seed
from search.grading import answers_match
from search.hf_generator import HFGenerator
from search.prompting import PromptConfig, resolve_format
from search.questions import load_questions
from search.step_format import CONFIG_KEY, check_compatible


def matched_budget(size_ratio: float, inference_to_pretraining: float) -> float:
    """X = M + 3(M-1)/R: the small model's inference multiplier at the large model's total FLOPs."""
    if size_ratio < 1 or inference_to_pretraining <= 0:
        raise ValueError("the size ratio must be >= 1 and the token ratio R > 0")
    return size_ratio + 3 * (size_ratio - 1) / inference_to_pretraining


def accuracy_at(curve: Mapping[int, float], budget: float) -> float | None:
    """The curve's accuracy at `budget`, log2-linear between measured budgets; None outside them."""
    points = sorted((int(b), a) for b, a in curve.items())
    if not points or not points[0][0] <= budget <= points[-1][0]:
        return None
    for (b0, a0), (b1, a1) in zip(points, points[1:], strict=False):
        if b0 <= budget <= b1:
            t = 0.0 if b1 == b0 else (math.log2(budget) - math.log2(b0)) / (math.log2(b1) - math.log2(b0))
            return a0 + t * (a1 - a0)
    return points[-1][1]


@dataclass
class FlopsMatchedConfig:
    large_policy: str = "outputs/arith-tiny/policy-large"
    eval_report: str = "outputs/arith-tiny/eval/report.json"  # written by make eval (small model)
    ratios: str = "0.16,1,22"  # R = inference / pre-training tokens (the paper's three regimes)
    samples_per_question: int = 8  # the large model's pass@1 estimate
    temperature: float = 1.0
    max_new_tokens: int = 160
    batch_size: int = 128
    seed: int = 0
    out: str | None = None  # default: beside the eval report


CONFIG_TYPES = (FlopsMatchedConfig,)


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    report_path = Path(cfg.eval_report)
    if not report_path.is_file():
        raise UserError(f"eval report not found: {report_path} (run make eval)")
    report = json.loads(report_path.read_text())
    small, large = report["policy"], check_model_path(cfg.large_policy, "large policy checkpoint")
    fmt = resolve_format(small, PromptConfig())
    try:
        check_compatible(fmt, getattr(AutoConfig.from_pretrained(large), CONFIG_KEY, None), large)
    except ValueError as err:
        raise UserError(str(err)) from None
    questions = load_questions(report["dataset"])
    generator = HFGenerator.from_pretrained(large, fmt, batch_size=cfg.batch_size)
    size_ratio = generator.model.num_parameters() / AutoModelForCausalLM.from_pretrained(small).num_parameters()
    params = SamplingParams(cfg.temperature, 1.0, cfg.max_new_tokens)
    seeds = [stable_seed(cfg.seed, "large", q.text) for q in questions]
    samples = generator.generate([fmt.prompt(q.text) for q in questions], params, cfg.samples_per_question, seeds)
    hits = [answers_match(fmt.extract_answer(g.text), q.gold) for q, gens in zip(questions, samples, strict=True)
            for g in gens]  # fmt: skip
    large_accuracy = sum(hits) / len(hits)
    optimal = {int(g): a for g, a in report["binnings"]["predicted"]["compute_optimal"].items()}
    best_of_n = {int(g): a for g, a in report["curves"][report["baseline"]].items()}
    rows = []
    for ratio in (float(r) for r in cfg.ratios.split(",")):
        budget = matched_budget(size_ratio, ratio)
        rows.append({"inference_to_pretraining": ratio, "matched_budget": budget,
                     "small_compute_optimal": accuracy_at(optimal, budget),
                     "small_best_of_n": accuracy_at(best_of_n, budget), "large_pass_at_1": large_accuracy})  # fmt: skip
    result = {"small_policy": small, "large_policy": large, "size_ratio": size_ratio, "questions": len(questions),
              "large_pass_at_1": large_accuracy, "rows": rows}  # fmt: skip
    lines = [
        f"# Test-time compute vs a {size_ratio:.1f}x larger model at matched FLOPs ({len(questions)} questions)",
        "",
        f"Large model `{large}` sampled pass@1: {large_accuracy:.3f}. X = M + 3(M-1)/R generations per question.",
        "",
        "| R = inference / pre-training tokens | matched budget X | small compute-optimal | small best-of-N | large |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = [f"{r['inference_to_pretraining']:g}", f"{r['matched_budget']:.1f}", _num(r["small_compute_optimal"]),
                 _num(r["small_best_of_n"]), f"{large_accuracy:.3f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    out = Path(cfg.out) if cfg.out else report_path.parent / "flops_matched"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


def _num(value: float | None) -> str:
    return "beyond the measured budgets" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
