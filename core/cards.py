"""Model and dataset cards the Hugging Face Hub renders: YAML front matter, then markdown.

Every trainer writes one beside its checkpoint and every builder beside its dataset, so a folder
pushed to the Hub as it is shows what it is, how it was made and how it measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

LIBRARY_TAG = "ttc-search"  # every card carries it


def write_card(folder: str | Path, metadata: dict[str, Any], title: str, body: str) -> Path:
    """`folder/README.md` with `metadata` as YAML front matter (empty values left out)."""
    front = {k: v for k, v in metadata.items() if v not in (None, [], {})}
    front["tags"] = sorted({LIBRARY_TAG, *front.get("tags", [])})
    text = "---\n" + yaml.safe_dump(front, sort_keys=False).strip() + "\n---\n\n" + f"# {title}\n\n" + body.strip()
    path = Path(folder) / "README.md"
    path.write_text(text + "\n")
    return path


def settings_table(settings: dict[str, Any]) -> str:
    """A markdown list of settings, for a card's body."""
    return "\n".join(f"- `{key}`: {value}" for key, value in settings.items())


def write_model_card(
    folder: str | Path, title: str, description: str, base_model: str | None, dataset: str | None,
    tags: list[str], metrics: dict[str, Any], settings: dict[str, Any],
) -> Path:  # fmt: skip
    """A model card: what the checkpoint is, how to load it, what it measured, how it was trained."""
    shown = {
        k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items() if not isinstance(v, list | dict)
    }
    body = "\n\n".join([
        description,
        "## Metrics\n\n" + "\n".join(f"- `{k}`: {v}" for k, v in shown.items()),
        "## Settings\n\n" + settings_table(settings),
    ])  # fmt: skip
    metadata = {"library_name": "transformers", "base_model": base_model, "datasets": [dataset] if dataset else [],
                "tags": tags}  # fmt: skip
    return write_card(folder, metadata, title, body)
