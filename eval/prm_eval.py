"""Evaluate a PRM on a policy's samples: does it tell a question's solutions apart?

    python -m eval.prm_eval --policy outputs/arith-tiny/policy --verifier outputs/arith-tiny/prm
    python -m eval.prm_eval --task math --source math500.jsonl --policy P --verifier V --chat_template true

Samples N solutions per test question from the policy, scores every step with the PRM, and
reports within-question pairwise accuracy (a right vs a wrong solution of the same question,
overall and per level: what decides whether search pays) and best-of-N accuracy by aggregation
(last/min/prod/mean; weighted and naive) against majority vote. With a step-level ground truth
(arith) also ProcessBench-style F1 of first-error identification (threshold chosen on the
validation questions) and step-level ROC AUC; other tasks say that those need one. The PRM is
any verifier the runtime loads: a public one by `verifier_kind` (docs/verifiers.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from core.checkpoints import check_model_path
from core.config import cli, parse_config
from core.outputs import OutputGuard, claim_report_dir
from data.tasks import StageConfig, Task
from eval.prm_metrics import (
    ScoredSolution,
    best_of_n_accuracy,
    best_threshold,
    first_error_f1,
    pairwise_accuracy,
    roc_auc,
)
from search.generation.backends import load_generator
from search.generation.generator import Generator, SamplingParams, check_sampling, stable_seed
from search.questions import Question
from search.step_format import StepFormat
from search.verifiers.settings import VerifierSettings
from search.verifiers.verifier import Verifier, load_verifier


@dataclass
class PRMEvalConfig(StageConfig, VerifierSettings, OutputGuard):
    policy: str = "outputs/arith-tiny/policy"  # the policy checkpoint: a local folder or a Hub id
    verifier: str = "outputs/arith-tiny/prm"  # the PRM (or ORM) checkpoint that scores steps
    split: str = "test"
    threshold_split: str | None = "validation"  # where the first-error threshold is chosen (step truth only)
    questions_per_level: int | None = None  # all of the split
    samples_per_question: int = 8  # N for best-of-N
    temperature: float = 1.0  # sampling temperature (0: greedy decoding)
    max_new_tokens: int = 160  # the most tokens one whole solution may have (longer ones are cut off and counted)
    batch_size: int = 128  # sequences per forward batch (speed only)
    seed: int = 0  # the seed every sample derives from
    output_dir: str | None = None  # default: <verifier>/eval

    def __post_init__(self) -> None:
        StageConfig.__post_init__(self)
        VerifierSettings.__post_init__(self)
        check_sampling(self.temperature, 1.0, self.max_new_tokens, self.batch_size)
        if self.samples_per_question < 1:
            raise ValueError("samples_per_question must be >= 1")


CONFIG_TYPES = (PRMEvalConfig,)


def sample_and_score(
    questions: list[Question], task: Task, fmt: StepFormat, generator: Generator, verifier: Verifier,
    cfg: PRMEvalConfig, desc: str,
) -> list[list[ScoredSolution]]:  # fmt: skip
    """Per question, its N samples graded and scored."""
    params = SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    groups = []
    for start in tqdm(range(0, len(questions), 32), desc=desc, unit="chunk"):
        chunk = questions[start : start + 32]
        seeds = [stable_seed(cfg.seed, "prm-eval", q.text) for q in chunk]
        samples = generator.generate([fmt.prompt(q.text) for q in chunk], params, cfg.samples_per_question, seeds)
        for q, gens in zip(chunk, samples, strict=True):
            checks = [task.check(q, g.text, fmt) for g in gens]
            cut = [g.stop_reason == "length" for g in gens]  # cut off: no answer, as in search
            scores = verifier.score([fmt.prompt(q.text)] * len(checks), [c.steps for c in checks])
            groups.append([
                ScoredSolution(q.text, None if x else c.answer, c.correct and not x, s, c.step_correct,
                               c.first_error, q.level)
                for c, s, x in zip(checks, scores, cut, strict=True)
            ])  # fmt: skip
    return groups


def markdown(report: dict) -> str:
    pairwise = report["pairwise"]
    lines = [
        f"# PRM evaluation: {report['verifier']}",
        "",
        f"{report['test_questions']} {report['task']} test questions x {report['samples_per_question']} samples "
        f"of `{report['policy']}`.",
        "",
        "| metric | value |",
        "|---|---:|",
        f"| within-question pairwise accuracy ({pairwise['all']['pairs']} pairs; chance 0.5) "
        f"| {_interval(pairwise['all'].get('interval'))} |",
    ]
    f1 = report.get("first_error_f1")
    if f1 is not None:
        lines += [
            f"| first-error F1 (ProcessBench; threshold {f1['threshold']:.2f} from {report['validation_questions']}"
            f" validation questions) | {f1['f1']:.3f} |",
            f"| accuracy on erroneous solutions ({f1['erroneous']}) | {_num(f1['erroneous_accuracy'])} |",
            f"| accuracy on correct solutions ({f1['correct']}) | {_num(f1['correct_accuracy'])} |",
            f"| step-level ROC AUC | {_num(report['step_auc'])} |",
        ]
    else:
        lines += ["", f"Not shown: {report['needs_step_truth']}."]
    lines += ["", "## Pairwise accuracy by level", "", "| level | pairs | accuracy |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['pairs']} | {_num(v['accuracy'])} |" for k, v in pairwise["by_level"].items()]
    lines += ["", f"## Best-of-{report['samples_per_question']} accuracy", "", "| selection | accuracy |", "|---|---:|"]
    lines += [f"| {k} | {_interval(v)} |" for k, v in report["best_of_n"].items()]
    lines += ["", "Brackets: 95% interval, paired bootstrap over questions."]
    return "\n".join(lines) + "\n"


def _interval(value: dict | None) -> str:
    return "n/a" if value is None else f"{value['estimate']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    task, fmt, questions = cfg.prepare(cfg.policy, stream="prm-eval")
    check_model_path(cfg.verifier, "verifier checkpoint")
    out = Path(cfg.output_dir) if cfg.output_dir else Path(cfg.verifier) / "eval"
    claim_report_dir(out, "eval.prm_eval", cfg.overwrite_output_dir)
    generator = load_generator(cfg.policy, fmt, cfg, cfg.batch_size)
    verifier = load_verifier(cfg.verifier, fmt, batch_size=cfg.batch_size, settings=cfg)
    test_groups = sample_and_score(questions, task, fmt, generator, verifier, cfg, cfg.split)
    test = [s for g in test_groups for s in g]
    report = {
        "verifier": cfg.verifier,
        "policy": cfg.policy,
        "task": task.name,
        "config": asdict(cfg),
        "test_questions": len(questions),
        "question_ids": [q.id for q in questions],  # in the order of pairwise.per_question
        "samples_per_question": cfg.samples_per_question,
        "pairwise": pairwise_accuracy(test_groups, verifier.aggregation),
        "best_of_n": best_of_n_accuracy(test_groups),
    }
    if task.has_step_truth and cfg.threshold_split:
        held_out = task.questions(cfg.threshold_split, cfg.questions_per_level, cfg.limit)
        validation = [s for g in sample_and_score(held_out, task, fmt, generator, verifier, cfg, "threshold")
                      for s in g]  # fmt: skip
        steps = [(score, ok) for s in test for score, ok in zip(s.step_scores, s.step_correct, strict=True)]
        report.update(
            validation_questions=len(held_out),
            first_error_f1=first_error_f1(test, best_threshold(validation)),
            step_auc=roc_auc([s for s, _ in steps], [ok for _, ok in steps]),
        )
    else:
        report["needs_step_truth"] = "first-error F1 and step AUC need a step-level ground truth (arith only)"
    (out / "prm_eval.json").write_text(json.dumps(report, indent=2))
    (out / "prm_eval.md").write_text(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
