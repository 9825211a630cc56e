"""Is an answer the gold answer? Numbers compare by value ("7", "7.0", "14/2"), anything else as
whitespace-stripped text. (Real MATH-style answers go through math-verify; see the real-data loaders.)"""

from __future__ import annotations

from fractions import Fraction


def _number(text: str) -> Fraction | None:
    try:
        return Fraction(text.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def answers_match(answer: str | None, gold: str) -> bool:
    if answer is None:
        return False
    a, g = answer.strip(), gold.strip()
    na, ng = _number(a), _number(g)
    return na == ng if na is not None and ng is not None else a == g
