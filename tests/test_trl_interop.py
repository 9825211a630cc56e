"""TRL interop, checked against the real `trl` package (TRL 1.13.0's `PRMTrainer`, `trl.experimental.prm`):
TRL's own reading of a solution is `PRMTrainer.tokenize_row` (ids, and a label at the last token of each step's
separator) and P(label 1) there. Both directions are tested with a char tokenizer ("\\n" separator, arith format)
and SmolLM2's byte-level BPE ("\\n\\n", math format), where one-go tokenization splits the separator differently."""

import json
import logging

import pytest
import torch
from datasets import Dataset
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    AutoTokenizer,
    LlamaConfig,
    LlamaForTokenClassification,
)
from trl.experimental.prm import PRMConfig, PRMTrainer

from core.checkpoints import REWARD_MODEL_KEY, STEP_FORMAT_KEY
from core.config import UserError
from data.stepwise import load_stepwise, render_rows
from search.step_format import ARITH, MATH
from search.verifiers.settings import VerifierSettings
from search.verifiers.verifier import load_verifier
from tests.conftest import PRM_STEPS, ROOT, TINY
from training import export_prm, prm
from training.prm_data import tokenize_rows
from training.tiny import build_char_tokenizer, build_tiny_model

ROWS = {  # TRL's stepwise schema: raw prompts, boolean labels
    "char": [
        {"prompt": "(2+7)*3-5", "completions": ["2+7=9", "9*3=27", "27-5=22", "A:22"], "labels": [True] * 4},
        {"prompt": "(2+7)*3-5", "completions": ["2+7=8", "8*3=24", "A:24"], "labels": [False] * 3},
        {"prompt": "4*(6-1)", "completions": ["6-1=5", "4*5=20", "A:20"], "labels": [True] * 3},
        {"prompt": "4*(6-1)", "completions": ["6-1=5", "4*5=24", "A:24"], "labels": [True, False, False]},
    ],
    "bpe": [
        {"prompt": "Tom has 3 boxes of 4 apples. How many apples?", "labels": [True, True],
         "completions": ["Each box has 4 apples.\nSo 3 * 4 = 12.", "The answer is: 12"]},
        {"prompt": "Tom has 3 boxes of 4 apples. How many apples?", "labels": [False, False],
         "completions": ["Each box has 4 apples, so 3 + 4 = 7.", "The answer is: 7"]},
        {"prompt": "A pen costs $2. What do 5 pens cost?", "labels": [True, True, True],
         "completions": ["One pen costs $2.", "Five cost 5 * $2 = $10.", "The answer is: 10"]},
        {"prompt": "A pen costs $2. What do 5 pens cost?", "labels": [True, False, False],
         "completions": ["One pen costs $2.", "Five cost 5 + $2 = $7.", "The answer is: 7"]},
    ],
}  # fmt: skip
FORMATS = {"char": ARITH, "bpe": MATH}  # separators "\n" and "\n\n"
CASES = tuple(ROWS)


@pytest.fixture(scope="module")
def tokenizers(bpe):
    return {"char": build_char_tokenizer(), "bpe": bpe}


def tiny_token_classifier(tokenizer, num_labels: int, **extra) -> LlamaForTokenClassification:
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, num_labels=num_labels,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, **extra)  # fmt: skip
    torch.manual_seed(0)
    return LlamaForTokenClassification(config)


def trl_row(row: dict, tokenizer, separator: str) -> dict:
    """TRL's own tokenization of a stepwise row."""
    return PRMTrainer.tokenize_row(row, tokenizer, separator, max_length=None, max_completion_length=None,
                                   train_on_last_step_only=False, is_eval=True)  # fmt: skip


def trl_reading(model, tokenizer, row: dict, separator: str) -> list[float]:
    """P(label 1) where TRL's tokenize_row puts the labels: how a TRL PRM's step scores are read."""
    features = trl_row(row, tokenizer, separator)
    with torch.no_grad():
        probs = model.eval()(torch.tensor([features["input_ids"]])).logits[0].float().softmax(-1)[:, 1]
    return probs[torch.tensor(features["labels"]) != -100].tolist()


def runtime_scores(path, case: str, rows: list[dict], **keys) -> list[list[float]]:
    """This project's runtime scoring each row, handed the policy's rendered prompt as in a search."""
    fmt = FORMATS[case]
    settings = VerifierSettings(**keys)
    verifier = load_verifier(path, fmt, device="cpu", settings=settings)
    return verifier.score([fmt.prompt(r["prompt"]) for r in rows], [r["completions"] for r in rows])


def max_difference(a: list[list[float]], b: list[list[float]]) -> float:
    assert [len(x) for x in a] == [len(x) for x in b]
    return max(abs(x - y) for xs, ys in zip(a, b, strict=True) for x, y in zip(xs, ys, strict=True))


# ---- TRL's checkpoints in our runtime --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trl_checkpoints(tokenizers, tmp_path_factory):
    """Per case, a PRM trained for two steps by TRL's own PRMTrainer with the case's separator."""
    out = {}
    for case, tokenizer in tokenizers.items():
        folder = tmp_path_factory.mktemp(f"trl_{case}")
        args = PRMConfig(output_dir=str(folder), max_steps=2, per_device_train_batch_size=2, learning_rate=1e-2,
                         step_separator=FORMATS[case].step_separator, bf16=False, gradient_checkpointing=False,
                         save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True, seed=0)  # fmt: skip
        trainer = PRMTrainer(model=tiny_token_classifier(tokenizer, 2), args=args, processing_class=tokenizer,
                             train_dataset=Dataset.from_list(ROWS[case]))  # fmt: skip
        trainer.train()
        trainer.save_model(str(folder))
        out[case] = folder
    return out


@pytest.mark.parametrize("case", CASES)
def test_a_trl_trained_checkpoint_in_our_runtime_reads_as_trl_does(trl_checkpoints, tokenizers, case, caplog):
    path, separator = trl_checkpoints[case], FORMATS[case].step_separator
    keys = {} if separator == "\n" else {"verifier_kind": "trl", "verifier_step_tag": separator}
    with caplog.at_level(logging.WARNING):
        ours = runtime_scores(path, case, ROWS[case], **keys)
    if not keys:  # TRL's default separator, assumed aloud
        assert "declares no step_separator: read with TRL's default separator '\\n'" in caplog.text
        assert "set verifier_step_tag" in caplog.text
    model = AutoModelForTokenClassification.from_pretrained(path)
    theirs = [trl_reading(model, tokenizers[case], row, separator) for row in ROWS[case]]
    assert max_difference(ours, theirs) <= 1e-5


def test_a_trl_checkpoint_declaring_its_separator_is_read_at_it(tokenizers, tmp_path):
    tok, path = tokenizers["bpe"], tmp_path / "declared"
    tiny_token_classifier(tok, 2, step_separator="\n\n").save_pretrained(path)
    tok.save_pretrained(path)
    model = AutoModelForTokenClassification.from_pretrained(path)
    theirs = [trl_reading(model, tok, row, "\n\n") for row in ROWS["bpe"]]
    assert max_difference(runtime_scores(path, "bpe", ROWS["bpe"]), theirs) <= 1e-5  # no key: its config tells
    with pytest.raises(UserError, match=r"verifier_step_tag '\\n' differs from the separator '\\n\\n' its config"):
        runtime_scores(path, "bpe", ROWS["bpe"], verifier_kind="trl", verifier_step_tag="\n")


# ---- our PRMs in TRL's layout ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_the_trl_layout_puts_ids_and_labels_where_trl_does(tokenizers, case, tmp_path):
    tok, fmt = tokenizers[case], FORMATS[case]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS[case]))
    rendered, _ = render_rows(load_stepwise(str(tmp_path / "train.jsonl")), fmt)  # what the trainer reads
    ours = tokenize_rows(rendered["train"], tok, fmt, 512, "train", layout="trl")
    for row, features in zip(ROWS[case], ours, strict=True):
        theirs = trl_row(row, tok, fmt.step_separator)
        assert features["input_ids"] == theirs["input_ids"]
        assert [v if v != -100.0 else -100 for v in features["step_labels"]] == theirs["labels"]
    native = tokenize_rows(rendered["train"], tok, fmt, 512, "train")
    assert native["input_ids"] != ours["input_ids"]  # one-go text: another prompt, BOS or separator tokens


@pytest.fixture(scope="module")
def policies(tokenizers, subword_policy, tmp_path_factory):
    folder = tmp_path_factory.mktemp("char_policy")
    build_tiny_model(TINY, tokenizers["char"], seed=0).save_pretrained(folder)
    tokenizers["char"].save_pretrained(folder)
    return {"char": folder, "bpe": subword_policy}


@pytest.mark.parametrize("case", CASES)
def test_our_trl_layout_prm_exported_reads_in_trl_as_in_our_runtime(policies, case, tmp_path, capsys):
    fmt = FORMATS[case]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS[case]))
    original = prm.main(["--config", str(ROOT / "recipes/arith-tiny/prm_linear.yaml"), "--model_name_or_path",
                         str(policies[case]), "--dataset", str(tmp_path / "train.jsonl"), "--step_format", fmt.name,
                         "--layout", "trl", "--max_length", "512", "--output_dir", str(tmp_path / "prm"),
                         *PRM_STEPS])  # fmt: skip
    assert AutoConfig.from_pretrained(original).reward_model["layout"] == "trl"
    export = export_prm.main(["--checkpoint", str(original), "--output_dir", str(tmp_path / "two")])
    assert "(layout trl)" in capsys.readouterr().out
    config = json.loads((export / "config.json").read_text())
    assert config["step_separator"] == fmt.step_separator and config[REWARD_MODEL_KEY]["layout"] == "trl"
    ours = runtime_scores(original, case, ROWS[case])
    model, tok = AutoModelForTokenClassification.from_pretrained(export), AutoTokenizer.from_pretrained(export)
    theirs = [trl_reading(model, tok, row, config["step_separator"]) for row in ROWS[case]]
    assert max_difference(ours, theirs) <= 1e-5
    assert max_difference(ours, runtime_scores(export, case, ROWS[case])) <= 1e-5  # the copy, as ours
    assert max_difference(ours, runtime_scores(export, case, ROWS[case], verifier_kind="trl")) <= 1e-5
    assert "layout `trl`" in (export / "README.md").read_text()


@pytest.fixture
def native_bpe_prm(tokenizers, tmp_path):
    """A random one-logit PRM of this project in the native layout, SmolLM2's tokenizer, math format."""
    model = tiny_token_classifier(tokenizers["bpe"], 1)
    setattr(model.config, STEP_FORMAT_KEY, MATH.to_dict())
    setattr(model.config, REWARD_MODEL_KEY, {"kind": "prm", "head": "linear", "label_kind": "hard"})
    model.save_pretrained(tmp_path / "native")
    tokenizers["bpe"].save_pretrained(tmp_path / "native")
    return tmp_path / "native"


def test_a_native_layout_export_says_how_far_trl_reads_it_and_is_not_read_as_trl(native_bpe_prm, tmp_path, capsys):
    export = export_prm.main(["--checkpoint", str(native_bpe_prm), "--output_dir", str(tmp_path / "two")])
    printed = capsys.readouterr().out
    assert "(layout native)" in printed and "note: read the TRL way (PRMTrainer.tokenize_row)" in printed
    assert "step_separator" not in json.loads((export / "config.json").read_text())  # no TRL reading declared
    ours = runtime_scores(native_bpe_prm, "bpe", ROWS["bpe"])
    assert max_difference(ours, runtime_scores(export, "bpe", ROWS["bpe"])) <= 1e-5
    with pytest.raises(UserError, match=r"reads a solution as one text \(layout native\), not TRL's"):
        runtime_scores(export, "bpe", ROWS["bpe"], verifier_kind="trl")
