"""What produced an output: fingerprints of checkpoints, run records, and one writer at a time.

Every resumable output (PRM and revision data, `search run`, the evaluation) records what
produced it: its settings and a fingerprint of each checkpoint's weights. A rerun resumes only
under the same identity; new weights at the same path, or other settings, are refused, so two
policies never mix in one dataset and two runs never double-count in one results file. A lock
file refuses a second writer while one is running.

    identity = {"settings": {...}, "checkpoints": {"policy": fingerprint(path)}}
    check_identity(out / "run.json", identity)   # writes it on the first run
    with writer_lock(out): ...
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from core.config import UserError
from core.outputs import OWNER_FILE, write_atomic

log = logging.getLogger(__name__)
WEIGHT_FILES = ("*.safetensors", "*.bin", "config.json")


def fingerprint(checkpoint: str | Path | None) -> str | None:
    """A hash of a local checkpoint's weights and config (a Hub id stands for itself; None for none)."""
    if checkpoint is None:
        return None
    path = Path(checkpoint)
    if not path.is_dir():
        return f"hub:{checkpoint}"
    digest = hashlib.sha256()
    files = sorted({f for pattern in WEIGHT_FILES for f in path.glob(pattern)})
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


CHECKSUMS = "checksums.json"  # in a checkpoint folder this project wrote: sha256 of each weight file


def write_checksums(folder: str | Path) -> None:
    """Record the sha256 of every weight file of a saved checkpoint (`verify_checksums` reads it)."""
    folder = Path(folder)
    record = {f.name: _sha256(f) for f in sorted(folder.glob("*.safetensors"))}
    (folder / CHECKSUMS).write_text(json.dumps(record, indent=2) + "\n")


def verify_checksums(folder: str | Path) -> None:
    """Refuse a checkpoint whose weight files changed since it was saved (flipped bytes load silently)."""
    folder = Path(folder)
    record = folder / CHECKSUMS
    if not record.is_file():
        return
    try:
        expected = json.loads(record.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{record} is not valid JSON") from None
    for name, digest in expected.items():
        file = folder / name
        if not file.is_file() or _sha256(file) != digest:
            raise UserError(f"{folder}: {name} is missing or corrupt (its checksum differs): retrain or restore it")


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_file(path: str | Path | None) -> str | None:
    """A hash of one file's bytes (None for none)."""
    if path is None:
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16] if Path(path).is_file() else f"missing:{path}"


IDENTITY_VERSION = 2  # records without it (version 1) held the output folder's path and paths as typed


def check_identity(record: Path, identity: dict) -> None:
    """Write `identity` to `record` on a first run; refuse a rerun under another identity. A record of version 1
    that differs only in what version 2 dropped (the output folder, paths as typed, the step format by name) is
    the same run: it is rewritten. An empty or corrupt record (a crash while writing it) is rewritten when its
    folder holds no results yet, else refused with a way out."""
    current = {**identity, "version": IDENTITY_VERSION}
    stored = _read_record(record)
    if stored is None or stored == current:
        if stored is None:
            write_atomic(record, json.dumps(current, indent=2))
        return
    if "version" in stored or _comparable(stored) != _comparable(current):
        before, now = (stored, current) if "version" in stored else (_comparable(stored), _comparable(current))
        changed = sorted(_differences(before, now))
        raise UserError(f"{record.parent} holds the output of another run (differs in: {', '.join(changed)}): "
                        "choose another output folder or delete this one")  # fmt: skip
    write_atomic(record, json.dumps(current, indent=2))


def _read_record(record: Path) -> dict | None:
    """The stored identity; None if there is none yet (or an unreadable one in a folder without results)."""
    if not record.exists():
        return None
    try:
        stored = json.loads(record.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        stored = None
    if isinstance(stored, dict):
        return stored
    if _holds_results(record.parent, record):
        raise UserError(f"{record} is empty or corrupt (a crash while writing it?) and {record.parent} holds results "
                        "it cannot vouch for: delete the folder (or move its results away) and rerun")  # fmt: skip
    log.warning("%s is empty or corrupt and its folder holds no results yet: rewriting it", record)
    return None


def _holds_results(folder: Path, record: Path) -> bool:
    """Whether `folder` holds a non-empty file other than `record`, the owner mark and lock files."""
    return any(f.is_file() and f.stat().st_size and f != record and f.name != OWNER_FILE
               and not f.name.startswith(".") for f in folder.rglob("*"))  # fmt: skip


def _comparable(identity: dict) -> dict:
    """An identity as version 1 and version 2 records can be compared: the output folder dropped, paths resolved,
    the step format by name."""
    out = {k: v for k, v in identity.items() if k != "version"}
    settings = {k: resolve_path(v) for k, v in out.get("settings", {}).items() if k not in ("output_dir", "out")}
    fmt = settings.get("step_format")
    if isinstance(fmt, dict):
        settings["step_format"] = fmt.get("name")
    if "step_format" in out:  # the content is recorded beside the settings
        settings.pop("step_format", None)
    return {**out, "settings": settings}


def resolve_path(value):
    """A local path in its absolute, resolved form (`./x`, `x` and `../repo/x` are one path); any other value (a
    Hub id, a name, a number) as it is."""
    if isinstance(value, str) and value and os.path.exists(value):
        return str(Path(value).resolve())
    return value


def identity_settings(settings: dict, skip: tuple[str, ...] = ()) -> dict:
    """Settings as an identity records them: without `skip` and the output folder (a moved folder resumes), local
    paths resolved."""
    return {k: resolve_path(v) for k, v in settings.items() if k not in (*skip, "output_dir")}


def _differences(a: dict, b: dict, prefix: str = "") -> set[str]:
    out = set()
    for key in set(a) | set(b):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out |= _differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.add(f"{prefix}{key}")
    return out


def acquire_lock(folder: Path, name: str = ".lock") -> IO:
    """Lock `folder/name` until the returned handle is closed (or the process ends); a second
    writer gets a one-line error at once."""
    folder.mkdir(parents=True, exist_ok=True)
    handle = (folder / name).open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UserError(f"another run is writing to {folder}: wait for it or choose another folder") from None
    return handle


@contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """`acquire_lock` for the duration of a block."""
    handle = acquire_lock(folder)
    try:
        yield
    finally:
        handle.close()
