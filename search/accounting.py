"""What a strategy spent on one question: generations, tokens, verifier tokens, FLOPs.

`generations` is the paper's budget unit (best-of-N, beam search and DVTS with budget N
spend N; lookahead with k steps spends N*(k+1)); the token counts are what was really
processed. FLOPs are estimated as 2 x parameters x tokens per forward token (Kaplan et
al.), for the policy (prompt prefill + generated tokens; prefixes are re-read on every
call) and for the verifier (every token it scored).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from search.generator import Generation


@dataclass
class Accounting:
    generations: int = 0  # budget units (see the module docstring)
    samples: int = 0  # continuations sampled from the policy (a step or a whole solution each)
    prompt_tokens: int = 0  # prefill tokens the policy read
    generated_tokens: int = 0
    verifier_tokens: int = 0

    def add_generations(self, gens: list[Generation]) -> None:
        self.samples += len(gens)
        self.prompt_tokens += sum(g.prompt_tokens for g in gens)
        self.generated_tokens += sum(g.generated_tokens for g in gens)

    def __add__(self, other: Accounting) -> Accounting:
        return Accounting(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def flops(self, policy_params: int, verifier_params: int = 0) -> float:
        policy_tokens = self.prompt_tokens + self.generated_tokens
        return 2.0 * (policy_params * policy_tokens + verifier_params * self.verifier_tokens)

    def to_dict(self, policy_params: int | None = None, verifier_params: int = 0) -> dict:
        record: dict = asdict(self)
        if policy_params is not None:
            record["flops"] = self.flops(policy_params, verifier_params)
        return record
