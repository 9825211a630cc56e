"""The model card of a PRM or ORM checkpoint: what it scores and how its scores are read."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from core.cards import write_model_card


def write_prm_card(out: Path, cfg, format_name: str, metadata: dict, metrics: dict, data_note: str = "") -> None:
    """The model card of a PRM or ORM checkpoint, with how its step scores are read and `data_note` (how
    a dataset of another schema was written in the step format)."""
    tokenized = (
        "as TRL's `PRMTrainer.tokenize_row` does (layout `trl`: BOS, the raw question, each step and separator "
        "tokenized on their own)"
        if metadata.get("layout") == "trl"
        else "in one go as `StepFormat.encode` lays the steps out (layout `native`)"
    )
    reading = {
        "linear": "`AutoModelForTokenClassification` with one logit: the score of step i is the sigmoid of the logit "
        f"at the last token of step i (its separator), the solution tokenized {tokenized}. A pipeline that "
        "applies a softmax over one label reads 1.0 everywhere: take the sigmoid of the raw logit, or export a "
        "two-label copy (`python -m training.export_prm`): its P(LABEL_1), read in the same layout, is the score "
        "(docs/verifiers.md).",
        "likelihood": "a causal LM (`AutoModelForCausalLM`) and a head in `config.json` (`reward_model."
        "likelihood_head`): the score of step i is sigmoid(w . [sum of the step log-likelihoods of steps 0..i, their "
        "minimum, step i's] + b) (`search/verifiers/likelihood.py`).",
    }[cfg.head]
    kind = "ORM" if cfg.orm else "PRM"
    description = (
        f"Scores the steps of solutions in step format `{format_name}`, trained on {metadata['label_kind']} labels. "
        f"Reading: {reading} In this project's runtime: `search.verifiers.verifier.load_verifier`."
    )
    description += f"\n\n{data_note}" if data_note else ""
    tags = ["outcome-reward-model" if cfg.orm else "process-reward-model"]
    write_model_card(out, f"{kind} ({cfg.head} head)", description, cfg.model_name_or_path, cfg.dataset, tags,
                     metrics, asdict(cfg))  # fmt: skip
