"""Compute-optimal test-time scaling for your checkpoints (Snell et al. 2024): `make eval`.

    python -m eval.scaling --config recipes/arith-tiny/eval.yaml
    python -m eval.scaling --task math --source HuggingFaceH4/MATH-500 --split test --dataset null ...

Questions: `dataset` (the runtime's question JSONL), or with `dataset: null` a task's split
(`task`, `source`, `split`, `questions_per_level`, `limit`; see `data.tasks`), written to
`<out>/questions.jsonl` first.

1. Every strategy at every budget (powers of 2 up to `max_budget`) on the test questions,
   through the runtime (`python -m search run`: results.jsonl, resumable).
2. Difficulty of each question from `difficulty_samples` policy samples: oracle = their pass@1
   (gold answers used), predicted = their mean verifier score (no gold answer: what the runtime
   computes for a new question from as many probe samples). Up to 5 quantile bins each, tied
   values in one bin, binned by the runtime's own rule.
3. Per pool of strategies, bin and generation budget, the compute-optimal strategy chosen with
   2-fold cross-validation over questions (`eval.compute_optimal`), its held-out accuracy, and
   the budget the pool's baseline needs to match it. Pools (Snell et al. compare each with its
   own baseline): `search` (PRM-guided: best-of-N, beam, lookahead, DVTS) against PRM-weighted
   best-of-N; `revisions` (sequential/parallel ratios of the revision model) against its
   parallel sampling (`revision:l=1`); `all` together against `baseline`.
4. report.{json,md}, PNG plots, and schedule.json: the `all` pool's predicted-bin choices, which the
   runtime follows with `--strategies compute_optimal --compute_optimal schedule.json`.

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
from search import runs
from search.best_of_n import sample_best_of_n
from search.compute_optimal import ComputeOptimalSchedule, ScheduleEntry, probe_seed
from search.config import UserError, cli, parse_config
from search.grading import answers_match
from search.identity import check_identity, writer_lock
from search.jsonl import cut_torn_tail, read_jsonl
from search.questions import load_questions


@dataclass
class EvalConfig(runs.RuntimeConfig, TaskConfig):
    """The runtime's settings (`search.runs.RuntimeConfig`), where the questions come from
    (`data.tasks.TaskConfig`) and what the evaluation adds."""

    revision_model: str | None = "outputs/arith-tiny/revision"  # null or "": no revision strategies
    revision_verifier: str | None = "outputs/arith-tiny/revision_orm"
    dataset: str | None = "outputs/arith-tiny/test_questions.jsonl"  # null: the task's questions
    split: str = "test"
    questions_per_level: int | None = 10
    strategies: str = (  # the paper's settings: beam M=sqrt(N) and 4; lookahead k=3 with both, k=1 with sqrt(N)
        "best_of_n,best_of_n:select=majority,beam:m=sqrt,beam:m=4,lookahead:m=sqrt:k=3,lookahead:m=4:k=3,"
        "lookahead:m=sqrt:k=1,dvts:m=4,revision:l=1,revision:l=2,revision:l=4,revision:l=all"
    )
    max_budget: int = 16  # budgets 1, 2, 4, ... up to this
    baseline: str = "best_of_n:select=weighted"  # what the `all` pool's compute-optimal is compared with
    difficulty_samples: int = 16  # policy samples per question: oracle and predicted difficulty (the probe)
    bins: int = 5  # difficulty bins (quantiles; fewer when many questions tie)
    folds: int = 2  # cross-validation folds of each bin's questions
    chunk_size: int = 16  # questions per batched call (and per resume checkpoint)
    out: str = "outputs/arith-tiny/eval"

    def __post_init__(self) -> None:
        runs.RuntimeConfig.__post_init__(self)
        TaskConfig.__post_init__(self)
        if self.max_budget < 1 or self.bins < 1 or self.folds < 2 or self.difficulty_samples < 1:
            raise ValueError("max_budget, bins and difficulty_samples must be >= 1, folds >= 2")

    def budgets(self) -> list[int]:
        return [2**i for i in range(int(math.log2(self.max_budget)) + 1)]


CONFIG_TYPES = (EvalConfig,)


def write_questions(cfg: EvalConfig) -> str:
    """The question JSONL the evaluation runs on: `dataset`, or the task's questions written out."""
    if cfg.dataset:
        return cfg.dataset
    _, questions = cfg.task_and_questions(cfg.policy, stream="eval")
    path = Path(cfg.out) / "questions.jsonl"
    path.write_text("".join(json.dumps({"id": q.id, "question": q.text, "answer": q.gold, "level": q.level}) + "\n"
                            for q in questions))  # fmt: skip
    return str(path)


def run_searches(cfg: EvalConfig) -> Path:
    """Step 1, through the runtime CLI (resumable)."""
    runtime = {f.name: getattr(cfg, f.name) for f in fields(runs.RuntimeConfig)}
    if not cfg.revision_model:  # revision specs are then skipped
        runtime.update(revision_model=None, revision_verifier=None)
    budgets = ",".join(map(str, cfg.budgets()))
    out = str(Path(cfg.out) / "search")
    run = runs.RunConfig(**runtime, dataset=cfg.dataset, strategies=cfg.strategies, budgets=budgets, out=out,
                               chunk_size=cfg.chunk_size)  # fmt: skip
    return runs.run_config(run) / "results.jsonl"


def measure_difficulty(cfg: EvalConfig) -> dict[str, dict]:
    """Step 2: per question id, pass@1 and the mean verifier score of the same samples (difficulty.jsonl,
    resumable)."""
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
                    probe_seed(cfg.seed),  # exactly the runtime's probe samples
                )
                for q, s in zip(chunk, samples, strict=True):
                    correct = [answers_match(c.answer, q.gold) for c in s.candidates]
                    scores = [c.score for c in s.candidates]
                    row = {
                        "id": q.id,
                        "pass_at_1": sum(correct) / len(correct),
                        "probe_score": sum(scores) / len(scores),
                    }
                    done[q.id] = row
                    sink.write(json.dumps(row) + "\n")
                sink.flush()
    return done


def load_outcomes(results: Path, ids: set[str]) -> dict[tuple[str, int], dict[str, bool]]:
    """(strategy @ N, generations) -> question id -> correct, for runs complete on every question."""
    table: dict[tuple[str, int], dict[str, bool]] = defaultdict(dict)
    for row in read_jsonl(results):
        if row["id"] in ids and row["strategy"] != runs.COMPUTE_OPTIMAL:
            key = (f"{row['strategy']} @ N={row['budget']}", row["accounting"]["generations"])
            table[key][row["id"]] = row["correct"]
    return {key: by_id for key, by_id in table.items() if set(by_id) == ids}


# settings that decide how fast, which searches run or how results are analysed, not the difficulty samples
ANALYSIS_ONLY = (*runs.NOT_IDENTITY, "max_budget", "baseline", "bins", "folds", "revision_model",
                 "revision_verifier", "task", "source", "split", "questions_per_level")  # fmt: skip

POOLS = {  # name -> which strategies, and the baseline they are compared with (None: cfg.baseline)
    "search": (lambda strategy: not strategy.startswith("revision"), "best_of_n:select=weighted"),
    "revisions": (lambda strategy: strategy.startswith("revision"), "revision:l=1:select=weighted"),
    "all": (lambda strategy: True, None),
}


def analyse(cfg: EvalConfig, outcomes: dict, difficulty: dict[str, dict]) -> dict:
    """Step 3: curves, bins (oracle and predicted), and per pool the per-bin choices, the held-out
    compute-optimal curve and the baseline budget that matches it."""
    ids = sorted(difficulty)
    budgets = cfg.budgets()
    curves: dict[str, dict[int, float]] = defaultdict(dict)
    for (label, generations), by_id in outcomes.items():
        curves[label.split(" @ ")[0]][generations] = sum(by_id.values()) / len(ids)
    report: dict = {"questions": len(ids), "budgets": budgets, "curves": curves, "binnings": {}}
    for kind, key in (("oracle", "pass_at_1"), ("predicted", "probe_score")):
        bins, edges = quantile_bins({i: difficulty[i][key] for i in ids}, cfg.bins)
        members = [[i for i in ids if bins[i] == b] for b in range(len(edges) + 1)]
        rows = []
        for b, questions in enumerate(members):
            row_curves: dict = defaultdict(dict)
            for (label, generations), by_id in outcomes.items():
                row_curves[label.split(" @ ")[0]][generations] = sum(by_id[q] for q in questions) / len(questions)
            rows.append({"bin": b, "questions": len(questions), "curves": row_curves})
        pools = {}
        for pool, (member, baseline_name) in POOLS.items():
            in_pool = {k: v for k, v in outcomes.items() if member(k[0].split(" @ ")[0])}
            if in_pool:
                pools[pool] = pool_choices(cfg, in_pool, members, curves.get(baseline_name or cfg.baseline, {}))
                pools[pool]["baseline_name"] = baseline_name or cfg.baseline
        report["binnings"][kind] = {"by": key, "edges": edges, "assignment": bins, "bins": rows, "pools": pools}
    return report


def pool_choices(cfg: EvalConfig, outcomes: dict, members: list[list[str]], baseline: dict[int, float]) -> dict:
    """Per bin and budget, the cross-validated choice among `outcomes`; the compute-optimal curve
    (held-out, all questions) and the baseline budget that reaches it."""
    ids = [q for questions in members for q in questions]
    choices: dict[int, dict] = {}
    for b, questions in enumerate(members):
        outside = [q for q in ids if q not in set(questions)]
        choices[b] = {}
        for g in cfg.budgets():
            candidates = {label: by_id for (label, gen), by_id in outcomes.items() if gen == g}
            if candidates:
                choices[b][g] = cross_validated_choice(candidates, questions, cfg.folds, cfg.seed, outside).__dict__
    optimal = {}
    for g in cfg.budgets():
        if all(g in by_budget for by_budget in choices.values()):
            optimal[g] = sum(by_budget[g]["held_out_correct"] for by_budget in choices.values()) / len(ids)
    return {
        "choices": choices,
        "compute_optimal": optimal,
        "baseline": {g: baseline.get(g) for g in optimal},
        "baseline_budget_to_match": {g: matching_budget(baseline, acc) for g, acc in optimal.items()},
    }


def schedule_file(cfg: EvalConfig, report: dict) -> ComputeOptimalSchedule:
    """Step 4: the `all` pool's predicted-bin choices, for the runtime."""
    predicted = report["binnings"]["predicted"]
    choices = {}
    for b, by_budget in predicted["pools"]["all"]["choices"].items():
        choices[int(b)] = {}
        for g, choice in by_budget.items():
            strategy, n = choice["strategy"].split(" @ N=")
            choices[int(b)][int(g)] = ScheduleEntry(strategy, int(n))
    return ComputeOptimalSchedule(cfg.difficulty_samples, predicted["edges"], choices)


def report_markdown(cfg: EvalConfig, report: dict) -> str:
    budgets = report["budgets"]
    head = "| strategy | " + " | ".join(f"{g}" for g in budgets) + " |"
    rule = "|---|" + "---:|" * len(budgets)
    lines = [
        f"# Compute-optimal test-time scaling ({report['questions']} questions)",
        "",
        f"Policy `{cfg.policy}`, verifier `{cfg.verifier}`, revision model `{cfg.revision_model}`. Budgets in",
        "generations (lookahead with k steps at N spends N*(k+1)). Reproduce: `make eval`.",
        "",
        "## Accuracy by generation budget",
        "",
        head,
        rule,
    ]
    for name, curve in sorted(report["curves"].items()):
        lines.append(f"| {name} | " + " | ".join(_num(curve.get(g)) for g in budgets) + " |")
    for kind, binning in report["binnings"].items():
        sizes = ", ".join(str(row["questions"]) for row in binning["bins"])
        lines += ["", f"## Compute-optimal with {kind} difficulty bins ({binning['by']}; questions per bin: {sizes})"]
        for pool, result in binning["pools"].items():
            lines += ["", f"### Pool `{pool}` against {result['baseline_name']} (2-fold cross-validated)", ""]
            lines += [head.replace("strategy", "budget ->"), rule]
            lines.append("| compute-optimal (held out) | " + " | ".join(
                _num(result["compute_optimal"].get(g)) for g in budgets) + " |")  # fmt: skip
            lines.append("| baseline | " + " | ".join(_num(result["baseline"].get(g)) for g in budgets) + " |")
            lines.append("| baseline budget to match | " + " | ".join(
                _budget(result["baseline_budget_to_match"].get(g)) for g in budgets) + " |")  # fmt: skip
            lines += [
                "",
                "| bin | " + " | ".join(f"choice at {g}" for g in budgets) + " |",
                "|---:|" + "---|" * len(budgets),
            ]
            for b, by_budget in result["choices"].items():
                cells = [_choice(by_budget.get(g)) for g in budgets]
                lines.append(f"| {b} | " + " | ".join(cells) + " |")
    lines += ["", "Bin 0 is the hardest (lowest pass@1 or verifier score). A choice shows its held-out accuracy.", ""]
    lines += ["Plots: accuracy_vs_budget.png, accuracy_by_bin.png, compute_optimal.png, efficiency.png.", ""]
    return "\n".join(lines)


def _choice(choice: dict | None) -> str:
    return "-" if choice is None else f"{choice['strategy']} ({choice['held_out_accuracy']:.2f})"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _budget(value: float | None) -> str:
    return "> max" if value is None else f"{value:.1f}"


def plot(report: dict, out: Path) -> None:
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

    pools = report["binnings"]["predicted"]["pools"]
    fig, axes = plt.subplots(1, len(pools), figsize=(5.5 * len(pools), 4.5), squeeze=False)
    for ax, (pool, result) in zip(axes[0], pools.items(), strict=True):
        named = {f"compute-optimal ({k} bins)": b["pools"][pool]["compute_optimal"]
                 for k, b in report["binnings"].items() if pool in b["pools"]}  # fmt: skip
        named[result["baseline_name"]] = report["curves"].get(result["baseline_name"], {})
        curves(ax, named, f"pool {pool}: compute-optimal vs its baseline (held out)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "compute_optimal.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for kind, binning in report["binnings"].items():
        for pool, result in binning["pools"].items():
            points = sorted((int(g), m) for g, m in result["baseline_budget_to_match"].items() if m is not None)
            ax.plot([g for g, _ in points], [m for _, m in points], marker="o", label=f"{pool}, {kind} bins")
    top = max(report["budgets"])
    ax.plot([1, top], [1, top], linestyle="--", color="grey", label="same budget")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set(xlabel="compute-optimal budget B", ylabel="baseline budget to match", title="efficiency")
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
    with writer_lock(out):  # difficulty.jsonl: resumable under the same identity only
        check_identity(out / "run.json", runs.run_identity(cfg, cfg.dataset, ANALYSIS_ONLY))
        difficulty = measure_difficulty(cfg)
    ids = {q.id for q in load_questions(cfg.dataset)}
    difficulty = {i: difficulty[i] for i in ids}
    if len(ids) < cfg.bins:
        raise UserError(f"{len(ids)} questions cannot fill {cfg.bins} difficulty bins")
    report = analyse(cfg, load_outcomes(results, ids), difficulty)
    report.update(policy=cfg.policy, verifier=cfg.verifier, dataset=cfg.dataset, baseline=cfg.baseline)
    schedule_file(cfg, report).save(out / "schedule.json")
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(report_markdown(cfg, report))
    plot(report, out)
    print((out / "report.md").read_text())
    return report


if __name__ == "__main__":
    main()
