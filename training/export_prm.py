"""A two-label copy of a one-logit PRM (or ORM), which the ecosystem's tools read correctly.

    python -m training.export_prm --checkpoint outputs/arith-tiny/prm --output_dir outputs/arith-tiny/prm-2label

Our linear-head checkpoints have one logit z per token and the step score is sigmoid(z). Tools
built for TRL's PRMs (the transformers token-classification pipeline, ProcessBench's TRL script)
apply a softmax over the labels, which turns a single logit into 1.0 everywhere. The copy has two
labels, LABEL_0 ("wrong") with logit 0 and LABEL_1 ("right") with logit z, so that
softmax(...)[1] = sigmoid(z): every tool reads exactly our scores, at the last token of each step's
separator. The backbone is the same; the config keeps the step format and the `reward_model`
metadata, so this project's runtime loads the copy as it loads the original.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForTokenClassification

from search.cards import write_card
from search.checkpoints import load_config, load_model, load_tokenizer
from search.config import UserError, check_model_path, cli, parse_config
from search.identity import claim_output_dir, write_checksums
from search.verifier import METADATA_KEY


@dataclass
class ExportConfig:
    checkpoint: str = field(
        default="outputs/arith-tiny/prm", metadata={"help": "a linear-head PRM or ORM checkpoint of this project"}
    )
    output_dir: str = field(default="", metadata={"help": "where the two-label copy is saved"})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "export into a folder that holds another run's output (replacing it)"}
    )


CONFIG_TYPES = (ExportConfig,)
LABELS = {0: "LABEL_0", 1: "LABEL_1"}  # the pipeline's default names: LABEL_1 = the step is right
CARD = """A token-classification PRM with two labels: the probability of LABEL_1 at the last token of a step's
separator (the solution written in the step format stored in `config.json`, `step_format`) is the step's score.
`pipeline("token-classification", model=...)` returns, per token, the likelier label and its probability: a
step's score is that probability if the label is LABEL_1, else one minus it. This project's runtime loads it
with `search.verifier.load_verifier` (docs/verifiers.md)."""


def two_label_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The same model with a two-label head whose label-1 logit minus label-0 logit is the one logit."""
    config = model.config.__class__.from_dict({**model.config.to_dict(), "num_labels": 2, "id2label": LABELS,
                                               "label2id": {v: k for k, v in LABELS.items()}})  # fmt: skip
    copy = AutoModelForTokenClassification.from_config(config).to(model.dtype)
    state = copy.state_dict()
    for name, value in model.state_dict().items():
        if state[name].shape == value.shape:
            state[name] = value
        else:  # the head: one row (weight) or entry (bias) per label
            state[name] = torch.cat([torch.zeros_like(value), value])
    copy.load_state_dict(state)
    return copy.eval()


@cli
def main(argv: list[str] | None = None) -> Path:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    if not cfg.output_dir:
        raise UserError("--output_dir is required")
    path = check_model_path(cfg.checkpoint, "checkpoint")
    config = load_config(path, "PRM checkpoint")
    metadata = getattr(config, METADATA_KEY, None) or {}
    if not metadata or metadata.get("head", "linear") != "linear" or getattr(config, "num_labels", None) != 1:
        raise UserError(f"{path}: not a one-logit (linear-head) reward model of this project: nothing to export")
    out = Path(cfg.output_dir)
    claim_output_dir(out, "training.export_prm", cfg.overwrite_output_dir)
    two_label_copy(load_model(AutoModelForTokenClassification, path, "PRM checkpoint")).save_pretrained(out)
    load_tokenizer(path).save_pretrained(out)
    write_checksums(out)
    write_card(out, {"library_name": "transformers", "base_model": path, "tags": ["process-reward-model"]},
               f"{metadata.get('kind', 'prm').upper()}: two-label export of {path}", CARD)  # fmt: skip
    print(f"saved the two-label copy of {path} to {out}: P(LABEL_1) at a step's last token is its score")
    return out


if __name__ == "__main__":
    main()
