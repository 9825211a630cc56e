"""Dataclass configs from a YAML recipe plus CLI overrides, and one-line user errors.

    python -m training.policy --config recipes/arith-tiny/policy.yaml --learning_rate 1e-3

YAML keys are dataclass field names; a CLI flag overrides the recipe; an unknown key in
either is an error that names the key (the `HfArgumentParser` / TRL `TrlParser` pattern).
"""

from __future__ import annotations

import argparse
import difflib
import functools
import inspect
import json
import math
import re
import sys
from collections.abc import Callable, Hashable, Sequence
from dataclasses import MISSING, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_type_hints

import yaml
from safetensors import SafetensorError
from transformers import HfArgumentParser


class UserError(Exception):
    """A mistake in a recipe, a flag or a path: reported in one line, without a traceback."""


class _Parser(HfArgumentParser):
    def __init__(self, types: list[type], prog: str | None = None):
        optional = {name for t in types for name, hint in get_type_hints(t).items() if type(None) in get_args(hint)}
        comments = {name: text for t in types for name, text in field_comments(t).items()}
        super().__init__(types, allow_abbrev=False, prog=prog)  # `--learning_rat 1` is an error, not learning_rate
        self.add_argument("--config", help="a YAML recipe of the fields below (also as the first argument); flags "
                          "given after it override it")  # fmt: skip
        self.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                          help="check the recipe and flags as the real run would, print what differs from the "
                          "defaults, load and write nothing")  # fmt: skip
        for action in self._actions:
            if action.type is float:
                action.type = _finite  # `--temperature nan` would pass every `< 0` check
            if action.dest in optional and action.type is not None:
                action.type = _nullable(action.type)  # `--limit null` on the command line, as in YAML
            if not action.help and action.dest in comments:
                action.help = comments[action.dest].replace("%", "%%")

    def error(self, message: str):  # argparse would print a usage wall of every option
        raise UserError(message)


_FIELD_COMMENT = re.compile(r"^\s+(\w+):[^#]*#\s*(.+)$")


MAX_GENERATIONS = 1024  # the most policy generations one question may cost: 4x the paper's largest budget (256)
# fields that count generations per question, wherever they appear, each capped at MAX_GENERATIONS
PER_QUESTION = ("budget", "max_budget", "difficulty_samples", "samples_per_question", "rollouts_per_step", "chains",
                "length")  # fmt: skip


def check_caps(configs: Sequence[Any]) -> None:
    """Refuse a count of generations per question above `MAX_GENERATIONS` (a budget of 10^12 would fill the memory,
    one of 10^5 run for hours without a word)."""
    for config in configs:
        for name in PER_QUESTION:
            value = getattr(config, name, None)
            if isinstance(value, int) and value > MAX_GENERATIONS:
                raise UserError(f"{name} must be <= {MAX_GENERATIONS} (MAX_GENERATIONS, the cap on generations per "
                                f"question), got {value}")  # fmt: skip


def field_comments(cls: type) -> dict[str, str]:
    """Help text of each field of a dataclass and its bases: the comment after it in the source
    (`name: int = 3  # what it is`). Those comments are the help `--help` shows, written once."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not is_dataclass(klass) or klass.__module__.startswith("transformers"):
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        for line in lines:
            match = _FIELD_COMMENT.match(line)
            if match and match.group(2) != "fmt: skip":
                out[match.group(1)] = match.group(2)
    return out


def _nullable(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """`null` is None; so is `none` for a value that is not text (`report_to none` stays the text)."""
    words = ("null",) if convert is str else ("null", "none")

    def parse(text: str) -> Any:
        return None if text.lower() in words else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")  # argparse names the type in its errors
    return parse


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


_finite.__name__ = "float"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (YAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` then a key: an override, on purpose
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the safe loader names it
            if key in seen:
                raise UserError(f"key {key!r} is given twice (lines {seen[key]} and {key_node.start_mark.line + 1})")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_recipe(path: str | Path, known: dict[str, Any]) -> dict[str, Any]:
    """The recipe's key/value pairs; every key must be a known field (name -> type hint), given once, and a
    value of a plain type (int, float, bool, str, or those or None) must have that type; a float must be finite."""
    path = Path(path)
    shipped = Path(__file__).resolve().parents[1] / path  # recipes/... of an installed wheel, from any folder
    if not path.is_file() and not path.is_absolute() and shipped.is_file():
        path = shipped
    if not path.is_file():
        raise UserError(f"recipe not found: {path}")
    try:
        values = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid YAML ({err.__class__.__name__})") from None
    except UserError as err:
        raise UserError(f"{path}: {err}") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: a recipe is a mapping of field names to values")
    for key, value in values.items():
        if key in known and isinstance(value, str) and float in get_args(known[key]) + (known[key],):
            try:
                values[key] = value = float(value)  # YAML reads 3e-5 (no dot) as a string
            except ValueError:
                pass
        if key not in known:
            hint = difflib.get_close_matches(str(key), known, n=1)
            raise UserError(f"{path}: unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        if not _fits(value, known[key]):
            raise UserError(f"{path}: {key} must be {_type_name(known[key])}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{path}: {key} must be a finite number, got {value!r}")
    return values


PLAIN = (bool, int, float, str)


def _fits(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a plain type hint (anything else is left to the parser)."""
    allowed = [t for t in (get_args(hint) or (hint,)) if t is not type(None)]
    if not all(t in PLAIN for t in allowed):
        return True
    if value is None:
        return type(None) in get_args(hint)
    if isinstance(value, bool):
        return bool in allowed
    return any(isinstance(value, t) for t in allowed) or (float in allowed and isinstance(value, int))


def _type_name(hint: Any) -> str:
    names = [t.__name__ for t in (get_args(hint) or (hint,)) if t is not type(None)]
    return " or ".join(names) + (" (or null)" if type(None) in get_args(hint) else "")


def default_prog() -> str | None:
    """`python -m <module>` for the module run as the program (argparse would say `__main__.py`)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return f"python -m {spec.name.removesuffix('.__main__')}" if spec is not None else None


def parse_config(types: Sequence[type], argv: Sequence[str] | None = None, prog: str | None = None) -> tuple:
    """Instances of `types` from `--config RECIPE` (optional) and CLI overrides.

    With `--dry-run` the recipe and flags are validated, the settings that differ from the
    defaults are printed, and the program exits (status 0) before loading or writing anything.
    """
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config")
    pre.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true")
    args = list(sys.argv[1:] if argv is None else argv)
    if args and not args[0].startswith("-") and args[0].endswith((".yaml", ".yml")):
        args = ["--config", *args]  # a recipe as the first argument (alignment-handbook and search-and-learn do)
    known_args, rest = pre.parse_known_args(args)
    parser = _Parser(list(types), prog or default_prog())
    if known_args.config:
        hints = {name: hint for t in types for name, hint in get_type_hints(t).items()}
        known = {f.name: hints.get(f.name, Any) for t in types for f in fields(t) if f.init}
        parser.set_defaults(**load_recipe(known_args.config, known))
    notes = []
    try:
        configs = _parse(parser, rest)
    except UserError as err:
        if not (known_args.dry_run and "bf16" in str(err)):
            raise
        notes.append("bf16 needs a GPU, which this machine lacks: checked with bf16 off")
        configs = _parse(parser, [*rest, "--bf16", "false"])
    check_caps(configs)
    if known_args.dry_run:
        print(dry_run_summary(configs, known_args.config, notes))
        sys.exit(0)
    return configs


def _parse(parser: HfArgumentParser, args: list[str]) -> tuple:
    try:
        parsed = parser.parse_args_into_dataclasses(args=args)
        return tuple(p for p in parsed if not isinstance(p, argparse.Namespace))  # --config/--dry-run: parsed before
    except (ValueError, TypeError) as err:  # raised by a dataclass's own validation
        raise UserError(str(err).splitlines()[0]) from None


def dry_run_summary(configs: Sequence[Any], recipe: str | None, notes: Sequence[str]) -> str:
    """The settings a run would use that differ from the defaults, as YAML."""
    lines = [f"dry run: recipe {recipe or '(none)'} is valid; nothing was loaded or written", *notes]
    for config in configs:
        changed = {}
        for f in fields(config):
            if not f.init:
                continue
            default = f.default_factory() if f.default_factory is not MISSING else f.default  # type: ignore[misc]
            value = getattr(config, f.name)
            if value != default:
                if isinstance(value, Enum):
                    value = value.value
                plain = isinstance(value, str | int | float | bool | list | type(None))
                changed[f.name] = value if plain else str(value)
        lines.append(f"{type(config).__name__}:")
        lines += [f"  {line}" for line in yaml.safe_dump(changed, sort_keys=False).splitlines()] if changed else []
    return "\n".join(lines)


def cli(main: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an entry point so that user errors print one line and exit with status 2, and Ctrl-C prints
    `interrupted` and exits with status 130 (what a shell reports for SIGINT)."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        except json.JSONDecodeError as err:  # an input file that is not JSON (the readers that name it raise UserError)
            print(f"error: an input file is not valid JSON ({err})", file=sys.stderr)
            sys.exit(2)
        except (OSError, SafetensorError) as err:  # a file that cannot be read: a user's fix, not a bug report
            print(f"error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else err!r}", file=sys.stderr)
            sys.exit(2)

    return wrapped
