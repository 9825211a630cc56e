"""PRM800K and Math-Shepherd importers on small fixtures written in each dataset's real format."""

import json

import pytest
from datasets import load_from_disk

from data import importers
from search.step_format import GSM8K, MATH
from tests.conftest import ROOT
from training.prm_data import check_row

FIXTURES = ROOT / "tests/fixtures"


def run(fmt_name, source, tmp_path, *extra):
    out = tmp_path / fmt_name
    importers.main(["--format", fmt_name, "--input", str(FIXTURES / source), "--output_dir", str(out),
                    "--validation_fraction", "0", *extra])  # fmt: skip
    return load_from_disk(str(out / "dataset"))["train"], json.loads((out / "report.json").read_text())


def test_prm800k_trajectories_ratings_and_answer_line(tmp_path):
    rows, report = run("prm800k", "prm800k_sample.jsonl", tmp_path)
    assert report["skipped"] == {"finish_reason give_up": 1} and report["imported"] == 2
    found_error, solved = rows[0], rows[1]
    # neutral -> 1.0 (default), +1 -> 1.0; labelling stopped at step 3: its first -1 completion ends it
    assert found_error["labels"] == [1.0, 1.0, 0.0]
    assert found_error["completions"][2] == "I know that $200,\\!000 = 2^5\\cdot 10^4 = 2^9\\cdot 5^4$."
    assert found_error["gold"] == "40,\\!000" and found_error["prompt"] == MATH.prompt(found_error["question"])
    assert solved["completions"] == ["I know that $\\dbinom{n}{1} = n$ for any $n$.", "So $\\dbinom{5}{1} = 5$.",
                                     MATH.answer_step("5")]  # fmt: skip
    assert solved["labels"] == [1.0, 1.0, 1.0]
    for i, row in enumerate(rows):
        check_row(row, MATH, f"row {i}")  # what the PRM trainer accepts
    neutral_wrong, _ = run("prm800k", "prm800k_sample.jsonl", tmp_path / "n", "--neutral_label", "0")
    assert neutral_wrong[0]["labels"] == [0.0, 1.0, 0.0]


def test_math_shepherd_tags_become_labels(tmp_path):
    rows, report = run("math-shepherd", "math_shepherd_sample.jsonl", tmp_path, "--step_format", "gsm8k")
    assert report["skipped"] == {"label does not match input": 1} and report["imported"] == 2
    right, wrong = rows[0], rows[1]
    assert right["question"].startswith("Janet’s ducks") and right["prompt"] == GSM8K.prompt(right["question"])
    assert right["completions"][0] == "Janet's ducks lay 16 eggs per day."  # "Step 1:" and the tag removed
    assert right["completions"][-1] == GSM8K.answer_step("18") and right["labels"] == [1.0] * 5
    assert wrong["labels"] == [1.0, 1.0, 0.0, 0.0, 0.0] and wrong["gold"] == "16"
    for i, row in enumerate(rows):
        check_row(row, GSM8K, f"row {i}")


def test_importer_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        importers.main(["--format", "prm800k", "--input", str(tmp_path / "none.jsonl"), "--output_dir", "x"])
    assert "input not found" in capsys.readouterr().err
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps({"input": "no steps here", "label": "no steps here"}) + "\n")
    with pytest.raises(SystemExit):
        importers.main(["--format", "math-shepherd", "--input", str(wrong), "--output_dir", str(tmp_path / "o")])
    assert "no row could be imported" in capsys.readouterr().err


def test_prm800k_step_without_completions_keeps_the_steps_before_it(tmp_path):
    """As TRL's converter (examples/datasets/prm800k.py): a step whose completions are null ends the solution."""
    line = json.loads((FIXTURES / "prm800k_sample.jsonl").read_text().splitlines()[0])
    line["label"]["steps"][2] = {"completions": None, "human_completion": None, "chosen_completion": None}
    source = tmp_path / "null.jsonl"
    source.write_text(json.dumps(line) + "\n")
    importers.main(["--format", "prm800k", "--input", str(source), "--output_dir", str(tmp_path / "out"),
                    "--validation_fraction", "0"])  # fmt: skip
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert report["imported"] == 1 and report["skipped"] == {}
    assert report["cut"] == {"a step without completions ended the solution": 1}
    row = load_from_disk(str(tmp_path / "out/dataset"))["train"][0]
    assert row["labels"] == [1.0, 1.0] and row["completions"][1].startswith("One way to do this")
