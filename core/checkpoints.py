"""Loading a checkpoint so that what runs is what the user named.

- No checkpoint's own code runs unless asked: every load passes `trust_remote_code=False`
  (transformers would otherwise ask "[y/N]" on the terminal for a checkpoint with `auto_map`,
  and a "y" typed mid-`make` would run it). The one opt-in is `verifier_kind: qwen_prm` with
  `trust_remote_code: true` (`search.verifiers.qwen_prm`).
- No weight is left randomly initialised without a word: a load whose checkpoint lacks weights
  of the class asked for (another architecture, a PRM where a policy was meant, a causal LM
  read as a token classifier) is refused, naming the first missing weights; a new head that a
  trainer initialises on purpose is named in `new_weights`.
- A reward model of this project (its config carries `reward_model`) is refused as a policy.

What a checkpoint of this project carries lives in its config.json, written by `stamp` (every
trainer) and read by `read_metadata` (everyone else): `step_format`, the format it was trained in
(`search.step_format.StepFormat.to_dict`), and for a PRM or ORM `reward_model`: its kind, head,
label kind, layout and default aggregation.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.config import UserError
from core.identity import verify_checksums

STEP_FORMAT_KEY = "step_format"  # config.json: the step format a checkpoint was trained in
REWARD_MODEL_KEY = "reward_model"  # config.json: a PRM's or ORM's kind, head, labels, layout, aggregation


@dataclass(frozen=True)
class Metadata:
    step_format: dict | None  # None: a checkpoint from elsewhere (a Hub model)
    reward_model: dict | None  # None: not one of this project's reward models

    @classmethod
    def of(cls, config) -> Metadata:
        return cls(getattr(config, STEP_FORMAT_KEY, None), getattr(config, REWARD_MODEL_KEY, None))


def stamp(model, step_format: dict, reward_model: dict | None = None) -> None:
    """Write what a checkpoint carries into the model's config (saved with it)."""
    setattr(model.config, STEP_FORMAT_KEY, step_format)
    if reward_model is not None:
        setattr(model.config, REWARD_MODEL_KEY, reward_model)


def read_metadata(path: str | Path, what: str = "checkpoint") -> Metadata:
    """What the checkpoint at `path` carries (its config only: no weights are read)."""
    return Metadata.of(load_config(path, what))


def check_model_path(path: str | Path, what: str) -> str:
    """A local checkpoint folder that must exist and hold a readable config.json, or a hub id
    ("org/name") left to the hub. A path whose first part is a local folder (a mistyped
    `outputs/polcy`) is local: it is never looked up on the hub."""
    path = str(path)
    first = Path(path.split("/")[0]).expanduser()
    looks_local = path.startswith((".", "/", "~")) or path.count("/") != 1 or Path(path).exists() or first.is_dir()
    if not looks_local:
        return path
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UserError(f"{what} not found: {path}")
    verify_checksums(folder)
    config = folder / "config.json"
    if config.is_file():
        try:
            json.loads(config.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UserError(
                f"{what} {path}: config.json is not valid JSON (a corrupt or unfinished checkpoint)"
            ) from None
    return path


def load_config(path: str | Path, what: str = "checkpoint"):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=False)
    except ValueError as err:
        if "trust_remote_code" in str(err) or "model type" in str(err):
            raise UserError(f"{what} {path}: its config needs the checkpoint's own code (auto_map or an unknown "
                            "model_type), which this project never runs") from None  # fmt: skip
        raise UserError(f"{what} {path}: {str(err).splitlines()[0]}") from None


def load_tokenizer(path: str | Path, **kwargs):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=False, **kwargs)
    except ValueError as err:
        raise UserError(f"tokenizer of {path}: {str(err).splitlines()[0]}") from None


def load_model(auto_class, path: str | Path, what: str, new_weights: Sequence[str] = (), **kwargs):
    """`auto_class.from_pretrained(path)` without remote code, refused when weights of the class asked
    for are missing from the checkpoint (other than the `new_weights` patterns: a head trained next)."""
    try:
        model, info = auto_class.from_pretrained(path, trust_remote_code=False, output_loading_info=True, **kwargs)
    except ValueError as err:  # an architecture the class has no mapping for
        raise UserError(f"{what} {path}: {str(err).splitlines()[0]}") from None
    missing = [k for k in info.get("missing_keys", ()) if not any(fnmatch.fnmatch(k, p) for p in new_weights)]
    mismatched = [str(k) for k in info.get("mismatched_keys", ())]
    if missing or mismatched:
        wrong = sorted(missing) + mismatched
        shown = ", ".join(wrong[:3]) + (", ..." if len(wrong) > 3 else "")
        raise UserError(f"{what} {path}: {len(wrong)} weights of a {auto_class.__name__.removeprefix('AutoModelFor')} "
                        f"model are not in the checkpoint ({shown}): another kind of model, whose load would leave "
                        "them randomly initialised")  # fmt: skip
    return model


def load_policy(path: str | Path, **kwargs):
    """A causal LM to sample from, refused if it is one of this project's reward models."""
    from transformers import AutoModelForCausalLM

    if read_metadata(path, "policy checkpoint").reward_model:
        raise UserError(f"policy checkpoint {path} is a reward model (its config.json has {REWARD_MODEL_KEY}): pass "
                        "a policy (a causal LM trained to solve)")  # fmt: skip
    return load_model(AutoModelForCausalLM, path, "policy checkpoint", **kwargs)
