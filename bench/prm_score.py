"""Solutions/s of PRM scoring: all steps in one forward pass against one pass per step prefix.

Three ways over the same solutions: the verifier (one pass per solution, batched), the same
one solution at a time, and one pass per step prefix (unbatched).

    python -m bench.prm_score --policy outputs/arith-tiny/policy --verifier outputs/arith-tiny/prm

The baseline is how public evaluators (ProcessBench, RLHFlow) score: a forward pass per
step prefix, reading the last token. Same solutions, same run; read the ratio.
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
from search.generation.generator import SamplingParams
from search.generation.hf_generator import HFGenerator
from search.verifiers.verifier import load_verifier


@dataclass
class BenchPRMScoreConfig(OutputFileGuard):
    policy: str = "outputs/arith-tiny/policy"  # the policy checkpoint: a local folder or a Hub id
    verifier: str = "outputs/arith-tiny/prm"  # the PRM (or ORM) checkpoint that scores steps
    solutions: int = 256  # solutions scored
    batch_size: int = 64  # sequences per forward batch (speed only)
    output_file: str = "outputs/bench/prm_score.json"

    def __post_init__(self) -> None:
        at_least_one(self, "solutions", "batch_size")


CONFIG_TYPES = (BenchPRMScoreConfig,)


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    out = claim_output_file(cfg.output_file, "bench.prm_score", cfg.overwrite_output_file)
    task = ArithTask.load(cfg.policy)
    fmt, test = task.step_format, task.splits(0).test
    generator = HFGenerator.from_pretrained(cfg.policy, fmt, batch_size=128, device="cpu")
    verifier = load_verifier(cfg.verifier, fmt, batch_size=cfg.batch_size, device="cpu")
    questions = spread(test, cfg.solutions)
    prompts = [fmt.prompt(q.text) for q in questions]
    gens = generator.generate(prompts, SamplingParams(temperature=1.0, max_new_tokens=160))
    solutions = [fmt.split_steps(g[0].text) or ["A:"] for g in gens]
    steps = sum(len(s) for s in solutions)

    start = time.perf_counter()
    verifier.score(prompts, solutions)
    one_pass_s = time.perf_counter() - start

    start = time.perf_counter()
    for prompt, sol in zip(prompts, solutions, strict=True):
        verifier.score([prompt], [sol])
    unbatched_s = time.perf_counter() - start

    start = time.perf_counter()
    with torch.inference_mode():
        for prompt, sol in tqdm(list(zip(prompts, solutions, strict=True)), desc="per prefix", unit="sol"):
            for i in range(len(sol)):
                ids = fmt.encode(verifier.tokenizer, prompt, sol[: i + 1]).ids
                torch.sigmoid(verifier.model(input_ids=torch.tensor([ids])).logits[0, -1, 0])
    per_prefix_s = time.perf_counter() - start

    result = {
        "config": asdict(cfg),
        "solutions": len(solutions),
        "steps": steps,
        "one_pass": {"seconds": one_pass_s, "solutions_per_s": len(solutions) / one_pass_s},
        "one_pass_unbatched": {"seconds": unbatched_s, "solutions_per_s": len(solutions) / unbatched_s},
        "per_prefix": {"seconds": per_prefix_s, "solutions_per_s": len(solutions) / per_prefix_s},
    }
    result["ratio"] = result["one_pass"]["solutions_per_s"] / result["per_prefix"]["solutions_per_s"]
    write_atomic(out, json.dumps(result, indent=2))
    print(f"{len(solutions)} solutions, {steps} steps")
    for name in ("one_pass", "one_pass_unbatched", "per_prefix"):
        r = result[name]
        print(f"{name:>18}: {r['seconds']:6.2f}s = {r['solutions_per_s']:8.1f} solutions/s")
    unbatched_ratio = result["one_pass_unbatched"]["solutions_per_s"] / result["per_prefix"]["solutions_per_s"]
    print(f"             ratio: {result['ratio']:.1f}x (one pass, batched / one pass per prefix)")
    print(f"                    {unbatched_ratio:.1f}x of it from scoring all steps at once (both unbatched)")
    return result


if __name__ == "__main__":
    main()
