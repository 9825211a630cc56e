"""Tree search against best-of-N at the same budget, with and without prefix reuse.

    python -m bench.search --policy outputs/arith-tiny/policy --verifier outputs/arith-tiny/prm

On the same held-out questions, in one run: best-of-N (weighted), beam search (width M) re-reading
every prefix each round in the policy and the verifier (the runtime before prefix reuse), and beam
search reusing the live beams' cached prefixes (`search.generation.prefix_cache`). Each runs `repeats` times,
interleaved, and the fastest wall-clock and CPU time of each is kept: the machine is shared and noisy,
so read the ratios against best-of-N, not the absolute times (on one torch thread by default, see
`threads`). Tokens are counted as computed and as
read from a cache, for the policy's prefill and the verifier. Both beam searches must give the same
answers; the bench checks it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

import torch

from bench.common import at_least_one, spread
from core.config import cli, parse_config
from core.outputs import OutputFileGuard, claim_output_file, write_atomic
from data.arith import ArithTask
from search.grading import answers_match
from search.runtime import Runtime
from search.strategies.accounting import Accounting
from search.strategies.best_of_n import sample_best_of_n
from search.strategies.strategy import SearchResult, SearchSettings, StrategySpec
from search.strategies.tree_search import tree_search


@dataclass
class BenchSearchConfig(OutputFileGuard):
    policy: str = "outputs/arith-tiny/policy"  # the policy checkpoint: a local folder or a Hub id
    verifier: str = "outputs/arith-tiny/prm"  # the PRM (or ORM) checkpoint that scores steps
    questions: int = 32  # held-out questions
    budget: int = 16  # N
    beam_width: int = 4  # M
    repeats: int = 3  # runs of each; the fastest counts
    batch_size: int = 64  # sequences per forward batch (speed only)
    max_step_tokens: int = 32  # the most tokens one step may have, in step-level searches
    max_new_tokens: int = 160  # the most tokens one whole solution may have (longer ones are cut off and counted)
    seed: int = 0  # the seed every sample derives from
    threads: int = 1  # torch threads (0: torch's default); a tiny model runs best on one, and a shared machine's
    # busy cores then slow it down little (two threads waiting on each other there cost up to 20x)
    output_file: str = "outputs/bench/search.json"

    def __post_init__(self) -> None:
        at_least_one(self, "questions", "repeats", "batch_size", "max_step_tokens", "max_new_tokens")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        StrategySpec.parse(f"beam:m={self.beam_width}").width(self.budget)


CONFIG_TYPES = (BenchSearchConfig,)
RUNS = ("best_of_n", "beam", "beam_reuse")


def summary(results: list[SearchResult], golds: list[str], params: tuple[int, int]) -> dict:
    """Accuracy and the summed token counts and FLOPs of one strategy's results."""
    spent = sum((r.accounting for r in results), Accounting())
    return {
        "accuracy": sum(answers_match(r.answer, g) for r, g in zip(results, golds, strict=True)) / len(golds),
        **spent.to_dict(*params),
        "computed_prompt_tokens": spent.computed_prompt_tokens,
        "computed_verifier_tokens": spent.computed_verifier_tokens,
    }


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    out = claim_output_file(cfg.output_file, "bench.search", cfg.overwrite_output_file)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    task = ArithTask.load(cfg.policy)
    picked = spread(task.splits(0).test, cfg.questions)
    questions, golds = [q.text for q in picked], [q.answer for q in picked]
    runtime = Runtime.load(cfg.policy, cfg.verifier, batch_size=cfg.batch_size, device="cpu")
    fmt, verifier = runtime.format, runtime.verifier
    settings = SearchSettings(
        max_step_tokens=cfg.max_step_tokens, max_new_tokens=cfg.max_new_tokens, aggregation=verifier.aggregation
    )
    beam = StrategySpec.parse(f"beam:m={cfg.beam_width}")

    def run(name: str, qs: list[str], budget: int) -> list[SearchResult]:
        if name == "best_of_n":
            samples = sample_best_of_n(qs, runtime.generator, verifier, fmt, settings, budget, cfg.seed)
            return [s.at(budget, "weighted") for s in samples]
        reuse = name == "beam_reuse"
        return tree_search(beam, qs, runtime.generator, verifier, fmt, settings, budget, cfg.seed, reuse)

    for name in RUNS:  # warm-up
        run(name, questions[:2], cfg.beam_width)
    wall, cpu = dict.fromkeys(RUNS, math.inf), dict.fromkeys(RUNS, math.inf)
    results: dict[str, list[SearchResult]] = {}
    for _ in range(cfg.repeats):
        for name in RUNS:
            results[name], seconds, cpu_seconds = timed(partial(run, name, questions, cfg.budget))
            wall[name], cpu[name] = min(wall[name], seconds), min(cpu[name], cpu_seconds)

    params = runtime.parameter_counts(beam)
    record = {
        name: {"seconds": wall[name], "cpu_seconds": cpu[name], **summary(results[name], golds, params)}
        for name in RUNS
    }
    base = record["best_of_n"]
    for name in RUNS[1:]:
        r = record[name]
        r["vs_best_of_n"] = {
            key: r[key] / base[key]
            for key in ("seconds", "cpu_seconds", "computed_prompt_tokens", "computed_verifier_tokens", "flops")
        }
    same, diff = compare(results["beam"], results["beam_reuse"])
    result = {
        "config": asdict(cfg),
        "threads": torch.get_num_threads(),
        **record,
        "reuse_same_answers": same,
        "reuse_max_score_difference": diff,
    }
    write_atomic(out, json.dumps(result, indent=2))
    report(result, cfg)
    return result


def timed(work: Callable[[], list[SearchResult]]) -> tuple[list[SearchResult], float, float]:
    """The results of `work`, its wall-clock seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    results = work()
    return results, time.perf_counter() - wall, time.process_time() - cpu


def compare(full: list[SearchResult], reused: list[SearchResult]) -> tuple[bool, float]:
    """Whether two runs gave the same answers and candidates, and their largest step-score difference."""
    same, diff = True, 0.0
    for a, b in zip(full, reused, strict=True):
        same &= (a.answer, [c.steps for c in a.candidates]) == (b.answer, [c.steps for c in b.candidates])
        for c, d in zip(a.candidates, b.candidates, strict=True):
            diff = max([diff, *(abs(x - y) for x, y in zip(c.step_scores, d.step_scores, strict=True))])
    return same, diff


def report(result: dict, cfg: BenchSearchConfig) -> None:
    n, m = cfg.budget, cfg.beam_width
    print(f"{cfg.questions} questions, N={n}, beam M={m}, fastest of {cfg.repeats}, {result['threads']} threads")
    print(f"{'':>20} {'wall s':>7} {'cpu s':>7} {'prefill computed/read':>22} {'verifier computed/read':>23} acc")
    names = {"best_of_n": f"best-of-{n}", "beam": f"beam M={m} no reuse", "beam_reuse": f"beam M={m} reuse"}
    for name, label in names.items():
        r = result[name]
        prefill = f"{r['computed_prompt_tokens']}/{r['prompt_tokens']}"
        scored = f"{r['computed_verifier_tokens']}/{r['verifier_tokens']}"
        times = f"{r['seconds']:7.1f} {r['cpu_seconds']:7.1f}"
        print(f"{label:>20} {times} {prefill:>22} {scored:>23} {r['accuracy']:.2f}")
    before, after = result["beam"]["vs_best_of_n"], result["beam_reuse"]["vs_best_of_n"]
    print(f"beam / best-of-{n}, without -> with reuse:")
    for key, label, target in (
        ("seconds", "wall-clock", "(target <= 2x)"),
        ("cpu_seconds", "CPU time", ""),
        ("computed_verifier_tokens", "verifier tokens computed", "(target <= 1.5x)"),
        ("computed_prompt_tokens", "policy prefill tokens computed", ""),
        ("flops", "FLOPs (tokens computed)", ""),
    ):
        print(f"  {label:>30}: {before[key]:5.2f}x -> {after[key]:5.2f}x {target}")
    same, diff = result["reuse_same_answers"], result["reuse_max_score_difference"]
    print(f"same answers with and without reuse: {same} (largest step-score difference {diff:.1e})")


if __name__ == "__main__":
    main()
