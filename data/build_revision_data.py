"""Build revision-model training data from a policy (Snell et al.).

    python -m data.build_revision_data --config recipes/arith-tiny/revision_data.yaml
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 \\
        -m data.build_revision_data --config recipes/arith-tiny/revision_data.yaml

For each fresh training question the policy samples `samples_per_question` answers at
`temperature` (paper: 64); answers without an answer line or with an empty step are dropped
and counted; each correct answer becomes one trajectory (`data.revision_trajectories`): up to
4 distinct incorrect answers in context, the closest by edit distance last. A row is a prompt-completion
pair: `prompt` = `StepFormat.revision_prompt(question, attempts)`, `completion` = the correct
answer's steps. Questions with no correct or no incorrect answer are skipped and counted; rows
longer than `max_length` tokens are dropped and counted, never truncated. Same sharding,
resume and determinism as the PRM-data builder.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from datasets import DatasetDict

from core.cards import settings_table, write_card
from core.config import UserError, cli, parse_config
from data.revision_trajectories import CONTEXT_ATTEMPTS, build_trajectories
from data.shards import run_build, save_splits
from data.tasks import StageConfig, Task
from search.generation.generator import Generator, SamplingParams, check_sampling, stable_seed
from search.questions import Question
from search.step_format import StepFormat

log = logging.getLogger(__name__)


@dataclass
class RevisionDataConfig(StageConfig):
    policy: str = "outputs/arith-tiny/policy"  # the policy checkpoint: a local folder or a Hub id
    output_dir: str = "outputs/arith-tiny/revision_data"
    questions_per_level: int | None = 50  # arith: fresh training questions (never the policy's held-out ones)
    validation_fraction: float = 0.1  # of questions
    samples_per_question: int = 16  # Snell et al.: 64
    temperature: float = 1.0  # "a higher temperature" than search's
    top_p: float = 1.0  # nucleus sampling: sample from the smallest set of tokens holding this much probability
    max_new_tokens: int = 160  # the most tokens one whole solution may have (longer ones are cut off and counted)
    max_incorrect: int = CONTEXT_ATTEMPTS  # k ~ U{0..min(max_incorrect, #incorrect)}
    keep_correct: float = 0.0  # fraction of trajectories whose last attempt is the correct answer (not the paper's)
    max_length: int = 256  # prompt + completion tokens (at most the policy's context); longer rows dropped, counted
    seed: int = 0  # the seed every sample derives from
    questions_per_chunk: int = 16  # questions batched together, one resume record each (speed only)
    batch_size: int = 256  # sequences per forward batch (speed only)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_sampling(self.temperature, self.top_p, self.max_new_tokens, self.batch_size, self.questions_per_chunk)
        if self.samples_per_question < 2 or self.max_length < 8:
            raise ValueError("samples_per_question must be >= 2 and max_length >= 8")
        if not 0 <= self.max_incorrect <= CONTEXT_ATTEMPTS:
            raise ValueError(f"max_incorrect must be in 0..{CONTEXT_ATTEMPTS} (the attempts a prompt holds)")
        if not 0 <= self.validation_fraction < 1 or not 0 <= self.keep_correct <= 1:
            raise ValueError("validation_fraction must be in [0, 1) and keep_correct in [0, 1]")

    def settings(self) -> dict:
        skip = ("questions_per_chunk", "batch_size", *self.not_identity())
        return {k: v for k, v in asdict(self).items() if k not in skip}


CONFIG_TYPES = (RevisionDataConfig,)


def revision_chunk(
    questions: list[Question],
    task: Task,
    generator: Generator,
    fmt: StepFormat,
    cfg: RevisionDataConfig,
    count_tokens: Callable[[str], int],
) -> list[dict]:
    """One record per question: its trajectories as rows, and what was dropped or skipped."""
    params = SamplingParams(cfg.temperature, cfg.top_p, cfg.max_new_tokens)
    seeds = [stable_seed(cfg.seed, "revision-samples", q.text) for q in questions]
    samples = generator.generate([fmt.prompt(q.text) for q in questions], params, cfg.samples_per_question, seeds)
    records = []
    for q, gens in zip(questions, samples, strict=True):
        counts: Counter = Counter()
        correct, incorrect = [], []
        for gen in gens:
            check = task.check(q, gen.text, fmt)
            if gen.stop_reason == "length":
                counts["cut_off"] += 1
            elif check.answer is None:
                counts["no_answer"] += 1
            else:
                (correct if check.correct else incorrect).append(fmt.step_separator.join(check.steps))
        distinct = list(dict.fromkeys(incorrect))  # an attempt shown twice teaches nothing new
        rows = []
        if not correct or not incorrect:
            counts["skipped_no_correct" if not correct else "skipped_no_incorrect"] += 1
        else:
            rng = random.Random(stable_seed(cfg.seed, "trajectories", q.text))
            for t in build_trajectories(correct, distinct, rng, cfg.max_incorrect, cfg.keep_correct):
                attempts = [a.split(fmt.step_separator) for a in t.context]
                prompt = fmt.revision_prompt(q.text, attempts)
                completion = fmt.render_steps(t.target.split(fmt.step_separator))
                if count_tokens(prompt + completion) + 1 > cfg.max_length:  # + EOS
                    counts["too_long"] += 1
                    continue
                rows.append({"prompt": prompt, "completion": completion, "question": q.text, "id": q.id,
                             "level": q.level, "gold": q.gold, "k": len(t.context)})  # fmt: skip
        records.append({"question": q.text, "counts": dict(counts), "rows": rows,
                        "correct": len(correct), "incorrect": len(incorrect)})  # fmt: skip
    return records


def write_revision_dataset(
    out: Path, questions: list[Question], records: list[dict], cfg, fmt: StepFormat
) -> DatasetDict:
    """Dataset (train/validation by question), JSONL per split, report.json and a dataset card."""
    dataset, counts = save_splits(out, questions, records, cfg, fmt)
    ks = Counter(k for split in dataset.values() for k in split["k"])
    report = {
        "questions": len(questions),
        "rows": {name: len(split) for name, split in dataset.items()},
        "dropped_or_skipped": dict(counts),
        "previous_attempts_k": {str(k): ks[k] for k in sorted(ks)},
        "settings": cfg.settings(),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    card = [
        f"From `{cfg.policy}`: {len(questions)} questions x {cfg.samples_per_question} answers at T={cfg.temperature}.",
        "Columns: `prompt` (question + previous incorrect attempts, the closest by edit distance last),",
        "`completion` (a correct answer), `question`, `id`, `level`, `gold`, `k` (attempts in context).",
        "The step format of the prompts is in `dataset/step_format.json`.",
        "",
        "```json",
        json.dumps({k: v for k, v in report.items() if k != "settings"}, indent=2),
        "```",
        "",
        "## Settings",
        settings_table(cfg.settings()),
    ]
    write_card(out, {"pretty_name": "Revision trajectories", "source_datasets": [cfg.task], "base_model": cfg.policy,
                     "tags": ["revision", "prompt-completion", "trl"]},
               "Revision trajectories (Snell et al. 2024)", "\n".join(card))  # fmt: skip
    print(json.dumps({k: v for k, v in report.items() if k != "settings"}))
    return dataset


def build_revision_data(cfg: RevisionDataConfig) -> Path:
    """Revision trajectories from the policy's samples (module docstring); returns the output folder."""

    def worker(build, generator):
        context = generator.context_length
        if context is not None and context < cfg.max_length:
            raise UserError(f"max_length {cfg.max_length} exceeds the policy's context of {context} tokens")
        return lambda chunk: revision_chunk(chunk, build.task, generator, build.format, cfg, generator.count_tokens)

    return run_build(cfg, cfg.policy, "revision", "data.build_revision_data", worker, write_revision_dataset)


@cli
def main(argv: list[str] | None = None) -> Path:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    return build_revision_data(cfg)


if __name__ == "__main__":
    main()
