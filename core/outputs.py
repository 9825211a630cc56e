"""Where an entry point may write: output folders marked with who wrote them, guards that refuse another
stage's folder or file, and files written whole.

Trainers, builders and importers claim their output folder (`claim_output_dir`): one that holds
another entry point's output or files of unknown origin is refused unless `--overwrite_output_dir
true`. Report, benchmark and search-run folders are rewritten whole by their writer
(`claim_report_dir`): an older report there is taken over, but another stage's folder, or one that
holds a checkpoint or a dataset, is refused. A single output file (`claim_output_file`) is refused in
such a folder and over a file its entry point did not write (each folder's made_by.json records the
files each entry point wrote there), unless `--overwrite_output_file true`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from core.config import UserError

OWNER_FILE = "made_by.json"
# what marks a checkpoint or a dataset folder, whoever wrote it: never a place for a report
MODEL_OR_DATASET = ("config.json", "*.safetensors", "*.bin", "dataset_dict.json", "dataset_info.json")


@dataclass
class OutputGuard:
    """Mixed into the config of every entry point that writes an output folder."""

    overwrite_output_dir: bool = False  # write into an output_dir that holds another run's output (replacing it)


@dataclass
class OutputFileGuard:
    """Mixed into the config of every entry point that writes one output file."""

    overwrite_output_file: bool = False  # write output_file where another stage's output is (replacing it)


def _owner_record(folder: Path) -> dict:
    path = folder / OWNER_FILE
    try:
        record = json.loads(path.read_text()) if path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def holds_model_or_dataset(folder: Path) -> bool:
    """Whether a folder holds a checkpoint's or a dataset's files."""
    return folder.is_dir() and any(any(folder.glob(pattern)) for pattern in MODEL_OR_DATASET)


def claim_output_dir(out: str | Path, entry: str, overwrite: bool = False, write: bool = True) -> None:
    """Refuse an output folder that holds the output of another entry point, or files of unknown
    origin (a policy, a downloaded model, a dataset), unless `overwrite`; then mark it as `entry`'s
    (`write`: only one process of a distributed run writes). A rerun of the same entry point is
    welcome: it resumes or redoes its own work."""
    out = Path(out)
    if out.is_dir() and any(out.iterdir()):
        owner = _owner_record(out).get("entry")
        if owner != entry and not overwrite:
            what = f"the output of {owner}" if owner else "files this project did not write there"
            raise UserError(f"{out} holds {what}: choose another output_dir, or pass --overwrite_output_dir true")
    if write:
        mark_output_dir(out, entry)


def claim_report_dir(out: str | Path, entry: str, overwrite: bool = False, write: bool = True) -> Path:
    """`claim_output_dir` for a folder its entry point rewrites whole (a report, a benchmark, a search run): files of
    unknown origin are taken over (a report of an older version), but another entry point's folder, or one that
    holds a checkpoint or a dataset, is refused unless `overwrite`. Returns the folder, marked as `entry`'s (`write`:
    later, with `mark_output_dir`, once the rest of the input is checked)."""
    out = Path(out)
    owner = _owner_record(out).get("entry")
    if not overwrite and (owner not in (None, entry) or (owner is None and holds_model_or_dataset(out))):
        what = f"the output of {owner}" if owner else "a checkpoint or a dataset"
        raise UserError(f"{out} holds {what}: choose another output_dir, or pass --overwrite_output_dir true")
    if write:
        mark_output_dir(out, entry)
    return out


def mark_output_dir(out: str | Path, entry: str) -> None:
    """Mark `out` as `entry`'s output folder (after `claim_output_dir` checked it)."""
    Path(out).mkdir(parents=True, exist_ok=True)
    write_atomic(Path(out) / OWNER_FILE, json.dumps({**_owner_record(Path(out)), "entry": entry}) + "\n")


def claim_output_file(path: str | Path, entry: str, overwrite: bool = False) -> Path:
    """Refuse to write a report or benchmark file into another entry point's output folder or a folder that holds a
    checkpoint or a dataset, or over a file that `entry` did not write (its folder's made_by.json records the files
    each entry point wrote), unless `overwrite`; then record the file as `entry`'s. Returns the path."""
    path = Path(path)
    folder = path.parent
    record = _owner_record(folder)
    owner, writer = record.get("entry"), record.get("files", {}).get(path.name)
    if not overwrite:
        flag = "choose another output_file, or pass --overwrite_output_file true"
        if owner not in (None, entry):
            raise UserError(f"{folder} holds the output of {owner}: {flag}")
        if owner is None and holds_model_or_dataset(folder):
            raise UserError(f"{folder} holds a checkpoint or a dataset: {flag}")
        if path.exists() and writer != entry:
            what = f"the output of {writer}" if writer else "a file this project did not record writing"
            raise UserError(f"{path} is {what}: {flag}")
    files = {**record.get("files", {}), path.name: entry}
    write_atomic(folder / OWNER_FILE, json.dumps({**record, "files": files}) + "\n")
    return path


def write_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all (a full disk or a kill leaves the old file, never an empty one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def marked_block(name: str, text: str) -> str:
    """`text` between the markers of a generated block of a document (`<!-- name:start -->`, `<!-- name:end -->`)."""
    return f"<!-- {name}:start -->\n{text}<!-- {name}:end -->"


def replace_marked_block(path: Path, name: str, text: str) -> None:
    """Replace a document's generated block `name` with `text`: result tables are generated, never typed by hand."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    document = path.read_text()
    if start not in document or end not in document:
        raise UserError(f"{path}: no {start} ... {end} markers to put the generated block between")
    head, rest = document.split(start, 1)
    write_atomic(path, head + marked_block(name, text) + rest.split(end, 1)[1])
