"""Stepwise rows (prompt, completions, labels) to PRM training features, with row checks."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from search.step_format import Encoded, StepFormat
from search.verifiers.layouts import encode_in_layout

if TYPE_CHECKING:
    from datasets import Dataset

IGNORE = -100.0  # step_labels value of tokens that are not the last token of a step
log = logging.getLogger(__name__)


def check_row(row: dict, fmt: StepFormat, where: str) -> None:
    """Raise a ValueError naming the row if it cannot be trained on as it is."""
    steps, labels = row.get("completions"), row.get("labels")
    if not isinstance(steps, list) or not isinstance(labels, list):
        raise ValueError(f"{where}: needs list columns 'completions' and 'labels'")
    if not steps:
        raise ValueError(f"{where}: has no steps")
    if len(steps) != len(labels):
        raise ValueError(f"{where}: {len(steps)} steps but {len(labels)} labels")
    if fmt.question_of(row.get("prompt") or "") is None:
        raise ValueError(f"{where}: prompt {row.get('prompt')!r} is not in step format {fmt.name!r}")
    for j, step in enumerate(steps):
        if not isinstance(step, str) or not step.strip():
            raise ValueError(f"{where}: step {j} is empty")
        if fmt.step_separator in step:
            raise ValueError(f"{where}: step {j} contains the step separator {fmt.step_separator!r}")
    for j, value in enumerate(labels):
        if value is None or isinstance(value, bool) or not (0.0 <= float(value) <= 1.0) or math.isnan(value):
            raise ValueError(f"{where}: label {j} = {value!r} is outside [0, 1]")


def encode_rows(rows: Dataset, tokenizer, fmt: StepFormat, max_length: int, split: str,
                layout: str = "native") -> list[tuple[Encoded, list]]:  # fmt: skip
    """Each checked row tokenized in `layout` (`search.verifiers.layouts.encode_in_layout`) with its labels. Rows
    longer than `max_length` are dropped and counted, never truncated (that would lose late labels)."""
    encoded, too_long = [], 0
    for i, row in enumerate(rows):
        check_row(row, fmt, f"{split} row {i}")
        tokens = encode_in_layout(tokenizer, fmt, layout, row["prompt"], row["completions"])
        if len(tokens.ids) > max_length:
            too_long += 1
            continue
        encoded.append((tokens, [float(v) for v in row["labels"]]))
    if too_long:
        log.warning("%s: dropped %d of %d rows longer than %d tokens", split, too_long, len(rows), max_length)
    if not encoded:
        raise ValueError(f"{split}: no row fits in {max_length} tokens")
    return encoded


def tokenize_rows(rows: Dataset, tokenizer, fmt: StepFormat, max_length: int, split: str,
                  last_step_only: bool = False, layout: str = "native") -> Dataset:  # fmt: skip
    """input_ids and step_labels (the label at each step's last token, IGNORE elsewhere);
    `last_step_only` trains an ORM: only the final step's label is used."""
    from datasets import Dataset  # here: IGNORE and the trainer are used without `datasets` (bench/gpu_check.py)

    features = []
    for tokens, labels in encode_rows(rows, tokenizer, fmt, max_length, split, layout):
        targets = [IGNORE] * len(tokens.ids)
        for end, value in list(zip(tokens.step_ends, labels, strict=True))[-1 if last_step_only else 0 :]:
            targets[end] = value
        features.append({"input_ids": tokens.ids, "step_labels": targets})
    return Dataset.from_list(features)
