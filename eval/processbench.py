"""ProcessBench (Zheng et al. 2024, arXiv 2412.06559, `Qwen/ProcessBench`): does a verifier find the first wrong step?

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

The threshold is 0.5 unless set: a convention (P(right) below one half; a two-label argmax), not a
setting taken from the paper. `tune_threshold: true` picks the threshold with the best F1 on the
gsm8k subset and applies it to every subset (gsm8k's own figure is then fitted, not held out).

A sample longer than the verifier's context is counted per subset and left out of the figures, never
fatal. Scores are appended to `scores.jsonl` as they come (one flushed line per sample; a kill leaves
at most a torn last line, cut off on the rerun): a rerun under the same identity (`run.json`: the
verifier, its keys and weights, the dataset) scores only what is missing, and another threshold or
more subsets reuse what is there. `dataset`: a Hub id (one split per subset), or a local folder
holding `<subset>.json` (a JSON array, as on the Hub) or `<subset>.jsonl` files. Writes
`processbench.{json,md}` and `predictions.jsonl` (per sample: the step scores and the prediction) to
`output_dir`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO

from datasets import load_dataset
from tqdm.auto import tqdm

from core.config import UserError, cli, parse_config
from core.identity import check_identity, fingerprint, identity_settings, writer_lock
from core.jsonl import cut_torn_tail, read_jsonl
from core.outputs import OutputGuard, claim_report_dir
from data.importers import clean_step
from data.stepwise import read_json_records
from eval.prm_metrics import ScoredSolution, best_threshold, first_error_f1, predicted_first_error
from search.generation.settings import check_device
from search.prompting import stored_format
from search.step_format import StepFormat
from search.verifiers.adapters import AdapterVerifier
from search.verifiers.settings import VerifierSettings
from search.verifiers.verifier import Verifier, load_verifier

SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")
# how the problem and steps reach a public verifier, which takes the question back out and writes its own format
PLAIN = StepFormat("processbench", "{question}", "\n\n", "The answer is: ")
SCORES, PREDICTIONS = "scores.jsonl", "predictions.jsonl"
Key = tuple[str, int, object]  # subset, index, the sample's id


@dataclass
class ProcessBenchConfig(VerifierSettings, OutputGuard):
    verifier: str = "Qwen/Qwen2.5-Math-PRM-7B"  # a local folder or a Hub id (verifier_kind says how to read it)
    dataset: str = "Qwen/ProcessBench"  # a Hub id, or a folder of <subset>.json / .jsonl files
    subsets: str = ",".join(SUBSETS)  # comma-separated subsets to evaluate
    threshold: float = 0.5  # a step scoring below this is predicted wrong (0.5: a convention)
    tune_threshold: bool = False  # every subset uses the best-F1 threshold on gsm8k (gsm8k's own F1 is then fitted)
    limit: int | None = None  # only the first samples of each subset (null: all)
    batch_size: int = 8  # sequences per forward batch (speed only)
    device: str | None = None  # cpu or cuda (default: cuda when there is one)
    output_dir: str | None = None  # default: <verifier>/processbench, or outputs/processbench/<org>__<name> (Hub id)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.limit is not None and self.limit < 1 or self.batch_size < 1:
            raise ValueError("limit (or null: all) and batch_size must be >= 1")
        check_device(self.device)
        if not self.subset_names():
            raise ValueError("subsets must name at least one subset")
        if self.tune_threshold and "gsm8k" not in self.subset_names():
            raise ValueError("tune_threshold tunes on the gsm8k subset: add gsm8k to subsets")

    def subset_names(self) -> list[str]:
        return [s.strip() for s in self.subsets.split(",") if s.strip()]

    def results_dir(self) -> Path:
        if self.output_dir:
            return Path(self.output_dir)
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


def context_length(verifier: Verifier) -> int | None:
    """The most tokens the verifier's model reads (`max_position_embeddings`), or None if its config does not say."""
    config = getattr(getattr(verifier, "model", None), "config", None)
    return getattr(config, "max_position_embeddings", None)


def score_subset(verifier: Verifier, fmt: StepFormat, name: str, samples: list[dict], done: set[Key], batch: int,
                 sink: IO) -> None:  # fmt: skip
    """Score the samples of one subset not `done`, in chunks, appending one line per sample to `sink` as they come;
    a sample longer than the verifier's context is recorded as `too_long` (its token count), not scored. Our own
    PRMs get steps without their separator inside."""
    ours, context = not isinstance(verifier, AdapterVerifier), context_length(verifier)
    todo = [(i, sample) for i, sample in enumerate(samples) if (name, i, sample.get("id")) not in done]
    for start in tqdm(range(0, len(todo), batch), desc=name, unit="chunk"):
        chunk = todo[start : start + batch]
        prompts = [fmt.prompt(sample["problem"]) for _, sample in chunk]
        steps = [[clean_step(s, fmt) if ours else s for s in sample["steps"]] for _, sample in chunk]
        tokens = verifier.count_tokens(prompts, steps)
        fits = [k for k, n in enumerate(tokens) if context is None or n <= context]
        scores = verifier.score([prompts[k] for k in fits], [steps[k] for k in fits]) if fits else []
        scored = dict(zip(fits, scores, strict=True))
        for k, (i, sample) in enumerate(chunk):
            record = {"subset": name, "index": i, "id": sample.get("id"), "label": sample["label"]}
            record.update({"step_scores": scored[k]} if k in scored else {"too_long": tokens[k]})
            sink.write(json.dumps(record) + "\n")
        sink.flush()


def solutions(samples: list[dict], scores: list[list[float]]) -> list[ScoredSolution]:
    return [ScoredSolution(s["problem"], None, s["label"] == -1, x, None, None if s["label"] == -1 else s["label"])
            for s, x in zip(samples, scores, strict=True)]  # fmt: skip


def subset_metrics(samples: list[dict], scores: list[list[float]], threshold: float) -> dict:
    """ProcessBench's figures for one subset."""
    return first_error_f1(solutions(samples, scores), threshold)


def make_report(cfg: ProcessBenchConfig, subsets: dict[str, list[dict]], records: dict[Key, dict]) -> dict:
    """The figures per subset at the set or tuned threshold, with the samples too long for the verifier counted."""
    scored, too_long = {}, {}
    for name, samples in subsets.items():
        rows = [(sample, records[(name, i, sample.get("id"))]) for i, sample in enumerate(samples)]
        kept = [(sample, row["step_scores"]) for sample, row in rows if "step_scores" in row]
        scored[name] = ([sample for sample, _ in kept], [x for _, x in kept])
        too_long[name] = len(rows) - len(kept)
    threshold, source = cfg.threshold, "set"
    if cfg.tune_threshold:
        threshold, source = best_threshold(solutions(*scored["gsm8k"])), "tuned on gsm8k"
    metrics = {name: {**subset_metrics(*scored[name], threshold), "too_long": too_long[name]} for name in subsets}
    return {"verifier": cfg.verifier, "dataset": cfg.dataset, "threshold": threshold, "threshold_source": source,
            "config": asdict(cfg), "subsets": metrics, "too_long": sum(too_long.values()),
            "average_f1": sum(m["f1"] for m in metrics.values()) / len(metrics)}  # fmt: skip


def markdown(report: dict) -> str:
    lines = [
        f"# ProcessBench: {report['verifier']}",
        "",
        f"Threshold {report['threshold']} ({report['threshold_source']}): a step scoring below it is the predicted "
        "first error. Samples longer than the verifier's context are counted, not scored: the figures are over the "
        "others.",
        "",
        "| subset | erroneous | accuracy | correct | accuracy | F1 | too long |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in report["subsets"].items():
        lines.append(f"| {name} | {m['erroneous']} | {_num(m['erroneous_accuracy'])} | {m['correct']} "
                     f"| {_num(m['correct_accuracy'])} | {m['f1']:.3f} | {m['too_long']} |")  # fmt: skip
    lines += ["", f"Mean F1 over the subsets: {report['average_f1']:.3f}"]
    return "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def write_predictions(path: Path, subsets: dict[str, list[dict]], records: dict[Key, dict], threshold: float) -> None:
    """Per sample: the step scores and the prediction at `threshold` (null for a sample too long to score)."""
    lines = []
    for name, samples in subsets.items():
        for i, sample in enumerate(samples):
            row = records[(name, i, sample.get("id"))]
            scores = row.get("step_scores")
            predicted = None if scores is None else predicted_first_error(scores, threshold)
            lines.append(json.dumps({"subset": name, "id": sample.get("id"), "label": sample["label"],
                                     "predicted": None if scores is None else -1 if predicted is None else predicted,
                                     "step_scores": None if scores is None else [round(v, 6) for v in scores],
                                     "too_long": row.get("too_long")}))  # fmt: skip
    path.write_text("".join(line + "\n" for line in lines))


def identity(cfg: ProcessBenchConfig) -> dict:
    """What the stored scores depend on: the verifier (its keys and weights) and the dataset (local paths resolved)."""
    keys = {f.name: getattr(cfg, f.name) for f in fields(VerifierSettings)}
    return {"settings": identity_settings({"verifier": cfg.verifier, "dataset": cfg.dataset, **keys}),
            "checkpoints": {"verifier": fingerprint(cfg.verifier)}}  # fmt: skip


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    subsets = {name: load_subset(cfg.dataset, name, cfg.limit) for name in cfg.subset_names()}
    fmt = (stored_format(cfg.verifier) if Path(cfg.verifier).is_dir() else None) or PLAIN  # ours: their own
    out = claim_report_dir(cfg.results_dir(), "eval.processbench", cfg.overwrite_output_dir)
    with writer_lock(out):
        check_identity(out / "run.json", identity(cfg))
        path = out / SCORES
        cut_torn_tail(path)
        done = {(r.get("subset"), r.get("index"), r.get("id")) for r in read_jsonl(path)}
        if any((name, i, s.get("id")) not in done for name, samples in subsets.items() for i, s in enumerate(samples)):
            verifier = load_verifier(cfg.verifier, fmt, cfg.batch_size, cfg.device, cfg)
            with path.open("a") as sink:
                for name, samples in subsets.items():
                    score_subset(verifier, fmt, name, samples, done, cfg.batch_size, sink)
        records = {(r.get("subset"), r.get("index"), r.get("id")): r for r in read_jsonl(path)}
        report = make_report(cfg, subsets, records)
        write_predictions(out / PREDICTIONS, subsets, records, report["threshold"])
        (out / "processbench.json").write_text(json.dumps(report, indent=2))
        (out / "processbench.md").write_text(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
