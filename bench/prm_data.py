"""Rollouts/s of MC step labelling: batched rollouts against one `generate` call per rollout.

    python -m bench.prm_data --policy outputs/arith-tiny/policy

The work is that of `make build-prm-data`: sample solutions, then K rollouts from every step
prefix. Both sides do the same rollouts in the same run; read the ratio.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import torch

from bench.common import at_least_one, spread
from bench.generate import naive_loop
from core.config import cli, parse_config
from core.outputs import OutputFileGuard, claim_output_file, write_atomic
from data.arith import ArithTask, check_solution
from data.mc_labels import MCLabeler
from search.generation.generator import SamplingParams
from search.generation.hf_generator import HFGenerator


@dataclass
class BenchPRMDataConfig(OutputFileGuard):
    policy: str = "outputs/arith-tiny/policy"  # the policy checkpoint: a local folder or a Hub id
    questions: int = 16  # held-out questions
    samples_per_question: int = 2  # solutions per question
    rollouts_per_step: int = 4  # rollouts per step prefix (K)
    batch_size: int = 256  # sequences per forward batch (speed only)
    max_new_tokens: int = 160  # the most tokens one whole solution may have (longer ones are cut off and counted)
    seed: int = 0  # the seed every sample derives from
    output_file: str = "outputs/bench/prm_data.json"

    def __post_init__(self) -> None:
        at_least_one(self, "questions", "samples_per_question", "rollouts_per_step", "batch_size", "max_new_tokens")


CONFIG_TYPES = (BenchPRMDataConfig,)


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    out = claim_output_file(cfg.output_file, "bench.prm_data", cfg.overwrite_output_file)
    task = ArithTask.load(cfg.policy)
    fmt, test = task.step_format, task.splits(0).test
    questions = spread(test, cfg.questions)
    generator = HFGenerator.from_pretrained(cfg.policy, fmt, batch_size=cfg.batch_size, device="cpu")
    params = SamplingParams(temperature=1.0, max_new_tokens=cfg.max_new_tokens)

    solutions = generator.generate([fmt.prompt(q.text) for q in questions], params, cfg.samples_per_question)
    probes = []
    for qi, (q, gens) in enumerate(zip(questions, solutions, strict=True)):
        for gen in gens:
            steps = check_solution(q, gen.text, fmt).steps
            probes += [(qi, q.text, steps[: i + 1]) for i in range(len(steps) - 1)]

    def grade(qi: int, text: str) -> bool:
        return check_solution(questions[qi], text, fmt).correct

    labeler = MCLabeler(generator, fmt, grade, cfg.rollouts_per_step, params, cfg.seed)
    rollouts = len(probes) * cfg.rollouts_per_step
    start = time.perf_counter()
    labeler.values(probes)
    batched_s = time.perf_counter() - start

    prompts = [fmt.render(text, prefix) for _, text, prefix in probes for _ in range(cfg.rollouts_per_step)]
    start = time.perf_counter()
    naive_loop(generator, prompts, params)
    naive_s = time.perf_counter() - start

    result = {
        "config": asdict(cfg),
        "threads": torch.get_num_threads(),
        "prefixes": len(probes),
        "rollouts": rollouts,
        "batched": {"seconds": batched_s, "rollouts_per_s": rollouts / batched_s},
        "naive": {"seconds": naive_s, "rollouts_per_s": rollouts / naive_s},
    }
    result["ratio"] = result["batched"]["rollouts_per_s"] / result["naive"]["rollouts_per_s"]
    write_atomic(out, json.dumps(result, indent=2))
    print(f"{len(questions)} questions, {len(probes)} step prefixes, K={cfg.rollouts_per_step}: {rollouts} rollouts")
    for name in ("batched", "naive"):
        r = result[name]
        print(f"{name:>8}: {r['seconds']:6.1f}s = {r['rollouts_per_s']:7.1f} rollouts/s")
    print(f"   ratio: {result['ratio']:.1f}x (batched / naive)")
    return result


if __name__ == "__main__":
    main()
