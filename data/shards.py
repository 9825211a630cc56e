"""Sharded, resumable data builds: append-only JSONL shards, one record per finished question.

Each process appends to its own file (`core.jsonl`: one record per line, flushed; a torn
last line from a kill is skipped by readers and cut off by writers).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env
from datasets import Dataset, DatasetDict
from tqdm.auto import tqdm

from core.config import UserError
from core.identity import acquire_lock, check_identity, fingerprint, identity_settings
from core.jsonl import cut_torn_tail, read_jsonl
from core.outputs import claim_output_dir, mark_output_dir
from data.tasks import Task
from search.generation.backends import load_generator
from search.generation.generator import Generator, stable_seed
from search.questions import Question
from search.step_format import StepFormat, get_format

log = logging.getLogger(__name__)


def read_all(directory: Path) -> list[dict]:
    """Records of every shard in a folder (written by any number of processes); other files are
    ignored, and so is a record without a question."""
    records = [r for path in sorted(directory.glob("rank*-of-*.jsonl")) for r in read_jsonl(path)]
    return [r for r in records if isinstance(r.get("question"), str)]


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


def end_build(build: Build) -> None:
    """After the main process wrote the dataset: all processes meet, the process group is
    destroyed (a gloo group left alive at exit can abort a rank after the work is done) and the
    writer lock is released."""
    build.state.wait_for_everyone()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    build.lock.close()


@dataclass
class Build:
    """What a data build runs on: this process, the task, the model's prompt format, the questions
    and the output folder (whose settings were checked)."""

    state: PartialState
    task: Task
    format: StepFormat
    questions: list[Question]
    out: Path  # the output folder
    lock: IO  # this process's writer lock, held until the build ends


def start_build(cfg, model: str, stream: str, entry: str) -> Build:
    """Load the stage's task and questions (`cfg` is a `data.tasks.StageConfig`; arith train questions
    come fresh from `stream`, never held out), resolve the model's prompt format, and check what
    produced the output folder (`settings.json`: the settings with local paths resolved and without
    the output folder's own path, the format's content and a fingerprint of the model's weights): a
    resume under another identity is refused by every process alike, and so is a second build
    writing into the folder at the same time."""
    state = process_state()
    log.info("distributed: %s, process %d of %d", state.distributed_type, state.process_index, state.num_processes)
    task, fmt, questions = cfg.prepare(model, stream)
    out = Path(cfg.output_dir)
    claim_output_dir(out, entry, write=False)  # every process checks before any of them writes there
    state.wait_for_everyone()
    if state.is_main_process:
        mark_output_dir(out, entry)
    settings = identity_settings(cfg.settings(), ("step_format",))  # the format's content is recorded beside them
    identity = {"settings": settings, "step_format": fmt.to_dict(), "checkpoint": fingerprint(model)}
    lock = acquire_lock(out, f".lock-rank{state.process_index}")
    if state.is_main_process and not (out / "settings.json").exists():
        check_identity(out / "settings.json", identity)  # the first run writes it
    state.wait_for_everyone()
    check_identity(out / "settings.json", identity)  # every process gives the same verdict
    return Build(state, task, fmt, questions, out, lock)


Worker = Callable[[list[Question]], list[dict]]


def run_build(cfg, model: str, stream: str, entry: str, worker: Callable[[Build, Generator], Worker],
              write: Callable[..., Any]) -> Path:  # fmt: skip
    """A builder's whole run: its questions sharded across processes, each process generating with `model` (its
    generator on the configured backend) and labelling chunk by chunk with `worker(build, generator)` into its
    resumable shard, then the main process merging them with `write(out, questions, records, cfg, fmt)`."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    build = start_build(cfg, model, stream, entry)

    def make_worker() -> Worker:
        generator = load_generator(model, build.format, cfg, cfg.batch_size, str(build.state.device))
        return worker(build, generator)

    records = run_sharded(build.questions, build.out, build.state, cfg.questions_per_chunk, make_worker)
    if build.state.is_main_process:
        write(build.out, build.questions, records, cfg, build.format)
    end_build(build)
    return build.out


def split_of(question: str, seed: int, validation_fraction: float) -> str:
    """Train or validation, by question, stable across runs and processes."""
    return "validation" if stable_seed(seed, "split", question) % 10_000 < validation_fraction * 10_000 else "train"


def save_splits(
    out: Path, questions: list[Question], records: list[dict], cfg, fmt: StepFormat
) -> tuple[DatasetDict, Counter]:
    """The records' rows as a train/validation dataset split by question (`out/dataset`, with the
    step format its prompts are rendered in, and a JSONL file per split), and the sum of their
    `counts` (what was dropped or skipped, and why)."""
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
    save_dataset(dataset, out, fmt)
    return dataset, counts


FORMAT_FILE = "step_format.json"  # in a dataset folder: the format its prompts and steps are rendered in


def dataset_format(dataset: str | Path, name: str | None) -> StepFormat:
    """The step format a dataset folder's prompts are rendered in: the one its builder stored, else
    the registered format `name`; a stored format with another name is a user error."""
    path = Path(dataset) / FORMAT_FILE
    if path.is_file():
        try:
            stored = StepFormat.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as err:
            raise UserError(f"{path}: not a step format ({err})") from None
        if name is not None and name != stored.name:
            raise UserError(f"{dataset} is rendered in step format {stored.name!r}, not {name!r}")
        return stored
    if name is None:
        raise UserError(f"{dataset} carries no {FORMAT_FILE}: set step_format")
    try:
        return get_format(name)
    except ValueError as err:
        raise UserError(str(err)) from None


def save_dataset(dataset: DatasetDict, out: Path, fmt: StepFormat) -> None:
    """`out/dataset` (load_from_disk) with its step format, and a JSONL file per split."""
    dataset.save_to_disk(str(out / "dataset"))
    (out / "dataset" / FORMAT_FILE).write_text(json.dumps(fmt.to_dict(), indent=2))
    for name, split in dataset.items():
        split.to_json(str(out / f"{name}.jsonl"))
