"""Stepwise datasets (prompt, completions, labels) from wherever they live, and TRL's schema in ours.

    load_stepwise("outputs/arith-tiny/prm_data/dataset")   # ours: load_from_disk, with step_format.json
    load_stepwise("trl-lib/math_shepherd")                  # a Hub id (datasets.load_dataset)
    load_stepwise("shepherd.jsonl")                         # a local JSONL (or JSON array) file: split train
    load_stepwise("shepherd/")                              # a folder of train/validation/test .jsonl/.json files

TRL's stepwise-supervision datasets share our columns but not our conventions: `labels` are
booleans and `prompt` is the raw question, with no template around it. A dataset that carries no
step format of ours (`is_rendered`) is read as TRL's: `render_rows` writes each raw prompt in the
step format (a prompt already in it is kept: our own JSONL exports), reads True/False as 1.0/0.0
and collapses a step separator inside a step, as the importers do. A `test` split stands in for a
missing `validation` split (TRL's datasets have train/test).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

from core.config import UserError
from data.importers import clean_step
from data.shards import FORMAT_FILE
from search.step_format import StepFormat

SPLITS = ("train", "validation", "test")
log = logging.getLogger(__name__)


def read_json_records(path: Path) -> list[dict]:
    """The objects of a JSON-lines file or of a file holding one JSON array of objects."""
    text = path.read_text(encoding="utf-8")
    try:
        if text.lstrip().startswith("["):
            records = json.loads(text)
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not JSON lines nor a JSON array ({err.msg}, line {err.lineno})") from None
    if not all(isinstance(r, dict) for r in records):
        raise UserError(f"{path}: every record must be a JSON object")
    return records


def is_rendered(source: str) -> bool:
    """Whether a dataset carries the step format its prompts are written in (our builders and importers)."""
    return (Path(source) / FORMAT_FILE).is_file()


def load_stepwise(source: str) -> DatasetDict:
    """The splits of a stepwise dataset (see the module docstring); `test` becomes `validation` if that is missing."""
    path = Path(source).expanduser()
    if (path / "dataset_dict.json").is_file():
        data = load_from_disk(str(path))
    elif path.is_file():
        data = DatasetDict({"train": Dataset.from_list(read_json_records(path))})
    elif path.is_dir():
        files = {s: f for s in SPLITS for f in (path / f"{s}.jsonl", path / f"{s}.json") if f.is_file()}
        if "train" not in files:
            raise UserError(f"{source}: no dataset_dict.json (load_from_disk) nor train.jsonl / train.json")
        data = DatasetDict({s: Dataset.from_list(read_json_records(f)) for s, f in files.items()})
    elif source.count("/") == 1 and not source.startswith((".", "/", "~")) and not Path(source.split("/")[0]).is_dir():
        data = load_dataset(source)  # "org/name", not a mistyped local path
    else:
        raise UserError(f"dataset not found: {source} (a folder, a JSONL file or a Hub id)")
    if not isinstance(data, DatasetDict) or "train" not in data:
        raise UserError(f"{source}: expected a dataset with a 'train' split")
    if "validation" not in data and "test" in data:
        log.info("%s: its test split is the validation split (early stopping)", source)
        data = DatasetDict({"train": data["train"], "validation": data["test"]})
    return data


def render_row(row: dict, fmt: StepFormat, counts: Counter) -> dict:
    """A TRL-schema row in the step format (see the module docstring); what changed is counted."""
    prompt, steps, labels = row.get("prompt"), row.get("completions"), row.get("labels")
    if isinstance(prompt, str) and fmt.question_of(prompt) is None:
        prompt = fmt.prompt(prompt)
        counts["raw prompts rendered"] += 1
    if isinstance(steps, list):
        inside = sum(isinstance(s, str) and fmt.step_separator in s.strip() for s in steps)
        counts["steps with a separator inside, collapsed"] += inside
        steps = [clean_step(s, fmt) if isinstance(s, str) else s for s in steps]
    if isinstance(labels, list) and any(isinstance(v, bool) for v in labels):
        labels = [float(v) if isinstance(v, bool) else v for v in labels]
        counts["rows with boolean labels"] += 1
    return {**row, "prompt": prompt, "completions": steps, "labels": labels}


def render_rows(data: DatasetDict, fmt: StepFormat) -> tuple[DatasetDict, dict[str, int]]:
    """Every split's rows through `render_row`, and the counts of what changed (over all splits)."""
    counts: Counter = Counter()
    rendered = DatasetDict()
    for name, split in data.items():
        rendered[name] = Dataset.from_list([render_row(row, fmt, counts) for row in split])
    return rendered, {reason: n for reason, n in counts.items() if n}


def rendering_note(source: str, fmt: StepFormat, changed: dict[str, int]) -> str:
    """What a model card says about a dataset read as TRL's schema."""
    done = "; ".join(f"{reason}: {n}" for reason, n in changed.items()) or "every row was already in the format"
    return (
        f"Trained on a stepwise dataset in TRL's schema (`{source}`), written in step format `{fmt.name}` "
        f"before training (prompt template {fmt.prompt_template!r}, boolean labels read as 1.0/0.0): {done}."
    )
