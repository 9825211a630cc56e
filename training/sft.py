"""Supervised fine-tuning data: prompt + step completion, loss on the completion only."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from transformers import Trainer, TrainingArguments

from core.config import UserError
from core.identity import write_checksums
from search.step_format import StepFormat
from training.collate import RightPadCollator

if TYPE_CHECKING:
    from datasets import Dataset

IGNORE = -100
log = logging.getLogger(__name__)


def tokenize_example(tokenizer, fmt: StepFormat, prompt: str, steps: Sequence[str]) -> dict[str, list[int]]:
    """input_ids of a rendered prompt + steps + EOS; labels mask the prompt with -100."""
    ids, _, n_prompt = fmt.encode(tokenizer, prompt, steps)
    ids.append(tokenizer.eos_token_id)
    return {"input_ids": ids, "labels": [IGNORE] * n_prompt + ids[n_prompt:]}


def build_sft_dataset(
    tokenizer, fmt: StepFormat, examples: Iterable[tuple[str, Sequence[str]]], max_length: int, name: str
) -> Dataset:
    """Tokenized (rendered prompt, steps) pairs; rows over `max_length` are dropped and counted, never cut."""
    from datasets import Dataset  # here: the trainer runs without `datasets` on rows of its own (bench/gpu_check.py)

    rows, dropped = [], 0
    for prompt, steps in examples:
        row = tokenize_example(tokenizer, fmt, prompt, steps)
        if len(row["input_ids"]) > max_length:
            dropped += 1
            continue
        rows.append(row)
    if dropped:
        log.warning(
            "%s: dropped %d of %d examples longer than %d tokens", name, dropped, dropped + len(rows), max_length
        )
    if not rows:
        raise UserError(f"{name}: no example fits in max_length {max_length} tokens" if dropped else f"{name}: empty")
    return Dataset.from_list(rows)


def make_sft_trainer(model, tokenizer, args: TrainingArguments, train, val=None) -> Trainer:
    """The causal-LM loss on the labelled tokens of right-padded rows (`input_ids`, `labels`): a dataset or any
    sequence of such rows."""
    return Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=val,
        data_collator=RightPadCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
    )


def run_sft(model, tokenizer, args: TrainingArguments, train: Dataset, val: Dataset) -> tuple[Trainer, dict]:
    """Train (resumable), evaluate and save the model to `args.output_dir`.

    Returns the trainer and the final metrics (with `train_tokens`, the non-padding tokens trained on: the
    FLOPs accounting of `eval.flops_matched` reads it); the caller writes what travels with the model.
    """
    args.include_num_input_tokens_seen = "non_padding"
    trainer = make_sft_trainer(model, tokenizer, args, train, val)
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    metrics = {**trainer.evaluate(), "train_tokens": trainer.state.num_input_tokens_seen}
    trainer.save_model(str(args.output_dir))
    if trainer.is_world_process_zero():
        write_checksums(args.output_dir)
    return trainer, metrics
