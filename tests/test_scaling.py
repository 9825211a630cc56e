"""make eval end to end on the tiny checkpoints, and the runtime following its schedule file."""

import json

from data import export_questions
from eval import flops_matched, scaling
from search import cli
from search.compute_optimal import ComputeOptimalSchedule

FAST = ["--max_new_tokens", "40", "--max_step_tokens", "12"]


def test_eval_writes_report_plots_and_a_schedule_the_runtime_follows(tiny_policy, tiny_prm, tmp_path):
    questions = tmp_path / "q.jsonl"
    export_questions.main(["--policy", str(tiny_policy), "--split", "test", "--questions_per_level", "2",
                           "--out", str(questions)])  # fmt: skip
    out = tmp_path / "eval"
    argv = ["--policy", str(tiny_policy), "--verifier", str(tiny_prm), "--revision_model", str(tiny_policy),
            "--revision_verifier", str(tiny_prm), "--dataset", str(questions), "--out", str(out),
            "--strategies", "best_of_n,best_of_n:select=majority,beam:m=2,revision:l=1,revision:l=all",
            "--max_budget", "4", "--difficulty_samples", "2", "--bins", "2", *FAST]  # fmt: skip
    report = scaling.main(argv)
    n = len(questions.read_text().splitlines())
    assert report["questions"] == n and report["budgets"] == [1, 2, 4]
    assert set(report["curves"]) == {"best_of_n:select=weighted", "best_of_n:select=majority", "beam:m=2",
                                     "revision:l=1:select=weighted", "revision:l=all:select=weighted"}  # fmt: skip
    baselines = {"search": "best_of_n:select=weighted", "revisions": "revision:l=1:select=weighted",
                 "all": "best_of_n:select=weighted"}  # fmt: skip
    for binning in report["binnings"].values():
        assert sum(row["questions"] for row in binning["bins"]) == n
        assert set(binning["pools"]) == set(baselines)  # search and revisions, each against its own baseline
        for pool, result in binning["pools"].items():
            assert set(result["compute_optimal"]) == {1, 2, 4}
            for g, acc in result["compute_optimal"].items():  # held-out accuracy is that of real outcomes
                assert 0 <= acc <= 1 and result["baseline"][g] == report["curves"][baselines[pool]][g]
            chosen = {c["strategy"].split(" @ ")[0] for by in result["choices"].values() for c in by.values()}
            assert all(s.startswith("revision") for s in chosen) == (pool == "revisions")
    for name in ("report.md", "report.json", "accuracy_vs_budget.png", "accuracy_by_bin.png", "compute_optimal.png",
                 "efficiency.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0
    difficulty = [json.loads(line) for line in (out / "difficulty.jsonl").read_text().splitlines()]
    assert len(difficulty) == n and all(0 <= d["pass_at_1"] <= 1 for d in difficulty)

    results = (out / "search" / "results.jsonl").read_text()
    scaling.main(argv)  # a rerun continues: nothing left to run
    assert (out / "search" / "results.jsonl").read_text() == results

    schedule = ComputeOptimalSchedule.load(out / "schedule.json")
    assert schedule.probe_samples == 2 and len(schedule.bin_edges) <= 1
    run_out = tmp_path / "co"
    cli.main(["run", "--policy", str(tiny_policy), "--verifier", str(tiny_prm), "--revision_model", str(tiny_policy),
              "--revision_verifier", str(tiny_prm), "--dataset", str(questions), "--strategies", "compute_optimal",
              "--compute_optimal", str(out / "schedule.json"), "--budgets", "4", "--out", str(run_out),
              *FAST])  # fmt: skip
    rows = [json.loads(line) for line in (run_out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == n and all(r["strategy"] == "compute_optimal" for r in rows)
    for row in rows:  # the chosen strategy fits the budget, and the probe's samples are accounted for
        assert row["accounting"]["generations"] <= 4
        assert row["accounting"]["samples"] >= row["accounting"]["generations"] + 2
        assert row["chosen"] in {c.strategy for by in schedule.choices.values() for c in by.values()}


def test_flops_matched_report_reads_the_eval_curves(tiny_policy, tiny_prm, tmp_path):
    questions = tmp_path / "q.jsonl"
    export_questions.main(["--policy", str(tiny_policy), "--split", "test", "--questions_per_level", "2",
                           "--out", str(questions)])  # fmt: skip
    out = tmp_path / "eval"
    scaling.main(["--policy", str(tiny_policy), "--verifier", str(tiny_prm), "--revision_model", "", "--dataset",
                  str(questions), "--out", str(out), "--strategies", "best_of_n,best_of_n:select=majority",
                  "--max_budget", "4", "--difficulty_samples", "2", "--bins", "2", *FAST])  # fmt: skip
    # the same checkpoint as the "large" model: size ratio 1, so the matched budget is 1 generation
    result = flops_matched.main(["--large_policy", str(tiny_policy), "--eval_report", str(out / "report.json"),
                                 "--max_new_tokens", "40"])  # fmt: skip
    assert result["size_ratio"] == 1 and [r["matched_budget"] for r in result["rows"]] == [1, 1, 1]
    report = json.loads((out / "report.json").read_text())
    oracle = report["binnings"]["oracle"]
    for b, small in result["rows"][0]["small_by_bin"].items():  # per oracle bin, the bin's held-out choice at 1
        choice = oracle["pools"]["all"]["choices"][str(b)]["1"]
        assert small == choice["held_out_correct"] / choice["questions"]
    assert sum(result["bin_questions"].values()) == report["questions"]
    assert (out / "flops_matched.md").read_text().startswith("# Test-time compute vs a 1.0x larger model")


def test_eval_runs_on_the_tasks_own_questions(tiny_policy, tiny_prm, tmp_path):
    """Without `dataset`, the eval writes the task's questions out and runs on them."""
    out = tmp_path / "eval"
    scaling.main(["--policy", str(tiny_policy), "--verifier", str(tiny_prm), "--revision_model", "", "--dataset",
                  "null", "--task", "arith", "--split", "test", "--questions_per_level", "1", "--out", str(out),
                  "--strategies", "best_of_n:select=majority", "--max_budget", "2", "--difficulty_samples", "2",
                  "--bins", "2", *FAST])  # fmt: skip
    rows = [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]
    assert len(rows) >= 2 and sorted(r["level"] for r in rows) == list(range(1, len(rows) + 1))  # one per level
    assert json.loads((out / "report.json").read_text())["questions"] == len(rows)
