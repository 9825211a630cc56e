"""`make reproduce`'s report: each of Snell et al.'s findings as one comparison named before the run,
its 95% interval, and a verdict.

    python -m eval.reproduction --config recipes/arith-tiny/reproduce.yaml            # collect, then judge
    python -m eval.reproduction --bundle docs/reproduction/outcomes.json --output_dir DIR    # judge a committed bundle

Two verifier tracks run side by side: `paper` (the PRM on the policy itself, trained on Monte-Carlo
labels only: the paper's setting and the headline) and `strong` (the PRM on the 13x larger policy:
a different experiment, a verifier that knows more than the policy, whose pre-training and
inference the FLOPs-matched rows count). The chain's per-question outcomes (both tracks' evaluations with their
validation and test splits, the PRM evaluations, the revision chains, the larger model's greedy
answers and the FLOPs figures) are collected into one bundle, `outcomes.json`; every finding is
computed from it alone, so a committed bundle recomputes findings.json and the table exactly.

A comparison is a paired difference over test questions (`core.stats`): "reproduced" when its
interval excludes 0 in the paper's direction, "contradicted" the other way, else "inconclusive".
Where a family of variants is compared (beam M, lookahead k, the strategy per difficulty bin) the
member is chosen on the validation questions by the same statistic, then tested once.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import UserError, cli, parse_config
from core.outputs import OutputGuard, claim_report_dir, marked_block, replace_marked_block
from core.stats import Difference, Ratio, interval
from eval.outcomes import Outcomes, SplitOutcomes
from eval.revision_report import decode_chain
from eval.scaling_analysis import AnalysisSettings, compute_optimal, difficulty_bins

BUNDLE_FORMAT = "ttc-reproduction/1"
TRACKS = {
    "paper": "PRM on the policy itself, Monte-Carlo labels only (the paper's setting)",
    "strong": "PRM on the 13x larger policy: a stronger verifier, whose pre-training and inference FLOPs are counted",
}


@dataclass
class ReproductionConfig(OutputGuard):
    paper_eval: str = "outputs/arith-tiny/reproduce/eval-paper"  # make eval's folder with the paper-track PRM
    strong_eval: str = "outputs/arith-tiny/reproduce/eval-strong"  # ... with the strong-track PRM
    paper_prm_eval: str = "outputs/arith-tiny/prm/eval/prm_eval.json"  # eval.prm_eval of the paper-track PRM
    strong_prm_eval: str = "outputs/arith-tiny/prm-strong/eval/prm_eval.json"  # ... of the strong-track PRM
    revision_report: str = "outputs/arith-tiny/revision/report/report.json"  # chains on the test questions
    bundle: str | None = None  # judge this committed bundle instead of collecting the chain's outputs
    output_dir: str = "outputs/arith-tiny/reproduce/report"
    readme: str | None = None  # also rewrite the findings table between the markers of this README
    # the comparisons, fixed before the run
    vote_budget: int = 16  # weighted best-of-N vs majority voting
    small_budget: int = 4  # beam vs best-of-N at a small and a large budget
    large_budget: int = 64  # ... and at this large one: the advantage should shrink
    lookahead_generations: int = 16  # beam vs lookahead at equal generations
    efficiency_budget: int = 4  # compute-optimal at this budget vs its baseline at ratio x this budget
    efficiency_ratio: int = 4  # the paper: about 4x fewer generations
    revision_budget: int = 16  # sequential vs parallel revisions
    hard_bins: str = "0,1"  # oracle bins (0: the hardest of five)
    easy_bins: str = "3,4"  # the easiest oracle bins
    ceiling: float = 0.95  # FLOPs-matched easy bins: only those where the larger model is below this on validation

    def __post_init__(self) -> None:
        if self.small_budget >= self.large_budget or min(self.efficiency_budget, self.efficiency_ratio) < 1:
            raise ValueError("small_budget must be below large_budget; efficiency budget and ratio >= 1")

    def bins(self, which: str) -> list[int]:
        return [int(b) for b in getattr(self, f"{which}_bins").split(",")]


CONFIG_TYPES = (ReproductionConfig,)


def _load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} is missing: run make reproduce (it builds what is missing)")
    return json.loads(path.read_text())


def collect(cfg: ReproductionConfig) -> dict:
    """The bundle of per-question outcomes (module docstring) from the reproduce chain's outputs."""
    tracks = {}
    for track, eval_dir, prm_eval in (("paper", cfg.paper_eval, cfg.paper_prm_eval),
                                      ("strong", cfg.strong_eval, cfg.strong_prm_eval)):  # fmt: skip
        report, prm = _load(Path(eval_dir) / "report.json"), _load(prm_eval)
        tracks[track] = {
            "eval": _load(Path(eval_dir) / "outcomes.json"),
            "settings": report["settings"],
            "prm": {
                "per_question": prm["pairwise"]["per_question"],
                "step_auc": prm.get("step_auc"),
                "first_error_f1": (prm.get("first_error_f1") or {}).get("f1"),
            },  # fmt: skip
            "flops": _load(Path(eval_dir) / "flops_matched.json"),
        }
    revisions = _load(cfg.revision_report)
    return {"format": BUNDLE_FORMAT, "tracks": tracks, "revisions": {"per_question": revisions["per_question"]}}


@dataclass
class Finding:
    key: str
    claim: str  # the paper's claim (section)
    comparison: str  # what is compared, in words
    direction: int = 1  # the sign the paper predicts


class Judge:
    """Computes each finding's interval and verdict on one track's outcomes."""

    def __init__(self, cfg: ReproductionConfig, track: dict, seed: int):
        self.cfg, self.seed = cfg, seed
        self.outcomes = Outcomes.from_dict(track["eval"])
        self.settings = AnalysisSettings(**track["settings"])
        self.test, self.validation = self.outcomes.splits["test"], self.outcomes.splits["validation"]

    def bins_mask(self, split: SplitOutcomes, bins: list[int]) -> np.ndarray:
        return np.isin(difficulty_bins(split, "oracle", self.settings), bins)

    def arm(self, split: SplitOutcomes, strategy: str, budget: int, mask: np.ndarray | None = None) -> Ratio:
        values = split.correct(strategy, budget)
        return Ratio.mean(values if mask is None else values[mask])

    def family(self, members: list[str], statistic: Callable[[SplitOutcomes, str], Difference | Ratio]) -> str:
        """The member with the largest statistic on the validation questions."""
        runnable = [m for m in members if m in self.validation.strategies() and m in self.test.strategies()]
        if not runnable:
            raise KeyError(f"none of {members} ran")
        return max(sorted(runnable), key=lambda m: float(statistic(self.validation, m).value()))

    def at_generations(self, split: SplitOutcomes, prefix: str, generations: int) -> list[tuple[str, int]]:
        """(strategy, budget N) of the runs of a family that spend `generations`."""
        return [(s, n) for s in split.strategies() if s.startswith(prefix) for n in split.budgets(s)
                if split.generations(s, n) == generations]  # fmt: skip

    def compute_optimal(self, kind: str, pool: str, generations: int) -> Ratio:
        found = compute_optimal(self.outcomes, kind, pool, generations, self.settings)
        if found is None:
            raise KeyError(f"no {pool} strategy ran at {generations} generations")
        return Ratio.mean(found[0])


def track_findings(cfg: ReproductionConfig, bundle_track: dict, seed: int) -> list[tuple[Finding, object]]:
    """(finding, statistic) pairs of one verifier track; a statistic is a `Difference`, or a text where the
    comparison could not be made (a budget beyond the sweep, a bin at ceiling)."""
    judge = Judge(cfg, bundle_track, seed)
    test = judge.test
    bon, maj = "best_of_n:select=weighted", "best_of_n:select=majority"
    out: list[tuple[Finding, object]] = []
    won, pairs = np.array(bundle_track["prm"]["per_question"], dtype=float).reshape(-1, 2).T
    out.append((Finding("prm_pairwise", "a PRM ranks a question's right solutions above its wrong ones (sec. 5)",
                        "within-question pairwise accuracy - 0.5 (chance)"),
                Ratio(won, pairs) - Ratio(0.5 * pairs, pairs)))  # fmt: skip
    out.append((Finding("weighted_vs_majority", "PRM-weighted best-of-N beats majority voting (sec. 5)",
                        f"weighted - majority at N={cfg.vote_budget}"),
                judge.arm(test, bon, cfg.vote_budget) - judge.arm(test, maj, cfg.vote_budget)))  # fmt: skip
    hard, small, large = cfg.bins("hard"), cfg.small_budget, cfg.large_budget
    beams = ["beam:m=sqrt", "beam:m=4"]

    def beam_ahead_on_hard(split: SplitOutcomes, beam: str) -> Difference:
        mask = judge.bins_mask(split, hard)
        return judge.arm(split, beam, small, mask) - judge.arm(split, bon, small, mask)

    beam = judge.family(beams, beam_ahead_on_hard)
    out.append((Finding("beam_small_budget_hard", "beam search beats best-of-N at small budgets on hard questions "
                        "(sec. 5)", f"{beam} - weighted best-of-N at N={small}, oracle bins {cfg.hard_bins}"),
                beam_ahead_on_hard(test, beam)))  # fmt: skip

    def gap_shrinks(split: SplitOutcomes, beam: str) -> Difference:
        return (judge.arm(split, beam, small) - judge.arm(split, bon, small)) - (
            judge.arm(split, beam, large) - judge.arm(split, bon, large))  # fmt: skip

    beam = judge.family(beams, gap_shrinks)
    out.append((Finding("beam_gap_shrinks", "beam search's advantage is largest at small budgets (sec. 5)",
                        f"({beam} - best-of-N) at N={small} minus the same at N={large}"),
                gap_shrinks(test, beam)))  # fmt: skip
    g = cfg.lookahead_generations
    beam_runs = {s: n for s, n in judge.at_generations(judge.validation, "beam", g)}
    look_runs = {s: n for s, n in judge.at_generations(judge.validation, "lookahead", g)}
    if beam_runs and look_runs:
        beam = judge.family(list(beam_runs), lambda split, s: judge.arm(split, s, beam_runs[s]))
        look = judge.family(list(look_runs), lambda split, s: judge.arm(split, s, look_runs[s]))
        out.append((Finding("lookahead_below_beam", "lookahead search underperforms beam search at equal "
                            "generations (sec. 5)", f"{beam} @ N={beam_runs[beam]} - {look} @ N={look_runs[look]} "
                            f"({g} generations each)"),
                    judge.arm(test, beam, beam_runs[beam]) - judge.arm(test, look, look_runs[look])))  # fmt: skip
    b, ratio = cfg.efficiency_budget, cfg.efficiency_ratio
    for kind in ("oracle", "predicted"):
        out.append((Finding(f"compute_optimal_search_{kind}", f"compute-optimal search matches best-of-N with about "
                            f"{ratio}x fewer generations (sec. 5)", f"compute-optimal ({kind} bins, chosen on "
                            f"validation) at {b} generations - weighted best-of-N at {ratio * b}"),
                    judge.compute_optimal(kind, "search", b) - judge.arm(test, bon, ratio * b)))  # fmt: skip
    out += flops_findings(cfg, judge, bundle_track["flops"])
    return out


def flops_findings(cfg: ReproductionConfig, judge: Judge, flops: dict) -> list[tuple[Finding, object]]:
    """FLOPs-matched (sec. 7) from the track's flops figures and the larger model's per-question answers."""
    from eval.flops_matched import matched_budget, matched_budget_with_verifier

    greedy = {name: np.frombuffer(bits.encode(), dtype=np.uint8) - ord("0")
              for name, bits in flops["large_greedy"].items()}  # fmt: skip
    curve = {}
    for g in sorted({v["generations"] for v in judge.test.results.values()}):
        found = compute_optimal(judge.outcomes, "oracle", flops["pool"], g, judge.settings)
        if found is not None:
            curve[g] = found[0]
    from eval.compute_optimal import at_budget

    bins = judge.settings.bins
    val_bins = difficulty_bins(judge.validation, "oracle", judge.settings)
    easy = [b for b in range(bins - 3, bins) if greedy["validation"][val_bins == b].mean() < cfg.ceiling]
    hardest = [0]
    out = []
    for ratio in sorted({r["inference_to_pretraining"] for r in flops["rows"]}):
        budgets = {
            "verifier not counted": matched_budget(flops["size_ratio"], ratio),
            "verifier counted": matched_budget_with_verifier(
                flops["size_ratio"], ratio, flops["policy_params"], flops["verifier_params"],
                flops["verifier_training_flops"], flops["pretraining_tokens"]),
        }  # fmt: skip
        claims = [("hardest", hardest, -1)] if ratio > 1 else [("easy", easy, 1), ("hardest", hardest, -1)]
        for accounting, x in budgets.items():
            small = at_budget(curve, x)
            for group, members, direction in claims:
                below = ",".join(map(str, members)) or "none"
                easy_text = f"easy oracle bins where the larger model is below {cfg.ceiling} on validation ({below})"
                where = "the hardest oracle bin" if group == "hardest" else easy_text
                claim = ("at R >> 1 pre-training wins, above all on hard questions (sec. 7)" if ratio > 1 else
                         "at R <= 1 small + test-time compute wins on easy questions (sec. 7)" if group == "easy" else
                         "at R <= 1 the larger model still wins the hardest questions (sec. 7)")  # fmt: skip
                finding = Finding(f"flops_R{ratio:g}_{group}_{accounting.split()[1]}", claim,
                                  f"R={ratio:g}, {accounting} (X={x:.1f}): small - {flops['size_ratio']:.1f}x larger "
                                  f"on {where}", direction)  # fmt: skip
                mask = np.isin(difficulty_bins(judge.test, "oracle", judge.settings), members)
                if small is None:
                    out.append((finding, f"X={x:.1f} beyond the largest budget measured"))
                elif not mask.any():
                    out.append((finding, f"the larger model is at ceiling (>= {cfg.ceiling}) on every easy bin"))
                else:
                    large = greedy["test"][mask].astype(float)
                    out.append((finding, Ratio.mean(small[mask]) - Ratio.mean(large)))
    return out


def revision_findings(cfg: ReproductionConfig, bundle: dict, seed: int) -> list[tuple[Finding, object]]:
    """Sec. 6 (the revision model and its ORM; no PRM, so the same on both tracks)."""
    judge = Judge(cfg, bundle["tracks"]["paper"], seed)
    test = judge.test
    chains = {q["id"]: [decode_chain(c) for c in q["chains"]] for q in bundle["revisions"]["per_question"]}
    length = min(len(c) for q in chains.values() for c in q)
    ids = list(chains)

    def at(t: int) -> Ratio:
        return Ratio.mean([np.mean([bool(c[t]) for c in chains[i]]) for i in ids])

    out: list[tuple[Finding, object]] = [(Finding("revision_index_rises", "accuracy rises with the revision index, "
                                                  "beyond the attempts trained on (sec. 6)",
                                                  f"accuracy at attempt {length} - at attempt 1 (revision chains)"),
                                          at(length - 1) - at(0))]  # fmt: skip
    easy, n = judge.bins_mask(test, cfg.bins("easy")), cfg.revision_budget
    sequential, parallel = "revision:l=all:select=weighted", "revision:l=1:select=weighted"
    statistic = judge.arm(test, sequential, n, easy) - judge.arm(test, parallel, n, easy)
    out.append((Finding("sequential_beats_parallel_easy", "on easy questions purely sequential revisions beat "
                        "parallel sampling (sec. 6)", f"fully sequential - fully parallel at N={n}, oracle bins "
                        f"{cfg.easy_bins}"), statistic))  # fmt: skip
    b, ratio = cfg.efficiency_budget, cfg.efficiency_ratio
    for kind in ("oracle", "predicted"):
        out.append((Finding(f"compute_optimal_revisions_{kind}", f"compute-optimal revisions match parallel "
                            f"best-of-N with about {ratio}x fewer generations (sec. 6)", f"compute-optimal revisions "
                            f"({kind} bins, chosen on validation) at {b} - parallel at {ratio * b}"),
                    judge.compute_optimal(kind, "revisions", b) - judge.arm(test, parallel, ratio * b)))  # fmt: skip
    return out


def judged(finding: Finding, statistic: object, seed: int) -> dict:
    row = {"key": finding.key, "claim": finding.claim, "comparison": finding.comparison,
           "direction": finding.direction}  # fmt: skip
    if isinstance(statistic, str):
        return {**row, "verdict": "not run", "why": statistic}
    result = interval(statistic, seed)
    return {**row, **result.to_dict(), "verdict": result.verdict(finding.direction)}


def findings(cfg: ReproductionConfig, bundle: dict) -> dict:
    """Every finding's row per track (module docstring), and the descriptive figures beside them."""
    if bundle.get("format") != BUNDLE_FORMAT:
        raise UserError(f"not a reproduction bundle (format {bundle.get('format')!r}, expected {BUNDLE_FORMAT!r})")
    seed = AnalysisSettings(**bundle["tracks"]["paper"]["settings"]).seed
    rows: dict[str, dict] = {}
    for track in TRACKS:
        for finding, statistic in _safely(lambda t=track: track_findings(cfg, bundle["tracks"][t], seed)):
            rows.setdefault(finding.key, {"claim": finding.claim, "tracks": {}})["tracks"][track] = judged(
                finding, statistic, seed)  # fmt: skip
    for finding, statistic in _safely(lambda: revision_findings(cfg, bundle, seed)):
        rows[finding.key] = {"claim": finding.claim, "tracks": {"both": judged(finding, statistic, seed)}}
    described = {track: {"step_auc": t["prm"]["step_auc"], "first_error_f1": t["prm"]["first_error_f1"]}
                 for track, t in bundle["tracks"].items()}  # fmt: skip
    return {"tracks": TRACKS, "findings": rows, "described": described}


def _safely(make: Callable[[], list]) -> list:
    try:
        return make()
    except KeyError as err:
        raise UserError(f"the bundle lacks a run a finding needs: {err.args[0]}") from None


VERDICT_MARK = {"reproduced": "reproduced", "contradicted": "**contradicted**", "inconclusive": "inconclusive",
                "not run": "not run"}  # fmt: skip


def table(result: dict) -> str:
    """The findings table (README and docs): one row per finding, a column per track."""
    lines = ["| the paper's claim | comparison (test questions) | paper track | strong track |", "|---|---|---|---|"]
    for row in result["findings"].values():
        tracks = row["tracks"]
        if "both" in tracks:
            cells, comparison = [_cell(tracks["both"])] * 2, tracks["both"]["comparison"]
        else:
            cells = [_cell(tracks.get(t)) for t in ("paper", "strong")]
            comparison = next(iter(tracks.values()))["comparison"]
        lines.append(f"| {row['claim']} | {comparison} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def _cell(row: dict | None) -> str:
    if row is None:
        return "-"
    if row["verdict"] == "not run":
        return f"not run ({row['why']})"
    return (f"{row['estimate']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}] {VERDICT_MARK[row['verdict']]} "
            f"(detects {row['detectable']:.2f})")  # fmt: skip


def counts(result: dict) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for row in result["findings"].values():
        for track, judged_row in row["tracks"].items():
            for t in ("paper", "strong") if track == "both" else (track,):
                out.setdefault(t, {}).setdefault(judged_row["verdict"], 0)
                out[t][judged_row["verdict"]] += 1
    return out


def markdown(result: dict) -> str:
    summary = "; ".join(f"{track} track: " + ", ".join(f"{n} {v}" for v, n in sorted(c.items()))
                        for track, c in counts(result).items())  # fmt: skip
    described = result["described"]
    lines = [
        "# Reproducing Snell et al. 2024 on the embedded arith task",
        "",
        f"`make reproduce` on 2 CPU cores. {summary}.",
        "",
        "Each finding is one comparison named before the run (recipes/arith-tiny/reproduce.yaml), measured on the",
        "test questions as a paired difference with its 95% interval (bootstrap over questions; a question's",
        "sampling seeds and chains stay with it). Verdict: reproduced when the interval excludes 0 in the paper's",
        "direction, contradicted when it excludes 0 the other way, else inconclusive. Where variants compete (beam",
        "M, lookahead k, the strategy per difficulty bin) the member was chosen on the validation questions.",
        "",
        *(f"- **{track} track**: {text}." for track, text in result["tracks"].items()),
        "",
        table(result),
        "Figures beside the verdicts: step AUC "
        + ", ".join(f"{t} {_num(d['step_auc'])}" for t, d in described.items())
        + "; first-error F1 "
        + ", ".join(f"{t} {_num(d['first_error_f1'])}" for t, d in described.items())
        + ".",
        '"detects": the smallest true difference these test questions would show (80% power, two-sided 5%).',
        "Rebuild this page from the committed outcomes: `python -m eval.reproduction --config",
        "recipes/arith-tiny/reproduce.yaml --bundle docs/reproduction/outcomes.json --output_dir docs/reproduction`.",
        "",
    ]
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def readme_block(result: dict) -> str:
    return marked_block("findings", table(result))


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    out = claim_report_dir(cfg.output_dir, "eval.reproduction", cfg.overwrite_output_dir)
    try:
        bundle = _load(cfg.bundle) if cfg.bundle else collect(cfg)
    except KeyError as err:
        raise UserError(f"a report of the reproduce chain lacks {err.args[0]!r}: written by another version? rerun "
                        "make reproduce") from None  # fmt: skip
    result = findings(cfg, bundle)
    out.mkdir(parents=True, exist_ok=True)
    if not cfg.bundle or Path(cfg.bundle).resolve() != (out / "outcomes.json").resolve():
        (out / "outcomes.json").write_text(json.dumps(bundle, separators=(",", ":")) + "\n")
    if not cfg.bundle:  # the chain's reports and plots beside the verdicts
        for track, folder in (("paper", cfg.paper_eval), ("strong", cfg.strong_eval)):
            for name in ("report.md", "flops_matched.md", "accuracy_vs_budget.png", "accuracy_by_bin.png",
                         "compute_optimal.png", "efficiency.png"):  # fmt: skip
                if (Path(folder) / name).is_file():
                    shutil.copy(Path(folder) / name, out / f"{track}_{name}")
    (out / "findings.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "README.md").write_text(markdown(result))
    if cfg.readme:
        replace_marked_block(Path(cfg.readme), "findings", table(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
