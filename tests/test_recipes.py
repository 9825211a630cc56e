"""Every recipe parses with its entry point's parser, so recipes cannot drift from the code."""

import importlib
from pathlib import Path

import pytest

from search.config import parse_config

ROOT = Path(__file__).resolve().parents[1]
# recipe file stem -> entry point module (each exposes CONFIG_TYPES)
ENTRY_POINTS = {
    "policy": "training.policy",
    "prm_data": "data.build_prm_data",
    "prm": "training.prm",
    "search": "search.cli",
}
RECIPES = sorted(p for p in (ROOT / "recipes").glob("*/*.yaml") if p.parent.name != "accelerate_configs")


def test_there_are_recipes():
    assert RECIPES


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_parses(recipe):
    assert recipe.stem in ENTRY_POINTS, f"add the entry point of {recipe.name} to ENTRY_POINTS"
    module = importlib.import_module(ENTRY_POINTS[recipe.stem])
    configs = parse_config(module.CONFIG_TYPES, ["--config", str(recipe)])
    assert len(configs) == len(module.CONFIG_TYPES)
