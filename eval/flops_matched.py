"""Test-time compute vs a larger model at matched FLOPs (Snell et al. section 7).

    python -m eval.flops_matched --large_policy outputs/arith-tiny/policy-large \\
        --eval_report outputs/arith-tiny/eval/report.json

A model M times larger, pre-trained on the same D_pre tokens, costs 6*M*N*D_pre to train and
2*M*N*D_inf to serve D_inf tokens. The small model (N parameters) matches that total when it
spends X times more inference tokens:

    6*N*D_pre + 2*N*X*D_inf = 6*M*N*D_pre + 2*M*N*D_inf   =>   X = M + 3*(M - 1) / R,

with R = D_inf / D_pre (the paper: 0.16, 0.79 and 22). X is a generation budget (one generation
~ one answer, as for the large model); like the paper, the verifier's FLOPs are left out. As in
the paper the large model answers greedily (pass@1 at temperature 0), and the comparison is made
per oracle difficulty bin of `make eval` (the small policy's pass@1): in each bin the small
model's held-out compute-optimal accuracy at budget X, read off the bin's curve (log2-linear
between measured budgets), against the large model's greedy accuracy on the same questions.
An X beyond the largest measured budget is reported as such, never extrapolated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from search.checkpoints import load_config, load_policy
from search.config import UserError, check_model_path, cli, parse_config
from search.generator import SamplingParams
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
    large_policy: str = "outputs/arith-tiny/policy-large"  # the larger model, trained on the same data
    eval_report: str = "outputs/arith-tiny/eval/report.json"  # written by make eval (small model)
    ratios: str = "0.16,0.79,22"  # R = inference / pre-training tokens (the paper's three regimes)
    pool: str = "all"  # which of make eval's strategy pools the small model chooses from
    max_new_tokens: int = 160
    batch_size: int = 128
    out: str | None = None  # default: beside the eval report


CONFIG_TYPES = (FlopsMatchedConfig,)


def bin_curve(choices: dict) -> dict[int, float]:
    """A bin's held-out compute-optimal accuracy by budget, from its cross-validated choices."""
    return {int(g): c["held_out_correct"] / c["questions"] for g, c in choices.items()}


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    report_path = Path(cfg.eval_report)
    if not report_path.is_file():
        raise UserError(f"eval report not found: {report_path} (run make eval)")
    report = json.loads(report_path.read_text())
    oracle = report["binnings"]["oracle"]
    if cfg.pool not in oracle["pools"]:
        raise UserError(f"the eval report has no pool {cfg.pool!r}; it has {', '.join(oracle['pools'])}")
    small, large = report["policy"], check_model_path(cfg.large_policy, "large policy checkpoint")
    fmt = resolve_format(small, PromptConfig())
    try:
        check_compatible(fmt, getattr(load_config(large, "large policy checkpoint"), CONFIG_KEY, None), large)
    except ValueError as err:
        raise UserError(str(err)) from None
    questions = load_questions(report["dataset"])
    generator = HFGenerator.from_pretrained(large, fmt, batch_size=cfg.batch_size)
    size_ratio = generator.model.num_parameters() / load_policy(small).num_parameters()
    greedy = generator.generate([fmt.prompt(q.text) for q in questions], SamplingParams(0.0, 1.0, cfg.max_new_tokens))
    right = {q.id: answers_match(fmt.extract_answer(g[0].text), q.gold) for q, g in zip(questions, greedy, strict=True)}
    bins = sorted({int(b) for b in oracle["assignment"].values()})
    members = {b: [q for q, qb in oracle["assignment"].items() if qb == b] for b in bins}
    large_by_bin = {b: sum(right[q] for q in members[b]) / len(members[b]) for b in bins}
    pool = oracle["pools"][cfg.pool]
    curves = {b: bin_curve(pool["choices"][str(b)]) for b in bins}
    overall = {int(g): a for g, a in pool["compute_optimal"].items()}
    rows = []
    for ratio in (float(r) for r in cfg.ratios.split(",")):
        budget = matched_budget(size_ratio, ratio)
        small_by_bin = {b: accuracy_at(curves[b], budget) for b in bins}
        rows.append({"inference_to_pretraining": ratio, "matched_budget": budget,
                     "small_compute_optimal": accuracy_at(overall, budget), "small_by_bin": small_by_bin})  # fmt: skip
    large_accuracy = sum(right.values()) / len(right)
    result = {"small_policy": small, "large_policy": large, "size_ratio": size_ratio, "questions": len(questions),
              "pool": cfg.pool, "large_greedy_pass_at_1": large_accuracy, "large_by_bin": large_by_bin,
              "bin_questions": {b: len(members[b]) for b in bins}, "rows": rows}  # fmt: skip
    lines = [
        f"# Test-time compute vs a {size_ratio:.1f}x larger model at matched FLOPs ({len(questions)} questions)",
        "",
        f"Large model `{large}`, greedy pass@1 {large_accuracy:.3f}. Small `{small}` with compute-optimal test-time",
        f"compute (pool `{cfg.pool}`, held out) at X = M + 3(M-1)/R generations per question. Oracle difficulty bins",
        "of make eval (bin 0 the hardest); a cell reads small / large.",
        "",
        "| R | X | all | " + " | ".join(f"bin {b} ({len(members[b])} q)" for b in bins) + " |",
        "|---:|---:|---:|" + "---:|" * len(bins),
    ]
    for r in rows:
        cells = [f"{r['inference_to_pretraining']:g}", f"{r['matched_budget']:.1f}",
                 f"{_num(r['small_compute_optimal'])} / {large_accuracy:.3f}"]  # fmt: skip
        cells += [f"{_num(r['small_by_bin'][b])} / {large_by_bin[b]:.3f}" for b in bins]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "beyond: X is past the largest budget make eval measured (raise max_budget to see it).", ""]
    out = Path(cfg.out) if cfg.out else report_path.parent / "flops_matched"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return result


def _num(value: float | None) -> str:
    return "beyond" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
