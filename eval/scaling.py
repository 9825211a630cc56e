"""Compute-optimal test-time scaling for your checkpoints (Snell et al. 2024): `make eval`.

    python -m eval.scaling --config recipes/arith-tiny/eval.yaml
    python -m eval.scaling --task math --source HuggingFaceH4/MATH-500 --split test --dataset null ...

Questions: `dataset` (the runtime's question JSONL), or with `dataset: null` a task's split
(`task`, `source`, `split`, `questions_per_level`, `limit`; see `data.tasks`), written to
`<out>/questions.jsonl` first.

1. Every strategy at every budget (powers of 2 up to `max_budget`) on the test questions,
   through the runtime (`python -m search run`: results.jsonl, resumable).
2. Difficulty of each question from `difficulty_samples` policy samples: oracle = their pass@1
   (gold answers used), predicted = the mean verifier score of the first `probe_samples` of them
   (no gold answer: exactly what the runtime computes for a new question). 5 quantile bins each.
3. Per bin and generation budget, the compute-optimal strategy chosen with 2-fold
   cross-validation over questions (`eval.compute_optimal`), its held-out accuracy, and the
   budget best-of-N (weighted) needs to match it.
4. report.{json,md}, PNG plots, and policy.json: the predicted-bin choices, which the runtime
   follows with `--strategies compute_optimal --compute_optimal policy.json`.

Budgets are in generations, the paper's unit: lookahead with k steps at N spends N*(k+1), so
it competes at that budget. Everything is written under `out`; a rerun continues.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, fields, replace
from pathlib import Path

from tqdm.auto import tqdm

from data.tasks import TaskConfig
from eval.compute_optimal import cross_validated_choice, matching_budget, quantile_bins
from search import cli as search_cli
from search.best_of_n import sample_best_of_n
from search.compute_optimal import Choice, ComputeOptimalPolicy, probe_seed
from search.config import UserError, cli, parse_config
from search.grading import answers_match
from search.jsonl import cut_torn_tail, read_jsonl
from search.questions import load_questions


@dataclass
class EvalConfig(search_cli.RuntimeConfig, TaskConfig):
    """The runtime's settings (`search.cli.RuntimeConfig`), where the questions come from
    (`data.tasks.TaskConfig`) and what the evaluation adds."""

    revision_model: str | None = "outputs/arith-tiny/revision"  # null or "": no revision strategies
    revision_verifier: str | None = "outputs/arith-tiny/revision_orm"
    dataset: str | None = "outputs/arith-tiny/test_questions.jsonl"  # null: the task's questions
    split: str = "test"
    questions_per_level: int | None = 10
    strategies: str = (
        "best_of_n,best_of_n:select=majority,beam:m=sqrt,beam:m=4,lookahead:m=4:k=1,dvts:m=4,revision:l=2,revision:l=4"
    )
    max_budget: int = 16  # budgets 1, 2, 4, ... up to this
    baseline: str = "best_of_n:select=weighted"  # what compute-optimal is compared with
    difficulty_samples: int = 16  # policy samples per question for the oracle difficulty
    probe_samples: int = 4  # of those, how many predict difficulty (the runtime's probe)
    bins: int = 5
    folds: int = 2
    chunk_size: int = 16  # questions per batched call (and per resume checkpoint)
    out: str = "outputs/arith-tiny/eval"

    def __post_init__(self) -> None:
        search_cli.RuntimeConfig.__post_init__(self)
        TaskConfig.__post_init__(self)
        if self.max_budget < 1 or self.bins < 1 or self.folds < 2:
            raise ValueError("max_budget and bins must be >= 1, folds >= 2")
        if not 1 <= self.probe_samples <= self.difficulty_samples:
            raise ValueError("probe_samples must be in 1..difficulty_samples")

    def budgets(self) -> list[int]:
        return [2**i for i in range(int(math.log2(self.max_budget)) + 1)]


CONFIG_TYPES = (EvalConfig,)


def write_questions(cfg: EvalConfig) -> str:
    """The question JSONL the evaluation runs on: `dataset`, or the task's questions written out."""
    if cfg.dataset:
        return cfg.dataset
    _, questions = cfg.load(cfg.policy, stream="eval")
    path = Path(cfg.out) / "questions.jsonl"
    path.write_text("".join(json.dumps({"id": q.id, "question": q.text, "answer": q.gold, "level": q.level}) + "\n"
                            for q in questions))  # fmt: skip
    return str(path)


def run_searches(cfg: EvalConfig) -> Path:
    """Step 1, through the runtime CLI (resumable)."""
    runtime = {f.name: getattr(cfg, f.name) for f in fields(search_cli.RuntimeConfig)}
    if not cfg.revision_model:  # revision specs are then skipped
        runtime.update(revision_model=None, revision_verifier=None)
    budgets = ",".join(map(str, cfg.budgets()))
    out = str(Path(cfg.out) / "search")
    run = search_cli.RunConfig(**runtime, dataset=cfg.dataset, strategies=cfg.strategies, budgets=budgets, out=out,
                               chunk_size=cfg.chunk_size)  # fmt: skip
    return search_cli.run_config(run) / "results.jsonl"


def measure_difficulty(cfg: EvalConfig) -> dict[str, dict]:
    """Step 2: per question id, pass@1 and the probe's mean verifier score (difficulty.jsonl, resumable)."""
    path = Path(cfg.out) / "difficulty.jsonl"
    cut_torn_tail(path)
    done = {r["id"]: r for r in read_jsonl(path)}
    questions = [q for q in load_questions(cfg.dataset) if q.id not in done]
    if questions:
        runtime = replace(cfg, revision_model=None, revision_verifier=None).load()
        chunks = [questions[i : i + cfg.chunk_size] for i in range(0, len(questions), cfg.chunk_size)]
        with path.open("a") as sink:
            for chunk in tqdm(chunks, desc="difficulty", unit="chunk"):
                samples = sample_best_of_n(
                    [q.text for q in chunk],
                    runtime.generator,
                    runtime.verifier,
                    runtime.format,
                    runtime.settings,
                    cfg.difficulty_samples,
                    probe_seed(cfg.seed),  # the first probe_samples of these are the runtime's probe
                )
                for q, s in zip(chunk, samples, strict=True):
                    correct = [answers_match(c.answer, q.gold) for c in s.candidates]
                    probe = [c.score for c in s.candidates[: cfg.probe_samples]]
                    row = {"id": q.id, "pass_at_1": sum(correct) / len(correct), "probe_score": sum(probe) / len(probe)}
                    done[q.id] = row
                    sink.write(json.dumps(row) + "\n")
                sink.flush()
    return done


def load_outcomes(results: Path, ids: set[str]) -> dict[tuple[str, int], dict[str, bool]]:
    """(strategy @ N, generations) -> question id -> correct, for runs complete on every question."""
    table: dict[tuple[str, int], dict[str, bool]] = defaultdict(dict)
    for row in read_jsonl(results):
        if row["id"] in ids and row["strategy"] != search_cli.COMPUTE_OPTIMAL:
            key = (f"{row['strategy']} @ N={row['budget']}", row["accounting"]["generations"])
            table[key][row["id"]] = row["correct"]
    return {key: by_id for key, by_id in table.items() if set(by_id) == ids}


def analyse(cfg: EvalConfig, outcomes: dict, difficulty: dict[str, dict]) -> dict:
    """Step 3: curves, per-bin choices (oracle and predicted bins) and the best-of-N match."""
    ids = sorted(difficulty)
    budgets = cfg.budgets()
    curves: dict[str, dict[int, float]] = defaultdict(dict)
    for (label, generations), by_id in outcomes.items():
        curves[label.split(" @ ")[0]][generations] = sum(by_id.values()) / len(ids)
    report: dict = {"questions": len(ids), "budgets": budgets, "curves": curves, "binnings": {}}
    for kind, key in (("oracle", "pass_at_1"), ("predicted", "probe_score")):
        bins, edges = quantile_bins({i: difficulty[i][key] for i in ids}, cfg.bins)
        members = [[i for i in ids if bins[i] == b] for b in range(cfg.bins)]
        per_bin, optimal = [], {}
        for b, questions in enumerate(members):
            row = {"bin": b, "questions": len(questions), "curves": {}, "choices": {}}
            for (label, generations), by_id in outcomes.items():
                row["curves"].setdefault(label.split(" @ ")[0], {})[generations] = sum(
                    by_id[q] for q in questions
                ) / len(questions)
            for g in budgets:
                candidates = {label: by_id for (label, gen), by_id in outcomes.items() if gen == g}
                if candidates:
                    row["choices"][g] = cross_validated_choice(candidates, questions, cfg.folds, cfg.seed).__dict__
            per_bin.append(row)
        for g in budgets:
            choices = [row["choices"].get(g) for row in per_bin]
            if all(choices):
                optimal[g] = sum(c["held_out_correct"] for c in choices) / len(ids)
        baseline = curves.get(cfg.baseline, {})
        matching = {g: matching_budget(baseline, acc) for g, acc in optimal.items()}
        report["binnings"][kind] = {
            "by": key,
            "edges": edges,
            "bins": per_bin,
            "compute_optimal": optimal,
            "baseline": {g: baseline.get(g) for g in optimal},
            "baseline_budget_to_match": matching,
        }
    return report


def policy_file(cfg: EvalConfig, report: dict) -> ComputeOptimalPolicy:
    """Step 4: the predicted-bin choices, for the runtime."""
    predicted = report["binnings"]["predicted"]
    choices = {}
    for row in predicted["bins"]:
        by_budget = {}
        for g, choice in row["choices"].items():
            strategy, n = choice["strategy"].split(" @ N=")
            by_budget[int(g)] = Choice(strategy, int(n))
        choices[row["bin"]] = by_budget
    return ComputeOptimalPolicy(cfg.probe_samples, predicted["edges"], choices)


def report_markdown(cfg: EvalConfig, report: dict) -> str:
    budgets = report["budgets"]
    head = "| strategy | " + " | ".join(f"{g}" for g in budgets) + " |"
    rule = "|---|" + "---:|" * len(budgets)
    lines = [
        f"# Compute-optimal test-time scaling ({report['questions']} questions)",
        "",
        f"Policy `{cfg.policy}`, verifier `{cfg.verifier}`, revision model `{cfg.revision_model}`. Budgets in",
        "generations (lookahead k=1 at N spends 2N). Reproduce: `make eval`.",
        "",
        "## Accuracy by generation budget",
        "",
        head,
        rule,
    ]
    for name, curve in sorted(report["curves"].items()):
        lines.append(f"| {name} | " + " | ".join(_num(curve.get(g)) for g in budgets) + " |")
    for kind, binning in report["binnings"].items():
        lines += ["", f"## Compute-optimal with {kind} difficulty bins ({binning['by']}, 2-fold cross-validated)", ""]
        lines += [head.replace("strategy", "budget ->"), rule]
        lines.append("| compute-optimal (held out) | " + " | ".join(
            _num(binning["compute_optimal"].get(g)) for g in budgets) + " |")  # fmt: skip
        lines.append(f"| {cfg.baseline} | " + " | ".join(_num(binning["baseline"].get(g)) for g in budgets) + " |")
        lines.append("| best-of-N budget to match | " + " | ".join(
            _budget(binning["baseline_budget_to_match"].get(g)) for g in budgets) + " |")  # fmt: skip
        lines += ["", "| bin | questions | " + " | ".join(f"choice at {g}" for g in budgets) + " |",
                  "|---:|---:|" + "---|" * len(budgets)]  # fmt: skip
        for row in binning["bins"]:
            cells = []
            for g in budgets:
                c = row["choices"].get(g)
                cells.append("-" if c is None else f"{c['strategy']} ({c['held_out_accuracy']:.2f})")
            lines.append(f"| {row['bin']} | {row['questions']} | " + " | ".join(cells) + " |")
    lines += ["", "Bin 0 is the hardest (lowest pass@1 or probe score). A choice shows its held-out accuracy.", ""]
    lines += ["Plots: accuracy_vs_budget.png, accuracy_by_bin.png, compute_optimal.png, efficiency.png.", ""]
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _budget(value: float | None) -> str:
    return "> max" if value is None else f"{value:.1f}"


def plot(report: dict, out: Path, baseline: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def curves(ax, named: dict, title: str) -> None:
        for name, curve in sorted(named.items()):
            points = sorted((int(g), a) for g, a in curve.items())
            ax.plot([g for g, _ in points], [a for _, a in points], marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set(xlabel="generation budget", ylabel="accuracy", title=title)

    fig, ax = plt.subplots(figsize=(7, 5))
    curves(ax, report["curves"], "accuracy vs generation budget")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_budget.png", dpi=120)
    plt.close(fig)

    bins = report["binnings"]["oracle"]["bins"]
    fig, axes = plt.subplots(1, len(bins), figsize=(3.2 * len(bins), 3.4), sharey=True, squeeze=False)
    for ax, row in zip(axes[0], bins, strict=True):
        curves(ax, row["curves"], f"oracle bin {row['bin']} ({row['questions']} q)")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "accuracy_by_bin.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    named = {f"compute-optimal ({k} bins)": b["compute_optimal"] for k, b in report["binnings"].items()}
    named[baseline] = report["curves"].get(baseline, {})
    curves(ax, named, "compute-optimal vs best-of-N (held out)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "compute_optimal.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for kind, binning in report["binnings"].items():
        points = sorted((int(g), m) for g, m in binning["baseline_budget_to_match"].items() if m is not None)
        ax.plot([g for g, _ in points], [m for _, m in points], marker="o", label=f"{kind} bins")
    top = max(report["budgets"])
    ax.plot([1, top], [1, top], linestyle="--", color="grey", label="same budget")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set(xlabel="compute-optimal budget B", ylabel="best-of-N budget to match", title="efficiency")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "efficiency.png", dpi=120)
    plt.close(fig)


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg.dataset = write_questions(cfg)
    results = run_searches(cfg)
    difficulty = measure_difficulty(cfg)
    ids = {q.id for q in load_questions(cfg.dataset)}
    difficulty = {i: difficulty[i] for i in ids}
    if len(ids) < cfg.bins:
        raise UserError(f"{len(ids)} questions cannot fill {cfg.bins} difficulty bins")
    report = analyse(cfg, load_outcomes(results, ids), difficulty)
    report.update(policy=cfg.policy, verifier=cfg.verifier, dataset=cfg.dataset, baseline=cfg.baseline)
    policy_file(cfg, report).save(out / "policy.json")
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(report_markdown(cfg, report))
    plot(report, out, cfg.baseline)
    print((out / "report.md").read_text())
    return report


if __name__ == "__main__":
    main()
