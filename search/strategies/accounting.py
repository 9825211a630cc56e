"""What a strategy spent on one question: generations, tokens, verifier tokens, FLOPs.

`generations` is the paper's budget unit (best-of-N, beam search and DVTS with budget N
spend N; lookahead with k steps spends N*(k+1)); the token counts are what was really
processed. `prompt_tokens` and `verifier_tokens` count every token the policy's prefill and
the verifier read; of those, `cached_prompt_tokens` and `cached_verifier_tokens` were read
from a prefix cache (`search.generation.prefix_cache`) instead of being computed. FLOPs are estimated as
2 x parameters per token computed (Kaplan et al.), for the policy (prefill tokens computed +
generated tokens) and for the verifier (tokens computed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from search.generation.generator import Generation


@dataclass
class Accounting:
    generations: int = 0  # budget units (see the module docstring)
    samples: int = 0  # continuations sampled from the policy (a step or a whole solution each)
    prompt_tokens: int = 0  # prefill tokens the policy read
    generated_tokens: int = 0
    verifier_tokens: int = 0  # tokens the verifier read
    cached_prompt_tokens: int = 0  # of prompt_tokens, read from a prefix cache (not computed)
    cached_verifier_tokens: int = 0  # of verifier_tokens, read from a prefix cache (not computed)

    def add_generations(self, gens: list[Generation]) -> None:
        self.samples += len(gens)
        self.prompt_tokens += sum(g.prompt_tokens for g in gens)
        self.cached_prompt_tokens += sum(g.cached_tokens for g in gens)
        self.generated_tokens += sum(g.generated_tokens for g in gens)

    def __add__(self, other: Accounting) -> Accounting:
        return Accounting(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def computed_prompt_tokens(self) -> int:
        """Prefill tokens the policy computed."""
        return self.prompt_tokens - self.cached_prompt_tokens

    @property
    def computed_verifier_tokens(self) -> int:
        """Tokens the verifier computed."""
        return self.verifier_tokens - self.cached_verifier_tokens

    def flops(self, policy_params: int, verifier_params: int = 0) -> float:
        policy_tokens = self.computed_prompt_tokens + self.generated_tokens
        return 2.0 * (policy_params * policy_tokens + verifier_params * self.computed_verifier_tokens)

    def to_dict(self, policy_params: int | None = None, verifier_params: int = 0) -> dict:
        record: dict = asdict(self)
        if policy_params is not None:
            record["flops"] = self.flops(policy_params, verifier_params)
        return record
