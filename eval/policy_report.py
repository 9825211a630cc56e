"""Sampled pass@1 (and pass@k) per difficulty level of a policy on a task's test questions.

    python -m eval.policy_report --policy outputs/arith-tiny/policy
    python -m eval.policy_report --task gsm8k --source gsm8k_test.jsonl --limit 50 \\
        --policy HuggingFaceTB/SmolLM2-135M-Instruct --chat_template true

Arith reads the task and split settings that `training.policy` saved beside the checkpoint, so
the test questions are exactly the ones held out from training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from core.config import cli, parse_config
from core.outputs import OutputGuard, claim_report_dir
from data.tasks import StageConfig
from eval.pass_at_k import sampled_pass_at_1, write_pass_at_1_report
from search.generation.backends import load_generator
from search.generation.generator import SamplingParams, check_sampling


@dataclass
class PolicyReportConfig(StageConfig, OutputGuard):
    policy: str = "outputs/arith-tiny/policy"  # the policy checkpoint: a local folder or a Hub id
    split: str = "test"
    questions_per_level: int | None = None  # all of the split
    samples_per_question: int = 4  # samples per question: pass@1 and pass@k
    temperature: float = 1.0  # sampling temperature (0: greedy decoding)
    max_new_tokens: int = 160  # the most tokens one whole solution may have (longer ones are cut off and counted)
    batch_size: int = 128  # sequences per forward batch (speed only)
    seed: int = 0  # the seed every sample derives from
    output_dir: str | None = None  # default: <policy>/report

    def __post_init__(self) -> None:
        super().__post_init__()
        check_sampling(self.temperature, 1.0, self.max_new_tokens, self.batch_size)
        if self.samples_per_question < 1:
            raise ValueError("samples_per_question must be >= 1")


CONFIG_TYPES = (PolicyReportConfig,)


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    task, fmt, questions = cfg.prepare(cfg.policy, stream="report")
    out = Path(cfg.output_dir) if cfg.output_dir else Path(cfg.policy) / "report"
    claim_report_dir(out, "eval.policy_report", cfg.overwrite_output_dir)
    generator = load_generator(cfg.policy, fmt, cfg, cfg.batch_size)
    params = SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    report = sampled_pass_at_1(generator, task, fmt, questions, cfg.samples_per_question, params, cfg.seed)
    md = write_pass_at_1_report(report, out, f"Sampled pass@1 of {cfg.policy} (T={cfg.temperature})")
    print(md.read_text())
    return report


if __name__ == "__main__":
    main()
