"""What every trainer's entry point does first."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from transformers import TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from core.config import UserError
from core.outputs import OutputGuard, claim_output_dir


@dataclass
class TrainingConfig(TrainingArguments):
    """transformers' TrainingArguments, with the values no run can train with refused when parsed (`--dry-run`
    too): a learning rate of 0 or below, batch sizes below 1, negative steps, zero training steps."""

    def __post_init__(self) -> None:
        check_training_arguments(self)
        super().__post_init__()


def check_training_arguments(args: TrainingArguments) -> None:
    """Raise ValueError for the first value of `args` that no training run can use."""
    at_least = {"learning_rate": (0, False), "per_device_train_batch_size": (1, True),
                "per_device_eval_batch_size": (1, True), "gradient_accumulation_steps": (1, True),
                "warmup_steps": (0, True), "weight_decay": (0, True), "max_grad_norm": (0, True),
                "adam_epsilon": (0, False), "logging_steps": (0, False), "save_steps": (0, False),
                "eval_steps": (0, False), "eval_accumulation_steps": (1, True), "save_total_limit": (1, True),
                "dataloader_num_workers": (0, True)}  # fmt: skip
    for name, (bound, inclusive) in at_least.items():
        value = getattr(args, name)
        if value is not None and (value < bound if inclusive else value <= bound):
            raise ValueError(f"{name} must be {'>=' if inclusive else '>'} {bound}, got {value}")
    for name in ("adam_beta1", "adam_beta2", "label_smoothing_factor"):
        if not 0 <= getattr(args, name) < 1:
            raise ValueError(f"{name} must be in [0, 1), got {getattr(args, name)}")
    if args.max_steps == 0 or args.max_steps < -1:
        raise ValueError(f"max_steps must be >= 1, or -1 to train num_train_epochs, got {args.max_steps}")
    if args.max_steps == -1 and args.num_train_epochs <= 0:
        raise ValueError(f"num_train_epochs must be > 0 (or max_steps >= 1): zero training steps would save an "
                         f"untrained model, got {args.num_train_epochs}")  # fmt: skip


def prepare_training(guard: OutputGuard, args: TrainingArguments, entry: str) -> None:
    """What every trainer does first: logging on, an output_dir required and claimed for `entry`
    (`core.outputs.claim_output_dir`), the checkpoint to resume from resolved, and the seed set."""
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
