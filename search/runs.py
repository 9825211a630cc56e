"""Resumable runs of strategies over a questions file and budgets: the settings, the results folder.

    run_config(RunConfig(dataset="test.jsonl", strategies="best_of_n,beam", budgets="1,4,16", output_dir=DIR))

`RuntimeConfig` holds the runtime's settings (policy, verifier, strategies' defaults, sampling, backend);
`run_config` writes one JSON line per (question, strategy, budget) to DIR/results.jsonl (answer,
correctness, solution, accounting, every candidate's answer and score), appended chunk by chunk: a rerun
skips what is there. DIR/run.json records what produced the results (`run_identity`: settings, the
questions file and a fingerprint of every checkpoint's weights): a rerun under another identity is
refused, and so is a second writer while one runs. It ends with DIR/summary.{json,md}: accuracy and mean
compute per strategy and budget. The command line (`python -m search run`) and `make eval` call it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import fields
from pathlib import Path

from tqdm.auto import tqdm

from core.config import UserError
from core.identity import check_identity, fingerprint, fingerprint_file, identity_settings, writer_lock
from core.jsonl import cut_torn_tail, read_jsonl
from core.outputs import claim_report_dir, mark_output_dir
from core.stats import Ratio, interval
from search.grading import answers_match
from search.prompting import resolve_format, stored_format
from search.questions import Question, read_questions
from search.runtime import Runtime
from search.settings import COMPUTE_OPTIMAL, RunConfig, RuntimeConfig
from search.strategies.compute_optimal import ComputeOptimalSchedule
from search.strategies.strategy import SearchResult, StrategySpec, parse_budgets
from search.verifiers.settings import VerifierSettings

# settings that decide how fast or which rows, not what a row holds (nor where the folder is)
NOT_IDENTITY = ("output_dir", "overwrite_output_dir", "limit", "chunk_size", "batch_size", "device", "strategies",
                "budgets", "max_generations")  # fmt: skip


def run_identity(cfg: RuntimeConfig, dataset: str, skip: tuple[str, ...] = NOT_IDENTITY) -> dict:
    """What a results folder's rows depend on: settings (local paths resolved), the step format, the questions
    file and the checkpoints' weights. Verifier settings at their defaults, and backend settings that do not
    decide what is sampled, are left out: folders written before they existed stay resumable."""
    defaults = {f.name for f in fields(VerifierSettings) if getattr(cfg, f.name) == f.default}
    defaults |= set(cfg.not_identity())
    settings = identity_settings({f.name: getattr(cfg, f.name) for f in fields(cfg)}, (*skip, *defaults))
    settings["step_format"] = format_identity(cfg)
    paths = {"policy": cfg.policy, "verifier": None if cfg.verifier.lower() == "none" else cfg.verifier,
             "revision_model": cfg.revision_model, "revision_verifier": cfg.revision_verifier}  # fmt: skip
    files = {"dataset": dataset, "compute_optimal": cfg.compute_optimal}
    return {"settings": settings, "checkpoints": {k: fingerprint(v) for k, v in paths.items()},
            "files": {k: fingerprint_file(v) for k, v in files.items()}}  # fmt: skip


def format_identity(cfg: RuntimeConfig) -> dict | None:
    """The step format as an identity records it: None for the policy's own (its fingerprint covers it, whether
    `step_format` names it or not), else the content of the format it is prompted in."""
    if cfg.step_format is None or stored_format(cfg.policy) is not None:
        return None
    return resolve_format(cfg.policy, cfg).to_dict()


def accounting_record(runtime: Runtime, spec: StrategySpec, result: SearchResult) -> dict:
    policy_params, verifier_params = runtime.parameter_counts(spec)
    return result.accounting.to_dict(policy_params, verifier_params)


def load_schedule(cfg: RuntimeConfig) -> ComputeOptimalSchedule:
    """The compute-optimal schedule the strategy `compute_optimal` follows (the configs require the file)."""
    return ComputeOptimalSchedule.load(cfg.compute_optimal)


def result_row(runtime: Runtime, question: Question, spec: StrategySpec, budget: int, result: SearchResult) -> dict:
    return {
        "id": question.id,
        "question": question.text,
        "gold": question.gold,
        "level": question.level,
        "strategy": str(spec),
        "budget": budget,
        "prompt": runtime.format.prompt(question.text),
        "answer": result.answer,
        "correct": answers_match(result.answer, question.gold),
        "solution": runtime.format.render_steps(result.solution),
        "accounting": accounting_record(runtime, spec, result),
        "candidates": [{"answer": c.answer, "score": round(c.score, 6)} for c in result.candidates],
    }


def run_config(cfg: RunConfig) -> Path:
    """`run` on a parsed config: writes and returns the output folder."""
    if not cfg.dataset:
        raise UserError("--dataset is required (a JSONL file of question/answer objects)")
    questions, skipped_rows = read_questions(cfg.dataset)
    if not questions:
        raise UserError(f"{cfg.dataset}: no questions (skipped: {dict(skipped_rows)})")
    questions = questions[: cfg.limit]
    names = [name.strip() for name in cfg.strategies.split(",")]
    schedule = load_schedule(cfg) if COMPUTE_OPTIMAL in names else None
    specs = list({str(s): s for s in map(cfg.spec, [n for n in names if n != COMPUTE_OPTIMAL])}.values())
    budgets = parse_budgets(cfg.budgets)
    out = claim_report_dir(cfg.output_dir, "search.run", cfg.overwrite_output_dir, write=False)
    runtime = cfg.load()
    mark_output_dir(out, "search.run")
    runnable, skipped = [], []
    for spec in specs:
        for budget in budgets:
            try:
                runtime.check(spec, budget)
                if cfg.max_generations is not None and spec.generations(budget) > cfg.max_generations:
                    raise ValueError(f"spends {spec.generations(budget)} generations, over max_generations")
                runnable.append((spec, budget))
            except ValueError as err:
                skipped.append({"strategy": str(spec), "budget": budget, "why": str(err)})
    with writer_lock(out):
        check_identity(out / "run.json", run_identity(cfg, cfg.dataset))
        results = _write_results(cfg, runtime, questions, runnable, budgets, schedule, out)
    summary = {**summarize(results, {q.id for q in questions}, skipped), "skipped_rows": dict(skipped_rows)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(summary_markdown(summary))
    print((out / "summary.md").read_text())
    return out


def _write_results(cfg: RunConfig, runtime: Runtime, questions: list[Question], runnable: list, budgets: list[int],
                   schedule: ComputeOptimalSchedule | None, out: Path) -> Path:  # fmt: skip
    """Append the rows not written yet, chunk by chunk (what a rerun resumes)."""
    results = out / "results.jsonl"
    done = _done_keys(results)
    chunks = [questions[i : i + cfg.chunk_size] for i in range(0, len(questions), cfg.chunk_size)]
    with results.open("a") as sink:
        for chunk in tqdm(chunks, desc="search", unit="chunk"):
            todo = [(s, b) for s, b in runnable if any((q.id, str(s), b) not in done for q in chunk)]
            for group in _sweep_groups(todo):  # best-of-N specs (any selection, any budget) share one set of samples
                group_budgets = sorted({b for s, b in todo if s in group})
                swept = runtime.sweep(group, [q.text for q in chunk], group_budgets, cfg.seed)
                for spec, budget in [(s, b) for s, b in todo if s in group]:
                    for question, result in zip(chunk, swept[(str(spec), budget)], strict=True):
                        if (question.id, str(spec), budget) not in done:
                            sink.write(json.dumps(result_row(runtime, question, spec, budget, result)) + "\n")
            if schedule is not None:
                for budget in budgets:
                    for row in _compute_optimal_rows(runtime, schedule, chunk, budget, done, cfg.seed):
                        sink.write(json.dumps(row) + "\n")
            sink.flush()
    return results


def _sweep_groups(todo: list[tuple[StrategySpec, int]]) -> list[list[StrategySpec]]:
    """The specs to sweep together: all best-of-N specs in one group (their samples are the same), every other
    spec alone."""
    specs = list(dict.fromkeys(s for s, _ in todo))
    best_of_n = [s for s in specs if s.name == "best_of_n"]
    return ([best_of_n] if best_of_n else []) + [[s] for s in specs if s.name != "best_of_n"]


def _compute_optimal_rows(
    runtime: Runtime, schedule: ComputeOptimalSchedule, questions: list[Question], budget: int, done: set, seed: int
) -> list[dict]:
    """Rows of the questions not done yet, run as the schedule file chooses within `budget` generations."""
    todo = [q for q in questions if (q.id, COMPUTE_OPTIMAL, budget) not in done]
    if not todo:
        return []
    try:
        chosen = runtime.solve_compute_optimal(schedule, [q.text for q in todo], budget, seed)
    except ValueError as err:
        raise UserError(str(err)) from None
    rows = []
    for question, (spec, result) in zip(todo, chosen, strict=True):
        rows.append({**result_row(runtime, question, spec, budget, result), "strategy": COMPUTE_OPTIMAL,
                     "chosen": str(spec)})  # fmt: skip
    return rows


def _done_keys(path: Path) -> set[tuple[str, str, int]]:
    """Keys of the rows already written; a torn last line (killed mid-write) is cut off first."""
    cut_torn_tail(path)
    return {(r["id"], r["strategy"], r["budget"]) for r in read_jsonl(path)}


COSTS = ("generations", "generated_tokens", "verifier_tokens", "flops")  # means per question in the summary


def summarize(results: Path, ids: set[str], skipped: list[dict]) -> dict:
    """Accuracy (with its 95% interval over questions) and mean compute per strategy and budget; where
    PRM-weighted best-of-N ran at the same budget, each other strategy's paired difference from it."""
    groups: dict[tuple[str, int], dict[str, dict]] = defaultdict(dict)
    for row in read_jsonl(results):
        if row["id"] in ids:
            groups[(row["strategy"], row["budget"])][row["id"]] = row
    table = []
    for (strategy, budget), by_id in sorted(groups.items()):
        rows = list(by_id.values())
        n = len(rows)
        baseline = groups.get((BASELINE, budget))
        shared = sorted(set(by_id) & set(baseline)) if baseline and strategy != BASELINE else []
        difference = None
        if shared:
            ours, theirs = ([float(g[i]["correct"]) for i in shared] for g in (by_id, baseline))
            difference = interval(Ratio.mean(ours) - Ratio.mean(theirs)).to_dict()
        table.append(
            {
                "strategy": strategy,
                "budget": budget,
                "questions": n,
                "accuracy": sum(r["correct"] for r in rows) / n,
                "interval": interval(Ratio.mean([float(r["correct"]) for r in rows])).to_dict(),
                "vs_weighted_best_of_n": difference,
                "unanswered": sum(r["answer"] is None for r in rows),
                **{key: sum(r["accounting"].get(key, 0) for r in rows) / n for key in COSTS},
            }
        )
    return {"results": str(results), "table": table, "skipped": skipped}


BASELINE = "best_of_n:select=weighted"  # what the summary compares each strategy with, at the same budget


def summary_markdown(summary: dict) -> str:
    lines = [
        "| strategy | budget | questions | accuracy [95% interval] | - weighted best-of-N | unanswered | generations "
        "| generated tokens | verifier tokens | FLOPs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["table"]:
        band, diff = r["interval"], r["vs_weighted_best_of_n"]
        versus = "-" if diff is None else f"{diff['estimate']:+.3f} [{diff['low']:+.2f}, {diff['high']:+.2f}]"
        lines.append(
            f"| {r['strategy']} | {r['budget']} | {r['questions']} | {r['accuracy']:.3f} [{band['low']:.2f}, "
            f"{band['high']:.2f}] | {versus} | {r['unanswered']} | {r['generations']:.0f} "
            f"| {r['generated_tokens']:.0f} | {r['verifier_tokens']:.0f} | {r['flops']:.3g} |"
        )
    lines += ["", "Intervals: paired bootstrap over questions (core/stats.py)."]
    if summary["skipped"]:
        lines += ["", "Skipped (impossible at that budget):"]
        lines += [f"- {s['strategy']} at budget {s['budget']}: {s['why']}" for s in summary["skipped"]]
    if summary.get("skipped_rows"):
        lines += ["", "Rows of the questions file skipped:"]
        lines += [f"- {why}: {n}" for why, n in summary["skipped_rows"].items()]
    return "\n".join(lines) + "\n"
