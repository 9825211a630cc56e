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
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from core.cards import settings_table, write_card
from core.config import cli, parse_config
from data.shards import end_build, run_sharded, save_splits, start_build
from data.tasks import StageConfig, Task
from search.generation.backends import load_generator
from search.generation.generator import Generator, check_sampling
from search.questions import Question
from search.step_format import StepFormat
from search.strategies.revisions import sample_revision_chains
from search.strategies.strategy import SearchSettings


@dataclass
class RevisionORMDataConfig(StageConfig):
    revision_model: str = "outputs/arith-tiny/revision"
    output_dir: str = "outputs/arith-tiny/revision_orm_data"
    validation_fraction: float = 0.1  # of questions
    chains: int = 2  # per question
    length: int = 4  # attempts per chain
    temperature: float = 1.0  # as at test time
    top_p: float = 1.0
    max_new_tokens: int = 160
    seed: int = 0
    questions_per_chunk: int = 16
    batch_size: int = 256

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


@cli
def main(argv: list[str] | None = None) -> Path:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    build = start_build(cfg, cfg.revision_model, stream="revision-orm", entry="data.build_revision_orm_data")
    fmt = build.format

    def make_worker():
        device = str(build.state.device)
        reviser = load_generator(cfg.revision_model, fmt, cfg, cfg.batch_size, device)
        return lambda chunk: orm_chunk(chunk, build.task, reviser, fmt, cfg)

    records = run_sharded(build.questions, build.out, build.state, cfg.questions_per_chunk, make_worker)
    if build.state.is_main_process:
        write_orm_dataset(build.out, build.questions, records, cfg, fmt)
    end_build(build)
    return build.out


if __name__ == "__main__":
    main()
