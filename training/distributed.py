"""Process-state helpers for distributed training runs."""

from __future__ import annotations

import os
from datetime import timedelta

import torch
from accelerate import PartialState
from transformers import TrainingArguments


def end_distributed(trainer=None) -> None:
    """End a distributed run cleanly once its work is saved: every rank meets at a barrier, then
    the process group is destroyed. A gloo group left alive at exit can abort a rank with -6
    ("terminate called without an active exception") after the work is done, most often on a
    loaded machine."""
    if trainer is not None:
        trainer.accelerator.end_training()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def fix_cpu_deepspeed_state(args: TrainingArguments) -> None:
    """Re-initialise accelerate's process state for DeepSpeed on CPU, over gloo.

    With `deepspeed` set and no GPU, transformers 5.24 builds the state without a backend,
    and accelerate 1.15 then records ONE process while the DeepSpeed engine runs on all of
    them: every rank calls itself rank 0, data is not sharded and evaluation's gather fails.
    Launch such runs with `use_cpu: false` and without ACCELERATE_USE_CPU (which makes
    accelerate drop DeepSpeed altogether).
    """
    if not args.deepspeed or torch.cuda.is_available() or "LOCAL_RANK" not in os.environ:
        return
    PartialState._reset_state()
    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    args.distributed_state = PartialState(backend="gloo", timeout=timedelta(seconds=args.ddp_timeout))
