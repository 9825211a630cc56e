"""ProcessBench (Zheng et al. 2024, `Qwen/ProcessBench`): does a verifier find the first wrong step?

    python -m eval.processbench --config recipes/qwen2.5-math-1.5b/processbench.yaml
    python -m eval.processbench --verifier outputs/qwen2.5-math-1.5b/prm --dataset Qwen/ProcessBench

Each sample is a `problem`, its solution `steps` (paragraphs) and a `label`: the index of the first
wrong step, or -1 when every step is right. The verifier (any the runtime loads: one of this
project's PRMs, or a public one by `verifier_kind`, docs/verifiers.md) scores every step in one
pass; its prediction is the first step scoring below `threshold`, or -1. Per subset (gsm8k, math,
olympiadbench, omnimath): the accuracy on erroneous samples (prediction = label), on correct ones
(prediction = -1) and their harmonic mean, F1 (`eval.prm_metrics.first_error_f1`); the headline is
the mean F1 over the subsets, as in the paper. Our own PRMs read the problem and steps in the
step format they were trained on (a separator inside a step collapsed, as the importers do); a
public PRM writes them in its own format.

`dataset`: a Hub id (one split per subset), or a local folder holding `<subset>.json` (a JSON
array, as on the Hub) or `<subset>.jsonl` files. Writes `processbench.{json,md}` and
`predictions.jsonl` (per sample: the step scores and the prediction) to `out_dir`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datasets import load_dataset
from tqdm.auto import tqdm

from data.importers import clean_step
from data.stepwise import read_json_records
from eval.prm_metrics import ScoredSolution, first_error_f1, predicted_first_error
from search.config import UserError, cli, parse_config
from search.prompting import stored_format
from search.step_format import StepFormat
from search.verifier import Verifier, load_verifier
from search.verifier_adapters import AdapterVerifier
from search.verifier_settings import VerifierSettings

SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")
# how the problem and steps reach a public verifier, which takes the question back out and writes its own format
PLAIN = StepFormat("processbench", "{question}", "\n\n", "The answer is: ")


@dataclass
class ProcessBenchConfig(VerifierSettings):
    verifier: str = field(
        default="Qwen/Qwen2.5-Math-PRM-7B",
        metadata={"help": "the verifier: a local folder or a Hub id (verifier_kind says how to read it)"},
    )
    dataset: str = field(
        default="Qwen/ProcessBench", metadata={"help": "a Hub id, or a folder of <subset>.json / .jsonl files"}
    )
    subsets: str = field(default=",".join(SUBSETS), metadata={"help": "comma-separated subsets to evaluate"})
    threshold: float = field(default=0.5, metadata={"help": "a step scoring below this is predicted wrong"})
    limit: int | None = field(default=None, metadata={"help": "only the first samples of each subset (null: all)"})
    batch_size: int = field(default=8, metadata={"help": "sequences per forward batch (speed only)"})
    device: str | None = field(default=None, metadata={"help": "cpu or cuda (default: cuda when there is one)"})
    out_dir: str | None = field(
        default=None, metadata={"help": "where the report goes (default: <verifier>/processbench, or "
                                        "outputs/processbench/<org>__<name> for a Hub id)"},
    )  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.limit is not None and self.limit < 1 or self.batch_size < 1:
            raise ValueError("limit (or null: all) and batch_size must be >= 1")
        if not self.subset_names():
            raise ValueError("subsets must name at least one subset")

    def subset_names(self) -> list[str]:
        return [s.strip() for s in self.subsets.split(",") if s.strip()]

    def output_dir(self) -> Path:
        if self.out_dir:
            return Path(self.out_dir)
        if Path(self.verifier).is_dir():
            return Path(self.verifier) / "processbench"
        return Path("outputs/processbench") / self.verifier.replace("/", "__")


CONFIG_TYPES = (ProcessBenchConfig,)


def load_subset(source: str, subset: str, limit: int | None) -> list[dict]:
    """The samples of one subset, checked (a malformed sample is a one-line error naming it)."""
    folder = Path(source)
    if folder.is_dir():
        files = [f for f in (folder / f"{subset}.json", folder / f"{subset}.jsonl") if f.is_file()]
        if not files:
            raise UserError(f"{source}: no {subset}.json or {subset}.jsonl")
        samples = read_json_records(files[0])
    elif source.count("/") == 1 and not source.startswith((".", "/", "~")):
        samples = [dict(row) for row in load_dataset(source, split=subset)]
    else:
        raise UserError(f"dataset not found: {source} (a folder of <subset>.json files or a Hub id)")
    samples = samples[:limit]
    for i, sample in enumerate(samples):
        steps, label = sample.get("steps"), sample.get("label")
        where = f"{source} {subset} sample {sample.get('id', i)}"
        if not isinstance(sample.get("problem"), str) or not isinstance(steps, list) or not steps:
            raise UserError(f"{where}: needs a problem and a non-empty list of steps")
        if type(label) is not int or not -1 <= label < len(steps):
            raise UserError(f"{where}: label {label!r} is not -1 nor the index of one of its {len(steps)} steps")
    return samples


def score_samples(verifier: Verifier, fmt: StepFormat, samples: list[dict], batch: int, desc: str) -> list[list[float]]:
    """Every step's score, the samples in chunks; our own PRMs get steps without their separator inside."""
    ours = not isinstance(verifier, AdapterVerifier)
    scores = []
    for start in tqdm(range(0, len(samples), batch), desc=desc, unit="chunk"):
        chunk = samples[start : start + batch]
        steps = [[clean_step(s, fmt) if ours else s for s in sample["steps"]] for sample in chunk]
        scores += verifier.score([fmt.prompt(sample["problem"]) for sample in chunk], steps)
    return scores


def subset_metrics(samples: list[dict], scores: list[list[float]], threshold: float) -> dict:
    """ProcessBench's figures for one subset."""
    solved = [ScoredSolution(s["problem"], None, s["label"] == -1, x, None, None if s["label"] == -1 else s["label"])
              for s, x in zip(samples, scores, strict=True)]  # fmt: skip
    return first_error_f1(solved, threshold)


def markdown(report: dict) -> str:
    lines = [
        f"# ProcessBench: {report['verifier']}",
        "",
        f"Threshold {report['threshold']}: a step scoring below it is the predicted first error.",
        "",
        "| subset | erroneous | accuracy | correct | accuracy | F1 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in report["subsets"].items():
        lines.append(f"| {name} | {m['erroneous']} | {_num(m['erroneous_accuracy'])} | {m['correct']} "
                     f"| {_num(m['correct_accuracy'])} | {m['f1']:.3f} |")  # fmt: skip
    lines += ["", f"Mean F1 over the subsets: {report['average_f1']:.3f}"]
    return "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    subsets = {name: load_subset(cfg.dataset, name, cfg.limit) for name in cfg.subset_names()}
    fmt = (stored_format(cfg.verifier) if Path(cfg.verifier).is_dir() else None) or PLAIN  # ours: their own
    verifier = load_verifier(cfg.verifier, fmt, cfg.batch_size, cfg.device, cfg)
    out = cfg.output_dir()
    out.mkdir(parents=True, exist_ok=True)
    report = {"verifier": cfg.verifier, "dataset": cfg.dataset, "threshold": cfg.threshold, "config": asdict(cfg),
              "subsets": {}}  # fmt: skip
    with (out / "predictions.jsonl").open("w") as sink:
        for name, samples in subsets.items():
            scores = score_samples(verifier, fmt, samples, cfg.batch_size, name)
            report["subsets"][name] = subset_metrics(samples, scores, cfg.threshold)
            for sample, x in zip(samples, scores, strict=True):
                predicted = predicted_first_error(x, cfg.threshold)
                sink.write(json.dumps({"subset": name, "id": sample.get("id"), "label": sample["label"],
                                       "predicted": -1 if predicted is None else predicted,
                                       "step_scores": [round(v, 6) for v in x]}) + "\n")  # fmt: skip
    report["average_f1"] = sum(m["f1"] for m in report["subsets"].values()) / len(report["subsets"])
    (out / "processbench.json").write_text(json.dumps(report, indent=2))
    (out / "processbench.md").write_text(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
