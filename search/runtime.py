"""The runtime: a policy, an optional verifier and the step format they share, solving questions
with any strategy at any budget; optionally a revision model and its ORM for `revision` chains.

    runtime = Runtime.load("outputs/arith-tiny/policy", "outputs/arith-tiny/prm")
    [result] = runtime.solve(StrategySpec.parse("beam:m=4"), ["(2+7)*3"], budget=16)

The step format comes from the policy checkpoint's metadata (or, for a Hub model that carries
none, a registered format rendered as `search.prompting` says: chat template, few-shot) and every
other checkpoint must carry the same; the default aggregation comes from the verifier's metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from core.checkpoints import check_model_path, read_metadata
from core.config import UserError
from search.generation.backends import load_generator
from search.generation.generator import Generator
from search.generation.settings import BackendConfig
from search.prompting import PromptConfig, resolve_format
from search.step_format import StepFormat, check_compatible
from search.strategies.accounting import Accounting
from search.strategies.best_of_n import BestOfNSamples, sample_best_of_n
from search.strategies.compute_optimal import ComputeOptimalSchedule, probe_seed
from search.strategies.revisions import sample_revision_chains
from search.strategies.strategy import SearchResult, SearchSettings, StrategySpec, question_seeds
from search.strategies.tree_search import Progress, tree_search
from search.verifiers.settings import VerifierSettings
from search.verifiers.verifier import Verifier, load_verifier


def resolved(settings: SearchSettings, verifier: Verifier | None) -> SearchSettings:
    """The settings with the aggregation decided once: the one asked for, else the verifier's, else "last"."""
    if settings.aggregation is not None:
        return settings
    return replace(settings, aggregation=verifier.aggregation if verifier is not None else "last")


class Runtime:
    def __init__(
        self,
        generator: Generator,
        fmt: StepFormat,
        verifier: Verifier | None = None,
        settings: SearchSettings | None = None,
        reviser: Generator | None = None,
        revision_verifier: Verifier | None = None,
    ):
        self.generator, self.format, self.verifier = generator, fmt, verifier
        self.reviser, self.revision_verifier = reviser, revision_verifier
        self.settings = resolved(settings or SearchSettings(), verifier)
        # revision chains are scored by the revision ORM, with its own aggregation
        self.revision_settings = replace(self.settings, aggregation=None if revision_verifier else "last")
        self.revision_settings = resolved(self.revision_settings, revision_verifier)

    @classmethod
    def load(
        cls,
        policy: str,
        verifier: str | None = None,
        prompting: PromptConfig | None = None,
        batch_size: int = 64,
        device: str | None = None,
        revision_model: str | None = None,
        revision_verifier: str | None = None,
        verifier_settings: VerifierSettings | None = None,
        backend: BackendConfig | None = None,
        settings: SearchSettings | None = None,
    ) -> Runtime:
        """Checkpoints by path (the policy may be any HF causal LM), with default settings. `verifier_settings`
        say how to read `verifier` (a public PRM: `search.verifiers.adapters`); the revision verifier is
        always one of this project's ORMs. `backend` says what the policy and the reviser generate with
        (`search.generation.backends`; default: transformers in this process)."""
        check_model_path(policy, "policy checkpoint")
        fmt = resolve_format(policy, prompting or PromptConfig())

        backend = backend or BackendConfig()
        generator = load_generator(policy, fmt, backend, batch_size, device)
        reviser = None
        if revision_model:
            check_model_path(revision_model, "revision model checkpoint")
            try:  # our revision models always carry the format they were trained on
                stored = read_metadata(revision_model, "revision model").step_format
                check_compatible(fmt, stored, revision_model)
            except ValueError as err:
                raise UserError(str(err)) from None
            reviser = load_generator(revision_model, fmt, backend, batch_size, device)

        def prm(path: str | None, settings: VerifierSettings | None = None) -> Verifier | None:
            return load_verifier(path, fmt, batch_size, device, settings) if path else None

        return cls(generator, fmt, prm(verifier, verifier_settings), settings, reviser, prm(revision_verifier))

    def parameter_counts(self, spec: StrategySpec | None = None) -> tuple[int | None, int]:
        """Parameters of the generator and the verifier `spec` uses, for the FLOPs estimate (None if unknown)."""
        revising = spec is not None and spec.name == "revision"
        generator = self.reviser if revising else self.generator
        verifier = self.revision_verifier if revising else self.verifier
        policy = generator.num_parameters() if hasattr(generator, "num_parameters") else None
        return policy, verifier.num_parameters() if hasattr(verifier, "num_parameters") else 0

    def check(self, spec: StrategySpec, budget: int) -> None:
        """Raise ValueError if `spec` cannot run at `budget` with this runtime."""
        spec.width(budget)
        if spec.name == "revision":
            if self.reviser is None:
                raise ValueError(f"{spec} needs a revision model (--revision_model)")
            if spec.select != "majority" and self.revision_verifier is None:
                raise ValueError(f"{spec} needs a revision verifier (--revision_verifier), or select=majority")
            return
        needs_verifier = spec.name != "best_of_n" or spec.select != "majority"
        if needs_verifier and self.verifier is None:
            raise ValueError(f"{spec} needs a verifier (only best_of_n:select=majority runs without one)")

    def solve(
        self,
        spec: StrategySpec,
        questions: Sequence[str],
        budget: int,
        seed: int | Sequence[int] = 0,
        progress: Progress | None = None,
    ) -> list[SearchResult]:
        """One result per question; the same seed gives the same results (`seed`: one, or one per question)."""
        return self.sweep([spec], questions, [budget], seed, progress)[(str(spec), budget)]

    def sweep(
        self,
        specs: Sequence[StrategySpec],
        questions: Sequence[str],
        budgets: Sequence[int],
        seed: int | Sequence[int] = 0,
        progress: Progress | None = None,
    ) -> dict[tuple[str, int], list[SearchResult]]:
        """Results for every (spec, budget) pair, keyed by (str(spec), budget).

        Best-of-N specs share one set of samples at their largest budget, and each revision
        spec one set of chains, subsampled for the smaller budgets (exactly what separate runs
        would give; see `search.strategies.best_of_n` and `search.strategies.revisions`).
        `progress` is called after each round of the step-level searches (`search.strategies.tree_search`)."""
        for spec in specs:
            for budget in budgets:
                self.check(spec, budget)
        out: dict[tuple[str, int], list[SearchResult]] = {}
        best_of_n = [s for s in specs if s.name == "best_of_n"]
        if best_of_n:
            verifier = self.verifier if any(s.select != "majority" for s in best_of_n) else None
            samples = sample_best_of_n(
                questions, self.generator, verifier, self.format, self.settings, max(budgets), seed
            )
            for spec in best_of_n:
                for budget in budgets:
                    out[(str(spec), budget)] = [s.at(budget, spec.select) for s in samples]
        for spec in specs:
            if spec.name == "revision":
                assert self.reviser is not None
                verifier = self.revision_verifier if spec.select != "majority" else None
                settings = self.revision_settings
                length = spec.chain_length(max(budgets))
                chains = sample_revision_chains(
                    questions, self.reviser, verifier, self.format, settings, max(budgets) // length, length, seed
                )
                for budget in budgets:
                    out[(str(spec), budget)] = [c.at(budget, spec.select, spec.chain_length(budget)) for c in chains]
            elif spec.name != "best_of_n":
                for budget in budgets:
                    assert self.verifier is not None
                    out[(str(spec), budget)] = tree_search(
                        spec, questions, self.generator, self.verifier, self.format, self.settings, budget, seed,
                        progress=progress,
                    )  # fmt: skip
        return out

    def solve_compute_optimal(
        self, schedule: ComputeOptimalSchedule, questions: Sequence[str], generations: int, seed: int = 0
    ) -> list[tuple[StrategySpec, SearchResult]]:
        """Per question: probe its difficulty, run the schedule's choice for that bin within
        `generations`; the result's accounting includes the probe (see `search.strategies.compute_optimal`)."""
        probes = self.probe(schedule, questions, seed)
        specs = []
        for probe in probes:
            choice = schedule.choose(probe_score(probe), generations)
            specs.append((StrategySpec.parse(choice.strategy), choice.budget))
        out: list = [None] * len(questions)
        for spec, budget in dict.fromkeys(specs):
            self.check(spec, budget)
            mine = [i for i, chosen in enumerate(specs) if chosen == (spec, budget)]
            for i, result in zip(mine, self.solve(spec, [questions[i] for i in mine], budget, seed), strict=True):
                result.accounting = result.accounting + sum(probes[i].costs, Accounting())
                out[i] = (spec, result)
        return out

    def probe(
        self, schedule: ComputeOptimalSchedule, questions: Sequence[str], seed: int | Sequence[int] = 0
    ) -> list[BestOfNSamples]:
        """The difficulty probe of each question: `schedule.probe_samples` scored samples, drawn with the seed
        `make eval` binned its questions with (`search.strategies.compute_optimal.probe_seed`; `seed`: the run's,
        or one per question)."""
        if self.verifier is None:
            raise ValueError("the compute-optimal schedule needs the verifier to predict difficulty")
        return sample_best_of_n(
            questions, self.generator, self.verifier, self.format, self.settings, schedule.probe_samples,
            [probe_seed(s) for s in question_seeds(seed, questions)],
        )  # fmt: skip


def probe_score(probe: BestOfNSamples) -> float:
    """What a question's difficulty is predicted from: the mean verifier score of its probe samples."""
    return sum(c.score for c in probe.candidates) / len(probe.candidates)
