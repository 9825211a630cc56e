"""Train a process reward model (or, with `orm: true`, an outcome reward model).

    python -m training.prm --config recipes/arith-tiny/prm_linear.yaml
    accelerate launch --config_file recipes/accelerate_configs/ddp.yaml -m training.prm \\
        --config recipes/arith-tiny/prm_linear.yaml
    accelerate launch --config_file recipes/accelerate_configs/multi_node.yaml \\
        --machine_rank R --main_process_ip HOST -m training.prm --config ...   # on every node

Two heads (`head`), both read per step as the step format lays the steps out, both trained by
BCE on soft or hard step targets:
- `linear`: the policy's backbone with a one-logit token-classification head
  (`AutoModelForTokenClassification`) read at the last token of each step, every other token
  masked; the whole model is fine-tuned (DDP, DeepSpeed, FSDP, LoRA as launched).
- `likelihood`: the policy's own log-likelihood of each step, through a fitted head of four
  numbers (`search.verifiers.likelihood`, `training.likelihood_prm`); the backbone is kept as it is.
The checkpoint is a plain HF folder whose config carries the step format, the head, the label
kind and the layout. `layout: trl` tokenizes a solution as TRL's `PRMTrainer.tokenize_row` does
(BOS, the raw question, each step and separator on their own) instead of the step-format text in
one go, so that its two-label export (`training.export_prm`) reads in TRL's tools as here.

`dataset` is one of our stepwise datasets, or TRL's stepwise-supervision schema (boolean labels,
raw prompts) as a Hub id, a local JSONL file or a folder of split files (`data.stepwise`): its
rows are written in the step format (`step_format`, required then) before training, and the
model card says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import DatasetDict
from transformers import (
    AutoModelForTokenClassification,
    EarlyStoppingCallback,
    IntervalStrategy,
    Trainer,
)

from core.checkpoints import check_model_path, load_model, load_tokenizer, stamp
from core.config import UserError, cli, parse_config
from core.identity import write_checksums
from core.outputs import OutputGuard
from data.shards import dataset_format
from data.stepwise import is_rendered, load_stepwise, render_rows, rendering_note
from search.step_format import StepFormat, get_format
from search.verifiers.aggregation import check_aggregation
from search.verifiers.layouts import LAYOUTS
from search.verifiers.verifier import HEADS
from training.distributed import end_distributed, fix_cpu_deepspeed_state
from training.entry import TrainingConfig, prepare_training
from training.likelihood_prm import train_likelihood_head
from training.prm_card import write_prm_card
from training.prm_data import tokenize_rows
from training.prm_trainer import make_prm_trainer

log = logging.getLogger(__name__)


@dataclass
class PRMConfig(OutputGuard):
    model_name_or_path: str = "outputs/arith-tiny/policy"  # the policy, or any HF causal LM
    dataset: str = "outputs/arith-tiny/prm_data/dataset"  # ours (load_from_disk), or TRL schema: Hub id, JSONL, folder
    label_column: str = "labels"  # or mc_values (soft) / hard_labels
    step_format: str | None = None  # default: the dataset's (step_format.json, written by our builders)
    orm: bool = False  # train on the last step's label only
    head: str = "linear"  # "linear" (token classification, fine-tuned) or "likelihood" (search.verifiers.likelihood)
    layout: str = "native"  # linear head: "native" (the step-format text in one go) or "trl" (TRL's tokenize_row)
    aggregation: str = "last"  # stored in the checkpoint: the runtime's default step-score aggregation
    max_length: int = 256  # the most tokens a training row may have: longer rows are dropped and counted, never cut
    use_lora: bool = False  # train LoRA adapters (peft; merged into a plain checkpoint at the end)
    lora_r: int = 16  # LoRA rank
    lora_alpha: int = 32  # LoRA scaling
    lora_dropout: float = 0.05  # LoRA dropout
    lora_target_modules: str = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"  # comma-separated module names
    early_stopping_patience: int = 3  # evaluations without a better validation loss; 0 = off

    def __post_init__(self) -> None:
        if self.step_format is not None:
            get_format(self.step_format)
        check_aggregation(self.aggregation)
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.head == "likelihood" and self.layout != "native":
            raise ValueError("the likelihood head reads the step-format text: layout must be native")
        if self.head == "likelihood" and self.use_lora:
            raise ValueError("the likelihood head keeps the backbone as it is: use_lora does not apply")
        if self.orm and self.aggregation != "last":
            raise ValueError("an ORM scores the last step only: aggregation must be 'last'")
        if self.max_length < 8:
            raise ValueError("max_length must be >= 8")
        if self.lora_r < 1 or self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1:
            raise ValueError("lora_r must be >= 1, lora_alpha > 0 and lora_dropout in [0, 1)")
        if self.early_stopping_patience < 0:
            raise ValueError("early_stopping_patience must be >= 0 (0: off)")


CONFIG_TYPES = (PRMConfig, TrainingConfig)


def load_splits(cfg: PRMConfig) -> tuple[DatasetDict, StepFormat, dict[str, int] | None]:
    """The dataset's splits with the label column as `labels`, and the step format they are written in. A
    dataset that carries no step format of ours is TRL's schema, written in `step_format` here; the counts of
    what that changed come last (None for ours)."""
    data = load_stepwise(cfg.dataset)  # a missing dataset is named before its format is asked for
    fmt = dataset_format(cfg.dataset, cfg.step_format)
    missing = {"prompt", "completions", cfg.label_column} - set(data["train"].column_names)
    if missing:
        raise UserError(f"{cfg.dataset}: missing columns {sorted(missing)}")
    if cfg.label_column != "labels":
        data = data.remove_columns("labels").rename_column(cfg.label_column, "labels")
    if is_rendered(cfg.dataset):
        return data, fmt, None
    data, changed = render_rows(data, fmt)
    log.info("%s: TRL stepwise rows written in step format %r: %s", cfg.dataset, fmt.name, changed or "no change")
    return data, fmt, changed


def load_backbone(cfg: PRMConfig):
    path = check_model_path(cfg.model_name_or_path, "model_name_or_path")
    tokenizer = load_tokenizer(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_model(
        AutoModelForTokenClassification, path, "model_name_or_path", new_weights=("score.*",), num_labels=1
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


# Training arguments the likelihood head's fit (four numbers, closed form on the main process) never uses
IGNORED_BY_LIKELIHOOD = ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
                         "gradient_accumulation_steps", "weight_decay", "warmup_steps", "lr_scheduler_type",
                         "deepspeed", "fsdp")  # fmt: skip


def refuse_training_settings(args: TrainingConfig) -> None:
    """The likelihood head trains nothing across processes and uses no optimiser: a distributed launch or an
    optimiser setting given to it is an error that says so (fine-tune with `head: linear` instead)."""
    defaults = TrainingConfig(output_dir=args.output_dir)
    given = [k for k in IGNORED_BY_LIKELIHOOD if getattr(args, k) != getattr(defaults, k)]
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if processes > 1 or given:
        why = f"{processes} processes" if processes > 1 else ", ".join(given)
        raise UserError(
            f"head likelihood fits four numbers on one process and uses no optimiser ({why} would be "
            "ignored): fine-tune across processes with head: linear (recipes/arith-tiny/prm_linear.yaml)"
        )


def label_kind(data: DatasetDict, cfg: PRMConfig) -> str:
    """Soft or hard: by column name, else from the PRM-data builder's settings, else from the values."""
    by_column = {"mc_values": "soft", "hard_labels": "hard"}
    if cfg.label_column in by_column:
        return by_column[cfg.label_column]
    settings = Path(cfg.dataset).parent / "settings.json"
    built_as = json.loads(settings.read_text()).get("settings", {}).get("label_kind") if settings.is_file() else None
    if built_as:
        return built_as
    values = {float(v) for row in data["train"]["labels"] for v in row}
    return "hard" if values <= {0.0, 1.0} else "soft"


def parameter_fingerprint(model: torch.nn.Module) -> str:
    """A hash of every parameter: equal across ranks iff their weights are identical."""
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(param.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def write_rank_record(trainer: Trainer, out: Path) -> None:
    """What this rank ran as (distributed type, world size) and its weights' fingerprint."""
    state = trainer.accelerator.state
    record = {
        "distributed_type": str(state.distributed_type).split(".")[-1],
        "num_processes": state.num_processes,
        "process_index": state.process_index,
        "fingerprint": parameter_fingerprint(trainer.accelerator.unwrap_model(trainer.model)),
    }
    (out / "ranks").mkdir(parents=True, exist_ok=True)
    (out / "ranks" / f"rank{state.process_index}.json").write_text(json.dumps(record))


def train_prm(cfg: PRMConfig, args: TrainingConfig) -> Path:
    """A PRM or ORM on stepwise data (module docstring); returns the checkpoint folder."""
    prepare_training(cfg, args, "training.prm")
    fix_cpu_deepspeed_state(args)
    data, fmt, rendered = load_splits(cfg)
    metadata = {"kind": "orm" if cfg.orm else "prm", "head": cfg.head, "label_kind": label_kind(data, cfg),
                "aggregation": cfg.aggregation, "layout": cfg.layout}  # fmt: skip
    note = rendering_note(cfg.dataset, fmt, rendered) if rendered is not None else ""
    if cfg.head == "likelihood":
        refuse_training_settings(args)
        return train_likelihood_head(cfg, args, data, fmt, metadata, note)
    model, tokenizer = load_backbone(cfg)
    try:
        train = tokenize_rows(data["train"], tokenizer, fmt, cfg.max_length, "train", cfg.orm, cfg.layout)
        val = tokenize_rows(data["validation"], tokenizer, fmt, cfg.max_length, "validation", cfg.orm, cfg.layout)
    except ValueError as err:
        raise UserError(str(err)) from None
    except KeyError:  # no validation split (validation_fraction 0): train without evaluating
        log.warning("%s has no validation split: no evaluation, no early stopping, the last checkpoint", cfg.dataset)
        val, args.eval_strategy, args.load_best_model_at_end = None, IntervalStrategy.NO, False
    stamp(model, fmt.to_dict(), metadata)
    if cfg.use_lora:
        from peft import LoraConfig, TaskType, get_peft_model

        lora = LoraConfig(
            task_type=TaskType.TOKEN_CLS,
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=cfg.lora_target_modules.split(","),
        )
        model = get_peft_model(model, lora)
    callbacks = []
    if cfg.early_stopping_patience > 0 and args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))

    trainer = make_prm_trainer(model, tokenizer, args, train, val, callbacks)
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    out = Path(args.output_dir)
    write_rank_record(trainer, out)
    metrics = trainer.evaluate() if val is not None else {"eval_loss": float("nan")}
    if cfg.use_lora:  # merge so that the checkpoint is a plain model that from_pretrained loads
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        if trainer.is_world_process_zero():
            merged.save_pretrained(out)
            tokenizer.save_pretrained(out)
    else:
        trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        write_checksums(out)
        write_prm_card(out, cfg, fmt.name, metadata, metrics, note)
        history = trainer.state.log_history
        (out / "train_metrics.json").write_text(json.dumps({**metrics, "log_history": history}, indent=2))
    log.info("saved %s to %s (validation loss %.4f)", "ORM" if cfg.orm else "PRM", out, metrics["eval_loss"])
    end_distributed(trainer)
    return out


@cli
def main(argv: list[str] | None = None) -> Path:
    return train_prm(*parse_config(CONFIG_TYPES, argv))


if __name__ == "__main__":
    main()
