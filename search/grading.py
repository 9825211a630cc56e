"""Answers: extraction from solution text, equivalence with math-verify, and grouping for voting.

`answers_match(answer, gold)`: numbers compare by value ("7", "7.0", "14/2", "10,000") on a
fast path; everything else goes through math-verify (LaTeX, fractions, `\\boxed{}`, units,
sets), each parse and each comparison bounded by `timeout_s` (math-verify's signal-based
timeouts, effective in the main thread). Bounded in size too, before any parsing: an answer
over `MAX_ANSWER_CHARS` only matches itself, and the number fast path takes plain decimals with
exponents up to 3 digits (`1e999999999` would be a billion-digit integer).
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

from math_verify import parse, verify

TIMEOUT_S = 5
MAX_ANSWER_CHARS = 256
GROUPING_BUDGET_S = 10.0
_PLAIN_NUMBER = re.compile(r"[+-]?(\d{1,60}(\.\d{0,60})?|\.\d{1,60})([eE][+-]?\d{1,3})?|[+-]?\d{1,60}/\d{1,60}")
logging.getLogger("math_verify").setLevel(logging.ERROR)  # it logs every timeout it handles


def _number(text: str) -> Fraction | None:
    text = text.strip().replace(",", "").replace("{,}", "").removeprefix("$").removesuffix("$")
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


_HASHES = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)


def extract_answer(text: str) -> str | None:
    """The final answer written in a solution: the last `\\boxed{}`, else GSM8K's `#### x`, else None."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    hashes = _HASHES.findall(text)
    return hashes[-1].replace(",", "") if hashes else None


@functools.lru_cache(maxsize=4096)  # voting compares each answer with several others
def _parsed(answer: str, timeout_s: int):
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
    try:
        return verify(_parsed(g, timeout_s), _parsed(a, timeout_s), timeout_seconds=timeout_s)
    except Exception:  # math-verify raises on some malformed LaTeX; an unreadable answer is not right
        return False


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
