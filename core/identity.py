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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from core.config import UserError

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


def check_identity(record: Path, identity: dict) -> None:
    """Write `identity` to `record` on a first run; refuse a rerun under another identity."""
    if record.exists():
        try:
            stored = json.loads(record.read_text())
        except json.JSONDecodeError:
            raise UserError(f"{record} is not valid JSON: delete the output folder or choose another") from None
        if stored != identity:
            changed = sorted(_differences(stored, identity))
            raise UserError(f"{record.parent} holds the output of another run (differs in: {', '.join(changed)}): "
                            "choose another output folder or delete this one")  # fmt: skip
        return
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(identity, indent=2))


def _differences(a: dict, b: dict, prefix: str = "") -> set[str]:
    out = set()
    for key in set(a) | set(b):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out |= _differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.add(f"{prefix}{key}")
    return out


OWNER_FILE = "made_by.json"


def claim_output_dir(out: str | Path, entry: str, overwrite: bool = False, write: bool = True) -> None:
    """Refuse an output folder that holds the output of another entry point, or files of unknown
    origin (a policy, a downloaded model, a dataset), unless `overwrite`; then mark it as `entry`'s
    (`write`: only one process of a distributed run writes). A rerun of the same entry point is
    welcome: it resumes or redoes its own work."""
    out = Path(out)
    if out.is_dir() and any(out.iterdir()):
        record = out / OWNER_FILE
        try:
            owner = json.loads(record.read_text()).get("entry") if record.is_file() else None
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            owner = None
        if owner != entry and not overwrite:
            what = f"the output of {owner}" if owner else "files this project did not write there"
            raise UserError(f"{out} holds {what}: choose another output_dir, or pass --overwrite_output_dir true")
    if write:
        mark_output_dir(out, entry)


def mark_output_dir(out: str | Path, entry: str) -> None:
    """Mark `out` as `entry`'s output folder (after `claim_output_dir` checked it)."""
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / OWNER_FILE).write_text(json.dumps({"entry": entry}) + "\n")


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
