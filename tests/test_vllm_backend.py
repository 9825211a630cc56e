"""The vLLM backend against a stub server on 127.0.0.1 (tests/vllm_stub.py): the request mapping, stop
reasons, cached tokens, spreading over servers, retries and one-line errors, and the runtime and a data build
(killed by a server failure, then resumed) through it. Client timeouts keep every test bounded."""

import json
import re
import subprocess
import sys

import pytest

from core.config import UserError
from data import build_prm_data
from data.shards import read_all
from search import cli as search_cli
from search import runs
from search.generation.backends import load_generator
from search.generation.generator import SamplingParams
from search.generation.hf_generator import HFGenerator, row_seed
from search.generation.settings import BackendConfig
from search.generation.vllm_client import ServerError, ServerPool
from search.generation.vllm_generator import VLLMGenerator, affinity_key, to_generation
from search.prompting import stored_format
from tests.conftest import ROOT, TINY_PRM_DATA_ARGS
from tests.test_faults import one_line_error
from tests.vllm_stub import StubServer, answer, policy_completions

PROMPTS = ["Q:1+2\n", "Q:((2+7)*3)-5\n", "Q:(3*3)+1\n3*3=9\n"]
FAST = {"request_timeout": 10.0, "max_retries": 2}  # and a back-off of 10 ms


def connect(path, fmt, *urls: str, **keys) -> VLLMGenerator:
    backend = BackendConfig("vllm", ",".join(urls), **{**FAST, **keys})
    return VLLMGenerator.connect(path, fmt, backend, backoff=0.01)


def echo(body: dict) -> tuple[int, dict]:
    """A scripted completion: one token per character of "7\\n", stopped at the separator when asked."""
    stop = body["stop"][0] if body["stop"] else None
    return 200, answer("7\n", "stop", stop, len(body["prompt"]), 2, cached=3)


@pytest.fixture(scope="module")
def checkpoint(tiny_model, tokenizer, tmp_path_factory):
    """The untrained tiny model saved as a checkpoint (its tokenizer and config are what the backend reads)."""
    path = tmp_path_factory.mktemp("tiny") / "policy"
    tiny_model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture
def stub(tokenizer, checkpoint):
    with StubServer(tokenizer, echo, model=checkpoint) as server:
        yield server


def test_requests_carry_token_ids_a_seed_per_sample_the_stop_and_the_banned_tokens(stub, checkpoint, tokenizer, fmt):
    gens = connect(checkpoint, fmt, stub.url).generate(
        PROMPTS, SamplingParams(0.7, 0.9, 12, "step"), n=2, seeds=[5, 6, 7]
    )
    assert [[g.text for g in row] for row in gens] == [["7\n", "7\n"]] * 3
    by_seed = {body["seed"]: body for body in stub.requests}
    assert len(stub.requests) == 6 and len(by_seed) == 6  # one request per sample, each with its own seed
    eos, banned = tokenizer.eos_token_id, sorted(set(tokenizer.all_special_ids) - {tokenizer.eos_token_id})
    for prompt, seed in zip(PROMPTS, [5, 6, 7], strict=True):
        for j in range(2):
            body = by_seed[row_seed(seed, j)]
            assert body["prompt"] == fmt.tokenize(tokenizer, prompt)  # token ids, as the HF backend reads them
            assert body["model"] == checkpoint and body["n"] == 1 and body["max_tokens"] == 12
            assert (body["temperature"], body["top_p"], body["top_k"], body["repetition_penalty"]) == (0.7, 0.9, -1, 1)
            assert body["stop"] == ["\n"] and body["include_stop_str_in_output"]
            assert body["stop_token_ids"] == [eos]
            assert body["logit_bias"] == {str(i): -100.0 for i in banned} and banned
    whole = connect(checkpoint, fmt, stub.url).generate(PROMPTS[:1], SamplingParams(0.0, 0.5, 30))
    assert stub.requests[-1]["stop"] == [] and stub.requests[-1]["top_p"] == 1.0  # greedy: top-p off
    assert whole[0][0].stop_reason == "eos"  # "7\n" in solution mode is no step


@pytest.mark.parametrize(
    ("text", "finish", "stop", "separator", "expected"),
    [
        ("2+3=5\n", "stop", "\n", "\n", ("2+3=5\n", "step")),
        ("2+3=5\nA:5", "length", None, "\n", ("2+3=5\n", "step")),  # the separator wins, as in the HF backend
        ("A:5", "stop", None, "\n", ("A:5", "eos")),  # the tokenizer's EOS
        ("A:5", "stop", 2, "\n", ("A:5", "eos")),  # a generation-config EOS (a stop token id)
        ("2+3=", "length", None, "\n", ("2+3=", "length")),
        ("2+3=5\nA:5\n", "stop", None, None, ("2+3=5\nA:5\n", "eos")),  # solution mode: separators go on
    ],
)
def test_stop_reasons_map_to_step_eos_and_length(text, finish, stop, separator, expected):
    gen = to_generation(answer(text, finish, stop, 9, 6, cached=4), 9, separator)
    assert (gen.text, gen.stop_reason) == expected
    assert (gen.prompt_tokens, gen.generated_tokens, gen.cached_tokens) == (9, 6, 4)


def test_malformed_answers_and_aborts_are_server_errors():
    with pytest.raises(ServerError, match="not a completion answer"):
        to_generation({"choices": []}, 3, None)
    with pytest.raises(ServerError, match="finish_reason 'abort'"):
        to_generation(answer("x", "abort", None, 3, 1), 3, None)


def test_cached_tokens_reach_the_accounting_and_the_context_bounds_each_request(stub, checkpoint, fmt):
    generator = connect(checkpoint, fmt, stub.url)
    [[gen]] = generator.generate(PROMPTS[:1], SamplingParams(max_new_tokens=100))
    assert gen.cached_tokens == 3 and gen.prompt_tokens == len(stub.requests[0]["prompt"])
    stub.max_model_len = 10
    generator = connect(checkpoint, fmt, stub.url)
    assert generator.context_length == 10
    generator.generate(["Q:1+2\n"], SamplingParams(max_new_tokens=100))
    assert stub.requests[-1]["max_tokens"] == 10 - len(stub.requests[-1]["prompt"])  # cut at the context
    sent = len(stub.requests)
    full = generator.generate(["Q:" + "1+" * 10 + "2\n"], SamplingParams(max_new_tokens=100), n=2)
    assert [(g.text, g.generated_tokens, g.stop_reason) for g in full[0]] == [("", 0, "length")] * 2
    assert len(stub.requests) == sent  # no request for a prompt that fills the context


def test_questions_spread_over_servers_and_stay_on_theirs(tokenizer, checkpoint, fmt):
    with StubServer(tokenizer, echo, model=checkpoint) as a, StubServer(tokenizer, echo, model=checkpoint) as b:
        generator = connect(checkpoint, fmt, a.url, b.url)
        questions = [f"Q:{x}+{y}\n" for x in range(1, 10) for y in range(1, 4)]
        generator.generate(questions, SamplingParams(max_new_tokens=4, stop_at="step"), n=2)
        generator.generate([q + "1+1=2\n" for q in questions], SamplingParams(max_new_tokens=4, stop_at="step"))
        assert a.requests and b.requests  # both used
        served = [{tokenizer.decode(r["prompt"], skip_special_tokens=True).split("\n")[0] for r in s.requests}
                  for s in (a, b)]  # fmt: skip
        assert not served[0] & served[1]  # every request of a question (its later steps too) went to one server
    assert affinity_key(fmt, "Q:1+2\n3=3\nA:3\n") == "Q:1+2\n"


def test_failed_requests_are_retried_on_the_next_server_then_reported_in_one_line(tokenizer, checkpoint, fmt):
    with StubServer(tokenizer, echo, model=checkpoint) as a, StubServer(tokenizer, echo, model=checkpoint) as b:
        generator = connect(checkpoint, fmt, a.url, b.url)
        a.fail_next(1)
        b.fail_next(1)
        assert generator.generate(PROMPTS[:1], SamplingParams(max_new_tokens=4))[0][0].text == "7\n"
        assert len(a.requests) + len(b.requests) == 3 and a.requests and b.requests  # home, next, home again
        a.close()  # down: its questions go to the other server
        assert all(row[0].text == "7\n" for row in generator.generate(PROMPTS, SamplingParams(max_new_tokens=4)))
    with StubServer(tokenizer, echo, model=checkpoint) as c:
        generator = connect(checkpoint, fmt, c.url)
        c.fail_next(3)
        with pytest.raises(ServerError, match=f"failed 3 times; last: {c.url}/v1/completions answered 503: overloaded"):
            generator.generate(PROMPTS[:1], SamplingParams(max_new_tokens=4))
        c.fail_next(1, 400, "This model's maximum context length is 256 tokens. However, you requested 300 tokens.")
        with pytest.raises(ServerError, match="answered 400: This model's maximum context length is 256") as err:
            generator.generate(PROMPTS[:1], SamplingParams(max_new_tokens=4))
        assert len(c.requests) == 4 and "\n" not in str(err.value)  # a 400 is never retried: it cannot be cured


def test_a_server_that_is_down_or_serves_another_model_is_a_one_line_error(tokenizer, checkpoint, fmt, capsys):
    with StubServer(tokenizer, echo, model="other-model") as other:
        with pytest.raises(ServerError, match=f"no server serves {checkpoint} .*{other.url}: other-model"):
            connect(checkpoint, fmt, other.url)
        down = other.url
    with pytest.raises(ServerError, match="ConnectionRefusedError"):
        connect(checkpoint, fmt, down, max_retries=0)
    argv = ["solve", "--question", "1+2", "--verifier", "none", "--strategy", "best_of_n:select=majority",
            "--policy", checkpoint, "--step_format", "arith", "--backend", "vllm", "--server_urls", down,
            "--max_retries", "0"]  # fmt: skip
    assert "ConnectionRefusedError" in one_line_error(capsys, search_cli.main, argv)


def test_a_server_with_another_tokenizer_is_refused(checkpoint, fmt, tokenizer):
    class Shifted:
        def __call__(self, text, add_special_tokens=True):
            return {"input_ids": [i + 1 for i in tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]]}

    with StubServer(Shifted(), echo, model=checkpoint) as server:
        with pytest.raises(ServerError, match="another tokenizer"):
            connect(checkpoint, fmt, server.url)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--backend", "vllm"], "backend vllm needs server_urls"),
        (["--backend", "sglang"], "backend must be one of hf, vllm"),
        (["--backend", "vllm", "--server_urls", "127.0.0.1:8000"], "is not an http(s)://host[:port] URL"),
        (["--backend", "vllm", "--server_urls", "http://127.0.0.1:1", "--concurrency", "0"], "concurrency >= 1"),
    ],
)
def test_backend_keys_are_checked_before_any_model_loads(flags, message, tmp_path, capsys):
    argv = ["run", "--dataset", str(tmp_path / "q.jsonl"), "--output_dir", str(tmp_path / "out"), *flags]
    assert message in one_line_error(capsys, search_cli.main, argv)
    argv = ["--output_dir", str(tmp_path / "data"), *flags]
    assert message in one_line_error(capsys, build_prm_data.main, argv)
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()


def test_only_what_decides_the_samples_is_identity():
    assert not {"backend", "server_urls"} & set(build_prm_data.PRMDataConfig().settings())  # as before the keys
    vllm = build_prm_data.PRMDataConfig(backend="vllm", server_urls="http://127.0.0.1:8000", concurrency=8)
    assert vllm.settings()["backend"] == "vllm" and not {"server_urls", "concurrency"} & set(vllm.settings())
    run = runs.RunConfig(backend="vllm", server_urls="http://127.0.0.1:8000")
    assert runs.run_identity(run, "q.jsonl")["settings"]["backend"] == "vllm"


@pytest.fixture(scope="module")
def policy_stub(tiny_policy):
    """The stub answering with the trained tiny policy (as vLLM would serve it), named by its path."""
    fmt = stored_format(str(tiny_policy))
    generator = HFGenerator.from_pretrained(tiny_policy, fmt, batch_size=8, device="cpu")
    with StubServer(generator.tokenizer, policy_completions(generator), model=str(tiny_policy)) as server:
        yield server


def test_the_runtime_searches_through_the_server(tiny_policy, policy_stub, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"id": str(i), "question": q, "answer": a}) + "\n"
                                 for i, (q, a) in enumerate([("1+2", "3"), ("(4+5)-2", "7")])))  # fmt: skip
    base = ["--policy", str(tiny_policy), "--verifier", "none", "--dataset", str(questions), "--budgets", "4",
            "--strategies", "best_of_n:select=majority", "--temperature", "0"]  # fmt: skip
    out = {}
    for backend in ("hf", "vllm"):
        flags = ["--backend", "vllm", "--server_urls", policy_stub.url] if backend == "vllm" else []
        search_cli.main(["run", *base, *flags, "--output_dir", str(tmp_path / backend)])
        out[backend] = [json.loads(line) for line in (tmp_path / backend / "results.jsonl").read_text().splitlines()]
    assert [r["solution"] for r in out["vllm"]] == [r["solution"] for r in out["hf"]]  # greedy: the same answers
    assert [r["accounting"] for r in out["vllm"]] == [r["accounting"] for r in out["hf"]]  # FLOPs too
    settings = json.loads((tmp_path / "vllm" / "run.json").read_text())["settings"]
    assert settings["backend"] == "vllm" and "server_urls" not in settings


def test_a_data_build_killed_by_a_server_failure_resumes(tiny_policy, policy_stub, tmp_path):
    argv = [*TINY_PRM_DATA_ARGS, "--policy", str(tiny_policy), "--backend", "vllm", "--server_urls",
            policy_stub.url, "--max_retries", "1"]  # fmt: skip
    policy_stub.requests.clear()
    build_prm_data.main([*argv, "--output_dir", str(tmp_path / "whole")])
    complete = policy_stub.complete
    policy_stub.complete = failing_after(complete, len(policy_stub.requests) // 2)  # the engine dies midway
    try:
        command = [sys.executable, "-m", "data.build_prm_data", *argv, "--output_dir", str(tmp_path / "resumed")]
        killed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        policy_stub.complete = complete
    [error] = re.findall(r"error: .*", killed.stderr)  # one line (after a progress bar's)
    assert killed.returncode == 2 and error.startswith("error: vLLM request failed 2 times") and "engine dead" in error
    assert "Traceback" not in killed.stderr
    assert 0 < len(read_all(tmp_path / "resumed" / "shards")) < len(read_all(tmp_path / "whole" / "shards"))
    build_prm_data.main([*argv, "--output_dir", str(tmp_path / "resumed")])
    for split in ("train", "validation"):
        resumed, whole = (tmp_path / d / f"{split}.jsonl" for d in ("resumed", "whole"))
        assert resumed.read_text() == whole.read_text()


def failing_after(complete, count: int):
    """`complete` for the first `count` requests, then a 500 for every request."""
    calls = []

    def wrapped(body: dict):
        calls.append(body)
        return complete(body) if len(calls) <= count else (500, {"error": {"message": "engine dead"}})

    return wrapped


def test_load_generator_picks_the_backend(checkpoint, fmt, stub):
    assert isinstance(load_generator(checkpoint, fmt, BackendConfig(), device="cpu"), HFGenerator)
    assert isinstance(load_generator(checkpoint, fmt, BackendConfig("vllm", stub.url, **FAST)), VLLMGenerator)
    with pytest.raises(UserError):
        ServerPool(["http://127.0.0.1:1"], 1.0, 0, 1, 0.0).request(0, "/v1/models")
