"""Search runs on a vLLM server, with generated tokens/s and the cached-prefix share: the GPU check.

    python -m bench.vllm_check --run_recipe recipes/qwen2.5-math-1.5b/search_qwen_prm.yaml --limit 8   # on a GPU
    python -m bench.vllm_check --run_args "--policy outputs/arith-tiny/policy --verifier none \\
        --dataset outputs/arith-tiny/test_questions.jsonl" --strategies best_of_n:select=majority   # CPU smoke

recipes/qwen2.5-math-1.5b/vllm_gpu_check.sh runs the first line after creating `.venv-vllm` with the GPU
build and exporting MATH-500. For each strategy, in turn: `python -m search run` (`search.runs.run_config`,
the recipe plus `run_args`, `--backend vllm --server_urls URL --strategies S --budgets N --limit L`) into
OUT/<strategy>, emptied first (a resumed run would generate nothing); the server is the one at `server_urls`,
or one started here for the recipe's policy with `vllm_args` and stopped at the end. Printed and written
to OUT/check.{json,md}, per strategy: accuracy, wall-clock seconds of the run, seconds spent waiting for the
server (`VLLMGenerator.generate`), generated tokens per second of that, and the share of prompt tokens the
server's prefix cache served (`cached_prompt_tokens / prompt_tokens`, summed over the run's rows).
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from unittest import mock

from core.config import UserError, cli, parse_config
from core.jsonl import read_jsonl
from core.outputs import OutputGuard, claim_report_dir
from search.generation.vllm_generator import VLLMGenerator
from search.generation.vllm_server import VENV_PYTHON, running_server
from search.runs import RunConfig, run_config


@dataclass
class VLLMCheckConfig(OutputGuard):
    run_recipe: str | None = None  # a `python -m search run` recipe (its policy is served); None: run_args only
    run_args: str = ""  # more `python -m search run` flags, over the recipe's
    strategies: str = "best_of_n,beam:m=4"  # strategy specs, comma-separated, one run each
    budget: int = 16  # N
    limit: int = 8  # the first questions of the recipe's dataset
    server_urls: str | None = None  # vLLM servers already serving the policy (then none is started)
    vllm_args: str = "--gpu-memory-utilization 0.4 --max-model-len 4096"  # flags of the server started here
    vllm_python: str = str(VENV_PYTHON)  # the Python of vLLM's own virtualenv (make vllm-venv)
    startup_timeout: float = 1800.0  # seconds the server may take to load the model
    output_dir: str = "outputs/vllm_check"  # one search folder per strategy, check.json and check.md

    def __post_init__(self) -> None:
        if self.budget < 1 or self.limit < 1 or self.startup_timeout <= 0:
            raise ValueError("budget and limit must be >= 1, startup_timeout > 0")


CONFIG_TYPES = (VLLMCheckConfig,)


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    strategies = [s.strip() for s in cfg.strategies.split(",") if s.strip()]
    out = Path(cfg.output_dir)

    def run_argv(strategy: str, url: str) -> list[str]:
        recipe = ["--config", cfg.run_recipe] if cfg.run_recipe else []
        return [*recipe, *shlex.split(cfg.run_args), "--backend", "vllm", "--server_urls", url,
                "--strategies", strategy, "--budgets", str(cfg.budget), "--limit", str(cfg.limit),
                "--output_dir", str(out / folder_name(strategy))]  # fmt: skip

    # every run's settings checked before a server starts
    runs = [parse_config([RunConfig], run_argv(s, "http://127.0.0.1:1"), "python -m search run")[0] for s in strategies]
    claim_report_dir(out, "bench.vllm_check", cfg.overwrite_output_dir)
    if cfg.server_urls:
        server = nullcontext(cfg.server_urls)
    else:
        log = out / "server.log"
        extra = shlex.split(cfg.vllm_args)
        server = running_server(runs[0].policy, extra, log, cfg.startup_timeout, Path(cfg.vllm_python))
    record: dict[str, dict] = {}
    with server as url:
        for strategy in strategies:
            (run,) = parse_config([RunConfig], run_argv(strategy, url), "python -m search run")
            shutil.rmtree(run.output_dir, ignore_errors=True)
            record[strategy] = measure(run)
    result = {"config": asdict(cfg), "policy": runs[0].policy, "verifier": runs[0].verifier, "runs": record}
    (out / "check.json").write_text(json.dumps(result, indent=2))
    (out / "check.md").write_text(markdown(result))
    print((out / "check.md").read_text(), end="")
    return result


def folder_name(strategy: str) -> str:
    return strategy.replace(":", "_").replace("=", "")


def measure(run: RunConfig) -> dict:
    """Run one `search run` and sum what its rows spent."""
    with timed_requests() as waiting:
        start = time.perf_counter()
        folder = run_config(run)
        wall = time.perf_counter() - start
    rows = list(read_jsonl(folder / "results.jsonl"))
    if not rows:
        raise UserError(f"{run.strategies} at budget {run.budgets} wrote no rows (see {folder / 'summary.md'})")
    spent = {key: sum(r["accounting"].get(key, 0) for r in rows)
             for key in ("samples", "prompt_tokens", "cached_prompt_tokens", "generated_tokens")}  # fmt: skip
    return {
        "questions": len(rows),
        "accuracy": sum(r["correct"] for r in rows) / len(rows),
        **spent,
        "seconds": wall,
        "generation_seconds": waiting["seconds"],
        "generated_tokens_per_s": spent["generated_tokens"] / waiting["seconds"] if waiting["seconds"] else 0.0,
        "cache_hit_share": spent["cached_prompt_tokens"] / spent["prompt_tokens"] if spent["prompt_tokens"] else 0.0,
    }


@contextmanager
def timed_requests() -> Iterator[dict]:
    """Seconds spent in `VLLMGenerator.generate` (waiting for the servers) while the block runs."""
    spent = {"seconds": 0.0}
    generate = VLLMGenerator.generate

    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return generate(self, *args, **kwargs)
        finally:
            spent["seconds"] += time.perf_counter() - start

    with mock.patch.object(VLLMGenerator, "generate", timed):
        yield spent


def markdown(result: dict) -> str:
    cfg = result["config"]
    lines = [
        f"{result['policy']} on vLLM ({cfg['server_urls'] or cfg['vllm_args']}), verifier {result['verifier']}, "
        f"budget {cfg['budget']}, the first {cfg['limit']} questions",
        "",
        "| strategy | questions | accuracy | wall s | generation s | generated tokens | generated tokens/s "
        "| prompt tokens | cached | cached-prefix share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for strategy, r in result["runs"].items():
        lines.append(
            f"| {strategy} | {r['questions']} | {r['accuracy']:.3f} | {r['seconds']:.1f} "
            f"| {r['generation_seconds']:.1f} | {r['generated_tokens']} | {r['generated_tokens_per_s']:.0f} "
            f"| {r['prompt_tokens']} | {r['cached_prompt_tokens']} | {r['cache_hit_share']:.3f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
