"""The fault suite: bad settings, bad rows, corrupt files and reused outputs, each ending in a
one-line error (exit status 2, no traceback), a counted skip, or a correct result. By category:
settings (non-finite and out-of-range values, `--dry-run` included), unbounded work, tracebacks
turned into one line, bad rows counted, outputs never overwritten, run identities."""

import json
import os
import shutil
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench import generate as bench_generate
from data import build_prm_data, export_questions, importers
from data.math_tasks import load_gsm8k, load_math
from data.shards import read_all
from eval import flops_matched, reproduction, revision_report, scaling, verifier_gap
from search import cli as search_cli
from search.questions import MAX_QUESTION_CHARS, read_questions
from search.strategies.compute_optimal import FORMAT, ComputeOptimalSchedule
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
        (["--temperature", "nan"], "must be a finite number"),  # NaN passes `< 0`: run.json, then a crash
        (["--temperature", "inf"], "must be a finite number"),
        (["--request_timeout", "nan"], "must be a finite number"),
        (["--device", "tpu"], "device must be cpu, cuda, cuda:N or mps"),
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
     ("samples_per_question: two\n", "samples_per_question must be int"),
     ("temperature: .nan\n", "temperature must be a finite number"),
     ("top_p: nan\n", "top_p must be a finite number"),  # text YAML leaves to float()
     ("validation_fraction: .inf\n", "validation_fraction must be a finite number"),
     ("seed: 1\ntemperature: 0.5\nseed: 2\n", "key 'seed' is given twice (lines 1 and 3)"),  # YAML keeps the last
     ("samples_per_question: 5000\n", "samples_per_question must be <= 1024 (MAX_GENERATIONS")],
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
    assert cut.prompt_tokens == 0 and fine.prompt_tokens > 0  # a prompt that never ran is never charged


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


# ---- settings no run can use: refused when parsed, so `--dry-run` refuses them too -----------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--learning_rate", "-1"], "learning_rate must be > 0"),
        (["--learning_rate", "nan"], "must be a finite number"),
        (["--warmup_steps", "inf"], "must be a finite number"),
        (["--per_device_train_batch_size", "0"], "per_device_train_batch_size must be >= 1"),
        (["--gradient_accumulation_steps", "0"], "gradient_accumulation_steps must be >= 1"),
        (["--max_steps", "-5"], "max_steps must be >= 1, or -1"),
        (["--max_steps", "-1", "--num_train_epochs", "0"], "zero training steps"),  # saved an untrained policy
        (["--max_length", "0"], "max_length must be >= 8"),
        (["--hidden_size", "30", "--num_attention_heads", "4"], "must be divisible by num_attention_heads"),
    ],
)
def test_training_settings_no_run_can_use_are_refused_in_dry_run(flags, message, tmp_path, capsys):
    argv = ["--config", str(ROOT / "recipes/arith-tiny/policy.yaml"), "--output_dir", str(tmp_path / "p"), *flags]
    assert message in one_line_error(capsys, policy.main, [*argv, "--dry-run"])
    assert message in one_line_error(capsys, policy.main, argv)  # a real run: the same line, before anything loads
    assert not (tmp_path / "p").exists()


# ---- unbounded work ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("main", "argv", "message"),
    [
        (search_cli.main, ["run", "--budgets", "1,100000"], "budgets must be >= 1 and <= 1024 (MAX_GENERATIONS)"),
        (search_cli.main, ["run", "--budgets", "1000000000000"], "MAX_GENERATIONS"),
        (search_cli.main, ["solve", "--question", "1+1", "--budget", "100000"], "over MAX_GENERATIONS (1024)"),
        (search_cli.main, ["solve", "--question", "1+1", "--strategy", "lookahead:k=999", "--budget", "4"],
         "spends 4000 generations per question"),  # N*(k+1)
        (search_cli.main, ["solve", "--question", "1" * (MAX_QUESTION_CHARS + 1)], "question over 20000 characters"),
        (scaling.main, ["--max_budget", "100000", "--dry-run"], "max_budget must be <= 1024 (MAX_GENERATIONS"),
        (verifier_gap.main, ["--budgets", "4,100000"], "MAX_GENERATIONS"),
    ],
)  # fmt: skip
def test_work_over_the_caps_is_refused_before_any_model_loads(main, argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default checkpoints are not here: the refusal comes from the settings alone
    assert message in one_line_error(capsys, main, argv)


def _schedule(path, choices: dict, edges=(0.5,)) -> str:
    record = {"format": FORMAT, "probe_samples": 4, "bin_edges": list(edges), "choices": {"0": choices, "1": choices}}
    path.write_text(json.dumps(record))
    return str(path)


@pytest.mark.parametrize(
    ("choices", "edges", "message"),
    [
        ({"1": {"strategy": "best_of_n", "budget": 64}}, (0.5,), "spends 64, more than its budget"),
        ({"4": {"strategy": "lookahead:m=4:k=3", "budget": 4}}, (0.5,), "spends 16, more than its budget"),
        ({"4": {"strategy": "beam:m=3", "budget": 4}}, (0.5,), "not divisible by the beam width"),
        ({"4": {"strategy": "best_of_n", "budget": True}}, (0.5,), "not a compute-optimal schedule file"),
        ({"4096": {"strategy": "best_of_n", "budget": 4096}}, (0.5,), "over MAX_GENERATIONS"),
        ({"4": {"strategy": "best_of_n", "budget": 4}}, (float("nan"),), "bin_edges must be finite"),
    ],
)
def test_a_schedule_that_spends_more_than_it_says_is_refused_at_load(choices, edges, message, tmp_path, capsys):
    path = _schedule(tmp_path / "schedule.json", choices, edges)
    argv = ["solve", "--question", "1+1", "--strategy", "compute_optimal", "--compute_optimal", path]
    assert message in one_line_error(capsys, search_cli.main, argv)
    ok = _schedule(tmp_path / "ok.json", {"1": {"strategy": "best_of_n", "budget": 1},
                                         "8": {"strategy": "lookahead:m=2:k=1", "budget": 4}})  # fmt: skip
    assert ComputeOptimalSchedule.load(ok).choose(0.9, 8).budget == 4


# ---- what used to end in a traceback: one line ------------------------------------------------------------------


def _broken_json_eval_dir(tmp_path):
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "outcomes.json").write_text('{"format": ')  # a run killed while writing it
    return ["--eval_dir", str(folder)]


def _broken_bundle(tmp_path):
    (tmp_path / "bundle.json").write_text("")
    return ["--bundle", str(tmp_path / "bundle.json"), "--output_dir", str(tmp_path / "report")]


@pytest.mark.parametrize(
    ("main", "make_argv", "message"),
    [
        (flops_matched.main, _broken_json_eval_dir, "an input file is not valid JSON"),
        (reproduction.main, _broken_bundle, "an input file is not valid JSON"),
        (verifier_gap.main, lambda _: ["--budgets", "0"], "budgets must be >= 1"),  # was refused after models loaded
        (verifier_gap.main, lambda _: ["--strategies", "beam:m=3"], "not divisible by the beam width"),
    ],
)
def test_broken_inputs_and_impossible_settings_of_reports_end_in_one_line(main, make_argv, message, tmp_path, capsys,
                                                                         monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert message in one_line_error(capsys, main, make_argv(tmp_path))


@pytest.mark.parametrize(
    ("rows", "message"),
    [('{"question": [1], "answer": "2"}\n{"question": "1+1", "answer": NaN}\n', "no questions (skipped: "),
     ("question,answer\n", "not a JSON object in UTF-8")],
)  # fmt: skip
def test_a_revision_report_on_a_broken_questions_file(rows, message, tiny_policy, tmp_path, capsys):
    (tmp_path / "q.jsonl").write_text(rows)
    argv = ["--revision_model", str(tiny_policy), "--dataset", str(tmp_path / "q.jsonl"), "--output_dir",
            str(tmp_path / "report")]  # fmt: skip
    assert message in one_line_error(capsys, revision_report.main, argv)


class _NotJSON(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b"<html>502 Bad Gateway</html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_server_answering_something_other_than_json_is_one_line(tiny_policy, questions, tmp_path, capsys):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotJSON)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        argv = ["run", "--policy", str(tiny_policy), "--verifier", "none", "--dataset", str(questions), "--backend",
                "vllm", "--server_urls", f"http://127.0.0.1:{server.server_port}", "--max_retries", "0",
                "--output_dir", str(tmp_path / "out")]  # fmt: skip
        assert "answered 200 with something other than a JSON object" in one_line_error(capsys, search_cli.main, argv)
    finally:
        server.shutdown()


def test_ctrl_c_prints_interrupted_and_exits_130(questions, tmp_path, capsys, monkeypatch):
    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr("search.runs.run_config", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        search_cli.main(["run", "--dataset", str(questions), "--output_dir", str(tmp_path / "out")])
    assert exit_info.value.code == 130 and capsys.readouterr().err.strip() == "interrupted"


def test_a_max_length_shorter_than_every_example_is_one_line(tmp_path, capsys):
    argv = ["--config", str(ROOT / "recipes/arith-tiny/policy.yaml"), "--output_dir", str(tmp_path / "p"),
            "--max_ops", "1", "--train_per_level", "8", "--validation_per_level", "2", "--test_per_level", "2",
            "--hidden_size", "16", "--num_hidden_layers", "1", "--num_attention_heads", "2",
            "--max_length", "8"]  # fmt: skip
    assert "no example fits in max_length 8 tokens" in one_line_error(capsys, policy.main, argv)


# ---- bad rows: counted skips, never kept as text ----------------------------------------------------------------

LONG = f"question over {MAX_QUESTION_CHARS} characters"
BAD_ROWS = [
    ('{"id": "a", "question": "1+1", "answer": NaN}', "no gold answer"),
    ('{"id": "b", "question": "1+1", "answer": Infinity}', "no gold answer"),
    ('{"id": "c", "question": "1+1", "answer": true}', "no gold answer"),
    ('{"id": "d", "question": "1+1", "answer": {"value": 2}}', "no gold answer"),
    ('{"id": null, "question": "1+1", "answer": "2"}', "bad id"),
    ('{"id": "f", "question": ["1+1"], "answer": "2"}', "no question"),
    ('{"id": "g", "question": "' + "1+" * MAX_QUESTION_CHARS + '1", "answer": "2"}', LONG),
    ('{"id": "h", "question": "1+1", "answer": "2", "level": [1]}', "bad level"),
]


@pytest.mark.parametrize(("row", "reason"), BAD_ROWS)
def test_a_bad_row_of_a_questions_file_is_a_counted_skip(row, reason, tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(row + '\n{"id": "ok", "question": "2+3", "answer": 5}\n')
    questions, skipped = read_questions(path)
    assert [(q.id, q.gold) for q in questions] == [("ok", "5")] and skipped == Counter({reason: 1})


@pytest.mark.parametrize(
    ("loader", "row", "reason"),
    [
        (load_gsm8k, {"question": "q", "answer": {"text": "#### 4"}}, "no gold answer"),
        (load_gsm8k, {"question": ["q"], "answer": "#### 4"}, "no question"),
        (load_gsm8k, {"id": None, "question": "q", "answer": "#### 4"}, "bad id"),
        (load_gsm8k, {"question": "q" * (MAX_QUESTION_CHARS + 1), "answer": "#### 4"}, LONG),
        (load_math, {"problem": "p", "answer": float("nan"), "solution": "\\boxed{4}"}, "no gold answer"),
        (load_math, {"problem": "p", "answer": True}, "no gold answer"),
        (load_math, {"problem": "p", "answer": {"a": 1}}, "no gold answer"),
        (load_math, {"problem": ["p"], "answer": "4"}, "no question"),
        (load_math, {"problem": "p", "answer": "4", "unique_id": None}, "bad id"),
        (load_math, {"problem": "p", "answer": "4", "solution": ["step"]}, "bad solution"),
    ],
)  # fmt: skip
def test_a_bad_row_of_gsm8k_or_math_is_a_counted_skip(loader, row, reason, tmp_path):
    good = {"question": "fine", "problem": "fine", "answer": "so #### 7" if loader is load_gsm8k else "7"}
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps(good) + "\n")
    task = loader(str(path))
    assert [q.gold for q in task.questions] == ["7"] and task.skipped == Counter({reason: 1})


# ---- outputs: never into another stage's folder, never over another stage's file ------------------------------


def test_reports_and_benchmarks_never_write_into_another_stages_output(tiny_policy, tiny_prm_data, questions,
                                                                       tmp_path, capsys):  # fmt: skip
    config = (tiny_policy / "config.json").read_text()
    argv = ["--policy", str(tiny_policy), "--output_file", str(tiny_policy / "config.json")]
    assert "holds the output of training.policy" in one_line_error(capsys, bench_generate.main, argv)
    assert (tiny_policy / "config.json").read_text() == config
    run = ["run", "--policy", str(tiny_policy), "--verifier", "none", "--dataset", str(questions)]
    assert "holds the output of training.policy" in one_line_error(
        capsys, search_cli.main, [*run, "--output_dir", str(tiny_policy)]
    )
    argv = ["--revision_model", str(tiny_policy), "--dataset", str(questions), "--output_dir", str(tiny_prm_data)]
    assert "holds the output of data.build_prm_data" in one_line_error(capsys, revision_report.main, argv)
    downloaded = tmp_path / "downloaded"  # a checkpoint this project did not write
    shutil.copytree(tiny_policy, downloaded, ignore=shutil.ignore_patterns("made_by.json"))
    argv = ["--policy", str(tiny_policy), "--output_file", str(downloaded / "report.json")]
    assert "holds a checkpoint or a dataset" in one_line_error(capsys, bench_generate.main, argv)


def test_an_export_never_overwrites_a_file_it_did_not_write(tiny_policy, tiny_prm_data, tmp_path, capsys):
    export = ["--policy", str(tiny_policy), "--questions_per_level", "1"]
    train = tiny_prm_data / "train.jsonl"
    before = train.read_text()
    assert "holds the output of data.build_prm_data" in one_line_error(
        capsys, export_questions.main, [*export, "--output_file", str(train)]
    )
    assert train.read_text() == before
    mine = tmp_path / "test.jsonl"
    export_questions.main([*export, "--output_file", str(mine)])
    export_questions.main([*export, "--output_file", str(mine)])  # its own file: rewritten
    notes = tmp_path / "notes.jsonl"
    notes.write_text("mine\n")
    message = one_line_error(capsys, export_questions.main, [*export, "--output_file", str(notes)])
    assert "a file this project did not record writing" in message and notes.read_text() == "mine\n"
    export_questions.main([*export, "--output_file", str(notes), "--overwrite_output_file", "true"])
    assert len(read_questions(notes)[0]) == 3


# ---- run identities: what a result depends on, not how it was spelled ------------------------------------------

RUN = ["--verifier", "none", "--strategies", "best_of_n:select=majority", "--budgets", "1", "--max_new_tokens", "20"]


def _run(policy_path, questions, out, *extra) -> list[str]:
    search_cli.main(["run", "--policy", str(policy_path), *RUN, "--dataset", str(questions), "--output_dir",
                     str(out), *extra])  # fmt: skip
    return (Path(out) / "results.jsonl").read_text().splitlines()


def test_a_run_resumes_whatever_spells_its_paths_or_names_the_policys_own_step_format(tiny_policy, tmp_path,
                                                                                      monkeypatch, capsys):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "q.jsonl").write_text(QUESTIONS + '{"id": "bad", "question": "1+1", "answer": NaN}\n')
    rows = _run(tiny_policy, "q.jsonl", tmp_path / "out")
    assert json.loads((tmp_path / "out/summary.json").read_text())["skipped_rows"] == {"no gold answer": 1}
    assert _run(tiny_policy, "./q.jsonl", tmp_path / "out", "--step_format", "arith") == rows  # resumed: no new row
    shutil.move(tmp_path / "out", tmp_path / "moved")
    assert _run(tiny_policy, tmp_path / "q.jsonl", "moved") == rows
    record = json.loads((tmp_path / "moved/run.json").read_text())  # a record of version 1: as typed, with its folder
    record.pop("version")
    record["settings"].update(output_dir="out", dataset="q.jsonl")
    (tmp_path / "moved/run.json").write_text(json.dumps(record))
    assert _run(tiny_policy, "q.jsonl", "moved") == rows
    assert json.loads((tmp_path / "moved/run.json").read_text())["version"] == 2  # rewritten in today's form
    assert "differs in: settings.seed" in one_line_error(
        capsys,
        search_cli.main,
        ["run", "--policy", str(tiny_policy), *RUN, "--dataset", "q.jsonl", "--output_dir", "moved", "--seed", "1"],
    )


def test_an_empty_run_record_left_by_a_crash(tiny_policy, questions, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text("")  # the disk was full: nothing ran yet
    rows = _run(tiny_policy, questions, out)
    assert rows and json.loads((out / "run.json").read_text())["version"] == 2
    (out / "run.json").write_text("")  # now beside results it cannot vouch for
    argv = ["run", "--policy", str(tiny_policy), *RUN, "--dataset", str(questions), "--output_dir", str(out)]
    assert "run.json is empty or corrupt" in one_line_error(capsys, search_cli.main, argv)
    assert (out / "results.jsonl").read_text().splitlines() == rows


def test_a_data_build_resumes_from_another_spelling_or_a_moved_folder(tiny_policy, tiny_prm_data, tmp_path,
                                                                      monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_prm_data, tmp_path / "moved")
    shards = {p.name: p.read_text() for p in (tmp_path / "moved/shards").iterdir()}
    args = ["--policy", os.path.relpath(tiny_policy, tmp_path), *TINY_PRM_DATA_ARGS, "--step_format", "arith"]
    build_prm_data.main([*args, "--output_dir", "./moved"])
    assert {p.name: p.read_text() for p in (tmp_path / "moved/shards").iterdir()} == shards  # nothing redone
