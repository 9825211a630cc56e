"""`make reproduce`'s report: each of Snell et al.'s findings, our figures, and a verdict.

    python -m eval.reproduction --out docs/reproduction

Reads what the reproduce chain wrote under outputs/arith-tiny (the PRM evaluations, make eval's
sweep with the verifier-base PRM, the revision report, the FLOPs-matched comparison) and writes
`<out>/README.md`, `<out>/findings.json` and the plots. A finding is "reproduced" when our figure
meets the goal of issue 14 (the paper's claim scaled to the tiny task), otherwise "not
reproduced", with the figure either way.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from search.config import UserError, cli, parse_config


@dataclass
class ReproductionConfig:
    outputs: str = "outputs/arith-tiny"  # where the reproduce chain wrote its results
    eval_dir: str = "outputs/arith-tiny/reproduce/eval"  # make reproduce's eval folder
    out: str = "docs/reproduction"


def _load(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path} is missing: run make reproduce (it builds what is missing)")
    return json.loads(path.read_text())


def _curve(report: dict, strategy: str, bins: list[dict] | None = None) -> dict[int, float]:
    """A strategy's accuracy by generation budget, overall or pooled over some bins' rows."""
    if bins is None:
        return {int(g): a for g, a in report["curves"].get(strategy, {}).items()}
    total = sum(row["questions"] for row in bins)
    budgets = set.intersection(*(set(row["curves"].get(strategy, {})) for row in bins))
    return {int(g): sum(row["curves"][strategy][g] * row["questions"] for row in bins) / total for g in budgets}


def _best(report: dict, prefix: str, budget: int, bins: list[dict] | None = None) -> tuple[str | None, float | None]:
    """The best strategy whose name starts with `prefix` at `budget` (overall or in `bins`)."""
    scored = [(_curve(report, s, bins).get(budget), s) for s in report["curves"] if s.startswith(prefix)]
    scored = [(a, s) for a, s in scored if a is not None]
    return (max(scored)[1], max(scored)[0]) if scored else (None, None)


def _efficiency(pool: dict, max_budget: int) -> tuple[int, float, str] | None:
    """The budget where compute-optimal saves the most generations against the baseline: (budget, ratio, text).
    Where best-of-N never reaches compute-optimal's accuracy within `max_budget`, the ratio is at least
    max_budget / budget (a lower bound, written "> ...")."""
    ratios = []
    for g, matched in pool.get("baseline_budget_to_match", {}).items():
        g = int(g)
        if pool.get("compute_optimal", {}).get(str(g)) is None:
            continue
        if matched:
            ratios.append((g, matched / g, f"{matched / g:.1f}x at budget {g}"))
        elif g < max_budget:
            ratios.append(
                (g, max_budget / g, f"> {max_budget / g:.0f}x at budget {g} (best-of-N still below at {max_budget})")
            )
    return max(ratios, key=lambda r: (r[1], -r[0])) if ratios else None


def findings(outputs: Path, eval_dir: Path) -> list[dict]:
    prm = _load(outputs / "prm/eval/prm_eval.json")
    prm_vb = _load(outputs / "prm-verifier-base/eval/prm_eval.json")
    report = _load(eval_dir / "report.json")
    flops_path = eval_dir / "flops_matched.json"  # optional: the 13.4x policy trains for about an hour
    flops = json.loads(flops_path.read_text()) if flops_path.is_file() else None
    revisions = _load(outputs / "revision/report/report.json")
    budgets = report["budgets"]
    top = max(b for b in budgets if b <= 16)
    out = []

    def add(finding: str, paper: str, goal: str, ours: str, ok: bool | None) -> None:
        """`ok` None: not run."""
        out.append({"finding": finding, "paper": paper, "goal": goal, "ours": ours,
                    "reproduced": None if ok is None else bool(ok)})  # fmt: skip

    for name, e in (("PRM on the verifier base (make reproduce)", prm_vb), ("PRM on the policy (make train-prm)", prm)):
        pairwise, auc, f1 = e["pairwise"]["all"]["accuracy"], e["step_auc"], e["first_error_f1"]["f1"]
        add(
            f"{name} tells a question's solutions apart",
            "PRM-guided search beats best-of-N",
            "pairwise >= 0.85, step AUC >= 0.9, first-error F1 >= 0.7",
            f"pairwise {pairwise:.3f}, AUC {auc:.3f}, F1 {f1:.3f}",
            pairwise >= 0.85 and auc >= 0.9 and f1 >= 0.7,
        )
    weighted, majority = _curve(report, "best_of_n:select=weighted"), _curve(report, "best_of_n:select=majority")
    add(
        f"PRM-weighted best-of-{top} beats majority voting",
        "weighted best-of-N above majority (sec. 5)",
        "weighted > majority at N=16",
        f"{weighted[top]:.3f} vs {majority[top]:.3f}",
        weighted[top] > majority[top],
    )
    beam_name, beam = _best(report, "beam", top)
    add(
        f"Beam search at N={top} with the trained PRM",
        "beam search helps most at small budgets (sec. 5)",
        ">= 0.65",
        f"{beam:.3f} ({beam_name})",
        beam >= 0.65,
    )
    hard = report["binnings"]["oracle"]["bins"][:2]
    small = [b for b in budgets if 2 <= b <= 4]
    pairs = [
        (b, _best(report, "beam", b, hard), _curve(report, "best_of_n:select=weighted", hard).get(b)) for b in small
    ]
    text = "; ".join(f"N={b}: {bm[1]:.3f} vs {bo:.3f}" for b, bm, bo in pairs if bm[1] is not None and bo is not None)
    add(
        "Beam search ahead of best-of-N at small budgets on the hard bins",
        "sec. 5, fig. 3",
        "beam > weighted best-of-N at N <= 4 on oracle bins 0-1",
        text or "n/a",
        any(bm[1] is not None and bo is not None and bm[1] > bo for _, bm, bo in pairs),
    )
    easy_levels = [lv for lv in ("1", "2") if lv in revisions.get("by_level", {})]
    rising = [revisions["by_level"][lv]["steps"] for lv in easy_levels]
    text = "; ".join(
        f"level {lv}: " + " -> ".join(f"{r['accuracy']:.2f}" for r in steps[:3])
        for lv, steps in zip(easy_levels, rising, strict=True)
    )
    add(
        "Revisions improve answers on easy questions",
        "accuracy rises over revisions (sec. 6, fig. 6)",
        "accuracy at revision 1 or 2 above the first attempt on levels 1-2",
        text,
        all(max(s[1]["accuracy"], s[2]["accuracy"]) > s[0]["accuracy"] for s in rising) if rising else False,
    )
    c2i = revisions["correct_to_incorrect_rate"]
    add(
        "Revisions rarely break a correct answer",
        "about 38% correct -> incorrect",
        "<= 40%",
        f"{100 * c2i:.1f}%",
        c2i is not None and c2i <= 0.40,
    )
    easiest = report["binnings"]["oracle"]["bins"][-1:]
    parallel = _curve(report, "revision:l=1:select=weighted", easiest)
    seq = [(b, _best(report, "revision:l=", b, easiest)) for b in budgets if b > 1]
    beats = [
        (b, s, a)
        for b, (s, a) in seq
        if a is not None and s != "revision:l=1:select=weighted" and a > parallel.get(b, 1)
    ]
    add(
        "Sequential revisions beat parallel sampling on the easiest questions",
        "sec. 6, fig. 7",
        "some budget where a sequential ratio beats l=1 on the easiest oracle bin",
        "; ".join(f"N={b}: {s} {a:.3f} vs {parallel[b]:.3f}" for b, s, a in beats) or "none",
        bool(beats),
    )
    for kind in ("oracle", "predicted"):
        search_pool = report["binnings"][kind]["pools"].get("search", {})
        best = _efficiency(search_pool, max(budgets))
        add(
            f"Compute-optimal search ({kind} bins) needs fewer generations than best-of-N",
            "about 4x (sec. 5)",
            ">= 4x at some budget, cross-validated",
            best[2] if best else "never matched",
            bool(best and best[1] >= 4),
        )
    if flops is None:
        add("FLOPs-matched against a 13.4x larger policy", "small + test-time compute wins on easy questions, "
            "loses on the hardest (sec. 7)", "small >= the larger model on the easiest bin, below on the hardest",
            f"not run: {flops_path} is missing (make flops-matched)", None)  # fmt: skip
        return out
    easy, hard_bins = str(max(flops["large_by_bin"], key=int)), str(min(flops["large_by_bin"], key=int))
    for row in flops["rows"]:
        small_by_bin, large = row["small_by_bin"], flops["large_by_bin"]
        cell = ", ".join(
            f"bin {b}: {'beyond' if small_by_bin[b] is None else f'{small_by_bin[b]:.2f}'} vs {large[b]:.2f}"
            for b in sorted(large, key=int)
        )
        loses_hardest = small_by_bin[hard_bins] is None or small_by_bin[hard_bins] < large[hard_bins]
        name = f"FLOPs-matched at R={row['inference_to_pretraining']:g} (X={row['matched_budget']:.0f})"
        if row["inference_to_pretraining"] <= 1:
            measured = small_by_bin[easy] is not None  # X within the sweep's budgets
            unmeasured = "X beyond the sweep's budgets; the larger model: " + cell.replace("beyond vs ", "")
            wins_easiest = measured and small_by_bin[easy] >= large[easy]
            add(name, "small + test-time compute wins on easy questions, loses on the hardest (sec. 7)",
                f"small >= the {flops['size_ratio']:.1f}x model on the easiest bin, below on the hardest",
                cell if measured else unmeasured,
                (wins_easiest and loses_hardest) if measured else None)  # fmt: skip
        else:
            add(name, "at R >> 1 pre-training is the better use of compute, above all on hard questions (sec. 7)",
                f"the {flops['size_ratio']:.1f}x model above small + test-time compute on the hardest bin",
                cell, loses_hardest)  # fmt: skip
    return out


VERDICTS = {True: "reproduced", False: "not reproduced", None: "not run"}


def markdown(rows: list[dict]) -> str:
    run = [r for r in rows if r["reproduced"] is not None]
    done = sum(r["reproduced"] for r in run)
    lines = [
        "# Reproducing Snell et al. 2024 on the embedded arith task",
        "",
        f"`make reproduce` on 2 CPU cores; {done} of {len(run)} findings run reproduced"
        + (f", {len(rows) - len(run)} not run" if len(run) < len(rows) else "")
        + ". Figures measured on the",
        "machine that ran it (seeded, but CPU kernels differ between machines). Goals: issue 14.",
        "",
        "| finding | paper | goal | ours | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['finding']} | {r['paper']} | {r['goal']} | {r['ours']} | {VERDICTS[r['reproduced']]} |")
    return "\n".join(lines) + "\n"


PLOTS = {  # copied next to the report: source (relative to outputs) -> name
    "reproduce/eval/accuracy_vs_budget.png": "accuracy_vs_budget.png",
    "reproduce/eval/accuracy_by_bin.png": "accuracy_by_bin.png",
    "reproduce/eval/compute_optimal.png": "compute_optimal.png",
    "reproduce/eval/efficiency.png": "efficiency.png",
    "revision/report/accuracy_by_step.png": "revision_accuracy_by_step.png",
}


@cli
def main(argv: list[str] | None = None) -> list[dict]:
    (cfg,) = parse_config([ReproductionConfig], argv)
    outputs, out = Path(cfg.outputs), Path(cfg.out)
    rows = findings(outputs, Path(cfg.eval_dir))
    out.mkdir(parents=True, exist_ok=True)
    for source, name in PLOTS.items():
        if (outputs / source).is_file():
            shutil.copy(outputs / source, out / name)
    for source in (
        "reproduce/eval/report.md",
        "reproduce/eval/flops_matched.md",
        "revision/report/report.md",
        "prm/eval/prm_eval.md",
        "prm-verifier-base/eval/prm_eval.md",
    ):
        if (outputs / source).is_file():
            shutil.copy(outputs / source, out / source.replace("/", "_").replace("reproduce_eval_", ""))
    (out / "findings.json").write_text(json.dumps(rows, indent=2))
    (out / "README.md").write_text(markdown(rows))
    print(markdown(rows))
    return rows


if __name__ == "__main__":
    main()
