"""What every trainer's entry point does first."""

from __future__ import annotations

import logging

from transformers import TrainingArguments, set_seed

from search.config import UserError, parse_config


def parse_training_config(config_types: tuple, argv: list[str] | None) -> tuple:
    """The parsed configs (the last one TrainingArguments), with logging on, an output_dir
    required and the seed set."""
    parsed = parse_config(config_types, argv)
    args = parsed[-1]
    assert isinstance(args, TrainingArguments)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.output_dir is None:
        raise UserError("output_dir is required")
    set_seed(args.seed)
    return parsed
