"""Sampled pass@1 per difficulty level of a trained arith policy, on its held-out test split.

    python -m eval.policy_report --policy outputs/arith-tiny/policy

Reads the task and split settings that `training.policy` saved beside the checkpoint, so
the test questions are exactly the ones held out from training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from data.arith import ArithTask
from eval.pass_at_k import sampled_pass_at_1, write_pass_at_1_report
from search.config import UserError, cli, parse_config
from search.generator import SamplingParams
from search.hf_generator import HFGenerator


@dataclass
class PolicyReportConfig:
    policy: str = "outputs/arith-tiny/policy"
    samples_per_question: int = 4
    temperature: float = 1.0
    max_new_tokens: int = 160
    batch_size: int = 128
    seed: int = 0
    out_dir: str | None = None  # default: <policy>/report

    def __post_init__(self) -> None:
        if self.samples_per_question < 1:
            raise ValueError("samples_per_question must be >= 1")


CONFIG_TYPES = (PolicyReportConfig,)


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    task = ArithTask.load(cfg.policy)
    fmt, test = task.step_format, task.splits(0).test
    if not test:
        raise UserError(f"{cfg.policy} was trained with test_per_level=0: no questions to report on")

    generator = HFGenerator.from_pretrained(cfg.policy, fmt, batch_size=cfg.batch_size)
    params = SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    report = sampled_pass_at_1(generator, fmt, test, cfg.samples_per_question, params, cfg.seed)
    out = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.policy) / "report"
    md = write_pass_at_1_report(report, out, f"Sampled pass@1 of {cfg.policy} (T={cfg.temperature})")
    print(md.read_text())
    return report


if __name__ == "__main__":
    main()
