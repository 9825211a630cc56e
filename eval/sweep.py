"""The runs behind an evaluation: every strategy at every budget on each split and sampling seed, and
each question's difficulty; resumable, then collected into one outcomes file (`eval.outcomes`).

    <out>/search/<split>/seed<s>/results.jsonl   (the runtime's resumable run folders, `search.runs`)
    <out>/difficulty/<split>.jsonl               (pass@1 and mean verifier score of the probe samples)
    <out>/outcomes.json
"""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path

from tqdm.auto import tqdm

from core.identity import check_identity, writer_lock
from core.jsonl import cut_torn_tail, read_jsonl
from eval.outcomes import Outcomes, collect_split
from search import runs
from search.grading import answers_match
from search.questions import Question, load_questions
from search.strategies.best_of_n import sample_best_of_n
from search.strategies.compute_optimal import probe_seed


def run_searches(cfg, split: str, dataset: str, seeds: list[int]) -> dict[int, Path]:
    """Each seed's results.jsonl of every strategy and budget on `dataset` (`cfg`: an `eval.scaling.EvalConfig`)."""
    runtime = {f.name: getattr(cfg, f.name) for f in fields(runs.RuntimeConfig)}
    if not cfg.revision_model:  # revision specs are then skipped
        runtime.update(revision_model=None, revision_verifier=None)
    budgets = ",".join(map(str, cfg.budgets()))
    out = {}
    for seed in seeds:
        folder = Path(cfg.output_dir) / "search" / split / f"seed{seed}"
        run = runs.RunConfig(**{**runtime, "seed": seed}, dataset=dataset, strategies=cfg.strategies,
                             budgets=budgets, output_dir=str(folder), chunk_size=cfg.chunk_size,
                             max_generations=cfg.max_budget)  # fmt: skip
        out[seed] = runs.run_config(run) / "results.jsonl"
    return out


def measure_difficulty(cfg, split: str, dataset: str, questions: list[Question]) -> dict[str, dict]:
    """Per question id, pass@1 and the mean verifier score of `cfg.difficulty_samples` policy samples, drawn with
    the runtime's probe seed (`search.strategies.compute_optimal.probe_seed`); appended to a resumable JSONL."""
    path = Path(cfg.output_dir) / "difficulty" / f"{split}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with writer_lock(path.parent):  # resumable under the same identity only
        check_identity(path.with_suffix(".run.json"), runs.run_identity(cfg, dataset, DIFFICULTY_ONLY))
        return _difficulty_rows(cfg, split, questions, path)


# settings that do not decide the difficulty samples
DIFFICULTY_ONLY = (*runs.NOT_IDENTITY, "repeats", "max_budget", "baseline", "bins", "folds", "revision_model",
                   "revision_verifier", "task", "source", "split", "questions_per_level", "dataset",
                   "validation_dataset", "validation_questions_per_level", "publish")  # fmt: skip


def _difficulty_rows(cfg, split: str, questions: list[Question], path: Path) -> dict[str, dict]:
    cut_torn_tail(path)
    done = {r["id"]: r for r in read_jsonl(path)}
    todo = [q for q in questions if q.id not in done]
    if todo:
        runtime = replace(cfg, revision_model=None, revision_verifier=None).load()
        chunks = [todo[i : i + cfg.chunk_size] for i in range(0, len(todo), cfg.chunk_size)]
        with path.open("a") as sink:
            for chunk in tqdm(chunks, desc=f"difficulty ({split})", unit="chunk"):
                samples = sample_best_of_n([q.text for q in chunk], runtime.generator, runtime.verifier,
                                           runtime.format, runtime.settings, cfg.difficulty_samples,
                                           probe_seed(cfg.seed))  # fmt: skip
                for q, s in zip(chunk, samples, strict=True):
                    correct = [answers_match(c.answer, q.gold) for c in s.candidates]
                    scores = [c.score for c in s.candidates]
                    done[q.id] = {"id": q.id, "pass_at_1": sum(correct) / len(correct),
                                  "probe_score": sum(scores) / len(scores)}  # fmt: skip
                    sink.write(json.dumps(done[q.id]) + "\n")
                sink.flush()
    return done


def sweep(cfg, splits: dict[str, str]) -> Outcomes:
    """Every split's runs (`splits`: name -> question JSONL; the test split with `repeats` sampling seeds from
    `seed` on, the validation split with `seed`), collected into `<out>/outcomes.json`."""
    collected = {}
    seeds = [cfg.seed + r for r in range(cfg.repeats)]
    for name, dataset in splits.items():
        questions = load_questions(dataset)
        results = run_searches(cfg, name, dataset, seeds if name == "test" else seeds[:1])
        collected[name] = collect_split(questions, measure_difficulty(cfg, name, dataset, questions), results)
    meta = {"policy": cfg.policy, "verifier": cfg.verifier, "revision_model": cfg.revision_model,
            "revision_verifier": cfg.revision_verifier, "seeds": seeds, "difficulty_samples": cfg.difficulty_samples,
            "datasets": splits}  # fmt: skip
    outcomes = Outcomes(collected, meta)
    outcomes.save(Path(cfg.output_dir) / "outcomes.json")
    return outcomes
