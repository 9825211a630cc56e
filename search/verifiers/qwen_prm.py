"""Qwen2.5-Math-PRM's architecture on transformers' own Qwen2 classes, so no remote code has to run.

The checkpoints (Qwen/Qwen2.5-Math-PRM-7B, -72B) declare `Qwen2ForProcessRewardModel` with an
`auto_map` to Python files shipped with the weights. Their model is transformers' `Qwen2Model`
with a two-class head on every token, `score` = Linear(hidden, hidden), ReLU, Linear(hidden, 2);
P(class 1) at a step's `<extra_0>` tag is the probability that the step is right. `QwenMathPRM`
is that model, loaded from the checkpoint's weights by name. Weights that do not fit it are a
one-line error; `trust_remote_code: true` then runs the checkpoint's own code instead.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel, Qwen2Model, Qwen2PreTrainedModel
from transformers.modeling_outputs import TokenClassifierOutput

from core.config import UserError

ARCHITECTURE = "Qwen2ForProcessRewardModel"  # what the public checkpoints' config.json declares
IGNORED_WEIGHTS = ("lm_head.",)  # an LM head shipped next to the reward head is not used


class QwenMathPRM(Qwen2PreTrainedModel):
    """Qwen2Model plus the two-class step head; `logits` [batch, tokens, 2]."""

    def __init__(self, config):
        super().__init__(config)
        self.model = Qwen2Model(config)
        self.score = nn.Sequential(
            nn.Linear(config.hidden_size, config.hidden_size), nn.ReLU(), nn.Linear(config.hidden_size, 2)
        )
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs) -> TokenClassifierOutput:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        return TokenClassifierOutput(logits=self.score(hidden))


class RemoteCodePRM(nn.Module):
    """A checkpoint's own model (trust_remote_code), returning its first output as `logits`."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.inner, self.config = model, model.config

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, input_ids=None, attention_mask=None, **kwargs) -> TokenClassifierOutput:
        return TokenClassifierOutput(logits=self.inner(input_ids=input_ids, attention_mask=attention_mask)[0])


def load_qwen_prm(path: str, trust_remote_code: bool = False) -> nn.Module:
    """The PRM at `path` (see the module docstring)."""
    if trust_remote_code:
        return RemoteCodePRM(AutoModel.from_pretrained(path, trust_remote_code=True))
    model, info = QwenMathPRM.from_pretrained(path, output_loading_info=True)
    unexpected = [k for k in info.get("unexpected_keys", ()) if not k.startswith(IGNORED_WEIGHTS)]
    wrong = [*info.get("missing_keys", ()), *unexpected, *(str(k) for k in info.get("mismatched_keys", ()))]
    if wrong:
        shown = ", ".join(sorted(wrong)[:4]) + (", ..." if len(wrong) > 4 else "")
        raise UserError(f"{path}: its weights do not fit the Qwen2.5-Math-PRM architecture ({shown}): to run the "
                        "checkpoint's own code instead, set trust_remote_code: true")  # fmt: skip
    return model
