"""Revision-ORM data: the revision model's own chains, every answered attempt graded, and the
ORM the PRM trainer makes of it, used by the runtime's revision chains."""

import json

from datasets import load_from_disk
from transformers import AutoConfig

from core.checkpoints import REWARD_MODEL_KEY
from data import build_revision_orm_data
from data.arith import ArithTask, check_solution
from search.step_format import ARITH
from tests.conftest import train_prm

ARGS = ["--questions_per_level", "2", "--chains", "2", "--length", "3", "--validation_fraction", "0.3",
        "--max_new_tokens", "40", "--questions_per_chunk", "2"]  # fmt: skip


def test_attempts_are_graded_in_their_revision_context_and_train_an_orm(tiny_policy, tmp_path):
    # the tiny policy stands in for the revision model: it carries the task and the step format
    out = tmp_path / "orm_data"
    build_revision_orm_data.main(["--revision_model", str(tiny_policy), "--output_dir", str(out), *ARGS])
    report = json.loads((out / "report.json").read_text())
    data = load_from_disk(str(out / "dataset"))
    rows = [r for split in data.values() for r in split]
    questions = {q.text: q for q in ArithTask.load(tiny_policy).splits(2, "revision-orm", True).train}
    assert len(rows) + sum(report["dropped"].values()) == report["attempts"] == len(questions) * 2 * 3
    for row in rows:
        assert row["labels"] == [float(row["correct"])] * len(row["completions"])
        q = questions[row["question"]]
        assert row["correct"] == check_solution(q, ARITH.render_steps(row["completions"]), ARITH).correct
        history = ARITH.question_of(row["prompt"]).split("\n")[1:]  # the attempts before this one
        assert sum(ARITH.is_answer_step(line) for line in history) <= min(row["step"], 4)
        if row["step"] == 0:
            assert row["prompt"] == ARITH.prompt(row["question"])

    orm = train_prm(tiny_policy, out, tmp_path / "orm", "--orm", "true", "--dataset", str(out / "dataset"))
    assert getattr(AutoConfig.from_pretrained(orm), REWARD_MODEL_KEY)["kind"] == "orm"
