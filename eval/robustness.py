"""Does the default policy recipe land in the same place on another machine? `make robustness`.

    python -m eval.robustness --policy_recipe recipes/arith-tiny/policy.yaml --seeds 0,1,2 --threads 1,2

Trains the policy recipe once per seed and per thread count (`OMP_NUM_THREADS`: float rounding
differs between thread counts as it does between CPUs, so this stands in for another machine),
then reports each run's validation loss and sampled pass@1 per level (`eval.policy_report`). A run
holds when its validation loss is within `loss_band` of the median of all runs and its level-1
pass@1 is at least `min_level1_pass_at_1`. Runs are folders under `out` (`seed<s>-threads<t>`); a
rerun skips the finished ones. Writes robustness.{json,md}; with `publish_dir` and `readme` (`make robustness
PUBLISH=1`) also docs/robustness/ and the README's median-and-range table (generated, never typed by hand).
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from core.config import UserError, cli, parse_config
from core.outputs import replace_marked_block, write_atomic


@dataclass
class RobustnessConfig:
    policy_recipe: str = "recipes/arith-tiny/policy.yaml"  # the policy recipe to train
    train_args: str = ""  # more flags for training.policy, e.g. "--learning_rate 1e-3" (a variant to try)
    seeds: str = "0,1,2"  # training seeds
    threads: str = "1,2"  # OMP_NUM_THREADS values
    loss_band: float = 0.25  # a run's validation loss must be within this fraction of the median
    min_level1_pass_at_1: float = 0.7  # and its level-1 sampled pass@1 at least this
    output_dir: str = "outputs/arith-tiny/robustness"
    publish_dir: str | None = None  # also copy robustness.{json,md} here (docs/robustness)
    readme: str | None = None  # also rewrite the median-and-range table between the `robustness` markers of this file

    def __post_init__(self) -> None:
        if not Path(self.policy_recipe).is_file():
            raise ValueError(f"recipe not found: {self.policy_recipe}")
        if not 0 < self.loss_band < 1 or not 0 <= self.min_level1_pass_at_1 <= 1:
            raise ValueError("loss_band must be in (0, 1) and min_level1_pass_at_1 in [0, 1]")
        self.runs()  # seeds and threads must be integers

    def runs(self) -> list[tuple[int, int]]:
        try:
            return [(int(s), int(t)) for s in self.seeds.split(",") for t in self.threads.split(",")]
        except ValueError:
            raise ValueError(
                f"seeds and threads must be comma-separated integers: {self.seeds!r}, {self.threads!r}"
            ) from None


def train_and_report(cfg: RobustnessConfig, seed: int, threads: int) -> dict:
    """One run (skipped when its report exists): its validation loss and pass@1 by level."""
    folder = Path(cfg.output_dir) / f"seed{seed}-threads{threads}"
    report = folder / "report" / "pass_at_1.json"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if not report.is_file():
        steps = [[sys.executable, "-m", "training.policy", "--config", cfg.policy_recipe, "--seed", str(seed),
                  "--output_dir", str(folder), "--overwrite_output_dir", "true", "--disable_tqdm", "true",
                  *shlex.split(cfg.train_args)],
                 [sys.executable, "-m", "eval.policy_report", "--policy", str(folder)]]  # fmt: skip
        for command in steps:
            print(f"[seed {seed}, {threads} threads] {' '.join(command[1:4])}", flush=True)
            if subprocess.run(command, env=env).returncode != 0:
                raise UserError(f"seed {seed}, {threads} threads: {' '.join(command[1:3])} failed (see above)")
    metrics = json.loads((folder / "train_metrics.json").read_text())
    by_level = json.loads(report.read_text())
    return {"seed": seed, "threads": threads, "validation_loss": metrics["eval_loss"],
            "pass_at_1": {level: row["pass@1"] for level, row in by_level.items()}}  # fmt: skip


def judge(cfg: RobustnessConfig, runs: list[dict]) -> dict:
    losses = [r["validation_loss"] for r in runs]
    median = statistics.median(losses)
    for r in runs:
        r["loss_within_band"] = abs(r["validation_loss"] - median) <= cfg.loss_band * median
        r["level1_ok"] = r["pass_at_1"]["1"] >= cfg.min_level1_pass_at_1
    levels = sorted(runs[0]["pass_at_1"], key=int)
    spread = {lv: {"median": statistics.median(r["pass_at_1"][lv] for r in runs),
                   "min": min(r["pass_at_1"][lv] for r in runs), "max": max(r["pass_at_1"][lv] for r in runs)}
              for lv in levels}  # fmt: skip
    return {"recipe": cfg.policy_recipe, "loss_band": cfg.loss_band, "min_level1_pass_at_1": cfg.min_level1_pass_at_1,
            "validation_loss": {"median": median, "min": min(losses), "max": max(losses)},
            "pass_at_1": spread, "runs": runs,
            "holds": all(r["loss_within_band"] and r["level1_ok"] for r in runs)}  # fmt: skip


def summary(result: dict) -> str:
    """The README's table: each level's pass@1 as the median of the runs with their range, and the loss."""
    loss, runs = result["validation_loss"], result["runs"]
    settings = sorted({(r["seed"], r["threads"]) for r in runs})
    lines = [f"| level | pass@1, median of {len(runs)} runs | range |", "|---:|---:|---:|"]
    lines += [f"| {lv} | {s['median']:.3f} | {s['min']:.3f}-{s['max']:.3f} |" for lv, s in result["pass_at_1"].items()]
    lines += ["", f"Validation loss: median {loss['median']:.4f}, range {loss['min']:.4f}-{loss['max']:.4f}; runs: "
              + ", ".join(f"seed {s} with {t} thread{'s' * (t > 1)}" for s, t in settings)
              + (" (all within the bounds)" if result["holds"] else " (**not all within the bounds**)")]  # fmt: skip
    return "\n".join(lines) + "\n"


def markdown(result: dict) -> str:
    levels = list(result["pass_at_1"])
    loss = result["validation_loss"]
    lines = [
        f"# Robustness of `{result['recipe']}`",
        "",
        f"Validation loss: median {loss['median']:.4f}, range {loss['min']:.4f}-{loss['max']:.4f}. A run holds when "
        f"its loss is within {100 * result['loss_band']:.0f}% of the median and its level-1 pass@1 is at least "
        f"{result['min_level1_pass_at_1']}: " + ("all runs hold." if result["holds"] else "**not all runs hold**."),
        "",
        "| seed | threads | validation loss | " + " | ".join(f"pass@1 L{lv}" for lv in levels) + " | holds |",
        "|---:|---:|---:|" + "---:|" * len(levels) + "---|",
    ]
    for r in result["runs"]:
        ok = "yes" if r["loss_within_band"] and r["level1_ok"] else "no"
        cells = " | ".join(f"{r['pass_at_1'][lv]:.3f}" for lv in levels)
        lines.append(f"| {r['seed']} | {r['threads']} | {r['validation_loss']:.4f} | {cells} | {ok} |")
    cells = " | ".join(f"{s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f})" for s in result["pass_at_1"].values())
    lines.append(f"| median (range) | | {loss['median']:.4f} ({loss['min']:.4f}-{loss['max']:.4f}) | {cells} | |")
    return "\n".join(lines) + "\n"


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config([RobustnessConfig], argv)
    runs = [train_and_report(cfg, seed, threads) for seed, threads in cfg.runs()]
    result = judge(cfg, runs)
    out = Path(cfg.output_dir)
    for folder in (out, *([Path(cfg.publish_dir)] if cfg.publish_dir else [])):
        write_atomic(folder / "robustness.json", json.dumps(result, indent=2) + "\n")
        write_atomic(folder / "robustness.md", markdown(result))
    if cfg.readme:
        replace_marked_block(Path(cfg.readme), "robustness", summary(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
