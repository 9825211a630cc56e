"""Public datasets in: TRL's stepwise schema in the PRM trainer (boolean labels, raw prompts) and the
ProcessBench evaluator (fixtures written in each real format), on this project's own PRM and a public shape."""

import json

import pytest
from transformers import AutoConfig, AutoTokenizer, Qwen2Config

from core.config import UserError
from core.jsonl import read_jsonl
from data.stepwise import load_stepwise, render_rows
from eval import processbench
from eval.prm_metrics import best_threshold
from search.step_format import GSM8K
from search.verifiers.verifier import PRMVerifier, load_verifier
from tests.conftest import PRM_STEPS, ROOT
from tests.test_verifier_adapters import as_qwen_prm, save, sizes
from training import prm
from training.prm_data import check_row

TRL = ROOT / "tests/fixtures/trl_stepwise"  # TRL's stepwise-supervision schema: raw prompts, boolean labels
PROCESSBENCH = ROOT / "tests/fixtures/processbench"  # Qwen/ProcessBench's format, one JSON array per subset


def test_trl_rows_are_written_in_the_step_format():
    data = load_stepwise(str(TRL))
    assert set(data) == {"train", "validation"}  # its test split stands in for validation
    assert isinstance(data["train"][0]["labels"][0], bool)
    rendered, changed = render_rows(data, GSM8K)
    assert changed == {"raw prompts rendered": 7, "rows with boolean labels": 7,
                       "steps with a separator inside, collapsed": 1}  # fmt: skip
    row = rendered["train"][4]
    assert row["prompt"] == GSM8K.prompt("Mia reads 12 pages a day. How many pages does she read in a week?")
    assert row["completions"][0] == "Step 1: A week has 7 days. So she reads for 7 days." and row["labels"] == [1, 1]
    for i, row in enumerate(rendered["train"]):
        check_row(row, GSM8K, f"row {i}")  # what the trainer accepts
    again, _ = render_rows(rendered, GSM8K)  # rendered prompts (our own JSONL exports) are kept as they are
    assert again["train"]["prompt"] == rendered["train"]["prompt"]
    assert load_stepwise(str(TRL / "train.jsonl"))["train"].num_rows == 5  # one JSONL file: the train split
    with pytest.raises(UserError, match="dataset not found"):
        load_stepwise(str(TRL / "missing.jsonl"))


@pytest.fixture(scope="module")
def trl_prm(subword_policy, tmp_path_factory):
    """Our PRM trainer on the TRL-schema fixture (a few steps from the random sub-word policy)."""
    out = tmp_path_factory.mktemp("trl_prm") / "prm"
    args = ["--config", str(ROOT / "recipes/arith-tiny/prm_linear.yaml"), "--model_name_or_path", str(subword_policy),
            "--dataset", str(TRL), "--step_format", "gsm8k", "--output_dir", str(out), "--max_length", "512",
            *PRM_STEPS]  # fmt: skip
    return prm.main(args)


def test_the_prm_trainer_trains_on_a_trl_dataset_and_its_card_says_so(trl_prm):
    config = AutoConfig.from_pretrained(trl_prm)
    assert config.reward_model["label_kind"] == "hard" and config.step_format == GSM8K.to_dict()
    card = (trl_prm / "README.md").read_text()
    assert "TRL's schema" in card and "raw prompts rendered: 7" in card and "rows with boolean labels: 7" in card
    verifier = load_verifier(trl_prm, GSM8K, device="cpu")
    scores = verifier.score([GSM8K.prompt("Tom has 3 boxes.")], [["Step 1: 3 boxes.", "The answer is: 3"]])
    assert isinstance(verifier, PRMVerifier) and len(scores[0]) == 2


def test_processbench_metrics_follow_the_paper():
    samples = processbench.load_subset(str(PROCESSBENCH), "gsm8k", None)
    assert [s["label"] for s in samples] == [-1, 1, -1, 0]
    scores = [[0.9] * 4, [0.9, 0.2, 0.1, 0.1], [0.9, 0.4, 0.9], [0.8, 0.1, 0.1]]  # predictions -1, 1, 1, 1
    metrics = processbench.subset_metrics(samples, scores, 0.5)
    assert (metrics["erroneous_accuracy"], metrics["correct_accuracy"], metrics["f1"]) == (0.5, 0.5, 0.5)
    assert (metrics["erroneous"], metrics["correct"]) == (2, 2)


def test_processbench_runs_on_our_prm(trl_prm, tmp_path):
    report = processbench.main(["--verifier", str(trl_prm), "--dataset", str(PROCESSBENCH), "--subsets", "gsm8k,math",
                                "--output_dir", str(tmp_path / "pb")])  # fmt: skip
    assert set(report["subsets"]) == {"gsm8k", "math"}
    f1 = [m["f1"] for m in report["subsets"].values()]
    assert report["average_f1"] == pytest.approx(sum(f1) / 2)
    predictions = [json.loads(line) for line in (tmp_path / "pb/predictions.jsonl").read_text().splitlines()]
    samples = [s for name in ("gsm8k", "math") for s in processbench.load_subset(str(PROCESSBENCH), name, None)]
    assert [len(p["step_scores"]) for p in predictions] == [len(s["steps"]) for s in samples]
    assert "| gsm8k | 2 |" in (tmp_path / "pb/processbench.md").read_text()


def test_processbench_runs_on_a_public_prm_and_refuses_bad_samples(bpe, tmp_path):
    from search.verifiers.qwen_prm import QwenMathPRM

    bpe.save_pretrained(tmp_path / "bpe")
    tok = AutoTokenizer.from_pretrained(tmp_path / "bpe")
    tok.add_special_tokens({"additional_special_tokens": ["<extra_0>"]})
    qwen = as_qwen_prm(save(QwenMathPRM(Qwen2Config(**sizes(tok))), tok, tmp_path / "qwen"))
    report = processbench.main(["--verifier", str(qwen), "--dataset", str(PROCESSBENCH), "--subsets", "math",
                                "--limit", "2", "--output_dir", str(tmp_path / "pb")])  # fmt: skip
    assert report["subsets"]["math"]["erroneous"] + report["subsets"]["math"]["correct"] == 2
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "gsm8k.json").write_text(json.dumps([{"id": "x", "problem": "p", "steps": ["a"], "label": 3}]))
    with pytest.raises(UserError, match="sample x: label 3 is not -1 nor the index of one of its 1 steps"):
        processbench.load_subset(str(bad), "gsm8k", None)


@pytest.fixture
def short_context_prm(bpe, tmp_path):
    """A TRL-shape PRM whose context holds only some of the gsm8k fixture's samples (the rest: too long)."""
    from transformers import LlamaConfig, LlamaForTokenClassification

    folder = save(LlamaForTokenClassification(LlamaConfig(**sizes(bpe), num_labels=2, step_separator="\n\n")), bpe,
                  tmp_path / "short")  # fmt: skip
    verifier = load_verifier(folder, processbench.PLAIN, device="cpu")
    samples = processbench.load_subset(str(PROCESSBENCH), "gsm8k", None)
    counts = verifier.count_tokens([processbench.PLAIN.prompt(s["problem"]) for s in samples],
                                   [s["steps"] for s in samples])  # fmt: skip
    config = json.loads((folder / "config.json").read_text())
    config["max_position_embeddings"] = sorted(counts)[1]  # two samples fit, two do not (distinct counts)
    (folder / "config.json").write_text(json.dumps(config))
    return folder, sum(n > sorted(counts)[1] for n in counts)


def test_processbench_counts_samples_too_long_and_resumes_after_a_kill(short_context_prm, tmp_path, monkeypatch,
                                                                        capsys):  # fmt: skip
    folder, too_long = short_context_prm
    args = ["--verifier", str(folder), "--dataset", str(PROCESSBENCH), "--subsets", "gsm8k,math", "--batch_size", "3"]
    full = processbench.main([*args, "--output_dir", str(tmp_path / "full")])
    assert full["subsets"]["gsm8k"]["too_long"] == too_long == 2
    assert full["too_long"] == sum(m["too_long"] for m in full["subsets"].values())
    assert full["subsets"]["gsm8k"]["erroneous"] + full["subsets"]["gsm8k"]["correct"] == 2
    predictions = [json.loads(line) for line in (tmp_path / "full/predictions.jsonl").read_text().splitlines()]
    assert sum(p["predicted"] is None and p["too_long"] > 0 for p in predictions) == full["too_long"]
    assert "| too long |" in (tmp_path / "full/processbench.md").read_text()

    killed = tmp_path / "killed"  # a run killed after two samples, mid-line
    killed.mkdir()
    for name in ("run.json", "scores.jsonl"):
        (killed / name).write_bytes((tmp_path / "full" / name).read_bytes())
    lines = (killed / "scores.jsonl").read_text().splitlines(keepends=True)
    (killed / "scores.jsonl").write_text("".join(lines[:2]) + lines[2][:15])
    resumed = processbench.main([*args, "--output_dir", str(killed)])
    assert resumed["subsets"] == full["subsets"] and resumed["average_f1"] == full["average_f1"]
    assert len((killed / "scores.jsonl").read_text().splitlines()) == 7  # each sample once, the torn line cut

    monkeypatch.setattr(processbench, "load_verifier", lambda *a, **k: pytest.fail("all scores were stored"))
    tuned = processbench.main([*args, "--output_dir", str(killed), "--tune_threshold", "true"])
    assert tuned["threshold_source"] == "tuned on gsm8k"
    records = {(r["subset"], r["index"], r["id"]): r for r in read_jsonl(killed / "scores.jsonl")}
    gsm8k = processbench.load_subset(str(PROCESSBENCH), "gsm8k", None)
    kept = [(s, records[("gsm8k", i, s["id"])]["step_scores"]) for i, s in enumerate(gsm8k)
            if "step_scores" in records[("gsm8k", i, s["id"])]]  # fmt: skip
    assert tuned["threshold"] == best_threshold(processbench.solutions(*map(list, zip(*kept, strict=True))))
    capsys.readouterr()
    for extra, error in (
        (["--output_dir", str(killed), "--verifier_kind", "trl"], "holds the output of another run"),
        (["--subsets", "math", "--tune_threshold", "true"], "tune_threshold tunes on the gsm8k"),
    ):
        with pytest.raises(SystemExit):
            processbench.main([*args, *extra])
        assert error in capsys.readouterr().err
