"""Fit a `likelihood`-head PRM (`search.verifiers.likelihood`): the backbone stays as it is, the head is
fitted by BCE on the step labels. Called by `training.prm` with `head: likelihood`.

One forward pass per row gives every step's log-likelihood; the three features per step and
the labels go to an L-BFGS fit of four numbers, so training takes the time of one pass over
the data. The checkpoint is the backbone as a plain causal LM folder (`AutoModelForCausalLM`
loads it) whose config carries the step format and `reward_model` with the fitted head.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from accelerate import PartialState
from transformers import AutoModelForCausalLM

from core.checkpoints import check_model_path, load_model, load_tokenizer, stamp
from core.config import UserError
from core.identity import write_checksums
from search.step_format import StepFormat
from search.verifiers.likelihood import LikelihoodHead, step_features, step_log_likelihoods
from training.prm_card import write_prm_card
from training.prm_data import encode_rows

log = logging.getLogger(__name__)


def features_and_targets(model, tokenizer, rows, fmt: StepFormat, cfg, split: str, batch_size: int):
    """All steps' features and labels of a split (an ORM keeps each row's last step only)."""
    try:
        encoded = encode_rows(rows, tokenizer, fmt, cfg.max_length, split)
    except ValueError as err:
        raise UserError(str(err)) from None
    lls = step_log_likelihoods(model, [tokens for tokens, _ in encoded], tokenizer.pad_token_id, batch_size)
    features = [step_features(ll)[-1:] if cfg.orm else step_features(ll) for ll in lls]
    targets = [torch.tensor(labels[-1:] if cfg.orm else labels) for _, labels in encoded]
    return torch.cat(features), torch.cat(targets).float()


def train_likelihood_head(cfg, args, data, fmt: StepFormat, metadata: dict, data_note: str = "") -> Path:
    """Fit the head on `data["train"]`, report the validation loss, save the checkpoint (main process); the
    model card adds `data_note` (how the dataset was written in the step format)."""
    state = PartialState()
    out = Path(args.output_dir)
    if state.is_main_process:  # four numbers: no data parallelism to gain
        path = check_model_path(cfg.model_name_or_path, "model_name_or_path")
        tokenizer = load_tokenizer(path)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = load_model(AutoModelForCausalLM, path, "model_name_or_path").eval()
        batch = args.per_device_eval_batch_size
        x, y = features_and_targets(model, tokenizer, data["train"], fmt, cfg, "train", batch)
        head = LikelihoodHead.fit(x, y)
        metrics = {"train_loss": _bce(head, x, y), "train_steps": len(y)}
        if "validation" in data:
            vx, vy = features_and_targets(model, tokenizer, data["validation"], fmt, cfg, "validation", batch)
            metrics.update(eval_loss=_bce(head, vx, vy), eval_steps=len(vy))
        stamp(model, fmt.to_dict(), {**metadata, "likelihood_head": head.to_dict()})
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        write_checksums(out)
        write_prm_card(out, cfg, fmt.name, metadata, metrics, data_note)
        (out / "train_metrics.json").write_text(json.dumps({**metrics, "head": head.to_dict()}, indent=2))
        log.info("saved likelihood-head %s to %s: %s", metadata["kind"].upper(), out, metrics)
    state.wait_for_everyone()
    return out


def _bce(head: LikelihoodHead, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.nn.functional.binary_cross_entropy_with_logits(head.logits(x), y))
