import json

import pytest
from datasets import load_from_disk

from core.checkpoints import STEP_FORMAT_KEY
from data import build_revision_data
from data.arith import ArithQuestion, check_solution
from data.build_revision_data import RevisionDataConfig, revision_chunk
from search.step_format import ARITH
from tests.conftest import ARITH_TASK, ROOT, as_question
from tests.fakes import ScriptedGenerator

Q = ArithQuestion(start=2, ops=(("+", 7), ("*", 3)))  # (2+7)*3 = 27
RIGHT, WRONG, CLOSE = "2+7=9\n9*3=27\nA:27\n", "2+7=8\n8*3=24\nA:24\n", "2+7=9\n9*3=28\nA:28\n"


def chunk(texts, max_length=512, question=Q):
    cfg = RevisionDataConfig(samples_per_question=len(texts), max_length=max_length)
    return revision_chunk([as_question(question)], ARITH_TASK, ScriptedGenerator(lambda p, n: texts), ARITH, cfg, len)[
        0
    ]


def shown_attempts(prompt: str) -> list[str]:
    """The attempts of an arith revision prompt: each ends with its answer line."""
    attempts, lines = [], []
    for line in ARITH.question_of(prompt).split("\n")[1:]:
        lines.append(line)
        if ARITH.is_answer_step(line):
            attempts, lines = [*attempts, "\n".join(lines)], []
    return attempts


def test_rows_put_the_closest_incorrect_attempt_last_and_a_correct_answer_as_completion():
    record = chunk([RIGHT, WRONG, CLOSE, WRONG, "no answer", RIGHT, RIGHT, RIGHT])
    assert record["counts"] == {"no_answer": 1} and (record["correct"], record["incorrect"]) == (4, 3)
    assert len(record["rows"]) == 4 and any(row["k"] for row in record["rows"])  # one per correct answer
    for row in record["rows"]:
        assert row["completion"] == RIGHT and check_solution(Q, row["completion"]).correct
        attempts = shown_attempts(row["prompt"])
        assert len(attempts) == row["k"] <= 2  # two distinct incorrect answers
        if attempts:
            assert attempts[-1] == CLOSE.strip()


def test_questions_without_a_correct_or_an_incorrect_answer_and_long_rows_are_counted():
    assert chunk([WRONG, CLOSE])["counts"] == {"skipped_no_correct": 1}
    assert chunk([RIGHT, RIGHT])["counts"] == {"skipped_no_incorrect": 1}
    long = chunk([RIGHT, CLOSE, RIGHT, CLOSE], max_length=10)
    assert long["rows"] == [] and long["counts"] == {"too_long": 2}


def test_builder_end_to_end_resumes_to_the_same_dataset(tiny_policy, tmp_path):
    args = ["--policy", str(tiny_policy), "--questions_per_level", "4", "--samples_per_question", "6",
            "--validation_fraction", "0.3", "--max_new_tokens", "40", "--questions_per_chunk", "3"]  # fmt: skip
    first = tmp_path / "a"
    build_revision_data.main([*args, "--output_dir", str(first)])
    report = json.loads((first / "report.json").read_text())
    data = load_from_disk(str(first / "dataset"))
    rows = [r for split in data.values() for r in split]
    assert rows and sum(report["rows"].values()) == len(rows)
    for row in rows:  # every completion is a correct answer, every prompt a revision prompt
        assert ARITH.extract_answer(row["completion"]) == row["gold"]
        assert row["prompt"].startswith(ARITH.prompt(row["question"]).rstrip("\n"))
        assert len(shown_attempts(row["prompt"])) == row["k"]

    second = tmp_path / "b"  # killed after the first chunk, mid-line, then rerun
    build_revision_data.main([*args, "--output_dir", str(second)])
    shard = next((second / "shards").glob("*.jsonl"))
    lines = shard.read_text().splitlines(keepends=True)
    shard.write_text("".join(lines[:3]) + lines[3][:15])
    (second / "report.json").unlink()
    build_revision_data.main([*args, "--output_dir", str(second)])
    again = load_from_disk(str(second / "dataset"))
    assert {k: v.to_list() for k, v in again.items()} == {k: v.to_list() for k, v in data.items()}
    with pytest.raises(SystemExit):  # other settings into the same folder
        build_revision_data.main([*args, "--output_dir", str(first), "--samples_per_question", "8"])


def test_revision_model_trains_on_completions_and_loads(tiny_policy, tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from training import revision
    from training.sft import IGNORE, tokenize_example

    data = tmp_path / "data"
    build_revision_data.main(["--policy", str(tiny_policy), "--questions_per_level", "4", "--samples_per_question",
                              "6", "--validation_fraction", "0.3", "--max_new_tokens", "40",
                              "--output_dir", str(data)])  # fmt: skip
    recipe = str(ROOT / "recipes/arith-tiny/revision.yaml")
    out = revision.main(["--config", recipe, "--model_name_or_path", str(tiny_policy),
                         "--dataset", str(data / "dataset"), "--output_dir", str(tmp_path / "rev"), "--max_steps", "3",
                         "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
                         "--disable_tqdm", "true"])  # fmt: skip
    assert AutoModelForCausalLM.from_pretrained(out) is not None and (out / "task.json").is_file()
    assert getattr(AutoConfig.from_pretrained(out), STEP_FORMAT_KEY) == ARITH.to_dict()
    row = load_from_disk(str(data / "dataset"))["train"][0]  # the loss covers the completion only
    tokenizer = AutoTokenizer.from_pretrained(out)
    example = tokenize_example(tokenizer, ARITH, row["prompt"], ARITH.split_steps(row["completion"]))
    n_prompt = len(tokenizer(row["prompt"])["input_ids"])
    assert example["labels"][:n_prompt] == [IGNORE] * n_prompt and IGNORE not in example["labels"][n_prompt:]
