"""Build PRM training data from a policy: Monte-Carlo step labels, exhaustive or by bisection.

    python -m data.build_prm_data --config recipes/arith-tiny/prm_data.yaml
    python -m data.build_prm_data --task gsm8k --source gsm8k_train.jsonl --split train \\
        --policy Qwen/Qwen2.5-Math-1.5B-Instruct --chat_template true
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 \\
        -m data.build_prm_data --config recipes/arith-tiny/prm_data.yaml
    # GPUs / nodes: accelerate launch --num_processes 8 [--num_machines N --machine_rank R ...]

Questions come from the task (`data.tasks`: arith draws fresh training questions, never the
policy's held-out ones; gsm8k/math read a split of a Hub dataset or a local JSONL). A solution
is right iff its answer matches the gold one (the one grading rule); arith rows also carry the
ground truth of every step. Questions are split across processes; each appends one record per finished question to its
own shard under <output_dir>/shards, so a killed job resumes where it stopped. Sampling is
seeded per question and per prefix, so the merged dataset is the same for any number of
processes and any interruptions. The main process then writes the dataset (train /
validation split by question), JSONL exports, a dataset card and the reports.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from core.config import cli, parse_config
from data.mc_labels import LabeledSolution, MCLabeler
from data.prm_dataset import write_prm_dataset
from data.shards import run_build
from data.tasks import StageConfig, Task, Verdict
from search.generation.generator import Generator, SamplingParams, check_sampling, stable_seed
from search.questions import Question
from search.step_format import StepFormat

log = logging.getLogger(__name__)


@dataclass
class PRMDataConfig(StageConfig):
    policy: str = "outputs/arith-tiny/policy"  # the policy checkpoint: a local folder or a Hub id
    output_dir: str = "outputs/arith-tiny/prm_data"
    validation_fraction: float = 0.1  # of questions, not of solutions
    samples_per_question: int = 4  # S (Snell: 16)
    rollouts_per_step: int = 4  # K (Snell: 16, Math-Shepherd: 8)
    temperature: float = 1.0  # sampling temperature (0: greedy decoding)
    top_p: float = 1.0  # nucleus sampling: sample from the smallest set of tokens holding this much probability
    max_new_tokens: int = 160  # the most tokens one whole solution may have (longer ones are cut off and counted)
    mode: str = "exhaustive"  # "exhaustive" (every step) or "binary" (OmegaPRM bisection)
    label_kind: str = "soft"  # what `labels` holds: "soft" (MC value) or "hard" (value > hard_threshold)
    hard_threshold: float = 0.0  # hard label = MC value > this (0: any rollout correct, Math-Shepherd)
    seed: int = 0  # the seed every sample derives from
    questions_per_chunk: int = 8  # questions whose rollouts are batched together
    batch_size: int = 256  # sequences per forward batch (speed only)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_sampling(self.temperature, self.top_p, self.max_new_tokens, self.batch_size, self.questions_per_chunk)
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
        skip = ("questions_per_chunk", "batch_size", *self.not_identity())
        return {k: v for k, v in asdict(self).items() if k not in skip}


CONFIG_TYPES = (PRMDataConfig,)


def sampling(cfg: PRMDataConfig) -> SamplingParams:
    return SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens)


def label_chunk(
    questions: list[Question], task: Task, generator: Generator, fmt: StepFormat, cfg: PRMDataConfig
) -> list[dict]:
    """One record per question: its labelled solutions as stepwise rows, and what was filtered."""
    params = sampling(cfg)
    seeds = [stable_seed(cfg.seed, "solutions", q.text) for q in questions]
    samples = generator.generate([fmt.prompt(q.text) for q in questions], params, cfg.samples_per_question, seeds)
    records = [{"question": q.text, "counts": {"no_answer": 0, "cut_off": 0}, "rows": [], "sampled_correct": 0}
               for q in questions]  # fmt: skip
    todo, checks = [], []
    for qi, (q, gens) in enumerate(zip(questions, samples, strict=True)):
        for j, gen in enumerate(gens):
            check = task.check(q, gen.text, fmt)
            records[qi]["sampled_correct"] += check.correct
            if gen.stop_reason == "length":  # cut off by max_new_tokens: its answer (if any) is not final
                records[qi]["counts"]["cut_off"] += 1
            elif check.answer is None:  # no answer line
                records[qi]["counts"]["no_answer"] += 1
            else:
                todo.append((qi, q.text, check.steps, check.correct))
                checks.append((qi, j, check))

    def grade(qi: int, solution: str) -> bool:
        return task.check(questions[qi], solution, fmt).correct

    labeler = MCLabeler(generator, fmt, grade, cfg.rollouts_per_step, params, cfg.seed)
    for (qi, j, check), labeled in zip(checks, labeler.label(todo, cfg.mode), strict=True):
        records[qi]["rows"].append(stepwise_row(questions[qi], j, check, labeled, fmt, cfg))
    return records


def stepwise_row(q: Question, index: int, check: Verdict, labeled: LabeledSolution, fmt: StepFormat, cfg) -> dict:
    """TRL's stepwise schema (prompt, completions, labels) plus provenance and, where the task
    knows it, the ground truth of every step."""
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
        "gt_step_correct": check.step_correct[: len(steps)] if check.step_correct is not None else None,
        "gt_first_error": check.first_error,
        "first_zero": labeled.first_zero,
        "rollouts": labeled.rollouts,
        "question": q.text,
        "id": q.id,
        "level": q.level,
        "gold": q.gold,
        "final_answer": check.answer,
        "correct": check.correct,
        "solution_index": index,
    }


def build_prm_data(cfg: PRMDataConfig) -> Path:
    """MC step labels of the policy's samples (module docstring); returns the output folder."""

    def worker(build, generator):
        return lambda chunk: label_chunk(chunk, build.task, generator, build.format, cfg)

    return run_build(cfg, cfg.policy, "prm", "data.build_prm_data", worker, write_prm_dataset)


@cli
def main(argv: list[str] | None = None) -> Path:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    return build_prm_data(cfg)


if __name__ == "__main__":
    main()
