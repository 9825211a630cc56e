"""One batch of jobs on the runtime: every scoring in one verifier call, auto's difficulty probes in one call,
then one runtime call per (strategy, budget, sampling) group (each question with its request's seed).

The strategies take lists of questions and batch them (one generate and one verifier call per round of a
tree search; one for all of best-of-N), so the rows of concurrent requests share the model's forward
batches; prefix reuse works across them as within one request (its cache is keyed by token ids). auto
follows `search.runtime.Runtime.solve_compute_optimal`: probe, bin, the schedule's choice within the
request's generations; when the probe's mean score lies outside the range the schedule was calibrated on,
the verifier is not trusted and the job runs `fallback_strategy` (majority voting) instead, and says so.
"""

from __future__ import annotations

import copy
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import InvalidStateError
from dataclasses import dataclass, replace

from core.config import UserError
from search.runtime import Runtime, probe_score
from search.serve.jobs import Cancelled, ClientError, Job, Probe, ScoreOutcome, SearchOutcome
from search.strategies.accounting import Accounting
from search.strategies.compute_optimal import ComputeOptimalSchedule, bin_of
from search.strategies.strategy import StrategySpec
from search.verifiers.aggregation import aggregate
from search.verifiers.verifier import score_solutions

log = logging.getLogger(__name__)


def settle(job: Job, result: object = None, error: BaseException | None = None) -> None:
    """Give a job its result or error, unless it already has one (its waiter may have given up on it)."""
    if job.future.done():
        return
    try:
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)
    except InvalidStateError:  # cancelled by its waiter meanwhile
        pass


@dataclass
class _Plan:
    job: Job
    spec: StrategySpec
    budget: int
    probe: Probe | None = None
    fallback: str | None = None
    note: str | None = None


class Engine:
    def __init__(
        self,
        runtime: Runtime,
        schedule: ComputeOptimalSchedule | None,
        fallback: StrategySpec,
        unscheduled: StrategySpec,
    ):
        self.runtime, self.schedule = runtime, schedule
        self.fallback, self.unscheduled = fallback, unscheduled

    def run(self, jobs: Sequence[Job]) -> None:
        """Run a batch; every job ends with a result or an error (a cancelled one: `Cancelled`)."""
        live = self._live(jobs)
        scores = [j for j in live if j.kind == "score"]
        if scores:
            self._guard(scores, lambda: self._score(scores, len(live)))
        searches = [j for j in live if j.kind == "search"]
        plans: list[_Plan] = []
        self._guard(searches, lambda: plans.extend(self._plan(searches)))
        groups: dict[tuple, list[_Plan]] = defaultdict(list)
        for plan in plans:
            groups[(str(plan.spec), plan.budget, plan.job.sampling)].append(plan)
        for group in groups.values():
            self._guard([p.job for p in group], lambda group=group: self._search(group, len(live)))

    @staticmethod
    def _live(jobs: Sequence[Job]) -> list[Job]:
        live = []
        for job in jobs:
            if job.cancelled.is_set() or job.future.cancelled():
                settle(job, error=Cancelled())
            else:
                live.append(job)
        return live

    @staticmethod
    def _guard(jobs: Sequence[Job], run: Callable[[], None]) -> None:
        """Run `run`; a failure ends the jobs it left unsettled (a bad request: ClientError; else the error)."""
        try:
            run()
        except (ValueError, UserError) as err:
            for job in jobs:
                settle(job, error=ClientError(str(err)))
        except Exception as err:  # noqa: BLE001 - a bug or a backend failure: answered 500, logged with its trace
            log.exception("a batch of %d jobs failed", len(jobs))
            for job in jobs:
                settle(job, error=err)

    def _score(self, jobs: list[Job], batch: int) -> None:
        fmt = self.runtime.format
        scores, tokens = score_solutions(self.runtime.verifier, [fmt.prompt(j.question) for j in jobs],
                                         [j.steps for j in jobs])  # fmt: skip
        for job, steps, read in zip(jobs, scores, tokens, strict=True):
            how = job.aggregation or self.runtime.settings.aggregation
            settle(job, ScoreOutcome(steps, aggregate(steps, how), read, batch))

    def _plan(self, jobs: list[Job]) -> list[_Plan]:
        """Each job's strategy and budget: its own, or auto's choice (probing every auto job at once)."""
        plans = [_Plan(j, j.spec, j.budget) for j in jobs if j.spec is not None]
        auto = [j for j in jobs if j.spec is None]
        if auto and self.schedule is None:
            note = f"no schedule file: {self.unscheduled} at the request's budget"
            plans += [_Plan(j, self.unscheduled, j.budget, note=note) for j in auto]
            return plans
        auto = self._live(auto)
        if auto:
            probes = self.runtime.probe(self.schedule, [j.question for j in auto], [j.seed for j in auto])
            plans += filter(None, (self._choose(j, p) for j, p in zip(auto, probes, strict=True)))
        return plans

    def _choose(self, job: Job, samples) -> _Plan | None:
        schedule = self.schedule
        assert schedule is not None
        mean = probe_score(samples)
        cost = sum(samples.costs, Accounting(generations=len(samples.candidates)))
        probe = Probe(len(samples.candidates), mean, bin_of(mean, schedule.bin_edges), cost)
        if not schedule.in_range(mean):
            low, high = schedule.probe_score_range
            why = (f"the verifier looks out of its range: probe score {mean:.3f} outside [{low:.3f}, {high:.3f}] "
                   f"(the questions the schedule was calibrated on); {self.fallback} instead")  # fmt: skip
            plan = _Plan(job, self.fallback, job.budget, probe, fallback=why)
        else:
            try:
                choice = schedule.choose(mean, job.budget)
            except ValueError as err:
                settle(job, error=ClientError(str(err)))
                return None
            plan = _Plan(job, StrategySpec.parse(choice.strategy), choice.budget, probe)
        job.emit({"event": "probe", **probe.to_dict(), "strategy": str(plan.spec), "budget": plan.budget,
                  "fallback": plan.fallback})  # fmt: skip
        return plan

    def _search(self, plans: list[_Plan], batch: int) -> None:
        spec, budget, sampling = plans[0].spec, plans[0].budget, plans[0].job.sampling
        live = [p for p in plans if p.job in self._live([p.job])]
        if not live:
            return
        runtime = self.runtime
        if sampling is not None:  # the same models, this request's sampling
            runtime = copy.copy(runtime)
            overrides = {"temperature": sampling.temperature, "top_p": sampling.top_p,
                         "max_new_tokens": sampling.max_new_tokens}  # fmt: skip
            runtime.settings = replace(runtime.settings, **overrides)
            runtime.revision_settings = replace(runtime.revision_settings, **overrides)
        runtime.check(spec, budget)
        jobs = [p.job for p in live]

        def progress(round_: int, best: list) -> list[int]:
            for job, path in zip(jobs, best, strict=True):
                if path is not None:
                    job.emit(
                        {"event": "round", "round": round_ + 1, "best_partial": path[0], "score": round(path[1], 6)}
                    )
            return [i for i, job in enumerate(jobs) if job.cancelled.is_set()]

        results = runtime.solve(spec, [j.question for j in jobs], budget, [j.seed for j in jobs], progress)
        for plan, result in zip(live, results, strict=True):
            if plan.job.cancelled.is_set():
                settle(plan.job, error=Cancelled())
                continue
            if plan.probe is not None:
                result.accounting = result.accounting + plan.probe.cost
            settle(plan.job, SearchOutcome(spec, budget, result, plan.job.spec is None, plan.probe, plan.fallback,
                                           plan.note, len(live), batch))  # fmt: skip
