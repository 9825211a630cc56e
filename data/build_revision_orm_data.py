"""Build revision-ORM training data: the revision model's own chains, each attempt graded.

    python -m data.build_revision_orm_data --config recipes/arith-tiny/revision_orm_data.yaml

Snell et al. train the verifier of sequential revisions as an ORM on the revision model's own
outputs, with the previous attempts in context. For each fresh training question the revision
model samples `chains` chains of `length` attempts exactly as the runtime does
(`search.strategies.revisions`); every answered attempt becomes one stepwise row: `prompt` = the revision
prompt it was sampled from (question + up to 4 previous attempts), `completions` = its steps,
`labels` = its correctness on every step (the ORM trainer reads the last). Attempts without an
answer or with an empty step are dropped and counted. Same sharding, resume and determinism as
the other builders; the PRM trainer with `orm: true` trains on the result.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from core.cards import settings_table, write_card
from core.config import cli, parse_config
from data.shards import run_build, save_splits
from data.tasks import StageConfig, Task
from search.generation.generator import Generator, check_sampling
from search.questions import Question
from search.step_format import StepFormat
from search.strategies.revisions import sample_revision_chains
from search.strategies.strategy import SearchSettings


@dataclass
class RevisionORMDataConfig(StageConfig):
    revision_model: str = "outputs/arith-tiny/revision"  # the revision model checkpoint
    output_dir: str = "outputs/arith-tiny/revision_orm_data"
    validation_fraction: float = 0.1  # of questions
    chains: int = 2  # per question
    length: int = 4  # attempts per chain
    temperature: float = 1.0  # as at test time
    top_p: float = 1.0  # nucleus sampling: sample from the smallest set of tokens holding this much probability
    max_new_tokens: int = 160  # the most tokens one whole solution may have (longer ones are cut off and counted)
    seed: int = 0  # the seed every sample derives from
    questions_per_chunk: int = 16  # questions batched together, one resume record each (speed only)
    batch_size: int = 256  # sequences per forward batch (speed only)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_sampling(self.temperature, self.top_p, self.max_new_tokens, self.batch_size, self.questions_per_chunk)
        if self.chains < 1 or self.length < 1:
            raise ValueError("chains and length must be >= 1")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError("validation_fraction must be in [0, 1)")

    def settings(self) -> dict:
        skip = ("questions_per_chunk", "batch_size", *self.not_identity())
        return {k: v for k, v in asdict(self).items() if k not in skip}


CONFIG_TYPES = (RevisionORMDataConfig,)


def orm_chunk(
    questions: list[Question], task: Task, reviser: Generator, fmt: StepFormat, cfg: RevisionORMDataConfig
) -> list[dict]:
    """One record per question: its graded attempts as stepwise rows, and what was dropped."""
    settings = SearchSettings(cfg.temperature, cfg.top_p, max_new_tokens=cfg.max_new_tokens)
    sampled = sample_revision_chains(
        [q.text for q in questions], reviser, None, fmt, settings, cfg.chains, cfg.length, cfg.seed
    )
    records = []
    for q, chains in zip(questions, sampled, strict=True):
        counts: Counter = Counter()
        rows = []
        for c, chain in enumerate(chains.chains):
            for t, attempt in enumerate(chain):
                steps = attempt.candidate.steps
                if attempt.candidate.answer is None:
                    counts["no_answer"] += 1
                else:
                    correct = task.check(q, fmt.render_steps(steps), fmt).correct
                    labels = [float(correct)] * len(steps)
                    rows.append({"prompt": attempt.prompt, "completions": steps, "labels": labels,
                                 "correct": correct, "question": q.text, "id": q.id, "level": q.level,
                                 "gold": q.gold, "chain": c, "step": t})  # fmt: skip
        records.append({"question": q.text, "counts": dict(counts), "rows": rows})
    return records


def write_orm_dataset(out: Path, questions: list[Question], records: list[dict], cfg, fmt: StepFormat) -> dict:
    """The dataset, its report.json and a dataset card."""
    dataset, counts = save_splits(out, questions, records, cfg, fmt)
    correct = sum(sum(split["correct"]) for split in dataset.values())
    rows = sum(len(split) for split in dataset.values())
    report = {
        "questions": len(questions),
        "attempts": len(questions) * cfg.chains * cfg.length,
        "rows": {name: len(split) for name, split in dataset.items()},
        "correct_fraction": correct / rows,
        "dropped": dict(counts),
    }
    (out / "report.json").write_text(json.dumps({**report, "settings": cfg.settings()}, indent=2))
    card = [
        f"`{cfg.revision_model}`'s own revision chains ({cfg.chains} x {cfg.length} attempts per question at",
        f"T={cfg.temperature}); one stepwise row per answered attempt, labelled by its correctness. Columns:",
        "`prompt` (question + previous attempts), `completions` (steps), `labels`, `correct`, `question`, `level`,",
        "`gold`, `chain`, `step`.",
        "",
        "```json",
        json.dumps(report, indent=2),
        "```",
        "",
        "## Settings",
        settings_table(cfg.settings()),
    ]
    metadata = {"pretty_name": "Revision-ORM data", "source_datasets": [cfg.task], "base_model": cfg.revision_model,
                "tags": ["outcome-reward-model", "stepwise-supervision", "trl"]}  # fmt: skip
    write_card(out, metadata, "Revision-ORM data (Snell et al. 2024)", "\n".join(card))
    print(json.dumps(report))
    return report


def build_revision_orm_data(cfg: RevisionORMDataConfig) -> Path:
    """The revision model's graded attempts, with their history, as ORM data (module docstring)."""

    def worker(build, reviser):
        return lambda chunk: orm_chunk(chunk, build.task, reviser, build.format, cfg)

    return run_build(cfg, cfg.revision_model, "revision-orm", "data.build_revision_orm_data", worker,
                     write_orm_dataset)  # fmt: skip


@cli
def main(argv: list[str] | None = None) -> Path:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    return build_revision_orm_data(cfg)


if __name__ == "__main__":
    main()
