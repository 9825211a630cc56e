"""make eval end to end on the tiny checkpoints, and the runtime following its schedule file."""

import json

import pytest

from data import export_questions
from eval import flops_matched, scaling
from eval.outcomes import Outcomes
from search import cli
from search.strategies.compute_optimal import ComputeOptimalSchedule

FAST = ["--max_new_tokens", "40", "--max_step_tokens", "12"]


def questions_file(policy, path, split="test", per_level="2"):
    export_questions.main(["--policy", str(policy), "--split", split, "--questions_per_level", per_level,
                           "--output_file", str(path)])  # fmt: skip
    return path


def test_eval_chooses_on_validation_and_reports_intervals(tiny_policy, tiny_prm, tmp_path):
    test = questions_file(tiny_policy, tmp_path / "test.jsonl")
    validation = questions_file(tiny_policy, tmp_path / "val.jsonl", "validation")
    out = tmp_path / "eval"
    argv = ["--policy", str(tiny_policy), "--verifier", str(tiny_prm), "--revision_model", str(tiny_policy),
            "--revision_verifier", str(tiny_prm), "--dataset", str(test), "--validation_dataset", str(validation),
            "--output_dir", str(out), "--strategies", "best_of_n,best_of_n:select=majority,beam:m=2,lookahead:m=2:k=1,"
            "revision:l=1,revision:l=all", "--max_budget", "4", "--repeats", "2", "--difficulty_samples", "2",
            "--bins", "2", *FAST]  # fmt: skip
    report = scaling.main(argv)
    n = len(test.read_text().splitlines())
    assert report["questions"] == {"test": n, "validation": len(validation.read_text().splitlines())}
    assert report["choices_made_on"] == "validation" and report["generation_budgets"] == [1, 2, 4]
    beam = report["curves"]["beam:m=2"][2]  # an accuracy with its interval over questions
    assert beam["low"] <= beam["estimate"] <= beam["high"] and beam["questions"] == n
    assert 4 not in report["curves"]["lookahead:m=2:k=1"]  # 8 generations: over max_budget, skipped
    outcomes = Outcomes.load(out / "outcomes.json")
    assert set(outcomes.splits) == {"test", "validation"}
    bits = outcomes.splits["test"].results["beam:m=2 @ N=2"]["seeds"]
    assert set(bits) == {"0", "1"} and all(len(b) == n for b in bits.values())  # two sampling seeds
    assert len(outcomes.splits["validation"].results["beam:m=2 @ N=2"]["seeds"]) == 1
    baselines = {"search": "best_of_n:select=weighted", "revisions": "revision:l=1:select=weighted",
                 "all": "best_of_n:select=weighted"}  # fmt: skip
    for binning in report["binnings"].values():
        assert sum(row["questions"] for row in binning["bins"]) == n
        assert set(binning["pools"]) == set(baselines)
        for pool, result in binning["pools"].items():
            assert set(result["compute_optimal"]) == {1, 2, 4} and result["baseline_name"] == baselines[pool]
            for g, diff in result["difference"].items():  # compute-optimal minus the baseline, paired
                expected = result["compute_optimal"][g]["estimate"] - result["baseline"][g]["estimate"]
                assert diff["estimate"] == pytest.approx(expected, abs=1e-5)
            chosen = {c["strategy"] for by in result["choices"].values() for c in by.values()}
            assert all(s.startswith("revision") for s in chosen) == (pool == "revisions")
    for name in ("report.md", "report.json", "accuracy_vs_budget.png", "accuracy_by_bin.png", "compute_optimal.png",
                 "efficiency.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0
    assert "[" in (out / "report.md").read_text()  # intervals in the tables

    results = (out / "search/test/seed1/results.jsonl").read_text()
    scaling.main(argv)  # a rerun continues: nothing left to run
    assert (out / "search/test/seed1/results.jsonl").read_text() == results

    schedule = ComputeOptimalSchedule.load(out / "schedule.json")
    assert schedule.probe_samples == 2 and len(schedule.bin_edges) == 1
    validation_scores = outcomes.splits["validation"].probe_score  # the bins' calibration range, for the server
    assert schedule.probe_score_range == (min(validation_scores), max(validation_scores))
    run_out = tmp_path / "co"
    cli.main(["run", "--policy", str(tiny_policy), "--verifier", str(tiny_prm), "--revision_model", str(tiny_policy),
              "--revision_verifier", str(tiny_prm), "--dataset", str(test), "--strategies", "compute_optimal",
              "--compute_optimal", str(out / "schedule.json"), "--budgets", "4", "--output_dir", str(run_out),
              *FAST])  # fmt: skip
    rows = [json.loads(line) for line in (run_out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == n and all(r["strategy"] == "compute_optimal" for r in rows)
    for row in rows:  # the chosen strategy fits the budget, and the probe's samples are accounted for
        assert row["accounting"]["generations"] <= 4
        assert row["accounting"]["samples"] >= row["accounting"]["generations"] + 2
        assert row["chosen"] in {c.strategy for by in schedule.choices.values() for c in by.values()}


def test_flops_matched_compares_per_question_with_the_larger_model(tiny_policy, tiny_prm, tmp_path):
    test = questions_file(tiny_policy, tmp_path / "test.jsonl")
    out = tmp_path / "eval"
    scaling.main(["--policy", str(tiny_policy), "--verifier", str(tiny_prm), "--revision_model", "", "--dataset",
                  str(test), "--output_dir", str(out), "--strategies", "best_of_n,best_of_n:select=majority",
                  "--max_budget", "4", "--difficulty_samples", "2", "--bins", "2", *FAST])  # fmt: skip
    # the same checkpoint as the "large" model: size ratio 1, so the matched budget is 1 generation
    result = flops_matched.main(["--large_policy", str(tiny_policy), "--eval_dir", str(out), "--max_new_tokens",
                                 "40"])  # fmt: skip
    assert result["size_ratio"] == 1 and result["verifier_params"] > 0
    counted = {r["accounting"]: r["matched_budget"] for r in result["rows"] if r["inference_to_pretraining"] == 22}
    assert counted["verifier not counted"] == 1 and counted["verifier counted"] < 1  # the verifier halves X
    row = next(r for r in result["rows"] if r["accounting"] == "verifier not counted")
    n = len(test.read_text().splitlines())
    assert len(result["large_greedy"]["test"]) == n and row["hardest"]["difference"]["questions"] > 0
    assert (out / "flops_matched.md").read_text().startswith("# Test-time compute vs a 1.0x larger model")


def test_eval_runs_on_the_tasks_own_questions(tiny_policy, tiny_prm, tmp_path):
    """Without `dataset`, the eval writes the task's questions out and runs on them (choices cross-validated)."""
    out = tmp_path / "eval"
    report = scaling.main(["--policy", str(tiny_policy), "--verifier", str(tiny_prm), "--revision_model", "",
                           "--dataset", "null", "--task", "arith", "--split", "test", "--questions_per_level", "1",
                           "--output_dir", str(out), "--strategies", "best_of_n:select=majority", "--max_budget", "2",
                           "--difficulty_samples", "2", "--bins", "2", *FAST])  # fmt: skip
    rows = [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]
    assert len(rows) >= 2 and sorted(r["level"] for r in rows) == list(range(1, len(rows) + 1))  # one per level
    assert report["questions"] == {"test": len(rows)} and report["choices_made_on"].startswith("test, 2-fold")
