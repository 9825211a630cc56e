"""Dataclass configs from a YAML recipe plus CLI overrides, and one-line user errors.

    python -m training.policy --config recipes/arith-tiny/policy.yaml --learning_rate 1e-3

YAML keys are dataclass field names; a CLI flag overrides the recipe; an unknown key in
either is an error that names the key (the `HfArgumentParser` / TRL `TrlParser` pattern).
"""

from __future__ import annotations

import argparse
import difflib
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser


class UserError(Exception):
    """A mistake in a recipe, a flag or a path: reported in one line, without a traceback."""


class _Parser(HfArgumentParser):
    def error(self, message: str):  # argparse would print a usage wall of every option
        raise UserError(message)


def load_recipe(path: str | Path, known: set[str]) -> dict[str, Any]:
    """The recipe's key/value pairs; every key must be a known field."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"recipe not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({err.__class__.__name__})") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: a recipe is a mapping of field names to values")
    for key in values:
        if key not in known:
            hint = difflib.get_close_matches(str(key), known, n=1)
            raise UserError(f"{path}: unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    return values


def parse_config(types: Sequence[type], argv: Sequence[str] | None = None) -> tuple:
    """Instances of `types` from `--config RECIPE` (optional) and CLI overrides."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known_args, rest = pre.parse_known_args(argv)
    parser = _Parser(list(types))
    if known_args.config:
        known = {f.name for t in types for f in fields(t) if f.init}
        parser.set_defaults(**load_recipe(known_args.config, known))
    try:
        return tuple(parser.parse_args_into_dataclasses(args=rest))
    except (ValueError, TypeError) as err:  # raised by a dataclass's own validation
        raise UserError(str(err).splitlines()[0]) from None


def check_model_path(path: str | Path, what: str) -> str:
    """A local checkpoint folder that must exist, or a hub id ("org/name") left to the hub."""
    path = str(path)
    looks_local = path.startswith((".", "/", "~")) or path.count("/") != 1 or Path(path).exists()
    if looks_local and not Path(path).expanduser().is_dir():
        raise UserError(f"{what} not found: {path}")
    return path


def cli(main: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an entry point so that user errors print one line and exit with status 2."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapped
