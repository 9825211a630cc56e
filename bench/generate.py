"""Generated tokens/s: the batched HF backend against a one-sequence-at-a-time `generate` loop.

    python -m bench.generate --policy outputs/arith-tiny/policy

Both sample full solutions (temperature 1) for the same held-out prompts in the same run;
the machine is shared and noisy, so the ratio is the figure to read, not the absolute rates.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm

from bench.common import at_least_one, spread
from core.config import cli, parse_config
from core.outputs import OutputFileGuard, claim_output_file, write_atomic
from data.arith import ArithTask
from search.generation.generator import SamplingParams, check_sampling
from search.generation.hf_generator import HFGenerator


@dataclass
class BenchGenerateConfig(OutputFileGuard):
    policy: str = "outputs/arith-tiny/policy"  # the policy checkpoint: a local folder or a Hub id
    prompts: int = 128  # held-out prompts sampled
    batch_size: int = 64  # sequences per forward batch (speed only)
    max_new_tokens: int = 160  # the most tokens one whole solution may have (longer ones are cut off and counted)
    temperature: float = 1.0  # sampling temperature (0: greedy decoding)
    output_file: str = "outputs/bench/generate.json"

    def __post_init__(self) -> None:
        at_least_one(self, "prompts")
        check_sampling(self.temperature, 1.0, self.max_new_tokens, self.batch_size)


CONFIG_TYPES = (BenchGenerateConfig,)


def naive_loop(generator: HFGenerator, prompts: list[str], params: SamplingParams) -> int:
    """One `model.generate` call per prompt with HF's own sampling; returns generated tokens."""
    model, tok = generator.model, generator.tokenizer
    total = 0
    torch.manual_seed(0)
    for prompt in tqdm(prompts, desc="naive loop", unit="seq"):
        ids = tok(prompt, return_tensors="pt")["input_ids"].to(model.device)
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            temperature=params.temperature,
            top_p=params.top_p,
            max_new_tokens=params.max_new_tokens,
            eos_token_id=generator.eos_ids,
            pad_token_id=tok.pad_token_id,
        )
        total += out.shape[1] - ids.shape[1]
    return total


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    out = claim_output_file(cfg.output_file, "bench.generate", cfg.overwrite_output_file)
    task = ArithTask.load(cfg.policy)
    fmt, test = task.step_format, task.splits(0).test
    prompts = [fmt.prompt(q.text) for q in spread(test, cfg.prompts)]
    generator = HFGenerator.from_pretrained(cfg.policy, fmt, batch_size=cfg.batch_size, device="cpu")
    params = SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    generator.generate(prompts[:4], params)  # warm-up

    start = time.perf_counter()
    batched = generator.generate(prompts, params, seeds=range(len(prompts)))
    batched_s = time.perf_counter() - start
    batched_tokens = sum(g[0].generated_tokens for g in batched)

    start = time.perf_counter()
    naive_tokens = naive_loop(generator, prompts, params)
    naive_s = time.perf_counter() - start

    result = {
        "config": asdict(cfg),
        "threads": torch.get_num_threads(),
        "batched": {"tokens": batched_tokens, "seconds": batched_s, "tokens_per_s": batched_tokens / batched_s},
        "naive": {"tokens": naive_tokens, "seconds": naive_s, "tokens_per_s": naive_tokens / naive_s},
    }
    result["ratio"] = result["batched"]["tokens_per_s"] / result["naive"]["tokens_per_s"]
    write_atomic(out, json.dumps(result, indent=2))
    print(
        f"{len(prompts)} prompts, batch size {cfg.batch_size}, <= {cfg.max_new_tokens} new tokens, T={cfg.temperature}"
    )
    for name in ("batched", "naive"):
        r = result[name]
        print(f"{name:>8}: {r['tokens']:6d} tokens in {r['seconds']:6.1f}s = {r['tokens_per_s']:8.1f} tokens/s")
    print(f"   ratio: {result['ratio']:.1f}x (batched / naive)")
    return result


if __name__ == "__main__":
    main()
