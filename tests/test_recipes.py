"""Every recipe parses with its entry point's parser, so recipes cannot drift from the code."""

import importlib
from pathlib import Path

import pytest

from core.config import parse_config

ROOT = Path(__file__).resolve().parents[1]
# recipe file stem -> entry point module (each exposes CONFIG_TYPES)
ENTRY_POINTS = {
    "policy": "training.policy",
    "policy-large": "training.policy",
    "prm_data": "data.build_prm_data",
    "prm": "training.prm",
    "prm_linear": "training.prm",
    "prm_strong": "training.prm",
    "search": "search.cli",
    "revision_data": "data.build_revision_data",
    "revision": "training.revision",
    "revision_orm_data": "data.build_revision_orm_data",
    "revision_orm": "training.prm",
    "search_revisions": "search.cli",
    "eval": "eval.scaling",
    "reproduce_eval_paper": "eval.scaling",
    "reproduce_eval_strong": "eval.scaling",
    "reproduce": "eval.reproduction",
    "prm_eval": "eval.prm_eval",
    "policy_report": "eval.policy_report",
    "processbench": "eval.processbench",
    "search_qwen_prm": "search.cli",
    "serve": "search.serve.settings",
}
RECIPES = sorted(p for p in (ROOT / "recipes").glob("*/*.yaml") if p.parent.name != "accelerate_configs")


def test_there_are_recipes():
    assert RECIPES


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_passes_a_dry_run(recipe, capsys):
    assert recipe.stem in ENTRY_POINTS, f"add the entry point of {recipe.name} to ENTRY_POINTS"
    module = importlib.import_module(ENTRY_POINTS[recipe.stem])
    with pytest.raises(SystemExit) as exit_info:  # GPU recipes too: bf16 is checked with a note here
        parse_config(module.CONFIG_TYPES, ["--config", str(recipe), "--dry-run"])
    printed = capsys.readouterr().out
    assert exit_info.value.code == 0 and "is valid; nothing was loaded or written" in printed
    assert all(f"{t.__name__}:" in printed for t in module.CONFIG_TYPES)


def test_dry_run_prints_the_changed_settings_and_writes_nothing(tmp_path, capsys):
    from training import prm

    out = tmp_path / "prm"
    with pytest.raises(SystemExit) as exit_info:
        prm.main(["--config", str(ROOT / "recipes/arith-tiny/prm.yaml"), "--output_dir", str(out),
                  "--learning_rate", "0.5", "--dry-run"])  # fmt: skip
    assert exit_info.value.code == 0 and not out.exists()
    assert "learning_rate: 0.5" in capsys.readouterr().out
