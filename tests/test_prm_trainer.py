import json
import math
import os
import re
import socket
import subprocess
import sys

import pytest
from datasets import Dataset
from transformers import AutoConfig, AutoModelForTokenClassification

from core.checkpoints import STEP_FORMAT_KEY
from core.config import UserError
from search.step_format import ARITH, StepFormat
from search.verifiers.aggregation import aggregate
from search.verifiers.verifier import load_verifier
from tests.conftest import PRM_STEPS as STEPS
from tests.conftest import ROOT
from tests.conftest import train_prm as train
from training.prm_data import IGNORE, tokenize_rows


def test_checkpoint_loads_and_carries_format_and_label_kind(tiny_prm):
    config = AutoConfig.from_pretrained(tiny_prm)
    assert getattr(config, STEP_FORMAT_KEY) == ARITH.to_dict()
    assert config.reward_model == {"kind": "prm", "head": "linear", "label_kind": "soft", "aggregation": "last",
                                   "layout": "native"}  # fmt: skip
    model = AutoModelForTokenClassification.from_pretrained(tiny_prm)
    assert model.config.num_labels == 1
    record = json.loads((tiny_prm / "ranks/rank0.json").read_text())
    assert (record["distributed_type"], record["num_processes"]) == ("NO", 1)


def test_verifier_scores_all_steps_in_one_pass_like_prefix_scoring(tiny_prm):
    verifier = load_verifier(tiny_prm, ARITH, device="cpu")
    prompts = [ARITH.prompt("(2+7)*3"), ARITH.prompt("4-1")]
    solutions = [["2+7=9", "9*3=27", "A:27"], ["4-1=3", "A:3"]]
    scores = verifier.score(prompts, solutions)
    assert [len(s) for s in scores] == [3, 2] and all(0 < x < 1 for s in scores for x in s)
    for prompt, steps, row in zip(prompts, solutions, scores, strict=True):  # prefix-by-prefix gives the same
        for i in range(len(steps)):
            assert verifier.score([prompt], [steps[: i + 1]])[0][-1] == pytest.approx(row[i], abs=1e-5)
    assert aggregate(scores[0], "last") == scores[0][-1] and aggregate(scores[0], "min") == min(scores[0])
    assert aggregate([], "mean") == 0.0


def test_verifier_refuses_mismatched_format_and_missing_checkpoint(tiny_prm, tiny_policy, tmp_path):
    with pytest.raises(UserError, match="does not match"):
        load_verifier(tiny_prm, StepFormat(name="other", answer_prefix="#### "))
    with pytest.raises(UserError, match="not found"):
        load_verifier(tmp_path / "none", ARITH)
    with pytest.raises(UserError, match="not a reward model"):
        load_verifier(tiny_policy, ARITH)


def test_orm_and_lora(tiny_policy, tiny_prm_data, tmp_path):
    orm = train(tiny_policy, tiny_prm_data, tmp_path / "orm", "--orm", "true", "--use_lora", "true",
                "--label_column", "hard_labels")  # fmt: skip
    config = AutoConfig.from_pretrained(orm)
    assert config.reward_model == {"kind": "orm", "head": "linear", "label_kind": "hard", "aggregation": "last",
                                   "layout": "native"}  # fmt: skip
    model = AutoModelForTokenClassification.from_pretrained(orm)  # LoRA merged: a plain checkpoint
    assert not any("lora" in name for name, _ in model.named_parameters())


def test_loss_goes_down(tiny_policy, tiny_prm_data, tmp_path):
    out = train(tiny_policy, tiny_prm_data, tmp_path / "p", "--max_steps", "30", "--logging_steps", "10")
    losses = [e["loss"] for e in json.loads((out / "train_metrics.json").read_text())["log_history"] if "loss" in e]
    assert losses[-1] < losses[0]


def rows(**overrides):
    row = {"prompt": ARITH.prompt("2+3"), "completions": ["2+3=5", "A:5"], "labels": [1.0, 0.5]}
    return Dataset.from_list([row, {**row, **overrides}])


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"labels": [1.0]}, "row 1: 2 steps but 1 labels"),
        ({"labels": [1.0, 1.5]}, "row 1: label 1 = 1.5 is outside"),
        ({"completions": ["2+3=5", " "]}, "row 1: step 1 is empty"),
        ({"completions": ["2+3=5\nA:5", "A:5"]}, "row 1: step 0 contains the step separator"),
        ({"prompt": "Question: 2+3"}, "row 1: prompt 'Question: 2+3' is not in step format"),
    ],
)
def test_bad_rows_are_named(tokenizer, overrides, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        tokenize_rows(rows(**overrides), tokenizer, ARITH, 64, "train")


def test_labels_sit_on_step_ends_and_long_rows_are_dropped(tokenizer, caplog):
    data = rows(completions=["2+3=5" * 20, "A:5"])
    out = tokenize_rows(data, tokenizer, ARITH, 64, "train")
    assert len(out) == 1 and "dropped 1 of 2 rows longer than 64 tokens" in caplog.text
    ids, targets = out[0]["input_ids"], out[0]["step_labels"]
    ends = [i for i, t in enumerate(targets) if t != IGNORE]
    assert [tokenizer.decode([ids[i]]) for i in ends] == ["\n", "\n"] and [targets[i] for i in ends] == [1.0, 0.5]
    orm = tokenize_rows(data, tokenizer, ARITH, 64, "train", last_step_only=True)
    assert [t for t in orm[0]["step_labels"] if t != IGNORE] == [0.5]


def test_missing_dataset_is_one_line(tiny_policy, tmp_path, capsys):
    with pytest.raises(SystemExit):
        train(tiny_policy, tmp_path, tmp_path / "out")
    assert "dataset not found" in capsys.readouterr().err


# ---- distributed runs: real processes, gloo on CPU ------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(launcher_args, policy, data, out, *extra, use_cpu_env=True):
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *launcher_args, "-m", "training.prm",
           "--config", str(ROOT / "recipes/arith-tiny/prm_linear.yaml"), "--model_name_or_path", str(policy),
           "--dataset", str(data / "dataset"), "--output_dir", str(out), *STEPS, *extra]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if use_cpu_env:
        env["ACCELERATE_USE_CPU"] = "true"
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(*procs):
    for p in procs:
        output, _ = p.communicate(timeout=600)
        assert p.returncode == 0, output[-4000:]


def ranks(out):
    return [json.loads((out / "ranks" / f"rank{r}.json").read_text()) for r in range(2)]


def assert_in_sync(out, distributed_type):
    records = ranks(out)
    assert [r["distributed_type"] for r in records] == [distributed_type] * 2
    assert [r["num_processes"] for r in records] == [2, 2]
    assert records[0]["fingerprint"] == records[1]["fingerprint"]  # identical weights after the steps
    assert AutoModelForTokenClassification.from_pretrained(out).config.reward_model["kind"] == "prm"


def test_ddp_two_processes(tiny_policy, tiny_prm_data, tmp_path):
    cfg = str(ROOT / "recipes/accelerate_configs/ddp.yaml")
    finish(launch(["--config_file", cfg, "--num_processes", "2", "--main_process_port", str(free_port())],
                  tiny_policy, tiny_prm_data, tmp_path / "ddp"))  # fmt: skip
    assert_in_sync(tmp_path / "ddp", "MULTI_CPU")


def test_deepspeed_zero2_on_cpu(tiny_policy, tiny_prm_data, tmp_path):
    launcher = ["--multi_gpu", "--num_processes", "2", "--main_process_port", str(free_port()),
                "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
    ds = str(ROOT / "recipes/accelerate_configs/ds_zero2_cpu.json")
    # ACCELERATE_USE_CPU would make accelerate drop DeepSpeed: see training/distributed.py
    proc = launch(launcher, tiny_policy, tiny_prm_data, tmp_path / "z2", "--deepspeed", ds, "--use_cpu", "false",
                  use_cpu_env=False)  # fmt: skip
    finish(proc)
    assert_in_sync(tmp_path / "z2", "DEEPSPEED")


def test_two_nodes_over_loopback(tiny_policy, tiny_prm_data, tmp_path):
    port = str(free_port())
    procs = [
        launch(
            [
                "--multi_gpu",
                "--num_machines",
                "2",
                "--num_processes",
                "2",
                "--machine_rank",
                str(rank),
                "--main_process_ip",
                "127.0.0.1",
                "--main_process_port",
                port,
                "--mixed_precision",
                "no",
                "--dynamo_backend",
                "no",
            ],
            tiny_policy,
            tiny_prm_data,
            tmp_path / "nodes",
        )  # fmt: skip
        for rank in (0, 1)
    ]
    finish(*procs)
    assert_in_sync(tmp_path / "nodes", "MULTI_CPU")


def test_likelihood_head_fits_four_numbers_on_the_policys_step_likelihoods(tiny_policy, tiny_prm_data, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    prm = train(tiny_policy, tiny_prm_data, tmp_path / "ll", "--head", "likelihood")
    config = AutoConfig.from_pretrained(prm)
    head = config.reward_model["likelihood_head"]
    assert config.reward_model["head"] == "likelihood" and len(head["weights"]) == 3
    model = AutoModelForCausalLM.from_pretrained(prm)  # a plain causal LM: the policy's weights, kept
    policy = AutoModelForCausalLM.from_pretrained(tiny_policy)
    kept, original = model.state_dict(), policy.state_dict()
    assert kept.keys() == original.keys() and all(torch.equal(kept[k], original[k]) for k in kept)
    verifier = load_verifier(prm, ARITH, device="cpu")
    prompt, steps = ARITH.prompt("(2+7)*3"), ["2+7=9", "9*3=27", "A:27"]
    [scores] = verifier.score([prompt], [steps])
    # by hand: each step's log-likelihood, summed over its own tokens (separator included)
    ids, ends, prompt_tokens = ARITH.encode(verifier.tokenizer, prompt, steps)
    logp = policy(input_ids=torch.tensor([ids])).logits[0].log_softmax(-1)
    token_ll = [0.0] + [float(logp[t - 1, ids[t]]) for t in range(1, len(ids))]
    bounds = [prompt_tokens - 1, *ends]
    step_ll = [sum(token_ll[a + 1 : b + 1]) for a, b in zip(bounds, bounds[1:], strict=False)]
    for i, score in enumerate(scores):
        x = [sum(step_ll[: i + 1]), min(step_ll[: i + 1]), step_ll[i]]
        logit = sum(w * f for w, f in zip(head["weights"], x, strict=True)) + head["bias"]
        assert score == pytest.approx(1 / (1 + math.exp(-logit)), abs=1e-5)
    prefix = [verifier.score([prompt], [steps[: i + 1]])[0][-1] for i in range(len(steps))]
    assert prefix == pytest.approx(scores, abs=1e-5)
    metrics = json.loads((prm / "train_metrics.json").read_text())
    assert metrics["eval_loss"] > 0 and metrics["train_steps"] > 0
    card = (prm / "README.md").read_text()  # a model card the Hub renders, saying how scores are read
    assert card.startswith("---\n") and "base_model:" in card and "likelihood_head" in card


@pytest.mark.parametrize("flags", [["--learning_rate", "1e-3"], ["--num_train_epochs", "2"]])
def test_the_likelihood_head_refuses_settings_it_would_ignore(flags, tiny_policy, tiny_prm_data, tmp_path, capsys):
    from training import prm

    argv = ["--config", str(ROOT / "recipes/arith-tiny/prm.yaml"), "--model_name_or_path", str(tiny_policy),
            "--dataset", str(tiny_prm_data / "dataset"), "--output_dir", str(tmp_path / "prm"), *flags]  # fmt: skip
    with pytest.raises(SystemExit):
        prm.main(argv)
    assert "head likelihood fits four numbers" in capsys.readouterr().err
    assert not (tmp_path / "prm" / "model.safetensors").exists()


def test_label_kind_comes_from_the_builders_settings_before_the_values(tmp_path):
    """Soft MC labels that happen to be all 0 or 1 are still soft: the builder's settings.json says so."""
    from types import SimpleNamespace

    from datasets import Dataset, DatasetDict

    from training.prm import label_kind

    data = DatasetDict(train=Dataset.from_dict({"labels": [[1.0, 0.0], [1.0]]}))
    cfg = SimpleNamespace(label_column="labels", dataset=str(tmp_path / "dataset"))
    assert label_kind(data, cfg) == "hard"  # no settings: from the values
    (tmp_path / "settings.json").write_text(json.dumps({"settings": {"label_kind": "soft"}}))
    assert label_kind(data, cfg) == "soft"
