"""How much of search's promise does the trained PRM deliver? Every strategy, the same held-out
questions and seeds, once with the trained PRM and once with the arith ground-truth verifier.

    python -m eval.verifier_gap --policy outputs/arith-tiny/policy --verifier outputs/arith-tiny/prm

The ground-truth verifier (`data.arith_oracle`) is a perfect PRM: the gap between the two
columns is what a better PRM could still win; majority voting uses no verifier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from core.checkpoints import check_model_path
from core.config import cli, parse_config
from core.outputs import OutputGuard, claim_report_dir
from data.arith import ArithTask, first_per_level
from data.arith_oracle import ArithOracleVerifier
from search.grading import answers_match
from search.runtime import Runtime
from search.strategies.strategy import SearchSettings, StrategySpec, parse_budgets


@dataclass
class VerifierGapConfig(OutputGuard):
    policy: str = "outputs/arith-tiny/policy"  # the policy checkpoint: a local folder or a Hub id
    verifier: str = "outputs/arith-tiny/prm"  # the PRM (or ORM) checkpoint that scores steps
    per_level: int = 10  # test questions per number of operations
    strategies: str = "best_of_n:select=majority,best_of_n,beam:m=4,lookahead:m=4:k=1,dvts:m=4"  # strategy specs
    budgets: str = "4,16"  # comma-separated budgets N
    max_new_tokens: int = 160  # the most tokens one whole solution may have (longer ones are cut off and counted)
    seed: int = 0  # the seed every sample derives from
    output_dir: str | None = None  # default: <verifier>/verifier_gap (report.json, report.md)

    def __post_init__(self) -> None:
        if self.per_level < 1 or self.max_new_tokens < 1:
            raise ValueError("per_level and max_new_tokens must be >= 1")
        for budget in parse_budgets(self.budgets):  # every pair checked before any model loads
            for spec in self.specs():
                spec.width(budget)

    def specs(self) -> list[StrategySpec]:
        return [StrategySpec.parse(s) for s in self.strategies.split(",")]


CONFIG_TYPES = (VerifierGapConfig,)


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    task = ArithTask.load(cfg.policy)
    chosen = first_per_level(task.splits(0).test, cfg.per_level)
    specs, budgets = cfg.specs(), parse_budgets(cfg.budgets)
    check_model_path(cfg.verifier, "verifier checkpoint")
    out = claim_report_dir(cfg.output_dir or Path(cfg.verifier) / "verifier_gap", "eval.verifier_gap",
                           cfg.overwrite_output_dir)  # fmt: skip
    runtime = Runtime.load(cfg.policy, cfg.verifier)
    settings = SearchSettings(max_new_tokens=cfg.max_new_tokens, aggregation=runtime.settings.aggregation)
    verifiers = {"trained PRM": runtime.verifier, "ground truth": ArithOracleVerifier(chosen, runtime.format)}
    accuracy: dict[str, dict[str, float]] = {}
    for spec in tqdm(specs, desc="strategies"):
        for name, verifier in verifiers.items():
            if spec.select == "majority" and spec.name == "best_of_n" and name != "trained PRM":
                continue  # no verifier involved
            searcher = Runtime(runtime.generator, runtime.format, verifier, settings)
            swept = searcher.sweep([spec], [q.text for q in chosen], budgets, cfg.seed)
            for budget in budgets:
                results = swept[(str(spec), budget)]
                hits = sum(answers_match(r.answer, q.answer) for r, q in zip(results, chosen, strict=True))
                accuracy.setdefault(f"{spec} @ {budget}", {})[name] = hits / len(chosen)
    report = {"policy": cfg.policy, "verifier": cfg.verifier, "questions": len(chosen), "accuracy": accuracy}
    lines = [
        f"# Search with the trained PRM vs the ground-truth verifier ({len(chosen)} test questions)",
        "",
        "| strategy @ budget | trained PRM | ground truth |",
        "|---|---:|---:|",
    ]
    for key, row in accuracy.items():
        lines.append(f"| {key} | {row['trained PRM']:.3f} | {_num(row.get('ground truth'))} |")
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return report


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
