import json
import os
import subprocess
import sys

import pytest
from datasets import load_from_disk

from data import build_prm_data
from data.mc_labels import first_zero_by_bisection
from data.prm_dataset import write_prm_dataset
from tests.conftest import ROOT, TINY_PRM_DATA_ARGS

SMALL = TINY_PRM_DATA_ARGS


def build(policy, out, *extra):
    return build_prm_data.main(["--policy", str(policy), "--output_dir", str(out), *SMALL, *extra])


def rows(out):
    data = load_from_disk(str(out / "dataset"))
    return {name: split.to_list() for name, split in data.items()}


@pytest.fixture(scope="module")
def reference(tiny_prm_data):
    return tiny_prm_data


def test_dataset_schema_reports_and_card(reference):
    data = rows(reference)
    assert set(data) == {"train", "validation"}
    all_rows = data["train"] + data["validation"]
    assert {r["question"] for r in data["train"]}.isdisjoint({r["question"] for r in data["validation"]})
    for r in all_rows:
        assert len(r["completions"]) == len(r["labels"]) == len(r["mc_values"]) == len(r["gt_step_correct"])
        assert r["labels"] == r["mc_values"]  # soft labels by default
        assert all(0 <= v <= 1 for v in r["labels"])
        assert r["mc_values"][-1] == float(r["correct"])
        assert r["rollouts"] == 2 * (len(r["completions"]) - 1)
        assert r["prompt"].startswith("Q:") and r["final_answer"] is not None
    report = json.loads((reference / "report.json").read_text())
    assert report["questions"] == 6 and report["solutions_sampled"] == 18
    assert report["solutions_kept"] + sum(report["filtered"].values()) == 18  # nothing lost silently
    assert report["solutions_kept"] == len(all_rows)
    assert {"hard_accuracy", "first_error_accuracy", "soft_mse"} <= set(report["label_quality"])
    assert "binary_vs_exhaustive" in report
    jsonl = (reference / "train.jsonl").read_text().splitlines()
    assert len(jsonl) == len(data["train"]) and json.loads(jsonl[0])["completions"] == data["train"][0]["completions"]
    card = (reference / "README.md").read_text()
    assert card.startswith("---\n") and "stepwise-supervision" in card and "Settings" in card


def test_binary_mode_matches_the_replayed_bisection(reference, tiny_policy, tmp_path):
    build(tiny_policy, tmp_path / "bin", "--mode", "binary", "--label_kind", "hard")
    exhaustive = {(r["question"], r["solution_index"]): r for split in rows(reference).values() for r in split}
    binary = [r for split in rows(tmp_path / "bin").values() for r in split]
    assert len(binary) == len(exhaustive)
    for r in binary:
        ex = exhaustive[(r["question"], r["solution_index"])]
        if r["correct"]:
            assert r["rollouts"] == 0 and r["labels"] == [1.0] * len(ex["completions"])
            continue
        found, probes = first_zero_by_bisection(len(ex["mc_values"]), ex["mc_values"].__getitem__)
        assert r["first_zero"] == found and r["rollouts"] == 2 * probes
        assert r["labels"] == [1.0] * found + [0.0] and r["completions"] == ex["completions"][: found + 1]
        probed = [v for v in r["mc_values"] if v is not None]
        assert all(v in ex["mc_values"] for v in probed)  # same prefix, same seeded rollouts


def test_resume_after_a_kill_gives_the_identical_dataset(reference, tiny_policy, tmp_path, monkeypatch):
    real, calls = build_prm_data.label_chunk, []

    def dies_after_two_chunks(chunk, *args):
        calls.append([q.text for q in chunk])
        if len(calls) > 2:
            raise KeyboardInterrupt  # the job is killed mid-run
        return real(chunk, *args)

    monkeypatch.setattr(build_prm_data, "label_chunk", dies_after_two_chunks)
    out = tmp_path / "resumed"
    with pytest.raises(SystemExit):  # Ctrl-C: `interrupted`, exit status 130
        build(tiny_policy, out)
    (shard,) = (out / "shards").glob("*.jsonl")
    with shard.open("a") as f:
        f.write('{"question": "torn')  # a write cut short by the kill
    assert not (out / "dataset").exists()

    calls.clear()
    build(tiny_policy, out)
    assert sum(len(c) for c in calls) == 2  # only the 2 questions not finished before the kill
    assert rows(out) == rows(reference)


def test_other_settings_in_the_same_folder_are_refused(reference, tiny_policy, capsys):
    with pytest.raises(SystemExit):
        build(tiny_policy, reference, "--rollouts_per_step", "3")
    err = capsys.readouterr().err
    assert "output of another run" in err and "rollouts_per_step" in err


def test_two_processes_give_the_same_dataset(reference, tiny_policy, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "data.build_prm_data", "--policy", str(tiny_policy), "--output_dir", str(out), *SMALL]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (out / "shards").glob("*.jsonl")) == ["rank0-of-2.jsonl", "rank1-of-2.jsonl"]
    assert rows(out) == rows(reference)


def test_merge_refuses_missing_questions(reference, tmp_path):
    from data.arith import ArithQuestion
    from search.step_format import ARITH
    from tests.conftest import as_question

    with pytest.raises(RuntimeError, match="no record"):
        question = as_question(ArithQuestion(1, (("+", 1),)))
        write_prm_dataset(tmp_path, [question], [], build_prm_data.PRMDataConfig(), ARITH)
