"""The one step format: how a question and its steps become text and tokens.

Every layer (data builders, trainers, the runtime) renders and parses solutions through a
`StepFormat`, so a PRM reads its scores at exactly the positions it was trained on. Layout:

    <prompt_template with the question><step 1><sep><step 2><sep>...<answer_prefix><answer><sep>

The answer line is the last step. A checkpoint stores its format (`to_dict`) and the
runtime refuses a checkpoint whose format differs from the one in use. `{question}` is the
only placeholder: a template may hold other braces (LaTeX, a chat template's JSON).
Real policies get their prompt from the format too: `with_few_shot` prefixes worked
examples, `with_chat_template` renders the question through the tokenizer's chat template;
both return a new format whose prompt_template is the rendered text, so everything
downstream (datasets, checkpoints, the runtime) stores and compares the exact prompt.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NamedTuple

from core.checkpoints import STEP_FORMAT_KEY
from search.grading import extract_answer


class Encoded(NamedTuple):
    """A tokenized (prompt, steps) pair."""

    ids: list[int]
    step_ends: list[int]  # per step: the index of its last token (where a PRM reads its score)
    prompt_tokens: int  # tokens that hold only prompt text (the token holding its last character included)


@dataclass(frozen=True)
class StepFormat:
    """Prompt template, step separator and answer line of one task family."""

    name: str = "arith"
    prompt_template: str = "Q:{question}\n"
    step_separator: str = "\n"
    answer_prefix: str = "A:"
    attempt_header: str = ""  # revision prompts: a line before each previous attempt ("" = none)
    revision_header: str = "Q:{question}"  # and a line before the revision ({question} allowed; "" = none)

    def __post_init__(self) -> None:
        if self.prompt_template.count("{question}") != 1:
            raise ValueError(f"step format {self.name!r}: prompt_template must contain '{{question}}' once")
        if not self.step_separator:
            raise ValueError(f"step format {self.name!r}: step_separator must not be empty")

    # ---- text ---------------------------------------------------------------------------
    def prompt(self, question: str) -> str:
        """The text the policy is conditioned on before the first step."""
        return self.prompt_template.replace("{question}", question)

    def question_of(self, prompt: str) -> str | None:
        """The question inside a rendered prompt, or None if the prompt is not in this format."""
        head, tail = self.prompt_template.split("{question}")
        if len(prompt) < len(head) + len(tail) or not (prompt.startswith(head) and prompt.endswith(tail)):
            return None
        return prompt[len(head) : len(prompt) - len(tail)]

    def answer_step(self, answer: str) -> str:
        """The final step that states the answer."""
        return f"{self.answer_prefix}{answer}"

    def render_steps(self, steps: Sequence[str]) -> str:
        """Steps as solution text, each followed by the separator."""
        return "".join(step + self.step_separator for step in steps)

    def render(self, question: str, steps: Sequence[str]) -> str:
        """Prompt plus steps: the full text of a (partial) solution."""
        return self.prompt(question) + self.render_steps(steps)

    def split_steps(self, solution: str) -> list[str]:
        """Steps of a solution text (without the prompt); a trailing unfinished step is kept.
        Blank parts are not steps: real models write blank lines between paragraphs."""
        return [part for part in solution.split(self.step_separator) if part.strip()]

    def is_answer_step(self, step: str) -> bool:
        return step.startswith(self.answer_prefix)

    def final_answer(self, steps: Sequence[str]) -> str | None:
        """The answer stated by the last step: its answer line, else its last `\\boxed{}` or
        GSM8K's `#### x` (how instruct models state answers), else None."""
        if not steps:
            return None
        if not self.is_answer_step(steps[-1]):
            return extract_answer(steps[-1])
        answer = steps[-1][len(self.answer_prefix) :].strip()
        return answer or None

    def extract_answer(self, solution: str) -> str | None:
        """The final answer of a solution text, or None."""
        return self.final_answer(self.split_steps(solution))

    # ---- revisions ----------------------------------------------------------------------
    def revision_prompt(self, question: str, attempts: Sequence[Sequence[str]]) -> str:
        """The prompt of a revision model: the question, then its previous attempts (oldest first,
        each under `attempt_header` if the format has one), then `revision_header`; the completion
        is a solution in this format. Every attempt ends with its answer line. Arith restates the
        question as its revision header: its tiny model knows no words, and it knows what follows
        `Q:<question>`.

            Q:((2+7)*3)-5        Question: ...          <- arith | gsm8k (math: "\n\n" separators)
            2+7=9                Attempt:
            9*3=28               ...
            28-5=23              The answer is: 23
            A:23                 Revision:
            2+7=8                Answer:
            8*3=24
            A:24
            Q:((2+7)*3)-5

        With no attempts it is the ordinary prompt of the question: a first attempt is a policy's.
        The history sits inside the template's question slot, so `question_of`, `encode` and a
        verifier see an ordinary prompt (the revision ORM scores in context).
        """
        if not attempts:
            return self.prompt(question)
        lines = [question]
        for steps in attempts:
            lines += [self.attempt_header] if self.attempt_header else []
            lines += steps
        lines += [self.revision_header.replace("{question}", question)] if self.revision_header else []
        return self.prompt(self.step_separator.join(lines))

    # ---- tokens -------------------------------------------------------------------------
    def tokenize(self, tokenizer: Any, text: str) -> list[int]:
        """Token ids of a rendered text as a model reads it: the tokenizer's special tokens are
        added unless the text already starts with its BOS (a chat template writes its own). Texts
        longer than the model's context are counted quietly: each caller checks lengths itself (drops
        and counts a row, cuts off a prompt) where transformers would only warn of indexing errors."""
        add = _adds_special_tokens(tokenizer, text)
        return list(tokenizer(text, add_special_tokens=add, verbose=False)["input_ids"])

    def encode(self, tokenizer: Any, prompt: str, steps: Sequence[str]) -> Encoded:
        """Token ids of prompt + steps, tokenized in one go as a model reads the text, and per
        step the index of its last token: the token holding the last character of the step's
        separator, where a PRM reads the step's score.

        Character offsets locate the tokens; a located token must cover its character, else
        (no offsets, or trimmed ones) decoded prefixes decide. If a merge swallows a separator
        together with the next step's first characters, that merged token is the step's last
        token: the whole solution is scored as it is tokenized, never re-split."""
        text = prompt + self.render_steps(steps)
        boundaries, end = [], len(prompt)
        for step in steps:
            end += len(step) + len(self.step_separator)
            boundaries.append(end)
        ids, located = token_positions(tokenizer, text, [len(prompt)] + boundaries if prompt else boundaries)
        prompt_tokens = located.pop(0) + 1 if prompt else 0
        return Encoded(ids, located, prompt_tokens)

    # ---- metadata -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StepFormat:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown step format keys: {', '.join(unknown)}")
        return cls(**values)


def token_positions(tokenizer: Any, text: str, ends: Sequence[int]) -> tuple[list[int], list[int]]:
    """Token ids of `text` tokenized in one go as a model reads it (`StepFormat.tokenize`), and per
    exclusive character end in `ends` the index of the token holding the character before it."""
    add = _adds_special_tokens(tokenizer, text)
    try:
        enc = tokenizer(text, add_special_tokens=add, return_offsets_mapping=True, verbose=False)
        offsets = enc["offset_mapping"]
    except (NotImplementedError, ValueError, TypeError):  # slow tokenizers have no offsets
        enc, offsets = tokenizer(text, add_special_tokens=add, verbose=False), None
    ids = list(enc["input_ids"])
    bos = getattr(tokenizer, "bos_token", None) or ""
    prefix = bos if add and ids and ids[0] == getattr(tokenizer, "bos_token_id", None) else ""
    return ids, _last_tokens(tokenizer, ids, offsets, prefix, ends)


def _adds_special_tokens(tokenizer: Any, text: str) -> bool:
    bos = getattr(tokenizer, "bos_token", None)
    return not (bos and text.startswith(bos))


def _last_tokens(tokenizer: Any, ids: Sequence[int], offsets, prefix: str, ends: Sequence[int]) -> list[int]:
    """Per exclusive character end, the index of the token holding the character before it."""
    spans = [(i, a, b) for i, (a, b) in enumerate(offsets or []) if b > a]  # special tokens: empty spans
    starts = [a for _, a, _ in spans]
    out = []
    for end in ends:
        k = bisect_left(starts, end) - 1  # the last token that starts before `end`
        if k >= 0 and spans[k][2] >= end:
            out.append(spans[k][0])
        else:  # no offsets, or trimmed ones that leave the character in no span: decode instead
            out.append(_last_token_by_decoding(tokenizer, ids, prefix, end))
    return out


def _last_token_by_decoding(tokenizer: Any, ids: Sequence[int], prefix: str, end: int) -> int:
    """The first token whose decoded prefix (less the special-token `prefix` text) reaches `end` characters."""
    lo, hi = 0, len(ids) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        decoded = tokenizer.decode(ids[: mid + 1], skip_special_tokens=False).removeprefix(prefix)
        lo, hi = (lo, mid) if len(decoded) >= end else (mid + 1, hi)
    return lo


ARITH = StepFormat()
# Real math: one step per line (GSM8K) or per paragraph (MATH); the answer line as Math-Shepherd writes it.
GSM8K = StepFormat("gsm8k", "Question: {question}\nAnswer:\n", "\n", "The answer is: ", "Attempt:", "Revision:")
MATH = StepFormat("math", "Problem: {question}\n\nSolution:\n", "\n\n", "The answer is: ", "Attempt:", "Revision:")
FORMATS: dict[str, StepFormat] = {f.name: f for f in (ARITH, GSM8K, MATH)}


def with_few_shot(fmt: StepFormat, examples: Sequence[tuple[str, Sequence[str]]]) -> StepFormat:
    """`fmt` whose prompt starts with worked examples (question, reference steps), each
    rendered in the format itself and followed by a blank line (Snell et al.: 4-shot)."""
    shots = "".join(fmt.render(question, steps) + "\n" for question, steps in examples)
    return replace(fmt, prompt_template=shots + fmt.prompt_template)


def with_chat_template(
    fmt: StepFormat, tokenizer: Any, system_prompt: str | None = None,
    examples: Sequence[tuple[str, Sequence[str]]] = (),
) -> StepFormat:  # fmt: skip
    """`fmt` for an instruct model: the question is the user turn of the tokenizer's chat
    template (after an optional system turn and worked examples as earlier turns), and the
    solution is the assistant's turn. The answer line and separators stay the format's."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template: set chat_template: false (a base model)")
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    for question, steps in examples:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": fmt.render_steps(steps)}]

    def render(question: str) -> str:
        turns = [*messages, {"role": "user", "content": question}]
        return tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)

    template = render("{question}")
    probe = "Is 2 < 3? {x} $\\frac{1}{2}$"
    if template.count("{question}") != 1 or render(probe) != template.replace("{question}", probe):
        raise ValueError("the chat template changes the user's text (it must insert the question verbatim)")
    return replace(fmt, prompt_template=template)


def get_format(name: str) -> StepFormat:
    """A registered step format by the name a recipe uses."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown step format {name!r}; known: {', '.join(sorted(FORMATS))}") from None


def check_compatible(expected: StepFormat, found: dict[str, Any] | None, where: str) -> None:
    """Raise if a checkpoint's stored format differs from the one in use."""
    if found is None:
        raise ValueError(f"{where}: checkpoint carries no step format (config key {STEP_FORMAT_KEY!r})")
    stored = StepFormat.from_dict(found)
    if stored != expected:
        raise ValueError(f"{where}: checkpoint step format {stored} does not match the one in use {expected}")
