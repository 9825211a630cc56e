"""Right-padding collator shared by the trainers."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RightPadCollator:
    """Right-pads input_ids and one label column, and builds the attention mask."""

    pad_token_id: int
    label_key: str = "labels"
    label_pad: float = -100
    label_dtype: torch.dtype = torch.long

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids, mask, labels = [], [], []
        for f in features:
            pad = width - len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            mask.append([1] * len(f["input_ids"]) + [0] * pad)
            labels.append(list(f[self.label_key]) + [self.label_pad] * pad)
        return {
            "input_ids": torch.tensor(ids),
            "attention_mask": torch.tensor(mask),
            self.label_key: torch.tensor(labels, dtype=self.label_dtype),
        }
