"""Verifiers: per-step scores of solutions, and how a solution's steps become one score.

`load_verifier` loads a verifier by path and kind (`search.verifiers.settings`). A PRM/ORM
checkpoint of this project (`native`) is refused if its step format differs from the one in
use, and its head comes from its metadata (`reward_model.head`): `PRMVerifier` for the
token-classification head (the score of step i is the sigmoid of the one logit, or for a
two-label export (`training.export_prm`) the softmax probability of label 1, at the last token of
step i, the solution tokenized in the checkpoint's layout, `reward_model.layout`: `native` or TRL's,
`search.verifiers.layouts.encode_in_layout`) and `LikelihoodVerifier` for the `likelihood` head
(`search.verifiers.likelihood`). Both score
every step of a solution in ONE forward pass, and both can reuse prefixes
(`search.generation.prefix_cache`): within `reuse_prefixes()` a solution whose prefix was scored before
computes only its new tokens, with the same scores. Public PRMs (TRL, Math-Shepherd/RLHFlow,
Qwen2.5-Math-PRM) are `search.verifiers.adapters.AdapterVerifier`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch
from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

from core.checkpoints import REWARD_MODEL_KEY, Metadata, check_model_path, load_config, load_model, load_tokenizer
from core.config import UserError
from search.generation.cached_forward import token_values
from search.generation.prefix_cache import ReusesPrefixes
from search.generation.settings import torch_device
from search.step_format import StepFormat, check_compatible
from search.verifiers.adapters import AdapterVerifier, detect_kind, load_adapter
from search.verifiers.layouts import LAYOUTS, encode_in_layout
from search.verifiers.likelihood import LikelihoodHead, step_features, step_log_likelihoods
from search.verifiers.settings import VerifierSettings

HEADS = ("linear", "likelihood")


class Verifier(Protocol):
    aggregation: str  # how this verifier's step scores become a solution score by default

    def score(self, prompts: Sequence[str], solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        """Per-step scores in [0, 1] for each (rendered prompt, steps) pair."""
        ...

    def count_tokens(self, prompts: Sequence[str], solutions: Sequence[Sequence[str]]) -> list[int]:
        """How many tokens scoring each pair reads (for the compute accounting)."""
        ...


def score_solutions(
    verifier: Verifier | None, prompts: Sequence[str], solutions: Sequence[Sequence[str]]
) -> tuple[list[list[float]], list[int]]:
    """Per-step scores and tokens read for each (prompt, steps) pair, in one batched call; a pair
    with no steps, or every pair without a verifier, gets no scores and 0 tokens."""
    scores: list[list[float]] = [[] for _ in solutions]
    tokens = [0] * len(solutions)
    todo = [k for k, steps in enumerate(solutions) if steps] if verifier is not None else []
    if todo:
        todo_prompts, todo_steps = [prompts[k] for k in todo], [solutions[k] for k in todo]
        counted = verifier.count_tokens(todo_prompts, todo_steps)
        for k, s, n in zip(todo, verifier.score(todo_prompts, todo_steps), counted, strict=True):
            scores[k], tokens[k] = s, n
    return scores, tokens


def load_verifier(
    path: str | Path,
    step_format: StepFormat,
    batch_size: int = 64,
    device: str | None = None,
    settings: VerifierSettings | None = None,
) -> PRMVerifier | LikelihoodVerifier | AdapterVerifier:
    """The verifier at `path` (a local folder or a Hub id) of the kind `settings` name or its config tells,
    for solutions in `step_format` (see the module docstring)."""
    path = check_model_path(str(path), "verifier checkpoint")
    config = load_config(path, "verifier checkpoint")
    kind = detect_kind(config, path, settings or VerifierSettings())
    device = torch_device(device)
    if kind != "native":
        return load_adapter(path, kind, config, step_format, settings or VerifierSettings(), batch_size, device)
    try:
        check_compatible(step_format, Metadata.of(config).step_format, path)
    except ValueError as err:
        raise UserError(str(err)) from None
    metadata = Metadata.of(config).reward_model or {}
    head = metadata.get("head", "linear")  # checkpoints from before the likelihood head are linear
    if not metadata or head not in HEADS:
        raise UserError(
            f"{path}: not a reward model checkpoint of this project (config.json has no {REWARD_MODEL_KEY})"
        )
    tokenizer = load_tokenizer(path)
    aggregation = metadata.get("aggregation", "last")
    if head == "likelihood":
        model = load_model(AutoModelForCausalLM, path, "verifier checkpoint").to(device)
        scorer = LikelihoodHead.from_dict(metadata["likelihood_head"])
        return LikelihoodVerifier(model, tokenizer, step_format, scorer, batch_size, aggregation)
    if getattr(config, "num_labels", None) not in (1, 2):
        raise UserError(f"{path}: not a reward model checkpoint (expected a token-classification head with 1 logit, "
                        "or 2 labels)")  # fmt: skip
    layout = metadata.get("layout", "native")  # checkpoints from before the TRL layout read one text
    if layout not in LAYOUTS:
        raise UserError(f"{path}: unknown layout {layout!r} in its {REWARD_MODEL_KEY} (known: {', '.join(LAYOUTS)})")
    model = load_model(AutoModelForTokenClassification, path, "verifier checkpoint").to(device)
    return PRMVerifier(model, tokenizer, step_format, batch_size, aggregation, layout)


class PRMVerifier(ReusesPrefixes):
    """A trained PRM (or ORM) checkpoint; see the module docstring."""

    def __init__(self, model, tokenizer, step_format: StepFormat, batch_size: int = 64, aggregation: str = "last",
                 layout: str = "native"):  # fmt: skip
        self.model, self.tokenizer, self.format, self.batch_size = model.eval(), tokenizer, step_format, batch_size
        self.aggregation, self.layout = aggregation, layout

    def num_parameters(self) -> int:
        return self.model.num_parameters()

    def encode(self, prompts: Sequence[str], solutions: Sequence[Sequence[str]]) -> list:
        return [encode_in_layout(self.tokenizer, self.format, self.layout, p, s)
                for p, s in zip(prompts, solutions, strict=True)]  # fmt: skip

    def count_tokens(self, prompts: Sequence[str], solutions: Sequence[Sequence[str]]) -> list[int]:
        return [len(enc.ids) for enc in self.encode(prompts, solutions)]

    def score(self, prompts: Sequence[str], solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        encoded = self.encode(prompts, solutions)
        ids = [enc.ids for enc in encoded]
        pad = self.tokenizer.pad_token_id
        probs = token_values(self.model, ids, pad, self.batch_size, _probability, cache=self.prefix_cache)
        return [p[enc.step_ends].tolist() for p, enc in zip(probs, encoded, strict=True)]


def _probability(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The head's probability at each token: the sigmoid of one logit, or of label 1 against label 0 (the
    softmax of a two-label export)."""
    if logits.shape[-1] == 2:
        return torch.sigmoid((logits[..., 1] - logits[..., 0]).float())
    return torch.sigmoid(logits[..., 0].float())


class LikelihoodVerifier(ReusesPrefixes):
    """A `likelihood`-head PRM: a causal LM and the fitted head over its step log-likelihoods."""

    def __init__(self, model, tokenizer, step_format: StepFormat, head: LikelihoodHead, batch_size: int = 64,
                 aggregation: str = "last"):  # fmt: skip
        self.model, self.tokenizer, self.format, self.head = model.eval(), tokenizer, step_format, head
        self.batch_size, self.aggregation = batch_size, aggregation
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def num_parameters(self) -> int:
        return self.model.num_parameters()

    def count_tokens(self, prompts: Sequence[str], solutions: Sequence[Sequence[str]]) -> list[int]:
        return [len(self.format.encode(self.tokenizer, p, s).ids) for p, s in zip(prompts, solutions, strict=True)]

    def score(self, prompts: Sequence[str], solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        encoded = [self.format.encode(self.tokenizer, p, steps) for p, steps in zip(prompts, solutions, strict=True)]
        lls = step_log_likelihoods(self.model, encoded, self.tokenizer.pad_token_id, self.batch_size, self.prefix_cache)
        return [torch.sigmoid(self.head.logits(step_features(ll))).tolist() for ll in lls]
