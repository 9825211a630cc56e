"""Public PRMs behind the runtime's `Verifier` protocol: TRL-style, Math-Shepherd/RLHFlow-style and
Qwen2.5-Math-PRM-style checkpoints (`search.verifiers.settings` describes the kinds and their keys).

The runtime hands a verifier the POLICY's rendered prompts and steps. An `AdapterVerifier` takes
the question back out of each prompt (the policy format's `question_of`; a revision prompt's
history sits in the question slot and travels with it), writes the question and the steps in the
verifier's own format (`search.verifiers.layouts`), runs the model once per solution in batches
and reads each step's probability at the token its layout names. It keeps no prefix cache: tree
search works as with any verifier, computing every token.

`verifier_kind` picks the kind; unset, the checkpoint's config decides: our `reward_model`
metadata -> native, the `Qwen2ForProcessRewardModel` architecture -> qwen_prm, a two-label
token-classification model -> trl. A causal LM cannot tell how it was trained: it needs
`verifier_kind: causal_lm`. A TRL checkpoint does not record its step separator: `trl_separator`
takes `verifier_step_tag`, else the `step_separator` its config declares (this project's TRL-layout
exports write it), else TRL's default "\\n" with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

from core.checkpoints import REWARD_MODEL_KEY, Metadata, load_model, load_tokenizer
from core.config import UserError
from search.generation.cached_forward import token_values
from search.step_format import StepFormat
from search.verifiers.layouts import Rendered, SeparatorLayout, TagLayout, Templates, TurnLayout
from search.verifiers.qwen_prm import ARCHITECTURE as QWEN_ARCHITECTURE
from search.verifiers.qwen_prm import load_qwen_prm
from search.verifiers.settings import ADAPTER_KINDS, DEFAULTS, VerifierSettings

PROBE = ("What is 1 + 1?", ["1 + 1 = 2", "The answer is: 2"])  # rendered at load: a bad tag fails there
Read = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SEPARATOR_KEY = "step_separator"  # in a TRL checkpoint's config.json: the separator it was trained with (TRL's name)
log = logging.getLogger(__name__)


def detect_kind(config, path: str, settings: VerifierSettings) -> str:
    """The verifier kind: `verifier_kind` if set, else what the checkpoint's config says."""
    if settings.verifier_kind is not None:
        return settings.verifier_kind
    architectures = list(getattr(config, "architectures", None) or [])
    if Metadata.of(config).reward_model:
        return "native"
    if QWEN_ARCHITECTURE in architectures:
        return "qwen_prm"
    if getattr(config, "num_labels", None) == 2 and any(a.endswith("ForTokenClassification") for a in architectures):
        return "trl"
    raise UserError(f"{path}: not a reward model checkpoint of this project (no {REWARD_MODEL_KEY} in its config) nor "
                    f"one whose kind its config tells (architectures {architectures or 'unknown'}): set verifier_kind "
                    f"to one of {', '.join(ADAPTER_KINDS)} (docs/verifiers.md)")  # fmt: skip


class AdapterVerifier:
    """A public PRM read through its own layout; see the module docstring."""

    aggregation = "last"  # a public checkpoint carries no default: Snell et al.'s (`aggregation:` overrides it)

    def __init__(self, name: str, model, tokenizer, policy_format: StepFormat, layout, read: Read,
                 batch_size: int = 64):  # fmt: skip
        self.name, self.model, self.tokenizer, self.format = name, model.eval(), tokenizer, policy_format
        self.layout, self.read, self.batch_size = layout, read, batch_size
        self.max_tokens = getattr(model.config, "max_position_embeddings", None)
        self.pad_id = next((i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id) if i is not None), 0)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def render(self, prompts: Sequence[str], solutions: Sequence[Sequence[str]]) -> list[Rendered]:
        """Each (policy prompt, steps) pair in the verifier's format; one longer than its context is an error."""
        out = [self._render(prompt, steps) for prompt, steps in zip(prompts, solutions, strict=True)]
        for rendered in out:
            if self.max_tokens is not None and len(rendered.ids) > self.max_tokens:
                raise UserError(f"verifier {self.name}: a solution of {len(rendered.ids)} tokens is longer than its "
                                f"context of {self.max_tokens}: lower max_new_tokens (or the prompt), or use a "
                                "verifier with a longer context")  # fmt: skip
        return out

    def _render(self, prompt: str, steps: Sequence[str]) -> Rendered:
        question = self.format.question_of(prompt)
        if question is None:
            raise ValueError(f"prompt {prompt[:60]!r} is not in the policy's step format {self.format.name!r}")
        try:
            return self.layout.render(self.tokenizer, question, steps)
        except ValueError as err:
            raise UserError(f"verifier {self.name}: {err}") from None

    def count_tokens(self, prompts: Sequence[str], solutions: Sequence[Sequence[str]]) -> list[int]:
        """Tokens each pair takes, whether or not it fits the context (`render` refuses one that does not)."""
        return [len(self._render(prompt, steps).ids) for prompt, steps in zip(prompts, solutions, strict=True)]

    def score(self, prompts: Sequence[str], solutions: Sequence[Sequence[str]]) -> list[list[float]]:
        rendered = self.render(prompts, solutions)
        values = token_values(self.model, [r.ids for r in rendered], self.pad_id, self.batch_size, self.read)
        return [v[r.reads].tolist() for v, r in zip(values, rendered, strict=True)]


def class_one(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """A two-class head's probability of class 1 ("right") at each token."""
    return logits.float().softmax(-1)[..., 1]


def good_vs_bad(good: int, bad: int) -> Read:
    """A causal LM's probability of the good token against the bad one, as its next token."""

    def read(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return logits[..., [good, bad]].float().softmax(-1)[..., 0]

    return read


def token_id(tokenizer, text: str, what: str, path: str) -> int:
    """The id the public usage code takes for a token text: the last of its encoding."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise UserError(f"{path}: {what} {text!r} is not in its tokenizer")
    return ids[-1]


def trl_separator(config, settings: VerifierSettings, path: str) -> str:
    """The step separator of a TRL checkpoint (see the module docstring); a key that contradicts it is an error."""
    declared, chosen = getattr(config, SEPARATOR_KEY, None), settings.verifier_step_tag
    if chosen is not None and declared is not None and chosen != declared:
        raise UserError(f"{path}: verifier_step_tag {chosen!r} differs from the separator {declared!r} its config "
                        f"declares ({SEPARATOR_KEY}): leave verifier_step_tag unset")  # fmt: skip
    if chosen is not None or declared is not None:
        return chosen if chosen is not None else declared
    default = DEFAULTS["trl"]["step_tag"]
    log.warning("%s: its config declares no %s: read with TRL's default separator %r; if it was trained with "
                "another, set verifier_step_tag", path, SEPARATOR_KEY, default)  # fmt: skip
    return default


def load_adapter(path: str, kind: str, config, policy_format: StepFormat, settings: VerifierSettings,
                 batch_size: int, device: str) -> AdapterVerifier:  # fmt: skip
    """A public verifier of `kind` (not native) at `path`, a local folder or a Hub id, whose config is `config`."""
    if kind == "trl" and getattr(config, "num_labels", None) != 2:
        raise UserError(f"{path}: verifier_kind trl needs a token-classification head with 2 labels, "
                        f"not {getattr(config, 'num_labels', None)}")  # fmt: skip
    ours = Metadata.of(config).reward_model or {}
    if kind == "trl" and ours and ours.get("layout", "native") != "trl":
        raise UserError(f"{path}: a PRM of this project that reads a solution as one text (layout "
                        f"{ours.get('layout', 'native')}), not TRL's: leave verifier_kind unset")  # fmt: skip
    if kind == "qwen_prm" and config.model_type != "qwen2":
        raise UserError(f"{path}: verifier_kind qwen_prm needs a Qwen2 checkpoint, not {config.model_type!r}")
    values = settings.resolved(kind)
    text = Templates(values["prompt_template"], values["step_template"])
    tokenizer = load_tokenizer(path)
    if kind == "trl":
        layout, read = SeparatorLayout(text, trl_separator(config, settings, path)), class_one
    elif kind == "qwen_prm":
        layout = TagLayout(text, values["step_tag"], values["step_join"], True, values["system_prompt"])
        read = class_one
    else:
        good = token_id(tokenizer, values["good_token"], "verifier_good_token", path)
        bad = token_id(tokenizer, values["bad_token"], "verifier_bad_token", path)
        if good == bad:
            raise UserError(f"{path}: the good and bad tokens are one token of its tokenizer: set others")
        if settings.verifier_chat_template:
            layout = TurnLayout(text, values["good_token"], values["system_prompt"])
        else:
            layout = TagLayout(text, values["step_tag"], values["step_join"])
        read = good_vs_bad(good, bad)
    try:  # a tag missing from the tokenizer or a template that does not fit fails here, before the weights load
        layout.render(tokenizer, *PROBE)
    except ValueError as err:
        raise UserError(f"verifier {path}: {err}") from None
    if kind == "trl":
        model = load_model(AutoModelForTokenClassification, path, "verifier checkpoint")
    elif kind == "qwen_prm":
        model = load_qwen_prm(path, settings.trust_remote_code)
    else:
        model = load_model(AutoModelForCausalLM, path, "verifier checkpoint")
    return AdapterVerifier(path, model.to(device), tokenizer, policy_format, layout, read, batch_size)
