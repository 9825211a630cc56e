import json
import subprocess
import sys

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from core.checkpoints import STEP_FORMAT_KEY
from data.arith import ArithTask
from eval import policy_report
from search.step_format import ARITH
from tests.conftest import ROOT
from training import policy

RECIPE = ROOT / "recipes/arith-tiny/policy.yaml"


def test_policy_sft_smoke_run_learns_and_saves_a_loadable_checkpoint(tiny_policy):
    losses = [
        e["loss"] for e in json.loads((tiny_policy / "train_metrics.json").read_text())["log_history"] if "loss" in e
    ]
    assert len(losses) == 8
    assert losses[-1] < losses[0] * 0.5
    model = AutoModelForCausalLM.from_pretrained(tiny_policy)
    tokenizer = AutoTokenizer.from_pretrained(tiny_policy)
    assert getattr(model.config, STEP_FORMAT_KEY) == ARITH.to_dict()
    assert tokenizer.decode(tokenizer("Q:1+2\n")["input_ids"], skip_special_tokens=True) == "Q:1+2\n"
    task = ArithTask.load(tiny_policy)
    assert (task.config.max_ops, task.test_per_level, task.step_format) == (3, 3, ARITH)


def test_policy_report_covers_every_level(tiny_policy, tmp_path):
    report = policy_report.main(["--policy", str(tiny_policy), "--samples_per_question", "2",
                                 "--max_new_tokens", "40", "--output_dir", str(tmp_path)])  # fmt: skip
    assert sorted(report) == [1, 2, 3]
    assert all(r["questions"] == 3 and r["samples"] == 6 and 0 <= r["pass@1"] <= 1 for r in report.values())
    assert "| level |" in (tmp_path / "pass_at_1.md").read_text()
    assert json.loads((tmp_path / "pass_at_1.json").read_text())["1"] == report[1]


def _error_line(capsys, main, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_unknown_recipe_key_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(RECIPE.read_text() + "\nlearning_rat: 0.1\n")
    err = _error_line(capsys, policy.main, ["--config", str(bad)])
    assert "unknown key 'learning_rat'" in err and "did you mean 'learning_rate'" in err


def test_unknown_cli_flag_and_missing_recipe(tmp_path, capsys):
    assert "--no_such_flag" in _error_line(capsys, policy.main, ["--config", str(RECIPE), "--no_such_flag", "1"])
    assert "recipe not found" in _error_line(capsys, policy.main, ["--config", str(tmp_path / "none.yaml")])


def test_impossible_difficulty_is_one_line(capsys):
    err = _error_line(capsys, policy.main, ["--config", str(RECIPE), "--min_ops", "5", "--max_ops", "2"])
    assert "min_ops" in err


def test_missing_checkpoint_paths(tmp_path, capsys):
    err = _error_line(capsys, policy_report.main, ["--policy", str(tmp_path / "nowhere")])
    assert "nowhere" in err
    argv = ["--config", str(RECIPE), "--model_name_or_path", str(tmp_path / "missing"), "--output_dir", str(tmp_path)]
    err = _error_line(capsys, policy.main, argv)
    assert "model_name_or_path not found" in err


def test_cli_error_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("output_dir: x\nbogus: 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "training.policy", "--config", str(bad)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: {bad}: unknown key 'bogus'"
