"""Policy SFT on reference step-by-step solutions (loss on the solution only).

    python -m training.policy --config recipes/arith-tiny/policy.yaml
    accelerate launch --config_file recipes/accelerate_configs/ddp.yaml -m training.policy \\
        --config recipes/arith-tiny/policy.yaml
    # multi-node: add --num_machines 2 --machine_rank R --main_process_ip HOST to accelerate launch

Writes a Hugging Face folder (model, tokenizer, the step format in config.json) and
`task.json`, the task and split settings that later stages and reports read back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from core.cards import write_model_card
from core.checkpoints import check_model_path, load_policy, load_tokenizer, stamp
from core.config import cli, parse_config
from core.outputs import OutputGuard
from data.arith import ArithConfig, ArithTask
from search.step_format import get_format
from training.distributed import end_distributed
from training.entry import TrainingConfig, prepare_training
from training.sft import build_sft_dataset, run_sft
from training.tiny import TinyModelConfig, build_char_tokenizer, build_tiny_model

log = logging.getLogger(__name__)


@dataclass
class PolicyConfig(OutputGuard):
    """What to train on and from where."""

    step_format: str = "arith"  # the step format the policy is trained to write
    # model: a path or hub id to fine-tune, or None to build the tiny model from scratch
    model_name_or_path: str | None = None  # a checkpoint to fine-tune, or null: the tiny model from scratch
    max_length: int = 256  # the most tokens a training row may have: longer rows are dropped and counted, never cut
    # the arith task
    min_ops: int = 1  # arith: the fewest operations in a question
    max_ops: int = 8  # arith: the most operations in a question (levels min_ops..max_ops)
    operand_digits: int = 1  # arith: digits per operand
    max_value: int | None = None  # arith: every intermediate value stays within 0..max_value (null: 10**(digits+1)-1)
    task_seed: int = 0  # arith: the seed of the question splits
    train_per_level: int = 3300  # training questions per level (may repeat)
    validation_per_level: int = 50  # held-out validation questions per level
    test_per_level: int = 50  # held-out test questions per level

    def __post_init__(self) -> None:
        self.task()
        if min(self.train_per_level, self.validation_per_level, self.test_per_level) < 0 or self.train_per_level == 0:
            raise ValueError("train_per_level must be > 0 and held-out counts >= 0")
        if self.max_length < 8:
            raise ValueError(f"max_length must be >= 8, got {self.max_length}")

    def task(self) -> ArithTask:
        config = ArithConfig(self.min_ops, self.max_ops, self.operand_digits, self.max_value)
        fmt = get_format(self.step_format)
        return ArithTask(config, self.task_seed, self.validation_per_level, self.test_per_level, fmt)


def load_model_and_tokenizer(cfg: PolicyConfig, size: TinyModelConfig, seed: int):
    if cfg.model_name_or_path is None:
        tokenizer = build_char_tokenizer(cfg.max_length)
        return build_tiny_model(size, tokenizer, seed), tokenizer
    path = check_model_path(cfg.model_name_or_path, "model_name_or_path")
    tokenizer = load_tokenizer(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return load_policy(path), tokenizer


CONFIG_TYPES = (PolicyConfig, TinyModelConfig, TrainingConfig)


def train_policy(cfg: PolicyConfig, size: TinyModelConfig, args: TrainingConfig) -> Path:
    """SFT of the policy on reference solutions (module docstring); returns the checkpoint folder."""
    prepare_training(cfg, args, "training.policy")
    task = cfg.task()
    fmt = task.step_format
    splits = task.splits(cfg.train_per_level)
    model, tokenizer = load_model_and_tokenizer(cfg, size, args.seed)
    stamp(model, fmt.to_dict())
    log.info("model: %.2fM parameters", model.num_parameters() / 1e6)

    def examples(questions):
        return [(fmt.prompt(q.text), q.reference_steps()) for q in questions]

    train = build_sft_dataset(tokenizer, fmt, examples(splits.train), cfg.max_length, "train")
    val = build_sft_dataset(tokenizer, fmt, examples(splits.validation), cfg.max_length, "validation")
    trainer, metrics = run_sft(model, tokenizer, args, train, val)
    out = Path(args.output_dir)
    if trainer.is_world_process_zero():
        task.save(out)
        write_model_card(
            out, "Tiny arith policy", "A Llama-style causal LM trained by SFT on reference step-by-step solutions of "
            f"the arith task (`task.json` holds the task and its splits); prompts in step format `{fmt.name}`.",
            cfg.model_name_or_path, None, ["policy", "arith"], metrics, {**asdict(cfg), **asdict(size)},
        )  # fmt: skip
        (out / "train_metrics.json").write_text(
            json.dumps({**metrics, "size": asdict(size), "log_history": trainer.state.log_history}, indent=2)
        )
    log.info("saved policy to %s (validation loss %.4f)", out, metrics["eval_loss"])
    end_distributed(trainer)
    return out


@cli
def main(argv: list[str] | None = None) -> Path:
    return train_policy(*parse_config(CONFIG_TYPES, argv))


if __name__ == "__main__":
    main()
