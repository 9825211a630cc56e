"""The Makefile's stages: a path variable reaches every command of a stage (checked with `make -n`)."""

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def planned(*args: str) -> list[str]:
    """The project commands `make -n` would run (installation lines left out)."""
    out = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "/bin/python -m " in line and " pip " not in line]


@needs_make
def test_the_readme_example_trains_and_reports_on_the_same_folder():
    commands = planned("train-policy", "POLICY=outputs/lr1e-3", "ARGS=--learning_rate 1e-3")
    train, report = commands
    assert "training.policy" in train and "--output_dir outputs/lr1e-3" in train and "--learning_rate 1e-3" in train
    assert "eval.policy_report" in report and "--policy outputs/lr1e-3" in report
    assert "make train-policy POLICY=outputs/lr1e-3" in (ROOT / "README.md").read_text()


@needs_make
def test_later_stages_read_the_checkpoints_the_variables_name(tmp_path):
    commands = planned("-B", "train-prm", f"POLICY={tmp_path}/p", f"PRM_DATA={tmp_path}/d", f"PRM={tmp_path}/r")
    joined = "\n".join(commands)
    assert f"--policy {tmp_path}/p --output_dir {tmp_path}/d" in joined  # the PRM data from that policy
    assert f"--model_name_or_path {tmp_path}/p --dataset {tmp_path}/d/dataset --output_dir {tmp_path}/r" in joined
    assert f"eval.prm_eval --policy {tmp_path}/p --verifier {tmp_path}/r" in joined
    assert "outputs/arith-tiny" not in joined


@needs_make
def test_reproduce_writes_tracked_docs_only_when_asked():
    default = "\n".join(planned("-B", "reproduce"))
    assert "eval.reproduction" in default and "docs/reproduction" not in default and "README.md" not in default
    assert "--output_dir docs/reproduction --readme README.md" in "\n".join(planned("-B", "reproduce", "PUBLISH=1"))


@needs_make
def test_serve_follows_the_schedule_when_there_is_one():
    assert "--compute_optimal" not in "\n".join(planned("-B", "serve", "SCHEDULE="))
    served = "\n".join(planned("-B", "serve", "SCHEDULE=outputs/x/schedule.json", "PRM=outputs/x/prm"))
    assert "search serve --config recipes/arith-tiny/serve.yaml" in served
    assert "--verifier outputs/x/prm" in served and "--compute_optimal outputs/x/schedule.json" in served
