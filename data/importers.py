"""Public PRM datasets to our stepwise schema (prompt, completions, labels in [0, 1]).

    python -m data.importers --format prm800k --input phase2_train.jsonl --output_dir outputs/prm800k
    python -m data.importers --format math-shepherd --input math-shepherd.jsonl --output_dir outputs/shepherd

PRM800K (openai/prm800k, `data/*.jsonl`): one labelled solution per line. The trajectory is
the chosen completion of each step (or the human-written one); where labelling stopped at an
error (no chosen completion) the first completion rated -1 ends it. Ratings +1 -> 1.0, -1 ->
0.0, 0 (neutral: right but no progress) -> `neutral_label` (default 1.0, as OpenR and most
PRM work). A step with no completions at all (`completions`, `chosen_completion` and
`human_completion` null, which the data holds now and then) ends the solution: the steps before it
are kept, as TRL's converter (`examples/datasets/prm800k.py`) keeps them, and counted in the
report. Solutions marked `bad_problem` or `give_up` are skipped and counted. The final
`# Answer` block of a step becomes the format's answer line, with that step's label.

Math-Shepherd (peiyi9979/Math-Shepherd): `input` is the question then `Step k: ... ки` per
step; `label` is the same text with each `ки` replaced by `+` or `-`. The last step's
"The answer is: X" becomes the answer line, with the last step's label.

Steps are re-joined so that none contains the step separator (blank lines inside a step
become single newlines) and every output row passes the PRM trainer's row checks. Rows
that cannot be read are skipped and counted by reason; the counts go to `report.json`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, DatasetDict

from core.cards import write_card
from core.config import UserError, cli, parse_config
from core.jsonl import json_object
from core.outputs import claim_output_dir
from data.shards import save_dataset, split_of
from search.step_format import StepFormat, get_format

RATING = {1: 1.0, -1: 0.0}
SHEPHERD_TAG = "ки"
_STEP_NUMBER = re.compile(r"^Step \d+:\s*")
_SHEPHERD_ANSWER = "The answer is:"


def clean_step(text: str, fmt: StepFormat) -> str:
    """A step that cannot be mistaken for two: separators inside it collapsed to single newlines."""
    text = text.strip()
    while fmt.step_separator in text:
        text = text.replace(fmt.step_separator, "\n" if fmt.step_separator != "\n" else " ")
    return text


def with_answer_line(steps: list[str], labels: list[float], answer: str | None, fmt: StepFormat):
    """Steps plus the answer line (labelled like the step that stated it)."""
    answer_label = labels[-1] if labels else 1.0
    steps = [clean_step(s, fmt) for s in steps]
    keep = [i for i, s in enumerate(steps) if s]  # "Step 4: The answer is: 18" leaves an empty body
    steps, labels = [steps[i] for i in keep], [labels[i] for i in keep]
    if answer:
        steps.append(fmt.answer_step(clean_step(answer, fmt)))
        labels.append(answer_label)
    return steps, labels


def prm800k_rows(lines: Iterable[dict], fmt: StepFormat, neutral_label: float, skipped: Counter,
                 cut: Counter) -> list[dict]:  # fmt: skip
    rows = []
    for line in lines:
        try:
            row = prm800k_row(line, fmt, neutral_label, skipped, cut)
        except (KeyError, TypeError, AttributeError, IndexError, ValueError):
            skipped["malformed row"] += 1
            continue
        if row is not None:
            rows.append(row)
    return rows


def prm800k_row(line: dict, fmt: StepFormat, neutral_label: float, skipped: Counter, cut: Counter) -> dict | None:
    """One PRM800K line as a stepwise row, or None (counted in `skipped`); one ended early is counted in `cut`."""
    label = line.get("label") or {}
    if label.get("finish_reason") in ("bad_problem", "give_up"):
        skipped[f"finish_reason {label['finish_reason']}"] += 1
        return None
    steps, labels = [], []
    for step in label.get("steps", []):
        chosen, human = step.get("chosen_completion"), step.get("human_completion")
        if step.get("completions") is None and chosen is None and human is None:
            cut["a step without completions ended the solution"] += 1
            break
        if chosen is not None:
            completion = step["completions"][chosen]
        elif human is not None:
            completion = {"text": human["text"] if isinstance(human, dict) else human, "rating": 1}
        else:  # labelling stopped here: the first completion rated wrong is the error
            completion = next((c for c in step.get("completions", []) if c.get("rating") == -1), None)
            if completion is None:
                break
        rating = completion.get("rating")
        if type(rating) is not int or rating not in (-1, 0, 1):  # null, "1", 2: not a PRM800K rating
            skipped["rating not -1, 0 or 1"] += 1
            return None
        steps.append(str(completion["text"]))
        labels.append(neutral_label if rating == 0 else RATING[rating])
        if chosen is None and human is None:
            break
    answer = None
    if steps and "# Answer" in steps[-1]:
        steps[-1], _, answer = steps[-1].partition("# Answer")
        answer = answer.strip()
    steps, labels = with_answer_line(steps, labels, answer, fmt)
    if not steps:
        skipped["no labelled step"] += 1
        return None
    question = line["question"]["problem"]
    gold = line["question"].get("ground_truth_answer")
    if not str(question).strip():
        skipped["empty question"] += 1
        return None
    return {"prompt": fmt.prompt(question), "completions": steps, "labels": labels, "question": question,
            "gold": gold, "source": "prm800k"}  # fmt: skip


def math_shepherd_rows(lines: Iterable[dict], fmt: StepFormat, skipped: Counter) -> list[dict]:
    rows = []
    for line in lines:
        text, tagged = line.get("input", ""), line.get("label", "")
        if not isinstance(text, str) or not isinstance(tagged, str):
            skipped["malformed row"] += 1
            continue
        first = text.find("Step 1:")
        tags = [m.start() for m in re.finditer(SHEPHERD_TAG, text)]
        if first < 0 or not tags:
            skipped["no tagged step"] += 1
            continue
        if tags[0] < first:  # the tag inside the question: the steps cannot be told apart safely
            skipped["step tag inside the question"] += 1
            continue
        # the i-th tag (2 letters) sits i characters earlier in the label text (1 character per tag)
        marks = [tagged[at - i : at - i + 1] for i, at in enumerate(tags)]
        if len(tagged) != len(text) - len(tags) or any(mark not in ("+", "-") for mark in marks):
            skipped["label does not match input"] += 1
            continue
        bounds = [first, *(at + len(SHEPHERD_TAG) for at in tags[:-1])]
        steps = [_STEP_NUMBER.sub("", text[start:end].strip()) for start, end in zip(bounds, tags, strict=True)]
        labels = [1.0 if mark == "+" else 0.0 for mark in marks]
        answer = None
        if _SHEPHERD_ANSWER in steps[-1]:
            steps[-1], _, answer = steps[-1].partition(_SHEPHERD_ANSWER)
            answer = answer.strip()
        steps, labels = with_answer_line(steps, labels, answer, fmt)
        question = text[:first].strip()
        if not question:
            skipped["empty question"] += 1
            continue
        rows.append({"prompt": fmt.prompt(question), "completions": steps, "labels": labels, "question": question,
                     "gold": answer, "source": f"math-shepherd/{line.get('task', '')}"})  # fmt: skip
    return rows


@dataclass
class ImportConfig:
    format: str = "prm800k"  # or math-shepherd
    input: str = ""  # the public file (JSONL)
    output_dir: str = ""
    step_format: str = "math"  # the step format the PRM will be trained and used with
    neutral_label: float = 1.0  # PRM800K rating 0
    validation_fraction: float = 0.05  # of questions, held out as the validation split
    seed: int = 0  # the seed every sample derives from
    limit: int | None = None  # only the first rows of the input
    overwrite_output_dir: bool = False  # import into a folder that holds another run's output

    def __post_init__(self) -> None:
        if self.format not in ("prm800k", "math-shepherd"):
            raise ValueError(f"format must be prm800k or math-shepherd, got {self.format!r}")
        get_format(self.step_format)
        if not 0 <= self.neutral_label <= 1:
            raise ValueError("neutral_label must be in [0, 1]")
        if not 0 <= self.validation_fraction < 1 or self.limit is not None and self.limit < 1:
            raise ValueError("validation_fraction must be in [0, 1) and limit >= 1 (or null: all)")


CONFIG_TYPES = (ImportConfig,)


def read_jsonl(path: Path, limit: int | None, skipped: Counter) -> list[dict]:
    lines = []
    for line in path.read_bytes().splitlines()[:limit]:
        row = json_object(line)
        if row is not None:
            lines.append(row)
        else:
            skipped["not a JSON object"] += 1
    return lines


@cli
def main(argv: list[str] | None = None) -> DatasetDict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    source, out = Path(cfg.input), Path(cfg.output_dir or "")
    if not source.is_file():
        raise UserError(f"input not found: {cfg.input}")
    if not cfg.output_dir:
        raise UserError("--output_dir is required")
    claim_output_dir(out, "data.importers", cfg.overwrite_output_dir)
    fmt, skipped, cut = get_format(cfg.step_format), Counter(), Counter()
    lines = read_jsonl(source, cfg.limit, skipped)
    try:
        if cfg.format == "prm800k":
            rows = prm800k_rows(lines, fmt, cfg.neutral_label, skipped, cut)
        else:
            rows = math_shepherd_rows(lines, fmt, skipped)
    except (KeyError, TypeError, IndexError) as err:
        raise UserError(f"{source}: not in {cfg.format} format ({err.__class__.__name__}: {err})") from None
    splits: dict[str, list[dict]] = {"train": [], "validation": []}
    for row in rows:
        splits[split_of(row["question"], cfg.seed, cfg.validation_fraction)].append(row)
    dataset = DatasetDict({name: Dataset.from_list(r) for name, r in splits.items() if r})
    if not dataset:
        raise UserError(f"{source}: no row could be imported ({dict(skipped)})")
    out.mkdir(parents=True, exist_ok=True)
    save_dataset(dataset, out, fmt)
    report = {"format": cfg.format, "input": str(source), "rows_read": len(lines), "imported": len(rows),
              "skipped": dict(skipped), "cut": dict(cut), "splits": {k: len(v) for k, v in dataset.items()},
              "step_format": fmt.name}  # fmt: skip
    (out / "report.json").write_text(json.dumps(report, indent=2))
    body = (f"`{source.name}` ({cfg.format}) in this project's stepwise schema: `prompt` (rendered in step format "
            f"`{fmt.name}`), `completions` (steps), `labels` in [0, 1] (`data/importers.py` says how ratings map).\n\n"
            f"```json\n{json.dumps(report, indent=2)}\n```")  # fmt: skip
    metadata = {"pretty_name": f"{cfg.format} (stepwise)", "tags": ["process-reward-model", "stepwise-supervision"]}
    write_card(out, metadata, f"{cfg.format} as stepwise PRM data", body)
    print(json.dumps(report))
    return dataset


if __name__ == "__main__":
    main()
