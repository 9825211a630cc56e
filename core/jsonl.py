"""Append-only JSONL files that survive a kill: a record is one line, written in one go, so a
kill leaves at most one torn (unterminated) last line, which readers skip and writers cut off.
A line that is not a JSON object (a disk error, a hand edit) is skipped with a warning naming
it: its record is simply redone by the resuming writer."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def json_object(line: bytes | str) -> dict | None:
    """The JSON object on a line, or None if the line holds anything else (or is not JSON in UTF-8)."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def read_jsonl(path: Path) -> list[dict]:
    """The complete records of a file (none if it does not exist); a torn last line is skipped."""
    if not path.exists():
        return []
    records = []
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                continue
            record = json_object(line)
            if record is not None:
                records.append(record)
            else:
                log.warning("%s:%d is not a JSON object: skipped (its record will be redone)", path, number)
    return records


def cut_torn_tail(path: Path) -> None:
    """Remove a torn last line, so that appending starts on a fresh line."""
    if path.exists():
        data = path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            with path.open("r+b") as f:
                f.truncate(keep)
