"""Append-only JSONL shards: one record per finished work item, resumable after a kill.

Each process appends to its own file; a record is written in one `write` and flushed, so a
kill leaves at most one torn last line, which readers skip and writers cut off.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path


def read_records(path: Path) -> Iterator[dict]:
    """Complete records of one shard; a torn last line (from a kill) is skipped."""
    if not path.exists():
        return
    with path.open() as f:
        for line in f:
            if not line.endswith("\n"):
                return  # torn write: the job died here
            yield json.loads(line)


def read_all(directory: Path) -> list[dict]:
    """Records of every shard in a folder (written by any number of processes)."""
    return [r for path in sorted(directory.glob("*.jsonl")) for r in read_records(path)]


class ShardWriter:
    """Appends records to one shard, after cutting off a torn tail left by a previous kill."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            data = path.read_bytes()
            keep = data.rfind(b"\n") + 1
            if keep != len(data):
                with path.open("r+b") as f:
                    f.truncate(keep)
        self.file = path.open("a")

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()
