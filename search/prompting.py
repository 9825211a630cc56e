"""How a policy is prompted: its step format, plus a chat template or few-shot examples.

A checkpoint this project trained carries its exact format (`step_format` in config.json) and
is prompted with it. Any other model (an instruct or base model from the Hub) gets a
registered format (`gsm8k`, `math`, ...) rendered for it: instruct models through their chat
template with an optional system prompt, base models after an optional few-shot prefix
(Snell et al. prompt their base model 4-shot). The result is one `StepFormat` whose
`prompt_template` is the exact rendered prompt, stored in every dataset and checkpoint made
from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.checkpoints import load_tokenizer, read_metadata
from core.config import UserError
from search.questions import load_questions
from search.step_format import StepFormat, get_format, with_chat_template, with_few_shot


@dataclass
class PromptConfig:
    step_format: str | None = None  # registered step format (arith, gsm8k, math); default: the one the policy carries
    chat_template: bool = False  # render prompts with the tokenizer's chat template (instruct models)
    system_prompt: str | None = None  # system turn of the chat template
    few_shot: int = 0  # worked examples before each prompt (base models)
    few_shot_source: str | None = None  # JSONL of worked examples: question, answer and reference steps

    def __post_init__(self) -> None:
        if self.step_format is not None:
            get_format(self.step_format)
        if self.few_shot < 0:
            raise ValueError(f"few_shot must be >= 0, got {self.few_shot}")
        if self.few_shot and not self.few_shot_source:
            raise ValueError("few_shot needs few_shot_source (a JSONL of questions with reference steps)")
        if self.system_prompt and not self.chat_template:
            raise ValueError("system_prompt needs chat_template: true")

    @property
    def renders(self) -> bool:
        return self.chat_template or self.few_shot > 0


def stored_format(model: str) -> StepFormat | None:
    """The step format a checkpoint carries, or None."""
    try:
        stored = read_metadata(model, "policy checkpoint").step_format
        return StepFormat.from_dict(stored) if stored is not None else None
    except ValueError as err:
        raise UserError(f"{model}: {err}") from None


def resolve_format(model: str, prompting: PromptConfig, default: StepFormat | None = None) -> StepFormat:
    """The format to prompt `model` with (see the module docstring). `default` is the task's
    format, used when neither the checkpoint nor `prompting.step_format` names one."""
    stored = stored_format(model)
    if stored is not None:
        if prompting.renders:
            raise UserError(f"{model} carries its own prompt format: drop chat_template/few_shot")
        if prompting.step_format is not None and prompting.step_format != stored.name:
            raise UserError(f"{model} was trained with step format {stored.name!r}, not {prompting.step_format!r}")
        return stored
    if prompting.step_format is None and default is None:
        raise UserError(f"{model} carries no step format: set step_format")
    fmt = get_format(prompting.step_format) if prompting.step_format else default
    examples = []
    if prompting.few_shot:
        shots = [q for q in load_questions(prompting.few_shot_source) if q.steps][: prompting.few_shot]
        if len(shots) < prompting.few_shot:
            raise UserError(f"{prompting.few_shot_source}: fewer than {prompting.few_shot} examples with steps")
        examples = [(q.text, list(q.steps)) for q in shots]
    try:
        if prompting.chat_template:
            return with_chat_template(fmt, load_tokenizer(model), prompting.system_prompt, examples)
        return with_few_shot(fmt, examples) if examples else fmt
    except ValueError as err:
        raise UserError(f"{model}: {err}") from None
