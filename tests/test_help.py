"""`--help` of every entry point describes every field of this project's configs."""

import dataclasses
import importlib
import subprocess
import sys

import pytest
from transformers import TrainingArguments

from core.config import _Parser
from tests.conftest import ROOT

ENTRY_POINTS = ["training.policy", "training.prm", "training.revision", "training.gguf", "data.build_prm_data",
                "data.build_revision_data", "data.build_revision_orm_data", "data.export_questions", "data.importers",
                "search.cli", "eval.scaling", "eval.prm_eval", "eval.policy_report", "eval.revision_report",
                "eval.flops_matched", "eval.verifier_gap", "eval.reproduction", "eval.processbench",
                "training.export_prm", "bench.vllm", "bench.vllm_check", "bench.gpu_check",
                "search.serve.settings", "bench.serve"]  # fmt: skip


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_every_project_field_has_help(module):
    mod = importlib.import_module(module)
    types = (
        getattr(mod, "CONFIG_TYPES", None)
        or [
            v
            for k, v in vars(mod).items()
            if isinstance(v, type) and dataclasses.is_dataclass(v) and k.endswith("Config")
        ][:1]
    )
    library = {f.name for f in dataclasses.fields(TrainingArguments)}
    parser = _Parser(list(types))
    undescribed = [a.dest for a in parser._actions if a.dest not in library | {"help"} and not a.help]
    assert not undescribed


def test_the_search_cli_lists_its_commands():
    out = subprocess.run([sys.executable, "-m", "search", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "solve" in out.stdout and "run" in out.stdout
    out = subprocess.run([sys.executable, "-m", "search", "run", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("usage: python -m search run")
    assert "strategy specs, comma-separated" in out.stdout


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_every_help_lists_the_recipe_and_the_dry_run(module):
    mod = importlib.import_module(module)
    types = (
        getattr(mod, "CONFIG_TYPES", None)
        or [
            v
            for k, v in vars(mod).items()
            if isinstance(v, type) and dataclasses.is_dataclass(v) and k.endswith("Config")
        ][:1]
    )
    text = _Parser(list(types)).format_help()
    assert "--config CONFIG" in text and "--dry-run" in text


def test_the_search_help_loads_no_torch():
    """What makes `python -m search --help` answer at once: the runtime (torch) loads only after parsing."""
    code = ("import runpy, sys\nsys.argv = ['search', 'run', '--help']\ntry:\n    runpy.run_module('search', "
            "run_name='__main__')\nexcept SystemExit:\n    pass\nprint('TORCH', 'torch' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout
    assert "usage: python -m search run" in out and out.strip().endswith("TORCH False")


def test_a_recipe_as_the_first_argument(capsys):
    from core.config import parse_config
    from search.settings import RunConfig

    with pytest.raises(SystemExit):
        parse_config([RunConfig], [str(ROOT / "recipes/arith-tiny/search.yaml"), "--seed", "3", "--dry-run"])
    printed = capsys.readouterr().out
    assert "recipes/arith-tiny/search.yaml is valid" in printed and "seed: 3" in printed
