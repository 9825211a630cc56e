"""Revision model: SFT of the policy on revision trajectories (loss on the completion only).

    python -m training.revision --config recipes/arith-tiny/revision.yaml
    accelerate launch --config_file recipes/accelerate_configs/ddp.yaml -m training.revision --config ...

Starts from the policy checkpoint (its step format and task travel along) and trains on the
prompt-completion rows of `data.build_revision_data`: the prompt holds the question and the
previous attempts, the completion is a correct answer.

Checkpoint choice. Snell et al. keep a checkpoint a little past the validation-loss minimum,
because the revision model is used on its own (on-policy) attempts, unlike the off-policy
validation set. Here the run evaluates every `eval_steps` and, with `load_best_model_at_end`,
keeps the minimum-validation-loss checkpoint: on the tiny task the validation questions'
attempts come from the same policy as at test time, so the minimum is the honest choice.
`train_metrics.json` keeps the validation curve, so another checkpoint can be picked from it.

Replay. A small model fine-tuned on long revision prompts alone forgets how to solve: the tiny
policy's loss on first attempts (no history) went from 0.05 to 0.26 nats per token.
`replay_per_level` mixes in that many fresh training questions per level with their reference
solutions as first attempts (arith tasks only; 0 = the paper's recipe, revision rows only).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from datasets import DatasetDict, load_from_disk

from core.cards import write_model_card
from core.checkpoints import check_model_path, load_policy, load_tokenizer, stamp
from core.config import UserError, cli, parse_config
from core.outputs import OutputGuard
from data.arith import ArithTask
from data.shards import dataset_format
from search.step_format import StepFormat
from training.distributed import end_distributed
from training.entry import TrainingConfig, prepare_training
from training.sft import build_sft_dataset, run_sft

log = logging.getLogger(__name__)


@dataclass
class RevisionConfig(OutputGuard):
    model_name_or_path: str = "outputs/arith-tiny/policy"  # the policy the revision model starts from
    dataset: str = "outputs/arith-tiny/revision_data/dataset"  # prompt-completion rows (load_from_disk folder)
    max_length: int = 256  # at most the model's context; longer rows are dropped and counted, never truncated
    replay_per_level: int = 0  # first attempts with reference solutions mixed in (see the module docstring)

    def __post_init__(self) -> None:
        if self.max_length < 8 or self.replay_per_level < 0:
            raise ValueError("max_length must be >= 8 and replay_per_level >= 0")


CONFIG_TYPES = (RevisionConfig, TrainingConfig)


def load_rows(path: str) -> DatasetDict:
    if not Path(path).is_dir():
        raise UserError(f"dataset not found: {path} (run make build-revision-data)")
    data = load_from_disk(path)
    if not isinstance(data, DatasetDict) or not {"train", "validation"} <= set(data):
        raise UserError(f"{path}: expected a DatasetDict with train and validation splits")
    missing = {"prompt", "completion"} - set(data["train"].column_names)
    if missing:
        raise UserError(f"{path}: missing columns {sorted(missing)}")
    return data


def examples(rows, fmt: StepFormat, split: str) -> list[tuple[str, list[str]]]:
    out = []
    for i, row in enumerate(rows):
        steps = fmt.split_steps(row["completion"])
        if fmt.question_of(row["prompt"]) is None or not steps:
            raise UserError(f"{split} row {i}: prompt not in step format {fmt.name!r} or empty completion")
        out.append((row["prompt"], steps))
    return out


def train_revision(cfg: RevisionConfig, args: TrainingConfig) -> Path:
    """The revision model by SFT on revision trajectories (module docstring); returns the checkpoint folder."""
    prepare_training(cfg, args, "training.revision")
    policy = check_model_path(cfg.model_name_or_path, "model_name_or_path")
    fmt = dataset_format(cfg.dataset, None)
    arith = (Path(policy) / ArithTask.FILE).is_file()
    if cfg.replay_per_level and not arith:
        raise UserError("replay_per_level needs an arith policy (reference solutions of fresh questions)")
    data = load_rows(cfg.dataset)
    tokenizer = load_tokenizer(policy)
    model = load_policy(policy)
    stamp(model, fmt.to_dict())  # the revision model is prompted as its data were
    context = getattr(model.config, "max_position_embeddings", None) or cfg.max_length
    limit = min(cfg.max_length, context)  # never train past the model's context
    if limit < cfg.max_length:
        log.info("max_length %d exceeds the model's context: using %d", cfg.max_length, limit)
    replayed = []
    if cfg.replay_per_level:  # fresh arith questions, may repeat
        replay = ArithTask.load(policy).splits(cfg.replay_per_level, train_stream="revision-replay").train
        replayed = [(fmt.revision_prompt(q.text, []), q.reference_steps()) for q in replay]
    train = build_sft_dataset(tokenizer, fmt, examples(data["train"], fmt, "train") + replayed, limit, "train")
    val = build_sft_dataset(tokenizer, fmt, examples(data["validation"], fmt, "validation"), limit, "validation")
    trainer, metrics = run_sft(model, tokenizer, args, train, val)
    out = Path(args.output_dir)
    if trainer.is_world_process_zero():
        if arith:
            shutil.copy(Path(policy) / ArithTask.FILE, out / ArithTask.FILE)  # the task travels with the model
        write_model_card(
            out, "Revision model", "Fine-tuned to revise: the prompt holds a question and previous attempts (Snell et "
            "al. 2024), the completion is a correct answer; loss on the completion only.",
            policy, cfg.dataset, ["revision-model"], metrics, asdict(cfg),
        )  # fmt: skip
        history = trainer.state.log_history  # the validation curve, for picking another checkpoint
        (out / "train_metrics.json").write_text(json.dumps({**metrics, "log_history": history}, indent=2))
    log.info("saved revision model to %s (validation loss %.4f)", out, metrics["eval_loss"])
    end_distributed(trainer)
    return out


@cli
def main(argv: list[str] | None = None) -> Path:
    return train_revision(*parse_config(CONFIG_TYPES, argv))


if __name__ == "__main__":
    main()
