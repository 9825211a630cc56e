"""Beam search on the vLLM backend against the HF backend: generated tokens/s and prefix-cache hits.

    python -m bench.vllm --policy outputs/arith-tiny/policy --verifier outputs/arith-tiny/prm   # make bench-vllm
    python -m bench.vllm --verifier oracle --server_urls http://127.0.0.1:8000   # a server already running

In one run, on the same held-out arith questions: beam search (width M, budget N) with the policy in
this process (the HF backend, reusing the live beams' prefixes, `search.generation.prefix_cache`), then with the
policy on a vLLM server (started here from `.venv-vllm` with `vllm_args`, and stopped at the end,
unless `server_urls` names one; its automatic prefix cache serves what the beams share). The verifier
runs in this process for both. Per backend: wall-clock seconds, seconds spent in the generator,
generated tokens per second of it, and the share of prompt tokens read from a prefix cache
(`cached_prompt_tokens / prompt_tokens`); then vLLM / HF. The HF backend runs first, before the
server starts, so that the two do not share the cores. The machine is shared and noisy: read the
ratio, not the absolute rates. Each backend is warmed up on other questions first (the same ones
would fill the server's prefix cache with the timed run's prompts).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from bench.common import spread
from core.config import UserError, cli, parse_config
from core.outputs import OutputGuard, claim_report_dir
from data.arith import ArithTask
from data.arith_oracle import ArithOracleVerifier
from search.generation.backends import load_generator
from search.generation.settings import BackendConfig
from search.generation.vllm_server import VENV_PYTHON, running_server
from search.grading import answers_match
from search.runtime import Runtime
from search.strategies.accounting import Accounting
from search.strategies.strategy import SearchResult, SearchSettings, StrategySpec
from search.strategies.tree_search import tree_search


@dataclass
class BenchVLLMConfig(OutputGuard):
    policy: str = "outputs/arith-tiny/policy"  # the policy checkpoint: a local folder or a Hub id
    verifier: str = "outputs/arith-tiny/prm"  # the PRM, or "oracle": the arith ground-truth verifier
    questions: int = 32  # held-out questions, spread over the levels
    budget: int = 16  # N
    beam_width: int = 4  # M
    warmup_questions: int = 2  # other held-out questions each backend runs first, untimed
    temperature: float = 1.0  # sampling temperature (0: greedy decoding)
    max_step_tokens: int = 32  # the most tokens one step may have, in step-level searches
    max_new_tokens: int = 160  # the most tokens one whole solution may have (longer ones are cut off and counted)
    batch_size: int = 64  # sequences per forward batch (speed only)
    seed: int = 0  # the seed every sample derives from
    threads: int = 1  # torch threads of this process (0: torch's default); a tiny model runs best on one
    vllm_args: str = "--dtype float32 --block-size 32 --gpu-memory-utilization 0.2"  # flags of the vLLM server
    vllm_python: str = str(VENV_PYTHON)  # the Python of vLLM's own virtualenv (make vllm-venv)
    server_urls: str | None = None  # a vLLM server already serving the policy (then none is started)
    concurrency: int = 64  # vLLM requests in flight (the server batches them)
    output_dir: str = "outputs/bench/vllm"  # bench.json, bench.md and the server's log

    def __post_init__(self) -> None:
        if min(self.questions, self.budget, self.beam_width, self.concurrency) < 1 or self.warmup_questions < 0:
            raise ValueError("questions, budget, beam_width and concurrency must be >= 1, warmup_questions >= 0")


CONFIG_TYPES = (BenchVLLMConfig,)
BACKENDS = ("hf", "vllm")


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    spec = StrategySpec.parse(f"beam:m={cfg.beam_width}")
    try:
        spec.width(cfg.budget)
    except ValueError as err:
        raise UserError(str(err)) from None
    task = ArithTask.load(cfg.policy)
    out = claim_report_dir(cfg.output_dir, "bench.vllm", cfg.overwrite_output_dir)
    held_out = task.splits(0).test
    picked = spread(held_out, cfg.questions)
    chosen = {q.text for q in picked}
    warmup = [q.text for q in held_out if q.text not in chosen][: cfg.warmup_questions]
    oracle = cfg.verifier == "oracle"
    hf = Runtime.load(cfg.policy, None if oracle else cfg.verifier, batch_size=cfg.batch_size, device="cpu")
    verifier = ArithOracleVerifier(held_out, hf.format) if oracle else hf.verifier
    assert verifier is not None
    settings = SearchSettings(cfg.temperature, 1.0, cfg.max_step_tokens, cfg.max_new_tokens,
                              aggregation=verifier.aggregation)  # fmt: skip
    record: dict[str, dict] = {}
    params = Runtime(hf.generator, hf.format, verifier).parameter_counts(spec)

    def bench(runtime: Runtime) -> dict:
        if warmup:
            tree_search(spec, warmup, runtime.generator, verifier, runtime.format, settings, cfg.beam_width, cfg.seed)
        with timed_generate(runtime.generator) as spent:
            start = time.perf_counter()
            results = tree_search(spec, [q.text for q in picked], runtime.generator, verifier, runtime.format,
                                  settings, cfg.budget, cfg.seed)  # fmt: skip
            wall = time.perf_counter() - start
        return measures(results, [q.answer for q in picked], wall, spent["seconds"], params)

    fmt = hf.format
    record["hf"] = bench(Runtime(hf.generator, fmt, verifier))
    del hf  # the policy's weights in this process are not needed any more
    server = (
        nullcontext(cfg.server_urls)
        if cfg.server_urls
        else running_server(cfg.policy, shlex.split(cfg.vllm_args), out / "server.log", python=Path(cfg.vllm_python))
    )
    with server as url:
        generator = load_generator(cfg.policy, fmt, BackendConfig("vllm", url, concurrency=cfg.concurrency))
        record["vllm"] = bench(Runtime(generator, fmt, verifier))
    ratio = {key: record["vllm"][key] / record["hf"][key] if record["hf"][key] else None
             for key in ("seconds", "generation_seconds", "generated_tokens_per_s", "cache_hit_share")}  # fmt: skip
    result = {"config": asdict(cfg), "threads": torch.get_num_threads(), **record, "vllm_vs_hf": ratio}
    (out / "bench.json").write_text(json.dumps(result, indent=2))
    (out / "bench.md").write_text(markdown(result, cfg))
    print((out / "bench.md").read_text(), end="")
    return result


@contextmanager
def timed_generate(generator) -> Iterator[dict]:
    """Seconds spent in `generator.generate` while the block runs (the instance's method is wrapped, so
    whatever checks the generator's type still sees it)."""
    spent = {"seconds": 0.0}
    inner = generator.generate

    def generate(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent["seconds"] += time.perf_counter() - start

    generator.generate = generate
    try:
        yield spent
    finally:
        del generator.generate


def measures(results: list[SearchResult], golds: list[str], wall: float, generating: float, params) -> dict:
    """Accuracy, the summed accounting, the times and the two figures the bench is about."""
    spent = sum((r.accounting for r in results), Accounting())
    return {
        "accuracy": sum(answers_match(r.answer, g) for r, g in zip(results, golds, strict=True)) / len(golds),
        **spent.to_dict(*params),
        "seconds": wall,
        "generation_seconds": generating,
        "generated_tokens_per_s": spent.generated_tokens / generating if generating else 0.0,
        "cache_hit_share": spent.cached_prompt_tokens / spent.prompt_tokens if spent.prompt_tokens else 0.0,
    }


def markdown(result: dict, cfg: BenchVLLMConfig) -> str:
    """The table `main` prints and writes to bench.md."""
    verifier = "the arith ground-truth verifier" if cfg.verifier == "oracle" else f"the PRM {cfg.verifier}"
    lines = [
        f"Beam search M={cfg.beam_width}, N={cfg.budget}, on {cfg.questions} held-out arith questions of {cfg.policy}, "
        f"scored by {verifier}; temperature {cfg.temperature}, seed {cfg.seed}; {result['threads']} torch thread(s) "
        f"here; vLLM server flags: {cfg.server_urls or cfg.vllm_args}",
        "",
        "| backend | wall s | generation s | generated tokens | generated tokens/s | prompt tokens | cached "
        "| cache hit share | accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in BACKENDS:
        r = result[name]
        lines.append(
            f"| {name} | {r['seconds']:.1f} | {r['generation_seconds']:.1f} | {r['generated_tokens']} "
            f"| {r['generated_tokens_per_s']:.0f} | {r['prompt_tokens']} | {r['cached_prompt_tokens']} "
            f"| {r['cache_hit_share']:.3f} | {r['accuracy']:.2f} |"
        )
    ratio = result["vllm_vs_hf"]
    shown = {k: "n/a" if v is None else f"{v:.2f}x" for k, v in ratio.items()}
    lines += [
        "",
        f"vLLM / HF: generated tokens/s {shown['generated_tokens_per_s']}, cache hit share "
        f"{shown['cache_hit_share']}, wall-clock {shown['seconds']}, generation time {shown['generation_seconds']}",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
