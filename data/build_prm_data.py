"""Build PRM training data from a policy: Monte-Carlo step labels, exhaustive or by bisection.

    python -m data.build_prm_data --config recipes/arith-tiny/prm_data.yaml
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 \\
        -m data.build_prm_data --config recipes/arith-tiny/prm_data.yaml
    # GPUs / nodes: accelerate launch --num_processes 8 [--num_machines N --machine_rank R ...]

Questions are split across processes; each appends one record per finished question to its
own shard under <output_dir>/shards, so a killed job resumes where it stopped. Sampling is
seeded per question and per prefix, so the merged dataset is the same for any number of
processes and any interruptions. The main process then writes the dataset (train /
validation split by question), JSONL exports, a dataset card and the reports.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from data.arith import ArithQuestion, check_solution
from data.mc_labels import LabeledSolution, MCLabeler
from data.prm_dataset import write_prm_dataset
from data.shards import run_sharded, start_build
from search.config import cli, parse_config
from search.generator import Generator, SamplingParams, stable_seed
from search.hf_generator import HFGenerator
from search.step_format import StepFormat

log = logging.getLogger(__name__)


@dataclass
class PRMDataConfig:
    policy: str = "outputs/arith-tiny/policy"
    output_dir: str = "outputs/arith-tiny/prm_data"
    questions_per_level: int = 25  # fresh training questions (never the policy's held-out ones)
    validation_fraction: float = 0.1  # of questions, not of solutions
    samples_per_question: int = 4  # S (Snell: 16)
    rollouts_per_step: int = 4  # K (Snell: 16, Math-Shepherd: 8)
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 160
    mode: str = "exhaustive"  # "exhaustive" (every step) or "binary" (OmegaPRM bisection)
    label_kind: str = "soft"  # what `labels` holds: "soft" (MC value) or "hard" (value > hard_threshold)
    hard_threshold: float = 0.0
    seed: int = 0
    questions_per_chunk: int = 8  # questions whose rollouts are batched together
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.questions_per_level < 1:
            raise ValueError("questions_per_level must be >= 1 (no questions to label)")
        if self.samples_per_question < 1 or self.rollouts_per_step < 1:
            raise ValueError("samples_per_question and rollouts_per_step (K) must be >= 1")
        if self.mode not in ("exhaustive", "binary"):
            raise ValueError(f"mode must be 'exhaustive' or 'binary', got {self.mode!r}")
        if self.label_kind not in ("soft", "hard"):
            raise ValueError(f"label_kind must be 'soft' or 'hard', got {self.label_kind!r}")
        if self.mode == "binary" and self.label_kind == "soft":
            raise ValueError("binary search gives hard labels only: set label_kind: hard")
        if not 0 <= self.hard_threshold < 1 or not 0 <= self.validation_fraction < 1:
            raise ValueError("hard_threshold and validation_fraction must be in [0, 1)")
        if self.questions_per_chunk < 1 or self.batch_size < 1:
            raise ValueError("questions_per_chunk and batch_size must be >= 1")

    def settings(self) -> dict:
        """What determines the dataset (not how fast it is built)."""
        return {k: v for k, v in asdict(self).items() if k not in ("questions_per_chunk", "batch_size")}


CONFIG_TYPES = (PRMDataConfig,)


def sampling(cfg: PRMDataConfig) -> SamplingParams:
    return SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens)


def label_chunk(
    questions: list[ArithQuestion], generator: Generator, fmt: StepFormat, cfg: PRMDataConfig
) -> list[dict]:
    """One record per question: its labelled solutions as stepwise rows, and what was filtered."""
    params = sampling(cfg)
    seeds = [stable_seed(cfg.seed, "solutions", q.text) for q in questions]
    samples = generator.generate([fmt.prompt(q.text) for q in questions], params, cfg.samples_per_question, seeds)
    records = [{"question": q.text, "filtered": {"no_answer": 0, "empty_step": 0}, "rows": []} for q in questions]
    todo, checks = [], []
    for qi, (q, gens) in enumerate(zip(questions, samples, strict=True)):
        for j, gen in enumerate(gens):
            check = check_solution(q, gen.text, fmt)
            if check.final_answer is None:  # unfinished or no answer line
                records[qi]["filtered"]["no_answer"] += 1
            elif any(not step.strip() for step in check.steps):
                records[qi]["filtered"]["empty_step"] += 1
            else:
                todo.append((qi, q.text, check.steps, check.correct))
                checks.append((qi, j, check))

    def grade(qi: int, solution: str) -> bool:
        return check_solution(questions[qi], solution, fmt).correct

    labeler = MCLabeler(generator, fmt, grade, cfg.rollouts_per_step, params, cfg.seed)
    for (qi, j, check), labeled in zip(checks, labeler.label(todo, cfg.mode), strict=True):
        records[qi]["rows"].append(stepwise_row(questions[qi], j, check, labeled, fmt, cfg))
    return records


def stepwise_row(q: ArithQuestion, index: int, check, labeled: LabeledSolution, fmt: StepFormat, cfg) -> dict:
    """TRL's stepwise schema (prompt, completions, labels) plus provenance and ground truth."""
    steps, mc = labeled.steps, labeled.mc_values
    if cfg.mode == "binary":  # steps after the first error carry no label (OmegaPRM)
        n = len(steps) if labeled.first_zero is None else labeled.first_zero + 1
        hard = [1.0] * (n - 1) + [0.0 if labeled.first_zero is not None else 1.0]
        steps, mc = steps[:n], mc[:n]
    else:
        hard = [float(v > cfg.hard_threshold) for v in mc]
    return {
        "prompt": fmt.prompt(q.text),
        "completions": steps,
        "labels": hard if cfg.label_kind == "hard" else mc,
        "mc_values": mc,
        "hard_labels": hard,
        "gt_step_correct": check.step_correct[: len(steps)],
        "gt_first_error": check.first_error,
        "first_zero": labeled.first_zero,
        "rollouts": labeled.rollouts,
        "question": q.text,
        "level": q.level,
        "gold": q.answer,
        "final_answer": check.final_answer,
        "correct": check.correct,
        "solution_index": index,
    }


@cli
def main(argv: list[str] | None = None) -> Path:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    state, task, questions, out = start_build(cfg, cfg.policy, train_stream="prm")
    fmt = task.step_format

    def make_worker():
        generator = HFGenerator.from_pretrained(cfg.policy, fmt, batch_size=cfg.batch_size, device=str(state.device))
        return lambda chunk: label_chunk(chunk, generator, fmt, cfg)

    records = run_sharded(questions, out, state, cfg.questions_per_chunk, make_worker)
    if state.is_main_process:
        write_prm_dataset(out, questions, records, cfg)
    return out


if __name__ == "__main__":
    main()
