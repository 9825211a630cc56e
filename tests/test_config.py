from dataclasses import dataclass

import pytest

from core.checkpoints import check_model_path
from core.config import UserError, parse_config


@dataclass
class Knobs:
    width: int = 4
    name: str = "a"

    def __post_init__(self):
        if self.width < 1:
            raise ValueError("width must be >= 1")


def test_recipe_then_cli_override(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("width: 8\nname: b\n")
    (knobs,) = parse_config((Knobs,), ["--config", str(recipe), "--width", "16"])
    assert (knobs.width, knobs.name) == (16, "b")


@pytest.mark.parametrize(
    ("text", "match"),
    [("- 1\n- 2\n", "a mapping"), ("width: [1,\n", "not valid YAML"), ("widht: 3\n", "did you mean 'width'")],
)
def test_bad_recipes(tmp_path, text, match):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    with pytest.raises(UserError, match=match):
        parse_config((Knobs,), ["--config", str(recipe)])


def test_validation_errors_become_user_errors():
    with pytest.raises(UserError, match="width must be >= 1"):
        parse_config((Knobs,), ["--width", "0"])


def test_model_paths(tmp_path):
    assert check_model_path("Qwen/Qwen2.5-Math-1.5B", "policy") == "Qwen/Qwen2.5-Math-1.5B"  # left to the hub
    assert check_model_path(tmp_path, "policy") == str(tmp_path)
    for missing in ("outputs/arith-tiny/nothing-here", str(tmp_path / "x"), "./x"):
        with pytest.raises(UserError, match="policy not found"):
            check_model_path(missing, "policy")


@dataclass
class Nullable:
    limit: int | None = 5
    learning_rate: float = 0.1


def test_exact_flag_names_only_and_null_for_optional_values():
    with pytest.raises(UserError, match="learning_rat"):
        parse_config((Nullable,), ["--learning_rat", "1"])  # no prefix matching
    assert parse_config((Nullable,), ["--limit", "null"])[0].limit is None
    assert parse_config((Nullable,), ["--limit", "7"])[0].limit == 7
    with pytest.raises(UserError, match="invalid"):
        parse_config((Nullable,), ["--limit", "seven"])
