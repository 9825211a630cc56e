"""Append-only JSONL files that survive a kill: a record is one line, written in one go, so a
kill leaves at most one torn (unterminated) last line, which readers skip and writers cut off."""

from __future__ import annotations

import json
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    """The complete records of a file (none if it does not exist); a torn last line is skipped."""
    if not path.exists():
        return []
    with path.open() as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def cut_torn_tail(path: Path) -> None:
    """Remove a torn last line, so that appending starts on a fresh line."""
    if path.exists():
        data = path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep != len(data):
            with path.open("r+b") as f:
                f.truncate(keep)
