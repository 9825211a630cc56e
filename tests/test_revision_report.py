"""The revision report: per-step accuracy and flip rates along chains."""

import json

import pytest

from data import export_questions
from eval.revision_report import chain_statistics, main


def test_flips_compare_each_answer_with_the_previous_answered_one():
    T, F = True, False
    stats = chain_statistics([[F, T, F, T], [T, None, F, F], [F, F, F, F]])
    assert [r["accuracy"] for r in stats["steps"]] == [1 / 3, 1 / 3, 0, 1 / 3]
    # transitions: chain 0 F->T, T->F, F->T; chain 1 T->(skip)->F, F->F; chain 2 three F->F
    assert (stats["was_correct"], stats["correct_to_incorrect"]) == (2, 2)
    assert (stats["was_incorrect"], stats["incorrect_to_correct"]) == (6, 2)
    assert stats["correct_to_incorrect_rate"] == 1.0 and stats["incorrect_to_correct_rate"] == pytest.approx(1 / 3)
    assert stats["steps"][2]["correct_to_incorrect"] == 2  # counted at the later attempt's step
    assert stats["any_correct"] == pytest.approx(2 / 3) and stats["last_correct"] == pytest.approx(1 / 3)
    assert chain_statistics([[None, None]])["correct_to_incorrect_rate"] is None


def test_report_on_a_checkpoint_writes_json_markdown_and_plot(tiny_policy, tmp_path):
    questions = tmp_path / "q.jsonl"
    export_questions.main(
        ["--policy", str(tiny_policy), "--split", "test", "--questions_per_level", "1", "--output_file", str(questions)]
    )
    out = tmp_path / "report"
    stats = main(["--revision_model", str(tiny_policy), "--dataset", str(questions), "--chains", "2", "--length", "3",
                  "--max_new_tokens", "40", "--output_dir", str(out)])  # fmt: skip
    n = len(questions.read_text().splitlines())
    assert stats["chains"] == 2 * n and [r["attempts"] for r in stats["steps"]] == [2 * n] * 3
    assert json.loads((out / "report.json").read_text())["questions"] == n
    assert "| step |" in (out / "report.md").read_text()
    assert (out / "accuracy_by_step.png").read_bytes()[:4] == b"\x89PNG"
