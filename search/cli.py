"""The runtime's command line.

    python -m search solve --policy P --verifier V --strategy beam --budget 16 --question "(2+7)*3"
    python -m search run --policy P --verifier V --dataset test.jsonl \\
        --strategies best_of_n,beam,lookahead,dvts --budgets 1,4,16 --output_dir DIR
    python -m search run ... --revision_model R --revision_verifier ORM --strategies revision:l=4
    python -m search run ... --strategies compute_optimal --compute_optimal outputs/arith-tiny/eval/schedule.json
    python -m search serve --config recipes/arith-tiny/serve.yaml     (an OpenAI-compatible server: docs/serve.md)

`solve` prints the answer, the chosen solution and the compute spent. `run` writes DIR/results.jsonl
(one resumable JSON line per question, strategy and budget), DIR/run.json (what produced them) and
DIR/summary.{json,md} (`search.runs`).
`--verifier none` runs without a verifier (only best_of_n:select=majority then); a public PRM
(TRL-, Math-Shepherd-, RLHFlow- or Qwen2.5-Math-PRM-style) needs `--verifier_kind` and its keys
(docs/verifiers.md).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import UserError, cli, parse_config
from search.questions import question_problem
from search.settings import COMPUTE_OPTIMAL, RunConfig, RuntimeConfig

if TYPE_CHECKING:  # the runtime loads torch: imported after the command line is parsed
    from search.runtime import Runtime
    from search.strategies.strategy import SearchResult, StrategySpec


@dataclass
class SolveConfig(RuntimeConfig):
    question: str = ""  # the question to solve (required)
    strategy: str = "best_of_n"  # a strategy spec (best_of_n, beam:m=4, ...; docs/search.md) or compute_optimal
    budget: int = 16  # the generation budget N

    def __post_init__(self) -> None:
        super().__post_init__()
        why = question_problem(self.question if self.question.strip() else None)
        if why is not None:
            raise ValueError(f"--question: {why}")
        if self.strategy != COMPUTE_OPTIMAL:
            self.spec(self.strategy).width(self.budget)  # an impossible pair is refused before any weights load
        elif not self.compute_optimal:
            raise ValueError(f"strategy {COMPUTE_OPTIMAL} needs --compute_optimal (the schedule file make eval writes)")


CONFIG_TYPES = (RunConfig,)  # what a recipe configures (the `run` command)


def solve(argv: list[str]) -> SearchResult:
    (cfg,) = parse_config([SolveConfig], argv, "python -m search solve")
    from search.runs import load_schedule

    if cfg.strategy == COMPUTE_OPTIMAL:
        schedule = load_schedule(cfg)
        runtime = cfg.load()
        try:
            [(spec, result)] = runtime.solve_compute_optimal(schedule, [cfg.question], cfg.budget, cfg.seed)
        except ValueError as err:
            raise UserError(str(err)) from None
        print(f"compute-optimal choice: {spec} ({result.accounting.generations} generations)")
        return _print_result(runtime, spec, cfg.budget, result)
    spec = cfg.spec(cfg.strategy)
    try:
        runtime = cfg.load()
        runtime.check(spec, cfg.budget)
    except ValueError as err:
        raise UserError(str(err)) from None
    [result] = runtime.solve(spec, [cfg.question], cfg.budget, cfg.seed)
    return _print_result(runtime, spec, cfg.budget, result)


def _print_result(runtime: Runtime, spec: StrategySpec, budget: int, result: SearchResult) -> SearchResult:
    from search.runs import accounting_record

    answers = defaultdict(int)
    for candidate in result.candidates:
        answers[candidate.answer or "(none)"] += 1
    print(f"strategy: {spec}   budget: {budget}")
    print(f"answer: {result.answer if result.answer is not None else '(no answer within the limits)'}")
    print("solution:\n" + "".join(f"  {step}\n" for step in result.solution), end="")
    print(f"candidates: {len(result.candidates)} ({', '.join(f'{a} x{n}' for a, n in answers.items())})")
    print("accounting: " + json.dumps(accounting_record(runtime, spec, result)))
    return result


def run(argv: list[str]) -> Path:
    (cfg,) = parse_config(CONFIG_TYPES, argv, "python -m search run")
    from search.runs import run_config

    return run_config(cfg)


def serve(argv: list[str]) -> None:
    from search.serve.settings import CONFIG_TYPES as SERVE_TYPES

    (cfg,) = parse_config(SERVE_TYPES, argv, "python -m search serve")
    from search.serve.server import serve as run_server  # FastAPI and the models: after parsing

    run_server(cfg)


COMMANDS = {"solve": solve, "run": run, "serve": serve}
USAGE = """usage: python -m search {solve,run,serve} [options]

  solve   one question with one strategy at one budget: the answer, the solution, the compute spent
  run     a question JSONL x strategies x budgets: results.jsonl (resumable) and summary.{json,md}
  serve   an OpenAI-compatible server: strategy and budget per request (auto: from the predicted difficulty)

python -m search solve --help (run --help, serve --help): every option, described."""


@cli
def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return None
    if not argv or argv[0] not in COMMANDS:
        raise UserError(f"usage: python -m search {{{','.join(COMMANDS)}}} [options]; python -m search --help")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-file weight-loading bars; our own bar shows progress
    return COMMANDS[argv[0]](argv[1:])
