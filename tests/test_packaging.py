"""`pip install .` gives what the README promises: every package, the recipes, the console commands."""

import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True)  # fmt: skip
    [built] = out.glob("*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_every_package_and_the_recipes(wheel):
    names = set(wheel.namelist())
    for package in ("core", "search", "search/generation", "search/verifiers", "search/strategies", "search/serve",
                    "data", "training", "eval", "bench"):  # fmt: skip
        assert f"{package}/__init__.py" in names
    shipped = {n for n in names if n.startswith("recipes/")}
    assert {"recipes/arith-tiny/policy.yaml", "recipes/accelerate_configs/zero2.yaml"} <= shipped
    assert len(shipped) == len([p for p in (ROOT / "recipes").rglob("*") if p.is_file()])


def test_console_commands_name_real_entry_points(wheel):
    import importlib

    [entry_points] = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    commands = [line.split(" = ") for line in wheel.read(entry_points).decode().splitlines() if " = " in line]
    assert ["ttc-search", "search.cli:main"] in commands and len(commands) >= 10
    for _, target in commands:
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_a_shipped_recipe_is_found_from_any_folder(tmp_path, monkeypatch):
    from core.config import load_recipe

    monkeypatch.chdir(tmp_path)
    values = load_recipe("recipes/arith-tiny/search.yaml", {k: object for k in (
        "policy", "verifier", "dataset", "strategies", "budgets", "temperature", "top_p", "max_step_tokens",
        "max_new_tokens", "max_rounds", "seed", "batch_size", "chunk_size", "output_dir")})  # fmt: skip
    assert values["strategies"].startswith("best_of_n")
