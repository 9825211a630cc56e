"""The runtime's settings, importable without loading torch (so `--help` and `--dry-run` answer at once).

`RuntimeConfig`: the policy, the verifier (and how to read it), the revision model and its ORM, the
strategies' defaults, sampling, and the backend; `RunConfig` adds a run over a questions file
(`search.runs.run_config`). Every value is checked when the config is parsed, before any model loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.config import UserError
from core.outputs import OutputGuard
from search.generation.generator import check_sampling
from search.generation.settings import BackendConfig, check_device
from search.prompting import PromptConfig
from search.strategies.strategy import SearchSettings, StrategySpec, parse_budgets
from search.verifiers.settings import VerifierSettings

if TYPE_CHECKING:
    from search.runtime import Runtime

COMPUTE_OPTIMAL = "compute_optimal"  # the strategy name that follows a `make eval` schedule file


@dataclass
class RuntimeConfig(PromptConfig, VerifierSettings, BackendConfig):
    policy: str = "outputs/arith-tiny/policy"  # local folder or hub id of any HF causal LM
    verifier: str = "outputs/arith-tiny/prm"  # a PRM/ORM of ours or a public PRM (verifier_kind), or "none"
    revision_model: str | None = None  # for revision specs: a revision model checkpoint
    revision_verifier: str | None = None  # the ORM scoring its attempts (not needed for select=majority)
    beam_width: str = "4"  # M for specs that omit m: an integer or "sqrt"
    lookahead: int = 1  # k for lookahead specs that omit k
    revision_length: int = 4  # L for revision specs that omit l
    selection: str = "weighted"  # best_of_n specs that omit select
    aggregation: str | None = None  # default: the verifier's (its checkpoint metadata), else "last"
    temperature: float = 1.0  # sampling temperature (0: greedy decoding)
    top_p: float = 1.0  # nucleus sampling: sample from the smallest set of tokens holding this much probability
    max_step_tokens: int = 32  # the most tokens one step may have, in step-level searches
    max_new_tokens: int = 160  # the most tokens one whole solution may have (longer ones are cut off and counted)
    max_rounds: int = 40  # rounds of step expansion in beam search, lookahead and DVTS (Snell et al.: 40)
    seed: int = 0  # the seed every sample derives from
    batch_size: int = 64  # sequences per forward batch (speed only)
    device: str | None = None  # cpu or cuda (default: cuda when there is one)
    compute_optimal: str | None = None  # schedule.json of `make eval`, for the strategy `compute_optimal`

    def __post_init__(self) -> None:
        PromptConfig.__post_init__(self)
        VerifierSettings.__post_init__(self)
        BackendConfig.__post_init__(self)
        check_sampling(self.temperature, self.top_p, self.max_new_tokens, self.batch_size)
        check_device(self.device)
        self.search_settings()  # every value checked before any model loads

    def search_settings(self) -> SearchSettings:
        return SearchSettings(self.temperature, self.top_p, self.max_step_tokens, self.max_new_tokens,
                              self.max_rounds, self.aggregation)  # fmt: skip

    def spec(self, text: str) -> StrategySpec:
        try:
            return StrategySpec.parse(text, self.beam_width, self.lookahead, self.selection, self.revision_length)
        except ValueError as err:
            raise UserError(str(err)) from None

    def load(self) -> Runtime:
        from search.runtime import Runtime  # after parsing: --help and --dry-run never load torch

        verifier = None if self.verifier.lower() == "none" else self.verifier
        return Runtime.load(
            self.policy,
            verifier,
            prompting=self,
            batch_size=self.batch_size,
            device=self.device,
            revision_model=self.revision_model,
            revision_verifier=self.revision_verifier,
            verifier_settings=self,
            backend=self,
            settings=self.search_settings(),
        )


@dataclass
class RunConfig(RuntimeConfig, OutputGuard):
    dataset: str = ""  # JSONL: question, answer, optional id and level
    strategies: str = "best_of_n,best_of_n:select=majority,beam,lookahead,dvts"  # strategy specs, comma-separated
    budgets: str = "1,4,16"  # comma-separated budgets N
    output_dir: str = "outputs/arith-tiny/search"
    limit: int | None = None  # only the first `limit` questions
    chunk_size: int = 16  # questions per batched call (and per resume checkpoint)
    max_generations: int | None = None  # skip (strategy, budget) pairs that spend more (lookahead spends N*(k+1))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.limit is not None and self.limit < 1 or self.chunk_size < 1:
            raise ValueError("limit (or null: all) and chunk_size must be >= 1")
        if self.max_generations is not None and self.max_generations < 1:
            raise ValueError("max_generations must be >= 1 (or null: no cap)")
        parse_budgets(self.budgets)
        for name in self.strategies.split(","):  # a bad spec is refused before anything loads, --dry-run included
            if name.strip() != COMPUTE_OPTIMAL:
                self.spec(name)
            elif not self.compute_optimal:
                raise ValueError(f"strategy {COMPUTE_OPTIMAL} needs --compute_optimal (the schedule make eval writes)")
