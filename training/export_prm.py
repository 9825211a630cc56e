"""A two-label copy of a one-logit PRM (or ORM), for tools that read TRL's two-label PRMs.

    python -m training.export_prm --checkpoint outputs/arith-tiny/prm --output_dir outputs/arith-tiny/prm-2label

Our linear-head checkpoints have one logit z per token and the step score is sigmoid(z). Tools
built for TRL's PRMs apply a softmax over the labels, which turns a single logit into 1.0
everywhere. The copy has two labels, LABEL_0 ("wrong") with logit 0 and LABEL_1 ("right") with
logit z, so that softmax(...)[1] = sigmoid(z) at every token. A tool reads our scores only if it
also tokenizes a solution as the PRM was trained to read it (`reward_model.layout`):

- layout `trl` (`python -m training.prm --layout trl`): TRL's `PRMTrainer.tokenize_row` (BOS, the
  raw question, each step and the separator tokenized on their own). The copy's config declares the
  separator as `step_separator` (TRL's name), which this project's `trl` adapter reads.
- layout `native`: the step-format text tokenized in one go (the token-classification pipeline on
  the text). TRL's piece-by-piece reading differs where the tokenizer merges across pieces or the
  prompt template matters: the export measures that difference and prints it.

The export checks on a probe solution that the copy, read in its layout, gives the runtime's
scores of the original (<= 1e-5); the card records both measured differences. The backbone is the
same; the config keeps the step format and the `reward_model` metadata, so this project's runtime
loads the copy as it loads the original.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForTokenClassification

from core.cards import write_card
from core.checkpoints import (
    Metadata,
    check_model_path,
    load_config,
    load_model,
    load_tokenizer,
)
from core.config import UserError, cli, parse_config
from core.identity import write_checksums
from core.outputs import claim_output_dir
from search.step_format import StepFormat
from search.verifiers.adapters import SEPARATOR_KEY
from search.verifiers.layouts import encode_in_layout
from search.verifiers.verifier import PRMVerifier


@dataclass
class ExportConfig:
    checkpoint: str = "outputs/arith-tiny/prm"  # a linear-head PRM or ORM checkpoint of this project
    output_dir: str = ""  # where the two-label copy is saved
    overwrite_output_dir: bool = False  # export into a folder that holds another run's output (replacing it)


CONFIG_TYPES = (ExportConfig,)
LABELS = {0: "LABEL_0", 1: "LABEL_1"}  # the pipeline's default names: LABEL_1 = the step is right
TOLERANCE = 1e-5
PROBE = ("(2+7)*3-5", ["2+7=9", "9*3=27", "27-5=22"], "22")  # question, steps, answer: any format writes them
READINGS = {
    "trl": "TRL's `PRMTrainer.tokenize_row` with `step_separator={sep!r}`: BOS, the raw question as the prompt, "
    "each step and the separator tokenized on their own; the score of a step is P(LABEL_1) at the last token of "
    "its separator.",
    "native": "the solution written in the step format stored in `config.json` (`step_format`) and tokenized in one "
    'go, e.g. by `pipeline("token-classification", model=...)`, which returns per token the likelier label and its '
    "probability: a step's score is that probability if the label is LABEL_1, else one minus it, at the token "
    "holding the last character of the step's separator.",
}


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


def label_one(model: torch.nn.Module, tokenizer, fmt: StepFormat, layout: str, prompt: str, steps: list) -> list:
    """P(LABEL_1) of a two-label model at each step's read token, the solution tokenized in `layout`."""
    enc = encode_in_layout(tokenizer, fmt, layout, prompt, steps)
    with torch.no_grad():
        probs = model(torch.tensor([enc.ids])).logits[0].float().softmax(-1)[:, 1]
    return probs[enc.step_ends].tolist()


def reading_differences(ours: PRMVerifier, copy: torch.nn.Module) -> dict[str, float]:
    """Per layout, the largest difference between the copy read that way and the runtime's scores of the original."""
    question, steps, answer = PROBE
    tokenizer, fmt = ours.tokenizer, ours.format
    prompt, steps = fmt.prompt(question), [*steps, fmt.answer_step(answer)]
    expected = ours.score([prompt], [steps])[0]
    return {layout: max(abs(a - b) for a, b in zip(label_one(copy, tokenizer, fmt, layout, prompt, steps), expected,
                                                   strict=True)) for layout in READINGS}  # fmt: skip


@cli
def main(argv: list[str] | None = None) -> Path:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    if not cfg.output_dir:
        raise UserError("--output_dir is required")
    path = check_model_path(cfg.checkpoint, "checkpoint")
    config = load_config(path, "PRM checkpoint")
    metadata = Metadata.of(config).reward_model or {}
    if not metadata or metadata.get("head", "linear") != "linear" or getattr(config, "num_labels", None) != 1:
        raise UserError(f"{path}: not a one-logit (linear-head) reward model of this project: nothing to export")
    fmt, layout = StepFormat.from_dict(Metadata.of(config).step_format), metadata.get("layout", "native")
    out = Path(cfg.output_dir)
    claim_output_dir(out, "training.export_prm", cfg.overwrite_output_dir)
    tokenizer, model = load_tokenizer(path), load_model(AutoModelForTokenClassification, path, "PRM checkpoint")
    copy = two_label_copy(model)
    differences = reading_differences(PRMVerifier(model, tokenizer, fmt, layout=layout), copy)
    if differences[layout] > TOLERANCE:  # a bug here, never a property of the checkpoint
        raise UserError(f"{path}: the copy read in its layout {layout} differs from the runtime's scores by "
                        f"{differences[layout]:.2e}: not exported")  # fmt: skip
    if layout == "trl":
        setattr(copy.config, SEPARATOR_KEY, fmt.step_separator)
    copy.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_checksums(out)
    measured = ", ".join(f"{name} {value:.1e}" for name, value in differences.items())
    body = (f"A token-classification PRM with two labels, layout `{layout}`: read it as "
            f"{READINGS[layout].format(sep=fmt.step_separator)} This project's runtime loads it with "
            f"`search.verifiers.verifier.load_verifier` (docs/verifiers.md).\n\nLargest step-score difference from the "
            f"original, on a probe solution, per way of reading the copy: {measured}.")  # fmt: skip
    write_card(out, {"library_name": "transformers", "base_model": path, "tags": ["process-reward-model"]},
               f"{metadata.get('kind', 'prm').upper()}: two-label export of {path}", body)  # fmt: skip
    print(f"saved the two-label copy of {path} to {out} (layout {layout}): its P(LABEL_1) read that way is our score "
          f"(max difference {differences[layout]:.1e})")  # fmt: skip
    if layout == "native" and differences["trl"] > TOLERANCE:
        print(f"note: read the TRL way (PRMTrainer.tokenize_row) its scores differ from ours by up to "
              f"{differences['trl']:.3g}: train with --layout trl for a copy that TRL reads exactly")  # fmt: skip
    return out


if __name__ == "__main__":
    main()
