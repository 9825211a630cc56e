"""How a public verifier wants a solution written, and at which tokens its step scores are read.

The runtime's steps come in the policy's format; a public PRM was trained on its own (its
separator, tags, chat template). A layout writes the question and the steps, as they are (never
re-split), in the verifier's format, tokenizes the text as the verifier's own usage code does,
and returns per step the index of the token whose output scores it:

- `SeparatorLayout` (TRL's PRMTrainer): BOS, the prompt, then each step followed by the step
  separator, every piece tokenized on its own as TRL does; read at the separator's last token.
  `trl_layout` is TRL's exactly (`PRMTrainer.tokenize_row`: the raw question as the prompt).
- `TagLayout` (Math-Shepherd; Qwen2.5-Math-PRM inside a chat): each step followed by a tag token,
  the whole text tokenized in one go; read at the tag, which must be one token.
- `TurnLayout` (RLHFlow): a chat whose user turns are the steps (the first with the question) and
  whose assistant turns are the good token; read at the token before each assistant answer.

A layout that cannot place a step's read token exactly (a tag that is not one token of the
tokenizer, a chat template that does not render turn by turn) raises ValueError, never a score
read elsewhere.

This project's own PRMs read a solution in one of two `LAYOUTS` (`reward_model.layout` in their
config, `encode_in_layout`): `native`, the step-format text tokenized in one go, or `trl`, TRL's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from search.step_format import Encoded, StepFormat, token_positions

LAYOUTS = ("native", "trl")  # how one of this project's PRMs reads a solution (see the module docstring)
PLACEHOLDER = "\x00steps\x00"  # stands for the assistant's turn while a chat frame is rendered


class Rendered(NamedTuple):
    """A solution as the verifier reads it."""

    ids: list[int]
    reads: list[int]  # per step: the index of the token whose output is the step's score


@dataclass(frozen=True)
class Templates:
    """The question and step text of a layout."""

    prompt_template: str  # {question}
    step_template: str  # {step}, optionally {n} (1-based)

    def prompt(self, question: str) -> str:
        return self.prompt_template.replace("{question}", question)

    def step(self, n: int, step: str) -> str:
        head, tail = self.step_template.split("{step}")
        return head.replace("{n}", str(n)) + step + tail.replace("{n}", str(n))


@dataclass(frozen=True)
class SeparatorLayout:
    """TRL's PRMTrainer.tokenize_row: [BOS] + prompt + (step + separator)..., each piece tokenized alone."""

    text: Templates
    separator: str

    def render(self, tokenizer: Any, question: str, steps: Sequence[str]) -> Rendered:
        def tokens(text: str) -> list[int]:
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])

        separator = tokens(self.separator)
        if not separator:
            raise ValueError(f"the step separator {self.separator!r} tokenizes to nothing")
        bos = getattr(tokenizer, "bos_token_id", None)
        ids = ([bos] if bos is not None else []) + tokens(self.text.prompt(question))
        reads = []
        for n, step in enumerate(steps, 1):
            ids += tokens(self.text.step(n, step)) + separator
            reads.append(len(ids) - 1)
        return Rendered(ids, reads)


def trl_layout(separator: str) -> SeparatorLayout:
    """TRL's `PRMTrainer.tokenize_row`: [BOS] + raw question + (step + separator)..., each piece tokenized alone."""
    return SeparatorLayout(Templates("{question}", "{step}"), separator)


def encode_in_layout(tokenizer: Any, fmt: StepFormat, layout: str, prompt: str, steps: Sequence[str]) -> Encoded:
    """(prompt, steps) in `fmt` as a PRM of `layout` reads them: `native` is `StepFormat.encode`; `trl` writes the
    question of `prompt` raw and each step on its own (`trl_layout`, the separator `fmt`'s)."""
    if layout == "native":
        return fmt.encode(tokenizer, prompt, steps)
    question = fmt.question_of(prompt)
    if question is None:
        raise ValueError(f"prompt {prompt[:60]!r} is not in step format {fmt.name!r}")
    trl = trl_layout(fmt.step_separator)
    rendered = trl.render(tokenizer, question, steps)
    return Encoded(rendered.ids, rendered.reads, len(trl.render(tokenizer, question, []).ids))


@dataclass(frozen=True)
class TagLayout:
    """prompt + step 1 + tag + join + step 2 + tag ..., in the assistant turn of a chat if `chat`."""

    text: Templates
    tag: str
    join: str = ""
    chat: bool = False
    system_prompt: str = ""

    def render(self, tokenizer: Any, question: str, steps: Sequence[str]) -> Rendered:
        body, ends = "", []
        for n, step in enumerate(steps, 1):
            body += (self.join if n > 1 else "") + self.text.step(n, step) + self.tag
            ends.append(len(body))
        if self.chat:
            head, tail = _chat_frame(tokenizer, self.system_prompt, self.text.prompt(question))
        else:
            head, tail = self.text.prompt(question), ""
        ids, reads = token_positions(tokenizer, head + body + tail, [len(head) + end for end in ends])
        for read in reads:
            if tokenizer.decode([ids[read]]).strip() != self.tag.strip():
                raise ValueError(f"the step tag {self.tag!r} is not one token of the verifier's tokenizer "
                                 f"(read {tokenizer.decode([ids[read]])!r}): set verifier_step_tag to the tag it "
                                 "was trained with")  # fmt: skip
        return Rendered(ids, reads)


@dataclass(frozen=True)
class TurnLayout:
    """RLHFlow: user turns = steps (the first after the question), assistant turns = the good token."""

    text: Templates
    good_token: str
    system_prompt: str = ""

    def render(self, tokenizer: Any, question: str, steps: Sequence[str]) -> Rendered:
        turns = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        starts = []  # per step: the turns up to its user turn
        for n, step in enumerate(steps, 1):
            user = (self.text.prompt(question) if n == 1 else "") + self.text.step(n, step)
            turns += [{"role": "user", "content": user}]
            starts.append(len(turns))
            turns += [{"role": "assistant", "content": self.good_token}]
        text = _apply_chat_template(tokenizer, turns, add_generation_prompt=False)
        ends = []
        for count in starts:
            asked = _apply_chat_template(tokenizer, turns[:count], add_generation_prompt=True)
            if not text.startswith(asked + self.good_token):
                raise ValueError(
                    "the verifier's chat template does not render a conversation turn by turn (each prefix of "
                    "the conversation a prefix of its text): it cannot serve the RLHFlow layout"
                )
            ends.append(len(asked))
        ids, reads = token_positions(tokenizer, text, ends)
        for read in reads:
            answer = tokenizer.decode(ids[read + 1 : read + 2])
            if answer.strip() != self.good_token.strip():
                raise ValueError(f"the good token {self.good_token!r} is not a token of its own after the "
                                 f"assistant header (read {answer!r}): set verifier_good_token to the token it "
                                 "was trained to write")  # fmt: skip
        return Rendered(ids, reads)


def _chat_frame(tokenizer: Any, system_prompt: str, user: str) -> tuple[str, str]:
    """The chat text before and after the assistant's turn (system, user, assistant)."""
    turns = [{"role": "system", "content": system_prompt}] if system_prompt else []
    turns += [{"role": "user", "content": user}, {"role": "assistant", "content": PLACEHOLDER}]
    text = _apply_chat_template(tokenizer, turns, add_generation_prompt=False)
    if text.count(PLACEHOLDER) != 1:
        raise ValueError(
            "the verifier's chat template does not write the assistant's turn verbatim: it cannot carry step tags"
        )
    head, tail = text.split(PLACEHOLDER)
    return head, tail


def _apply_chat_template(tokenizer: Any, turns: list[dict], add_generation_prompt: bool) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "the verifier's tokenizer has no chat template (tokenizer_config.json or "
            "chat_template.jinja): add the one it was trained with"
        )
    return tokenizer.apply_chat_template(turns, add_generation_prompt=add_generation_prompt, tokenize=False)
