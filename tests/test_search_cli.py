"""The runtime CLI end to end on the tiny policy and the tiny PRM."""

import json

import pytest

from data import export_questions
from search import cli
from search.runtime import Runtime
from search.strategies.strategy import StrategySpec

FAST = ["--max_new_tokens", "40", "--max_step_tokens", "12"]


@pytest.fixture(scope="module")
def questions(tiny_policy, tmp_path_factory):
    out = tmp_path_factory.mktemp("questions") / "test.jsonl"
    args = ["--policy", str(tiny_policy), "--split", "test", "--questions_per_level", "2", "--output_file", str(out)]
    export_questions.main(args)
    return out


@pytest.mark.parametrize("strategy", ["best_of_n", "best_of_n:select=majority", "beam:m=2", "lookahead:m=2:k=1",
                                      "dvts:m=2"])  # fmt: skip
def test_solve_with_every_strategy(tiny_policy, tiny_prm, strategy, capsys):
    argv = ["solve", "--policy", str(tiny_policy), "--verifier", str(tiny_prm), "--strategy", strategy,
            "--budget", "4", "--question", "(2+7)*3", *FAST]  # fmt: skip
    result = cli.main(argv)
    printed = capsys.readouterr().out
    assert f"strategy: {StrategySpec.parse(strategy)}" in printed and "accounting: " in printed
    accounting = json.loads(printed.split("accounting: ")[1])
    assert accounting["generations"] == (8 if strategy.startswith("lookahead") else 4)
    assert accounting["generated_tokens"] > 0 and accounting["flops"] > 0
    assert (accounting["verifier_tokens"] > 0) == (strategy != "best_of_n:select=majority")
    assert result.answer is None or f"answer: {result.answer}" in printed
    assert cli.main(argv).candidates == result.candidates  # one seed, same run


def test_run_writes_results_resumes_and_summarizes(tiny_policy, tiny_prm, questions, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "--policy", str(tiny_policy), "--verifier", str(tiny_prm), "--dataset", str(questions),
            "--strategies", "best_of_n,best_of_n:select=majority,beam:m=2,dvts:m=2", "--budgets", "1,2,4",
            "--output_dir", str(out), "--chunk_size", "4", *FAST]  # fmt: skip
    cli.main(argv)
    rows = (out / "results.jsonl").read_text().splitlines()
    n_questions = len(questions.read_text().splitlines())
    assert len(rows) == n_questions * (2 * 3 + 2 * 2)  # beam/dvts with M=2 cannot run at budget 1
    summary = json.loads((out / "summary.json").read_text())
    assert {s["budget"] for s in summary["skipped"]} == {1} and len(summary["table"]) == 10
    row = json.loads(rows[0])
    assert {"id", "question", "gold", "level", "strategy", "budget", "answer", "correct", "solution",
            "accounting", "candidates"} <= set(row)  # fmt: skip

    cli.main(argv)  # nothing left to do: nothing appended
    assert (out / "results.jsonl").read_text().splitlines() == rows
    kept = rows[: len(rows) // 2]  # killed half way, mid-line
    (out / "results.jsonl").write_text("\n".join(kept) + "\n" + rows[len(rows) // 2][:20])
    cli.main(argv)
    assert sorted((out / "results.jsonl").read_text().splitlines()) == sorted(rows)  # same seed: same rows
    assert "| beam:m=2 | 4 |" in capsys.readouterr().out


def test_smaller_best_of_n_budgets_come_from_one_run(tiny_policy, tiny_prm):
    runtime = Runtime.load(str(tiny_policy), str(tiny_prm), device="cpu")
    spec = StrategySpec.parse("best_of_n")
    questions = ["(2+7)*3", "4-1"]
    swept = runtime.sweep([spec], questions, [2, 4], seed=3)
    alone = runtime.solve(spec, questions, 2, seed=3)
    for from_sweep, from_one_run in zip(swept[(str(spec), 2)], alone, strict=True):  # the same samples and answers;
        assert from_sweep.answer == from_one_run.answer and from_sweep.accounting == from_one_run.accounting
        for a, b in zip(from_sweep.candidates, from_one_run.candidates, strict=True):  # scores to float rounding
            assert a.steps == b.steps and a.step_scores == pytest.approx(b.step_scores, abs=1e-6)  # (batch shapes)
    assert [r.candidates[:2] for r in swept[(str(spec), 4)]] == [r.candidates for r in swept[(str(spec), 2)]]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strategy", "beam:m=3", "--budget", "16"], "not divisible"),
        (["--strategy", "lookahead:k=-1"], "k must be >= 0"),
        (["--budget", "0"], "budget must be >= 1"),
        (["--verifier", "none", "--strategy", "beam"], "needs a verifier"),
        (["--strategy", "greedy"], "unknown strategy"),
        (["--policy", "no/such/dir"], "policy checkpoint not found"),
    ],
)
def test_bad_requests_are_one_line_errors(tiny_policy, tiny_prm, args, message, capsys):
    argv = ["solve", "--policy", str(tiny_policy), "--verifier", str(tiny_prm), "--question", "4-1", *args]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_revision_chains_run_from_the_cli(tiny_policy, tiny_prm, questions, tmp_path):
    # the tiny policy stands in for a revision model and the tiny PRM for its ORM: both carry the format
    out = tmp_path / "revisions"
    argv = ["run", "--policy", str(tiny_policy), "--verifier", "none", "--dataset", str(questions),
            "--revision_model", str(tiny_policy), "--revision_verifier", str(tiny_prm),
            "--strategies", "revision:l=2,revision:l=2:select=majority", "--budgets", "2,4", "--output_dir", str(out),
            *FAST]  # fmt: skip
    cli.main(argv)
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {(r["strategy"], r["budget"]) for r in rows} == {
        (f"revision:l=2:select={s}", b) for s in ("weighted", "majority") for b in (2, 4)
    }
    for row in rows:
        assert len(row["candidates"]) == row["budget"] == row["accounting"]["generations"]
        assert row["accounting"]["flops"] > 0
        assert (row["accounting"]["verifier_tokens"] > 0) == row["strategy"].endswith("weighted")
