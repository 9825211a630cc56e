"""Answers: extraction from solution text, equivalence with math-verify, and grouping for voting.

`answers_match(answer, gold)`: numbers compare by value ("7", "7.0", "14/2", "10,000") on a
fast path; everything else goes through math-verify (LaTeX, fractions, `\\boxed{}`, units,
sets), each parse and each comparison bounded by `timeout_s` (math-verify's signal-based
timeouts, effective in the main thread), so a pathological answer cannot hang a run.
`group_equivalent` maps each answer to the first equivalent one seen, so that majority and
weighted voting count `\\frac{1}{2}` and `0.5` as one answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from fractions import Fraction

from math_verify import parse, verify

TIMEOUT_S = 5
logging.getLogger("math_verify").setLevel(logging.ERROR)  # it logs every timeout it handles


def _number(text: str) -> Fraction | None:
    text = text.strip().replace(",", "").replace("{,}", "").removeprefix("$").removesuffix("$")
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
    out: list[str | None] = []
    for answer in answers:
        if answer is None:
            out.append(None)
            continue
        same = next((r for r in representatives if answers_match(answer, r, timeout_s)), None)
        if same is None:
            representatives.append(answer)
        out.append(same or answer)
    return out
