"""The PRM/ORM trainer: BCE between the step logits and the step targets, read at each step's last token.

Apart from `training.prm` (which reads stepwise datasets with `datasets`) so that rows of token ids can
be trained on where `datasets` is not installed (bench/gpu_check.py on a lent GPU).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainerCallback, TrainingArguments

from training.collate import RightPadCollator
from training.prm_data import IGNORE


class PRMTrainer(Trainer):
    """BCE between the step logits and the step targets; tokens marked IGNORE do not count."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        targets = inputs.pop("step_labels")
        outputs = model(**inputs)
        logits = outputs.logits.squeeze(-1).float()
        mask = targets != IGNORE
        loss = F.binary_cross_entropy_with_logits(logits[mask], targets[mask])
        return (loss, outputs) if return_outputs else loss


def make_prm_trainer(
    model, tokenizer, args: TrainingArguments, train, val=None, callbacks: Sequence[TrainerCallback] = ()
) -> PRMTrainer:
    """A `PRMTrainer` on rows of `input_ids` and `step_labels` (a target in [0, 1] at each step's last token,
    IGNORE elsewhere; `training.prm_data.tokenize_rows`), right-padded: a dataset or any sequence of rows."""
    args.remove_unused_columns, args.label_names = False, ["step_labels"]
    return PRMTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=val,
        data_collator=RightPadCollator(tokenizer.pad_token_id, "step_labels", IGNORE, torch.float32),
        processing_class=tokenizer,
        callbacks=list(callbacks),
    )
