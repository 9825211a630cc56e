"""How the revision model behaves along its own chains, without a verifier (Snell et al. sec. 6).

    python -m eval.revision_report --revision_model outputs/arith-tiny/revision \\
        --dataset outputs/arith-tiny/test_questions.jsonl

Samples `chains` chains of `length` revisions per test question (`search.strategies.revisions`) and
reports the accuracy at each revision step, and how often the next answer of a chain turns a
correct answer incorrect, or an incorrect one correct (the paper saw about 38% correct ->
incorrect). Writes report.{json,md} and accuracy_by_step.png beside the checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from core.checkpoints import check_model_path
from core.config import cli, parse_config
from core.outputs import OutputGuard, claim_report_dir
from core.stats import Ratio, interval
from search.generation.generator import check_sampling
from search.generation.hf_generator import HFGenerator
from search.grading import answers_match
from search.prompting import PromptConfig, resolve_format
from search.questions import load_questions
from search.strategies.revisions import sample_revision_chains
from search.strategies.strategy import SearchSettings


@dataclass
class RevisionReportConfig(OutputGuard):
    revision_model: str = "outputs/arith-tiny/revision"  # the revision model checkpoint
    dataset: str = "outputs/arith-tiny/test_questions.jsonl"  # question JSONL
    chains: int = 4  # per question
    length: int = 8  # revisions per chain
    temperature: float = 1.0  # sampling temperature (0: greedy decoding)
    top_p: float = 1.0  # nucleus sampling: sample from the smallest set of tokens holding this much probability
    max_new_tokens: int = 160  # the most tokens one whole solution may have (longer ones are cut off and counted)
    seed: int = 0  # the seed every sample derives from
    batch_size: int = 128  # sequences per forward batch (speed only)
    chunk_size: int = 16  # questions per batched call
    output_dir: str | None = None  # default: <revision_model>/report

    def __post_init__(self) -> None:
        check_sampling(self.temperature, self.top_p, self.max_new_tokens, self.batch_size, self.chunk_size)
        if self.chains < 1 or self.length < 2:
            raise ValueError("chains must be >= 1 and length >= 2 (a revision needs a previous attempt)")


CONFIG_TYPES = (RevisionReportConfig,)


def chain_statistics(chains: Sequence[Sequence[bool | None]]) -> dict:
    """Per-step accuracy and flip rates of graded chains: `chains[c][t]` is True (correct), False
    (incorrect) or None (no answer) for attempt t of chain c. A flip compares an answered attempt
    with the chain's previous answered one, counted at the later attempt's step."""
    length = max(map(len, chains))
    steps = [{"step": t, "attempts": 0, "correct": 0, "answered": 0, "was_correct": 0, "correct_to_incorrect": 0,
              "was_incorrect": 0, "incorrect_to_correct": 0} for t in range(length)]  # fmt: skip
    for chain in chains:
        previous = None
        for t, verdict in enumerate(chain):
            row = steps[t]
            row["attempts"] += 1
            if verdict is None:
                continue
            row["answered"] += 1
            row["correct"] += verdict
            if previous is not None:
                row["was_correct" if previous else "was_incorrect"] += 1
                row["correct_to_incorrect"] += previous and not verdict
                row["incorrect_to_correct"] += not previous and verdict
            previous = verdict
    for row in steps:
        row["accuracy"] = row["correct"] / row["attempts"] if row["attempts"] else 0.0
    totals = {key: sum(r[key] for r in steps) for key in ("was_correct", "correct_to_incorrect", "was_incorrect",
                                                           "incorrect_to_correct")}  # fmt: skip
    return {
        "chains": len(chains),
        "steps": steps,
        "correct_to_incorrect_rate": _rate(totals["correct_to_incorrect"], totals["was_correct"]),
        "incorrect_to_correct_rate": _rate(totals["incorrect_to_correct"], totals["was_incorrect"]),
        "any_correct": sum(any(v for v in chain if v) for chain in chains) / len(chains),
        "last_correct": sum(bool(chain[-1]) for chain in chains) / len(chains),
        **totals,
    }


def encode_chain(verdicts: Sequence[bool | None]) -> str:
    """A graded chain as text: 1 correct, 0 incorrect, - no answer, one character per attempt."""
    return "".join("-" if v is None else "1" if v else "0" for v in verdicts)


def decode_chain(text: str) -> list[bool | None]:
    return [None if c == "-" else c == "1" for c in text]


def chain_intervals(per_question: Sequence[dict]) -> dict:
    """95% intervals over questions (a question's chains stay with it): the accuracy at each attempt, and the
    correct -> incorrect and incorrect -> correct rates."""
    chains = [[decode_chain(c) for c in q["chains"]] for q in per_question]
    length = max(len(c) for q in chains for c in q)
    accuracy = [interval(Ratio.mean([np.mean([bool(c[t]) for c in q if len(c) > t] or [0.0]) for q in chains]))
                .to_dict() for t in range(length)]  # fmt: skip
    flips = [chain_statistics(q) for q in chains]
    rates = {}
    for key, base in (("correct_to_incorrect", "was_correct"), ("incorrect_to_correct", "was_incorrect")):
        num, den = np.array([f[key] for f in flips], float), np.array([f[base] for f in flips], float)
        rates[key] = interval(Ratio(num, den)).to_dict() if den.sum() else None
    return {"accuracy_by_step": accuracy, **rates}


def _rate(count: int, total: int) -> float | None:
    return count / total if total else None


def report_markdown(stats: dict, title: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"{stats['chains']} chains. Of the answers that were correct, the next answer of the chain was incorrect "
        f"{_pct(stats['correct_to_incorrect_rate'])} of the time; of the incorrect ones, the next was correct "
        f"{_pct(stats['incorrect_to_correct_rate'])}. Chains with a correct answer somewhere: "
        f"{_pct(stats['any_correct'])}; correct at their last step: {_pct(stats['last_correct'])}."
        + _flip_intervals(stats.get("intervals")),
        "",
        "| step | attempts | answered | accuracy [95% interval] | correct -> incorrect | incorrect -> correct |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    bands = (stats.get("intervals") or {}).get("accuracy_by_step") or [None] * len(stats["steps"])
    for r, band in zip(stats["steps"], bands, strict=True):
        accuracy = f"{r['accuracy']:.3f}" + ("" if band is None else f" [{band['low']:.3f}, {band['high']:.3f}]")
        lines.append(
            f"| {r['step']} | {r['attempts']} | {r['answered']} | {accuracy} "
            f"| {r['correct_to_incorrect']}/{r['was_correct']} | {r['incorrect_to_correct']}/{r['was_incorrect']} |"
        )
    if stats.get("by_level"):
        steps = range(len(stats["steps"]))
        lines += ["", "Accuracy by revision step and level:", "", "| level | " + " | ".join(map(str, steps)) + " |",
                  "|---|" + "---:|" * len(steps)]  # fmt: skip
        for level, s in stats["by_level"].items():
            lines.append(f"| {level} | " + " | ".join(f"{r['accuracy']:.2f}" for r in s["steps"]) + " |")
    return "\n".join(lines) + "\n"


def _flip_intervals(intervals: dict | None) -> str:
    if not intervals or not intervals.get("correct_to_incorrect"):
        return ""
    c2i = intervals["correct_to_incorrect"]
    band = f"{_pct(c2i['estimate'])} [{_pct(c2i['low'])}, {_pct(c2i['high'])}]"
    return f" Correct -> incorrect with its 95% interval over questions: {band}."


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def plot(stats: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in stats["steps"]]
    fig, (acc, flips) = plt.subplots(1, 2, figsize=(10, 4))
    acc.plot(steps, [r["accuracy"] for r in stats["steps"]], marker="o")
    acc.set(xlabel="revision step", ylabel="accuracy", title="accuracy of the t-th attempt")
    for key, base, label in (("correct_to_incorrect", "was_correct", "correct -> incorrect"),
                             ("incorrect_to_correct", "was_incorrect", "incorrect -> correct")):  # fmt: skip
        rates = [(r["step"], r[key] / r[base]) for r in stats["steps"] if r[base]]
        flips.plot([s for s, _ in rates], [v for _, v in rates], marker="o", label=label)
    flips.set(xlabel="revision step", ylabel="fraction of the previous answers", title="flips")
    flips.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    check_model_path(cfg.revision_model, "revision model checkpoint")
    questions = load_questions(cfg.dataset)
    out = Path(cfg.output_dir) if cfg.output_dir else Path(cfg.revision_model) / "report"
    claim_report_dir(out, "eval.revision_report", cfg.overwrite_output_dir)
    fmt = resolve_format(cfg.revision_model, PromptConfig())
    reviser = HFGenerator.from_pretrained(cfg.revision_model, fmt, batch_size=cfg.batch_size)
    settings = SearchSettings(cfg.temperature, cfg.top_p, max_new_tokens=cfg.max_new_tokens)
    graded: list[list[bool | None]] = []
    levels: list = []
    per_question: list[dict] = []
    for start in tqdm(range(0, len(questions), cfg.chunk_size), desc="revision chains", unit="chunk"):
        chunk = questions[start : start + cfg.chunk_size]
        sampled = sample_revision_chains(
            [q.text for q in chunk], reviser, None, fmt, settings, cfg.chains, cfg.length, cfg.seed
        )
        for question, chains in zip(chunk, sampled, strict=True):
            mine = []
            for chain in chains.chains:
                answers = [a.candidate.answer for a in chain]
                graded.append([None if a is None else answers_match(a, question.gold) for a in answers])
                levels.append(question.level)
                mine.append(encode_chain(graded[-1]))
            per_question.append({"id": question.id, "level": question.level, "chains": mine})
    stats = chain_statistics(graded)
    by_level = {str(level): chain_statistics([g for g, lv in zip(graded, levels, strict=True) if lv == level])
                for level in sorted(set(levels), key=str)}  # fmt: skip
    stats.update(revision_model=cfg.revision_model, dataset=cfg.dataset, questions=len(questions), by_level=by_level,
                 intervals=chain_intervals(per_question), per_question=per_question)  # fmt: skip
    title = f"Revision chains of {cfg.revision_model} ({len(questions)} questions x {cfg.chains} chains)"
    (out / "report.json").write_text(json.dumps(stats, indent=2))
    (out / "report.md").write_text(report_markdown(stats, title))
    plot(stats, out / "accuracy_by_step.png", title)
    print((out / "report.md").read_text())
    return stats


if __name__ == "__main__":
    main()
