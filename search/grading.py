"""Answers: extraction from solution text, equivalence with math-verify, and grouping for voting.

`answers_match(answer, gold)`: numbers compare by value ("7", "7.0", "14/2", "10,000") on a
fast path, where a comma is taken only as a thousands separator (`1,234`: yes; `1,2`, `12,34`:
no, those are lists); everything else goes through math-verify (LaTeX, fractions, `\\boxed{}`),
each parse and each comparison bounded by `timeout_s` (math-verify's signal-based timeouts,
effective in the main thread). Bounded in size too, before any parsing: an answer over
`MAX_ANSWER_CHARS` only matches itself, and the number fast path takes plain decimals with
exponents up to 3 digits (`1e999999999` would be a billion-digit integer).

The math-verify policy, stated (tests/test_grading.py pins each point):
- a unit written beside a number is dropped on both sides (MATH's convention: gold
  `5\\text{ cm}` accepts `5`, and `5 cm` accepts `5`); a number is never dropped;
- a set (`\\{1,2\\}`, or a bare list `1,2`) never equals an ordered pair or an interval
  (`(1,2)`, `[1,2]`), though math-verify alone says it does; pairs and intervals compare by
  math-verify's own rules (order matters);
- a list compares as a set (`1,2` equals `2,1`): MATH's "all solutions" answers.
Extraction is linear in the text: `extract_answer` reads `#### x` line by line, never with a
backtracking pattern over the whole text.
`group_equivalent` maps each answer to the first equivalent one seen, so that majority and
weighted voting count `\\frac{1}{2}` and `0.5` as one answer; equal strings never reach the
grader, and after `GROUPING_BUDGET_S` of grading the remaining answers group by exact text.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Sequence
from fractions import Fraction

TIMEOUT_S = 5
MAX_ANSWER_CHARS = 256
GROUPING_BUDGET_S = 10.0
_PLAIN_NUMBER = re.compile(r"[+-]?(\d{1,60}(\.\d{0,60})?|\.\d{1,60})([eE][+-]?\d{1,3})?|[+-]?\d{1,60}/\d{1,60}")
logging.getLogger("math_verify").setLevel(logging.ERROR)  # it logs every timeout it handles


_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")


def _number(text: str) -> Fraction | None:
    text = text.strip().replace("{,}", ",").removeprefix("$").removesuffix("$")
    if "," in text:
        if not _THOUSANDS.fullmatch(text):
            return None  # a list such as `1,2`, not a number
        text = text.replace(",", "")
    if not _PLAIN_NUMBER.fullmatch(text):
        return None
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`), braces balanced; None if none."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j].strip() or None
    return None  # unbalanced: cut off mid-answer


def extract_answer(text: str) -> str | None:
    """The final answer written in a solution: the last `\\boxed{}`, else GSM8K's `#### x` (the text after
    the last line's marker), else None. Linear in the text."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    for line in reversed(text.splitlines()):
        start = line.find("####")
        if start >= 0:
            answer = line[start + 4 :].strip()
            if answer:
                return answer.replace(",", "") if _THOUSANDS.fullmatch(answer) else answer
    return None


@functools.lru_cache(maxsize=4096)  # voting compares each answer with several others
def _parsed(answer: str, timeout_s: int):
    from math_verify import parse

    text = answer if "$" in answer or "\\boxed" in answer else f"${answer}$"
    return parse(text, parsing_timeout=timeout_s)


def answers_match(answer: str | None, gold: str, timeout_s: int = TIMEOUT_S) -> bool:
    """Whether `answer` is mathematically the gold answer (see the module docstring)."""
    if answer is None or not answer.strip():
        return False
    a, g = answer.strip(), gold.strip()
    if a == g:
        return True
    if len(a) > MAX_ANSWER_CHARS or len(g) > MAX_ANSWER_CHARS:
        return False
    na, ng = _number(a), _number(g)
    if na is not None and ng is not None:
        return na == ng
    # imported here, outside the try (a missing grader is an error, not a mismatch): rendering and
    # scoring steps need no grader, and a machine without math-verify (a lent GPU: bench/gpu_check.py) runs them
    from math_verify import verify

    try:
        parsed_gold, parsed_answer = _parsed(g, timeout_s), _parsed(a, timeout_s)
        if {_kind(parsed_gold), _kind(parsed_answer)} == {"set", "ordered"}:
            return False
        return verify(parsed_gold, parsed_answer, timeout_seconds=timeout_s)
    except Exception:  # math-verify raises on some malformed LaTeX; an unreadable answer is not right
        return False


def _kind(parsed: list) -> str:
    """`set` for an unordered collection, `ordered` for a pair, tuple or interval, else `other`."""
    from sympy import FiniteSet, Interval, Tuple

    first = parsed[0] if parsed else None
    if isinstance(first, FiniteSet):
        return "set"
    if isinstance(first, Interval | Tuple):
        return "ordered"
    return "other"


def group_equivalent(answers: Sequence[str | None], timeout_s: int = TIMEOUT_S) -> list[str | None]:
    """Each answer replaced by the first equivalent answer before it (None stays None)."""
    representatives: list[str] = []
    seen: dict[str, str] = {}  # answer text -> its representative
    deadline = time.monotonic() + GROUPING_BUDGET_S
    out: list[str | None] = []
    for answer in answers:
        if answer is None or answer in seen:
            out.append(None if answer is None else seen[answer])
            continue
        same = next((r for r in representatives if time.monotonic() < deadline and answers_match(answer, r, timeout_s)),
                    None)  # fmt: skip
        if same is None:
            representatives.append(answer)
        seen[answer] = same or answer
        out.append(seen[answer])
    return out
