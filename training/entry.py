"""What every trainer's entry point does first."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from transformers import TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from core.config import UserError
from core.identity import claim_output_dir


@dataclass
class OutputGuard:
    """Mixed into every trainer's config."""

    overwrite_output_dir: bool = False  # train into an output_dir that holds another run's output (replacing it)


def prepare_training(guard: OutputGuard, args: TrainingArguments, entry: str) -> None:
    """What every trainer does first: logging on, an output_dir required and claimed for `entry`
    (`core.identity.claim_output_dir`), the checkpoint to resume from resolved, and the seed set."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.output_dir is None:
        raise UserError("output_dir is required")
    if os.environ.get("RANK", "0") == "0":  # the main process alone: another rank may already be writing there
        claim_output_dir(args.output_dir, entry, guard.overwrite_output_dir)
    args.resume_from_checkpoint = resume_point(args)
    set_seed(args.seed)


def resume_point(args: TrainingArguments) -> str | None:
    """`--resume_from_checkpoint` as a path to a checkpoint, or `last`/`true`: the newest one in
    output_dir if there is one (a first run starts fresh), never a crash on a missing one."""
    wanted = args.resume_from_checkpoint
    if wanted is None or str(wanted).lower() in ("false", "no", ""):
        return None
    if str(wanted).lower() in ("last", "true", "yes"):
        found = get_last_checkpoint(args.output_dir) if Path(args.output_dir).is_dir() else None
        if found:
            logging.getLogger(__name__).info("resuming from %s", found)
        return found
    if not Path(wanted).is_dir():
        raise UserError(f"resume_from_checkpoint: no checkpoint at {wanted}")
    return str(wanted)
