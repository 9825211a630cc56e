from dataclasses import replace

import pytest
import torch

from core.config import UserError
from search.generation.generator import Generation, SamplingParams
from search.generation.hf_generator import HFGenerator, StopRecorder
from search.step_format import StepFormat

PROMPTS = ["Q:1+2\n", "Q:((2+7)*3)-5\n", "Q:(3*3)+1\n3*3=9\n"]


@pytest.fixture
def generator(tiny_model, tokenizer, fmt):
    return HFGenerator(tiny_model, tokenizer, fmt, batch_size=4)


def test_same_seed_same_samples_and_other_seed_differs(generator):
    params = SamplingParams(temperature=1.0, max_new_tokens=24)
    a = generator.generate(PROMPTS, params, n=3, seeds=[1, 2, 3])
    assert a == generator.generate(PROMPTS, params, n=3, seeds=[1, 2, 3])
    assert a != generator.generate(PROMPTS, params, n=3, seeds=[4, 5, 6])
    assert len({g.text for g in a[1]}) > 1  # the n samples of one prompt differ


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_results_do_not_depend_on_batch_layout(generator, tiny_model, tokenizer, fmt, temperature):
    params = SamplingParams(temperature=temperature, top_p=0.9, max_new_tokens=24)
    batched = generator.generate(PROMPTS, params, n=2, seeds=[11, 12, 13])
    one_by_one = HFGenerator(tiny_model, tokenizer, fmt, batch_size=1)
    reordered = one_by_one.generate(PROMPTS[::-1], params, n=2, seeds=[13, 12, 11])
    assert reordered[::-1] == batched


def test_greedy_equals_tiny_top_p(generator):
    greedy = generator.generate(PROMPTS, SamplingParams(temperature=0.0, max_new_tokens=16))
    nucleus = generator.generate(PROMPTS, SamplingParams(temperature=1.0, top_p=1e-6, max_new_tokens=16))
    assert greedy == nucleus


def test_stop_at_step_ends_at_the_separator(generator, tokenizer):
    gens = generator.generate(PROMPTS, SamplingParams(max_new_tokens=60, stop_at="step"), n=8, seeds=[0, 1, 2])
    reasons = {g.stop_reason for row in gens for g in row}
    assert "step" in reasons  # a random model still emits newlines within 60 characters
    for prompt, row in zip(PROMPTS, gens, strict=True):
        for g in row:
            assert g.prompt_tokens == len(tokenizer(prompt)["input_ids"])
            assert 1 <= g.generated_tokens <= 60
            if g.stop_reason == "step":
                assert g.text.endswith("\n") and g.text.count("\n") == 1
                assert g.generated_tokens == len(g.text)  # one token per character
            elif g.stop_reason == "length":
                assert g.generated_tokens == 60 and "\n" not in g.text
            else:  # eos: its token is counted, not shown
                assert g.generated_tokens == len(g.text) + 1 and "\n" not in g.text


def test_stop_at_solution_runs_past_separators(generator):
    gens = generator.generate(PROMPTS, SamplingParams(max_new_tokens=60), n=8, seeds=[0, 1, 2])
    assert any("\n" in g.text for row in gens for g in row)  # went on after a separator
    assert all(g.stop_reason in ("eos", "length") for row in gens for g in row)


def test_special_tokens_are_never_sampled(generator, tokenizer):
    gens = generator.generate(PROMPTS, SamplingParams(temperature=5.0, max_new_tokens=40), n=4)
    for row in gens:
        for g in row:
            assert tokenizer.unk_token not in g.text and tokenizer.pad_token not in g.text


def test_a_row_stops_where_it_fills_the_models_context(generator, tiny_model, monkeypatch):
    monkeypatch.setattr(tiny_model.config, "max_position_embeddings", 20)
    params = SamplingParams(temperature=1.0, max_new_tokens=40)
    gens = generator.generate(PROMPTS, params, n=2, seeds=[1, 2, 3])
    assert all(g.prompt_tokens + g.generated_tokens <= 20 for row in gens for g in row)
    full = [g for row in gens for g in row if g.prompt_tokens + g.generated_tokens == 20]
    assert all(g.stop_reason in ("length", "eos") for g in full)
    assert len({g.prompt_tokens for g in full}) > 1  # each row at its own end, not the batch's longest prompt's


def test_multi_character_separator_spanning_tokens(tokenizer):
    # ids for "ab\n" then "\n": the separator "\n\n" is complete only at the 4th new token
    prompt = tokenizer("Q:\n\n")["input_ids"]  # a separator inside the prompt must not count
    new = tokenizer("ab\n\nc", add_special_tokens=False)["input_ids"]
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    rec = StopRecorder(len(prompt), 1, [tokenizer.eos_token_id], newline, "\n\n", tokenizer)
    done = [bool(rec(torch.tensor([prompt + new[:k]]), None)[0]) for k in range(1, len(new) + 1)]
    assert done == [False, False, False, True, True]
    assert int(rec.finished_at[0]) == len(prompt) + 4


def test_bad_sampling_params():
    for kwargs in ({"temperature": -1}, {"top_p": 0}, {"max_new_tokens": 0}, {"stop_at": "line"}):
        with pytest.raises(ValueError):
            SamplingParams(**kwargs)


def test_missing_checkpoint_is_a_clear_error(tmp_path, fmt):
    with pytest.raises(UserError, match="policy checkpoint not found"):
        HFGenerator.from_pretrained(tmp_path / "nope", StepFormat())


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_reusing_prefixes_gives_the_samples_of_full_passes(generator, temperature):
    params = SamplingParams(temperature=temperature, max_new_tokens=12, stop_at="step")

    def two_rounds() -> list[list[Generation]]:
        first = generator.generate(PROMPTS, params, n=2, seeds=[5, 6, 7])
        extended = [p + row[0].text for p, row in zip(PROMPTS, first, strict=True)] + ["Q:7*7\n"]  # one never seen
        return first + generator.generate(extended, params, n=2, seeds=[5, 6, 7, 8])

    full = two_rounds()
    with generator.reuse_prefixes() as cache:
        assert cache is generator.prefix_cache
        reused = two_rounds()
    assert generator.prefix_cache is None  # dropped at the end of the block
    assert [[replace(g, cached_tokens=0) for g in row] for row in reused] == full
    assert [[g.cached_tokens for g in row] for row in full] == [[0, 0]] * 7
    # the first round had nothing cached; an extended prompt read all but its last token from the cache,
    # the new one what it shares with the cached ones (BOS, "Q:")
    assert [[g.cached_tokens for g in row] for row in reused[:3]] == [[0, 0]] * 3
    assert all(g.cached_tokens == g.prompt_tokens - 1 for row in reused[3:6] for g in row)
    assert [g.cached_tokens for g in reused[6]] == [3, 3]
