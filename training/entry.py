"""What every trainer's entry point does first."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from core.config import UserError, parse_config
from core.identity import claim_output_dir


@dataclass
class OutputGuard:
    """Mixed into every trainer's config."""

    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "train into an output_dir that holds another run's output (replacing it)"}
    )


def parse_training_config(config_types: tuple, argv: list[str] | None, entry: str) -> tuple:
    """The parsed configs (the first one an `OutputGuard`, the last one TrainingArguments), with
    logging on, an output_dir required and claimed for `entry` (`core.identity.claim_output_dir`),
    and the seed set."""
    parsed = parse_config(config_types, argv)
    guard, args = parsed[0], parsed[-1]
    assert isinstance(guard, OutputGuard) and isinstance(args, TrainingArguments)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.output_dir is None:
        raise UserError("output_dir is required")
    if os.environ.get("RANK", "0") == "0":  # the main process alone: another rank may already be writing there
        claim_output_dir(args.output_dir, entry, guard.overwrite_output_dir)
    args.resume_from_checkpoint = resume_point(args)
    set_seed(args.seed)
    return parsed


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
