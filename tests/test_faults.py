"""The fault suite: bad settings, bad rows, corrupt files and reused outputs, each ending in a
one-line error (exit status 2, no traceback), a counted skip, or a correct result."""

import json
import shutil
from collections import Counter

import pytest

from data import build_prm_data, importers
from data.math_tasks import load_gsm8k, load_math
from data.shards import read_all
from search import cli as search_cli
from tests.conftest import ROOT, TINY_PRM_DATA_ARGS
from training import policy, prm

QUESTIONS = '{"id": "a", "question": "2+3", "answer": "5"}\n'


def one_line_error(capsys, main, argv) -> str:
    """Run an entry point that must refuse: exit status 2 and one line on stderr, no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and err and err[-1].startswith("error: ")
    assert not any("Traceback" in line for line in err)
    return err[-1]


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(QUESTIONS)
    return path


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--temperature", "-1"], "temperature must be >= 0"),
        (["--top_p", "0"], "top_p must be in (0, 1]"),
        (["--top_p", "2"], "top_p must be in (0, 1]"),
        (["--max_new_tokens", "0"], "max_new_tokens must be >= 1"),
        (["--batch_size", "0"], "batch and chunk sizes"),
        (["--chunk_size", "0"], "chunk_size must be >= 1"),
        (["--limit", "-1"], "limit"),
        (["--learning_rat", "1"], "learning_rat"),  # no prefix matching
        (["--budgets", "0,4"], "budgets must be >= 1"),
        (["--policy", "outputs/no-such-policy"], "policy checkpoint not found"),  # local, never looked up on the hub
    ],
)
def test_bad_runtime_settings_are_refused_before_any_model_loads(
    flags, message, questions, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()  # a folder named like a hub org makes its subpaths local
    argv = ["run", "--dataset", str(questions), "--output_dir", str(tmp_path / "out"), *flags]
    assert message in one_line_error(capsys, search_cli.main, argv)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("recipe", "message"),
    [("batch_size: 1.5\n", "batch_size must be int"), ("temperature: -1\n", "temperature must be >= 0"),
     ("samples_per_question: two\n", "samples_per_question must be int")],
)  # fmt: skip
def test_bad_builder_recipes_write_nothing(recipe, message, tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(recipe + f"output_dir: {tmp_path / 'data'}\n")
    assert message in one_line_error(capsys, build_prm_data.main, ["--config", str(path)])
    assert not (tmp_path / "data").exists()  # no settings.json to block the corrected rerun


def test_files_that_cannot_be_read(tiny_policy, questions, tmp_path, capsys):
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes('{"question": "caf\xe9", "answer": "1"}\n'.encode("latin-1"))
    argv = [
        "run",
        "--policy",
        str(tiny_policy),
        "--verifier",
        "none",
        "--dataset",
        str(bad),
        "--output_dir",
        str(tmp_path),
    ]
    assert "not a JSON object in UTF-8" in one_line_error(capsys, search_cli.main, argv)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_policy, broken)
    (broken / "config.json").write_text("{not json")
    argv = [
        "run",
        "--policy",
        str(broken),
        "--verifier",
        "none",
        "--dataset",
        str(questions),
        "--output_dir",
        str(tmp_path),
    ]
    assert "config.json is not valid JSON" in one_line_error(capsys, search_cli.main, argv)
    flipped = tmp_path / "flipped"
    shutil.copytree(tiny_policy, flipped)
    weights = bytearray((flipped / "model.safetensors").read_bytes())
    weights[-100] ^= 0xFF  # one flipped byte in a weight: safetensors alone would load it silently
    (flipped / "model.safetensors").write_bytes(bytes(weights))
    argv = [
        "run",
        "--policy",
        str(flipped),
        "--verifier",
        "none",
        "--dataset",
        str(questions),
        "--output_dir",
        str(tmp_path),
    ]
    assert "model.safetensors is missing or corrupt" in one_line_error(capsys, search_cli.main, argv)


def test_outputs_never_overwrite_another_artifact(tiny_policy, tiny_prm_data, tmp_path, capsys):
    target = tmp_path / "policy-copy"
    shutil.copytree(tiny_policy, target)
    argv = ["--config", str(ROOT / "recipes/arith-tiny/prm.yaml"), "--model_name_or_path", str(tiny_policy),
            "--dataset", str(tiny_prm_data / "dataset"), "--output_dir", str(target)]  # fmt: skip
    assert "holds the output of training.policy" in one_line_error(capsys, prm.main, argv)
    assert (target / "task.json").exists()  # the policy is still there
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    argv = ["--config", str(ROOT / "recipes/arith-tiny/policy.yaml"), "--output_dir", str(foreign)]
    assert "files this project did not write" in one_line_error(capsys, policy.main, argv)
    data = ["--policy", str(tiny_policy), "--output_dir", str(target), *TINY_PRM_DATA_ARGS]
    assert "holds the output of training.policy" in one_line_error(capsys, build_prm_data.main, data)
    missing = ["--config", str(ROOT / "recipes/arith-tiny/prm.yaml"), "--output_dir", str(tmp_path / "new"),
               "--dataset", str(tiny_prm_data / "dataset"),
               "--resume_from_checkpoint", str(tmp_path / "nope")]  # fmt: skip
    assert "no checkpoint at" in one_line_error(capsys, prm.main, missing)


def test_resumes_refuse_another_identity(tiny_policy, tiny_prm_data, tmp_path, capsys):
    out = tmp_path / "search"
    run = ["run", "--policy", str(tiny_policy), "--verifier", "none", "--strategies", "best_of_n:select=majority",
           "--budgets", "1", "--max_new_tokens", "20"]  # fmt: skip
    questions = tmp_path / "q.jsonl"
    questions.write_text(QUESTIONS)
    search_cli.main([*run, "--dataset", str(questions), "--output_dir", str(out)])
    assert "differs in: settings.seed" in one_line_error(
        capsys, search_cli.main, [*run, "--dataset", str(questions), "--output_dir", str(out), "--seed", "1"]
    )
    retrained = tmp_path / "retrained"
    shutil.copytree(tiny_policy, retrained)
    data = tmp_path / "data"
    build_prm_data.main(["--policy", str(retrained), "--output_dir", str(data), *TINY_PRM_DATA_ARGS])
    weights = bytearray((retrained / "model.safetensors").read_bytes())
    weights[-100] ^= 0xFF  # new weights at the same path (its checksum record goes with them)
    (retrained / "model.safetensors").write_bytes(bytes(weights))
    (retrained / "checksums.json").unlink()
    argv = ["--policy", str(retrained), "--output_dir", str(data), *TINY_PRM_DATA_ARGS]
    assert "differs in: checkpoint" in one_line_error(capsys, build_prm_data.main, argv)


def test_a_corrupt_shard_line_is_redone_and_stray_files_are_ignored(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    good = json.dumps({"question": "1+1", "rows": [], "counts": {}})
    (shards / "rank0-of-1.jsonl").write_text(f"{good}\n{{garbage\n" + json.dumps({"question": "2+2"}) + "\n")
    (shards / "notes.jsonl").write_text("not a shard\n")
    (shards / "README").write_text("stray")
    assert [r["question"] for r in read_all(shards)] == ["1+1", "2+2"]


def test_importers_count_what_they_cannot_use(tmp_path):
    step = {"completions": [{"text": "x = 1", "rating": 1}], "chosen_completion": 0}
    row = {"question": {"problem": "What is x?", "ground_truth_answer": "1"}, "label": {"steps": [step]}}
    lines = [
        row,
        {**row, "label": {"steps": [{**step, "completions": [{"text": "x", "rating": None}]}]}},
        {**row, "label": {"steps": [{**step, "completions": [{"text": "x", "rating": "1"}]}]}},
        {**row, "question": {"problem": "  "}},
        {"label": "not a dict"},
    ]
    prm800k = tmp_path / "prm800k.jsonl"
    prm800k.write_text("".join(json.dumps(line) + "\n" for line in lines) + "not json\n")
    dataset = importers.main(["--input", str(prm800k), "--output_dir", str(tmp_path / "p"), "--validation_fraction",
                              "0"])  # fmt: skip
    report = json.loads((tmp_path / "p/report.json").read_text())
    assert len(dataset["train"]) == 1 and report["rows_read"] + 1 == len(lines) + 1
    assert report["skipped"] == {"rating not -1, 0 or 1": 2, "empty question": 1, "malformed row": 1,
                                 "not a JSON object": 1}  # fmt: skip
    shepherd = tmp_path / "shepherd.jsonl"
    tagged = "Q with ки inside Step 1: a ки\nStep 2: The answer is: 1 ки"
    shepherd.write_text(json.dumps({"input": tagged, "label": tagged.replace("ки", "+")}) + "\n")
    with pytest.raises(SystemExit):  # nothing importable: one line naming the counts
        importers.main(["--format", "math-shepherd", "--input", str(shepherd), "--output_dir", str(tmp_path / "s")])


def test_loaders_count_rows_without_a_question_and_keep_an_answer_of_zero(tmp_path):
    gsm8k = tmp_path / "gsm8k.jsonl"
    gsm8k.write_text(
        json.dumps({"answer": "1+1=2\n#### 2"}) + "\n" + json.dumps({"question": "q", "answer": "#### 3"}) + "\n"
    )
    task = load_gsm8k(str(gsm8k))
    assert len(task.questions) == 1 and task.skipped == Counter({"no question": 1})
    math = tmp_path / "math.jsonl"
    math.write_text(json.dumps({"problem": "p", "answer": 0, "solution": "so \\boxed{5}"}) + "\n")
    assert load_math(str(math)).questions[0].gold == "0"


def test_a_prm_trains_without_a_validation_split(tiny_policy, tiny_prm_data, tmp_path):
    from datasets import DatasetDict, load_from_disk

    from data.shards import FORMAT_FILE
    from tests.conftest import train_prm

    train_only = tmp_path / "train_only"
    DatasetDict({"train": load_from_disk(str(tiny_prm_data / "dataset"))["train"]}).save_to_disk(train_only / "dataset")
    shutil.copy(tiny_prm_data / "dataset" / FORMAT_FILE, train_only / "dataset" / FORMAT_FILE)
    out = train_prm(tiny_policy, train_only, tmp_path / "prm")
    assert (out / "model.safetensors").exists()


def test_a_prompt_longer_than_the_context_is_cut_off_not_run(tiny_policy):
    from search.generation.generator import SamplingParams
    from search.generation.hf_generator import HFGenerator
    from search.step_format import ARITH

    generator = HFGenerator.from_pretrained(tiny_policy, ARITH, device="cpu")
    long = ARITH.prompt("+".join(["1"] * generator.context_length))
    [[cut], [fine]] = generator.generate([long, ARITH.prompt("2+3")], SamplingParams(0.0, max_new_tokens=8), 1)
    assert (cut.stop_reason, cut.generated_tokens, cut.text) == ("length", 0, "") and fine.generated_tokens > 0


def _custom_code_checkpoint(tiny_policy, tmp_path):
    """A checkpoint whose config asks for its own code: the code would leave a marker file if it ran."""
    folder = tmp_path / "custom"
    shutil.copytree(tiny_policy, folder)
    config = json.loads((folder / "config.json").read_text())
    auto_map = {"AutoConfig": "modeling_evil.EvilConfig", "AutoModelForCausalLM": "modeling_evil.Evil"}
    config.update(model_type="evil", architectures=["EvilForCausalLM"], auto_map=auto_map)
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "code-ran"
    (folder / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return folder, marker


def _other_architecture(tiny_policy, tmp_path):
    folder = tmp_path / "bert"
    shutil.copytree(tiny_policy, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="bert", architectures=["BertForMaskedLM"])  # the step format stays
    (folder / "config.json").write_text(json.dumps(config))
    return folder, None


@pytest.mark.parametrize(
    ("make", "flags", "message"),
    [
        (_custom_code_checkpoint, ["--verifier", "none"], "needs the checkpoint's own code"),
        (_other_architecture, ["--verifier", "none"], "weights of a CausalLM model are not in the checkpoint"),
    ],
)
def test_a_checkpoint_is_loaded_as_what_it_is_or_refused(make, flags, message, tiny_policy, questions, tmp_path,
                                                          capsys, monkeypatch):  # fmt: skip
    folder, marker = make(tiny_policy, tmp_path)
    monkeypatch.setattr("sys.stdin", None)  # transformers' "[y/N]" prompt would need a terminal
    argv = ["run", "--policy", str(folder), *flags, "--dataset", str(questions), "--output_dir", str(tmp_path / "out")]
    assert message in one_line_error(capsys, search_cli.main, argv)
    assert marker is None or not marker.exists()


def test_a_reward_model_or_a_causal_lm_is_refused_where_the_other_is_meant(tiny_policy, tiny_prm, questions, tmp_path,
                                                                         capsys):  # fmt: skip
    run = ["run", "--dataset", str(questions), "--output_dir", str(tmp_path / "out"), "--strategies", "best_of_n",
           "--budgets", "1"]  # fmt: skip
    assert "is a reward model" in one_line_error(capsys, search_cli.main, [*run, "--policy", str(tiny_prm),
                                                                           "--verifier", "none"])  # fmt: skip
    trl_on_lm = [*run, "--policy", str(tiny_policy), "--verifier", str(tiny_policy), "--verifier_kind", "trl"]
    assert "not in the checkpoint" in one_line_error(capsys, search_cli.main, trl_on_lm)
    assert not (tmp_path / "out" / "results.jsonl").exists()
