import pytest

from search.step_format import ARITH
from training.tiny import TinyModelConfig, build_char_tokenizer, build_tiny_model

TINY = TinyModelConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


@pytest.fixture(scope="session")
def tokenizer():
    return build_char_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    return build_tiny_model(TINY, tokenizer, seed=0).eval()


@pytest.fixture
def fmt():
    return ARITH
