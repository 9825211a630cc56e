"""Evaluate a PRM on held-out arith questions against the ground truth.

    python -m eval.prm_eval --policy outputs/arith-tiny/policy --verifier outputs/arith-tiny/prm

Samples N solutions per validation and test question from the policy, scores every step
with the PRM, and reports: ProcessBench-style F1 of first-error identification (threshold
chosen on validation), step-level ROC AUC, and best-of-N accuracy by aggregation
(last/min/prod/mean; weighted and naive) against majority vote.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from data.arith import ArithQuestion, ArithTask, check_solution
from eval.prm_metrics import ScoredSolution, best_of_n_accuracy, best_threshold, first_error_f1, roc_auc
from search.config import cli, parse_config
from search.generator import SamplingParams, stable_seed
from search.hf_generator import HFGenerator
from search.verifier import PRMVerifier


@dataclass
class PRMEvalConfig:
    policy: str = "outputs/arith-tiny/policy"
    verifier: str = "outputs/arith-tiny/prm"
    samples_per_question: int = 8  # N for best-of-N
    temperature: float = 1.0
    max_new_tokens: int = 160
    batch_size: int = 128
    seed: int = 0
    out_dir: str | None = None  # default: <verifier>/eval

    def __post_init__(self) -> None:
        if self.samples_per_question < 1:
            raise ValueError("samples_per_question must be >= 1")


CONFIG_TYPES = (PRMEvalConfig,)


def sample_and_score(
    questions: list[ArithQuestion], generator: HFGenerator, verifier: PRMVerifier, cfg: PRMEvalConfig, desc: str
) -> list[list[ScoredSolution]]:
    fmt = verifier.format
    params = SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    groups = []
    for start in tqdm(range(0, len(questions), 32), desc=desc, unit="chunk"):
        chunk = questions[start : start + 32]
        seeds = [stable_seed(cfg.seed, "prm-eval", q.text) for q in chunk]
        samples = generator.generate([fmt.prompt(q.text) for q in chunk], params, cfg.samples_per_question, seeds)
        checks = [[check_solution(q, g.text, fmt) for g in gens] for q, gens in zip(chunk, samples, strict=True)]
        flat = [(q, c) for q, cs in zip(chunk, checks, strict=True) for c in cs]
        scores = verifier.score([fmt.prompt(q.text) for q, _ in flat], [c.steps for _, c in flat])
        solutions = [
            ScoredSolution(q.text, c.final_answer, c.correct, s, c.step_correct, c.first_error)
            for (q, c), s in zip(flat, scores, strict=True)
        ]
        n = cfg.samples_per_question
        groups += [solutions[i : i + n] for i in range(0, len(solutions), n)]
    return groups


def markdown(report: dict) -> str:
    f1 = report["first_error_f1"]
    lines = [
        f"# PRM evaluation: {report['verifier']}",
        "",
        f"{report['test_questions']} test questions x {report['samples_per_question']} samples; threshold "
        f"{f1['threshold']:.2f} chosen on {report['validation_questions']} validation questions.",
        "",
        "| metric | value |",
        "|---|---:|",
        f"| first-error F1 (ProcessBench) | {f1['f1']:.3f} |",
        f"| accuracy on erroneous solutions ({f1['erroneous']}) | {_num(f1['erroneous_accuracy'])} |",
        f"| accuracy on correct solutions ({f1['correct']}) | {_num(f1['correct_accuracy'])} |",
        f"| step-level ROC AUC | {_num(report['step_auc'])} |",
        "",
        f"## Best-of-{report['samples_per_question']} accuracy",
        "",
        "| selection | accuracy |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:.3f} |" for k, v in report["best_of_n"].items()]
    return "\n".join(lines) + "\n"


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    task = ArithTask.load(cfg.policy)
    splits = task.splits(0)
    generator = HFGenerator.from_pretrained(cfg.policy, task.step_format, batch_size=cfg.batch_size)
    verifier = PRMVerifier.from_pretrained(cfg.verifier, task.step_format, batch_size=cfg.batch_size)

    validation = [s for g in sample_and_score(splits.validation, generator, verifier, cfg, "validation") for s in g]
    test_groups = sample_and_score(splits.test, generator, verifier, cfg, "test")
    test = [s for g in test_groups for s in g]
    threshold = best_threshold(validation)
    steps = [(score, ok) for s in test for score, ok in zip(s.step_scores, s.step_correct, strict=True)]
    report = {
        "verifier": cfg.verifier,
        "config": asdict(cfg),
        "validation_questions": len(splits.validation),
        "test_questions": len(splits.test),
        "samples_per_question": cfg.samples_per_question,
        "first_error_f1": first_error_f1(test, threshold),
        "step_auc": roc_auc([s for s, _ in steps], [ok for _, ok in steps]),
        "best_of_n": best_of_n_accuracy(test_groups),
    }
    out = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.verifier) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    (out / "prm_eval.json").write_text(json.dumps(report, indent=2))
    (out / "prm_eval.md").write_text(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
