"""Sharded, resumable data builds: append-only JSONL shards, one record per finished question.

Each process appends to its own file (`search.jsonl`: one record per line, flushed; a torn
last line from a kill is skipped by readers and cut off by writers).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env
from datasets import Dataset, DatasetDict
from tqdm.auto import tqdm

from data.arith import ArithQuestion, ArithTask
from search.config import UserError
from search.generator import stable_seed
from search.jsonl import cut_torn_tail, read_jsonl

log = logging.getLogger(__name__)


def read_all(directory: Path) -> list[dict]:
    """Records of every shard in a folder (written by any number of processes)."""
    return [r for path in sorted(directory.glob("*.jsonl")) for r in read_jsonl(path)]


class ShardWriter:
    """Appends records to one shard, after cutting off a torn tail left by a previous kill."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        cut_torn_tail(path)
        self.file = path.open("a")

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()


def process_state() -> PartialState:
    """This process among those `accelerate launch` started (one without a launcher).

    PartialState, unlike Accelerator, ignores ACCELERATE_USE_CPU: without cpu=True a CPU run
    under `accelerate launch` would silently be N copies of a single process.
    """
    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available())


def run_sharded(
    questions: Sequence[Any],
    out: Path,
    state: PartialState,
    chunk_size: int,
    make_worker: Callable[[], Callable[[list], list[dict]]],
) -> list[dict]:
    """Deal questions round-robin to the processes; each runs the worker over its unfinished ones,
    chunk by chunk, appending one record per question (with a "question" key = `q.text`) to its
    own shard. Returns every record once all processes are done. The worker is only built (say,
    a model loaded) when this process has work left."""
    done = {r["question"] for r in read_all(out / "shards")}
    mine = [q for i, q in enumerate(questions) if i % state.num_processes == state.process_index]
    todo = [q for q in mine if q.text not in done]
    if todo:
        work = make_worker()
        writer = ShardWriter(out / "shards" / f"rank{state.process_index}-of-{state.num_processes}.jsonl")
        bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc=f"questions (rank {state.process_index})")
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            for record in work(chunk):
                writer.write(record)
            bar.update(len(chunk))
        writer.close()
        bar.close()
    state.wait_for_everyone()
    return read_all(out / "shards")


def check_settings(out: Path, cfg) -> None:
    """Refuse to resume into a folder built with other settings (`cfg.settings()`)."""
    path = out / "settings.json"
    if path.exists():
        if json.loads(path.read_text()) != cfg.settings():
            raise UserError(f"{out} holds data built with other settings: use another output_dir or delete it")
    else:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cfg.settings(), indent=2))


def start_build(cfg, model: str, train_stream: str) -> tuple[PartialState, ArithTask, list[ArithQuestion], Path]:
    """This process, the task of the `model` checkpoint, the build's fresh training questions (stream
    `train_stream`, never the held-out ones) and its output folder, whose settings are checked."""
    state = process_state()
    log.info("distributed: %s, process %d of %d", state.distributed_type, state.process_index, state.num_processes)
    task = ArithTask.load(model)
    try:
        questions = task.splits(cfg.questions_per_level, train_stream=train_stream, distinct_train=True).train
    except ValueError as err:
        raise UserError(str(err)) from None
    out = Path(cfg.output_dir)
    if state.is_main_process:
        check_settings(out, cfg)
    state.wait_for_everyone()
    return state, task, questions, out


def split_of(question: str, seed: int, validation_fraction: float) -> str:
    """Train or validation, by question, stable across runs and processes."""
    return "validation" if stable_seed(seed, "split", question) % 10_000 < validation_fraction * 10_000 else "train"


def save_splits(out: Path, questions: list[ArithQuestion], records: list[dict], cfg) -> tuple[DatasetDict, Counter]:
    """The records' rows as a train/validation dataset split by question (`out/dataset` and a JSONL
    file per split), and the sum of their `counts` (what was dropped or skipped, and why)."""
    by_question = {r["question"]: r for r in records}
    missing = [q.text for q in questions if q.text not in by_question]
    if missing:
        raise RuntimeError(f"{len(missing)} questions have no record (first: {missing[0]!r}); rerun to finish")
    splits: dict[str, list[dict]] = {"train": [], "validation": []}
    counts: Counter = Counter()
    for q in questions:
        counts.update(by_question[q.text]["counts"])
        splits[split_of(q.text, cfg.seed, cfg.validation_fraction)] += by_question[q.text]["rows"]
    dataset = DatasetDict({name: Dataset.from_list(rows) for name, rows in splits.items() if rows})
    if not dataset:
        raise UserError(f"no row survived ({dict(counts)}): sample more or use easier questions")
    dataset.save_to_disk(str(out / "dataset"))
    for name, split in dataset.items():
        split.to_json(str(out / f"{name}.jsonl"))
    return dataset, counts
