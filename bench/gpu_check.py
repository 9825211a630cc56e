"""The device check: training, scoring and search throughput, MFU and memory on real-size configs.

    python3 -m bench.gpu_check --output_dir $OUT --budget_s 420  # on a lent GPU, from the repo root (docs/measured.md)
    python3 -m bench.gpu_check --tiny                     # tiny configs: the whole check in seconds (make gpu-check)

Models are built from Qwen2.5-1.5B- and 7B-like configs with random weights (no hub, nothing to carry), in
bf16, with a synthetic tokenizer of the same vocabulary size, and measured in one run, each in turn:
- policy SFT and PRM training steps through the project's trainers, collators and losses
  (`training.sft.make_sft_trainer`, `training.prm_trainer.make_prm_trainer`) on random token rows, the PRM's
  targets at a few step ends; activation checkpointing and AdamW, as the recipes train: tokens/s, MFU;
- PRM scoring (`search.verifiers.verifier.PRMVerifier`): one pass per solution, batched and one at a time, against one
  pass per step prefix (how public evaluators score, as bench/prm_score.py): solutions/s;
- HF-backend generation (`search.generation.hf_generator.HFGenerator`) at batch sizes 1 to 64: tokens/s;
- best-of-16 against beam search M=4 without and with prefix reuse (the runtime's strategies, as
  bench/search.py): wall-clock and its ratio to best-of-16.
MFU is achieved FLOP/s over the chip's dense bf16 peak (`PEAK_BF16_TFLOPS` by name, or `--peak_tflops`): 6 N
per token trained, 2 N per token read or generated, N all parameters (as `search.strategies.accounting`), activation
recomputation not counted. Peak memory is torch's allocated peak. Random weights: speed and memory, never
accuracy. One token in `Sizes.step_tokens` of the tokenizer ends a step, so a random model writes steps about
that long; it writes no answers, so searches run until their solutions reach `max_new_tokens`.

A measurement starts only within `--budget_s`; those left are skipped and the table says so. One that fails (out
of memory after halving the training batch down to 1, another transformers' API) is recorded with its
traceback and the rows it measured before, and the others run. The table (markdown and JSON) is rewritten after
every measurement, so a run killed at its time limit leaves what it measured. Needs torch, transformers,
accelerate and tokenizers, not datasets, deepspeed, math-verify or vLLM: what a lent GPU machine has.
"""

from __future__ import annotations

import copy
import gc
import importlib.metadata
import itertools
import json
import os
import platform
import random
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, processors
from transformers import (
    AutoModelForCausalLM,
    AutoModelForTokenClassification,
    PreTrainedTokenizerFast,
    PrinterCallback,
    Qwen2Config,
    TrainerCallback,
    TrainingArguments,
)

from core.config import UserError, cli, parse_config
from core.outputs import OutputGuard, claim_report_dir
from search.generation.generator import SamplingParams
from search.generation.hf_generator import HFGenerator
from search.step_format import ARITH
from search.strategies.accounting import Accounting
from search.strategies.best_of_n import sample_best_of_n
from search.strategies.strategy import SearchSettings, StrategySpec
from search.strategies.tree_search import tree_search
from search.verifiers.verifier import PRMVerifier
from training.prm_data import IGNORE
from training.prm_trainer import make_prm_trainer
from training.sft import IGNORE as NO_LOSS
from training.sft import make_sft_trainer
from training.tiny import BOS, CHARS, EOS, PAD, SPECIALS, UNK

FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
          "vocab_size", "tie_word_embeddings", "max_position_embeddings")  # fmt: skip
MODELS = {  # Qwen2.5(-Math) dimensions, in the order of FIELDS; tiny: --tiny's
    "qwen2.5-1.5b": (1536, 8960, 28, 12, 2, 151936, True, 4096),
    "qwen2.5-7b": (3584, 18944, 28, 28, 4, 152064, False, 4096),
    "tiny": (64, 128, 2, 4, 2, 512, True, 256),
}
PEAK_BF16_TFLOPS = {"H100 PCIe": 756, "H100 NVL": 835, "H200 NVL": 835, "H100": 989, "H200": 989, "B200": 2250,
                    "A100": 312, "L40S": 362, "L4": 121}  # fmt: skip  # dense (half the sparse figure); first match
CHECKPOINTING = next(f for f in ("activation_checkpointing", "gradient_checkpointing") if hasattr(TrainingArguments, f))
WARMUP_STEPS = 2  # training steps before the timed ones
BUDGET, BEAM_WIDTH = 16, 4  # the search's N and M


@dataclass
class GPUCheckConfig(OutputGuard):
    output_dir: str | None = None  # the output folder (default: $OUT if set, else outputs/gpu_check)
    budget_s: float = 420.0  # a measurement starts only within this many seconds; the rest are skipped
    tiny: bool = False  # tiny configs (on the CPU where there is no GPU): the whole check in seconds
    models: str = "qwen2.5-1.5b,qwen2.5-7b"  # configs to measure, in this order (see MODELS; not with --tiny)
    peak_tflops: float | None = None  # the chip's dense bf16 peak (default: by GPU name; unknown: no MFU)
    seed: int = 0  # the seed every sample derives from


CONFIG_TYPES = (GPUCheckConfig,)


@dataclass(frozen=True)
class Sizes:
    seq_len: int  # tokens per training row
    train_batch: int  # rows per training step (halved on out-of-memory)
    train_steps: int  # timed training steps
    solutions: int  # PRM scoring: solutions scored, of `steps` steps of `step_tokens` tokens
    steps: int
    step_tokens: int  # also: one token of the tokenizer in this many ends a step
    prompt_tokens: int  # of a question
    gen_tokens: int  # new tokens per row in the generation sweep
    batch_sizes: tuple[int, ...]  # of the generation sweep
    questions: int  # searched, with solutions of up to `max_new_tokens` tokens
    max_new_tokens: int  # the most tokens one whole solution may have (longer ones are cut off and counted)


REAL = Sizes(1024, 8, 4, 32, 8, 16, 128, 64, (1, 4, 16, 64), 2, 128)
TINY = Sizes(32, 2, 1, 4, 2, 8, 8, 8, (1, 4), 2, 16)


@dataclass
class Bench:
    """What one model's measurements share."""

    config: Qwen2Config
    tokenizer: PreTrainedTokenizerFast
    sizes: Sizes
    device: str  # cpu or cuda (default: cuda when there is one)
    peak_flops: float | None
    seed: int  # the seed every sample derives from
    rng: random.Random = field(init=False)
    letters: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.letters = [t for t in self.tokenizer.get_vocab() if len(t) == 1 and ord(t) > 0xA0]

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.device == "cuda" else torch.float32

    def build(self, auto_class):
        """A model with random weights, made on the device, with its own config (training changes it)."""
        torch.manual_seed(self.seed)
        with torch.device(self.device):
            return auto_class.from_config(copy.deepcopy(self.config), dtype=self.dtype)

    def text(self, tokens: int) -> str:
        """Random letters, one token each: no answer line, no step separator."""
        return "".join(self.rng.choices(self.letters, k=tokens))

    def row(self, measurement: str, setting: str, value: float, unit: str, flops: float, seconds: float, **extra):
        """One line of the table; MFU from `flops` done in `seconds`, the peak memory since `reset_peak`."""
        peak = torch.cuda.max_memory_allocated() / 2**30 if self.device == "cuda" else None
        mfu = flops / seconds / self.peak_flops if self.peak_flops else None
        return dict(measurement=measurement, setting=setting, value=value, unit=unit, mfu=mfu, peak_gib=peak,
                    seconds=seconds, **extra)  # fmt: skip


def synthetic_tokenizer(vocab_size: int, step_tokens: int) -> PreTrainedTokenizerFast:
    """The char tokenizer of `training.tiny` filled up to `vocab_size` with one-letter tokens and, one token in
    `step_tokens`, a letter + newline (a BPE merge): decoded ids encode back to the same ids, as the prefix
    caches of a search need."""
    letters = (chr(c) for c in range(0xA1, 0x110000) if chr(c).isprintable() and not chr(c).isspace())
    tokens = [*SPECIALS, *CHARS]
    tokens += itertools.islice(letters, vocab_size - vocab_size // step_tokens - len(tokens))
    merges = [(t, "\n") for t in tokens[len(SPECIALS) + len(CHARS) :][: vocab_size - len(tokens)]]
    vocab = {t: i for i, t in enumerate(tokens + [a + b for a, b in merges])}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=UNK))
    backend.decoder = decoders.Fuse()
    backend.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   unk_token=UNK, clean_up_tokenization_spaces=False)  # fmt: skip


class StepClock(TrainerCallback):
    """When each training step ended (the device's work included)."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.ends.append(time.perf_counter())


def train(b: Bench, name: str, auto_class, make_trainer: Callable, make_row: Callable[[list[int]], dict]) -> dict:
    """Timed steps of the trainer `make_trainer` builds, on random rows; the batch halved on out-of-memory."""
    batch, steps = b.sizes.train_batch, WARMUP_STEPS + b.sizes.train_steps
    while True:
        try:
            model, clock = b.build(auto_class), StepClock()
            ids = torch.randint(len(SPECIALS), len(b.tokenizer), (steps * batch, b.sizes.seq_len)).tolist()
            with tempfile.TemporaryDirectory() as tmp:
                args = TrainingArguments(
                    tmp, max_steps=steps, per_device_train_batch_size=batch, learning_rate=1e-5, seed=b.seed,
                    bf16=b.dtype == torch.bfloat16, save_strategy="no", logging_strategy="no", report_to="none",
                    disable_tqdm=True, dataloader_pin_memory=b.device == "cuda", **{CHECKPOINTING: True},
                )  # fmt: skip
                trainer = make_trainer(model, b.tokenizer, args, [make_row(r) for r in ids])
                trainer.remove_callback(PrinterCallback)
                trainer.add_callback(clock)
                loss = trainer.train().training_loss
            break
        except torch.cuda.OutOfMemoryError:
            if batch == 1:
                raise
        model = trainer = None
        free_memory()
        batch //= 2
    seconds, tokens = clock.ends[-1] - clock.ends[WARMUP_STEPS - 1], batch * b.sizes.seq_len * b.sizes.train_steps
    setting = f"{batch} x {b.sizes.seq_len} tokens, {str(b.dtype)[6:]}, activation checkpointing, AdamW"
    params = model.num_parameters()
    return b.row(
        name, setting, tokens / seconds, "tokens/s", 6 * params * tokens, seconds, loss=loss, parameters=params
    )


def sft_train(b: Bench) -> Iterator[dict]:
    """Policy SFT steps: the causal-LM loss on every token but the first eighth (the prompt's)."""
    prompt = b.sizes.seq_len // 8
    yield train(b, "SFT train step", AutoModelForCausalLM, make_sft_trainer,
                lambda ids: {"input_ids": ids, "labels": [NO_LOSS] * prompt + ids[prompt:]})  # fmt: skip


def prm_train(b: Bench) -> Iterator[dict]:
    """PRM steps (the linear head): a separator and a 0/1 target at the end of each eighth of a row."""
    sep, every = b.tokenizer.convert_tokens_to_ids("\n"), b.sizes.seq_len // 8

    def make_row(ids: list[int]) -> dict:
        targets = [IGNORE] * len(ids)
        for end in range(every - 1, len(ids), every):
            ids[end], targets[end] = sep, float(b.rng.random() < 0.5)
        return {"input_ids": ids, "step_labels": targets}

    yield train(b, "PRM train step", AutoModelForTokenClassification, make_prm_trainer, make_row)


def clocked(work: Callable) -> tuple[object, float]:
    """What `work()` returns and its wall-clock seconds (its results are read back: the device is done)."""
    reset_peak()
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def prm_score(b: Bench) -> Iterator[dict]:
    """One pass per solution (batched, then one at a time) against one pass per step prefix (one at a time)."""
    s, model = b.sizes, b.build(AutoModelForTokenClassification)
    verifier = PRMVerifier(model, b.tokenizer, ARITH, batch_size=s.solutions)
    prompts = [ARITH.prompt(b.text(s.prompt_tokens)) for _ in range(s.solutions)]
    solutions = [[b.text(s.step_tokens) for _ in range(s.steps)] for _ in prompts]
    pairs = list(zip(prompts, solutions, strict=True))
    prefixes = [ARITH.encode(b.tokenizer, p, x[: i + 1]).ids for p, x in pairs for i in range(s.steps)]
    verifier.score(prompts[:2], solutions[:2])  # warm-up
    full = sum(verifier.count_tokens(prompts, solutions))

    def per_prefix() -> list[float]:
        with torch.inference_mode():
            return [float(model(input_ids=torch.tensor([ids], device=b.device)).logits[0, -1, 0]) for ids in prefixes]

    setting = f"{len(pairs)} solutions x {s.steps} steps, {full // len(pairs)} tokens each"
    for name, work, tokens in (
        ("one pass per solution, batched", lambda: verifier.score(prompts, solutions), full),
        ("one pass per solution, one at a time", lambda: [verifier.score([p], [x]) for p, x in pairs], full),
        ("one pass per step prefix, one at a time", per_prefix, sum(map(len, prefixes))),
    ):
        _, seconds = clocked(work)
        flops = 2 * model.num_parameters() * tokens
        yield b.row(f"PRM scoring: {name}", setting, len(pairs) / seconds, "solutions/s", flops, seconds)


def generation(b: Bench) -> Iterator[dict]:
    """Sampled tokens/s of the HF backend (temperature 1, whole solutions) at each batch size."""
    s, model = b.sizes, b.build(AutoModelForCausalLM)
    generator = HFGenerator(model, b.tokenizer, ARITH)
    generator.generate([ARITH.prompt(b.text(s.prompt_tokens))], SamplingParams(max_new_tokens=2))  # warm-up
    for size in s.batch_sizes:
        generator.batch_size = size
        prompts = [ARITH.prompt(b.text(s.prompt_tokens)) for _ in range(size)]
        outs, seconds = clocked(partial(generator.generate, prompts, SamplingParams(max_new_tokens=s.gen_tokens)))
        tokens = sum(g.generated_tokens for [g] in outs)
        flops = 2 * model.num_parameters() * (tokens + sum(g.prompt_tokens for [g] in outs))
        setting = f"{s.prompt_tokens}-token prompts, {s.gen_tokens} new tokens"
        yield b.row(f"HF generation, batch {size}", setting, tokens / seconds, "tokens/s", flops, seconds)


def search(b: Bench) -> Iterator[dict]:
    """Best-of-N, then beam search without and with prefix reuse, on the same questions: wall-clock."""
    generator = HFGenerator(b.build(AutoModelForCausalLM), b.tokenizer, ARITH)
    verifier = PRMVerifier(b.build(AutoModelForTokenClassification), b.tokenizer, ARITH)
    settings = SearchSettings(max_step_tokens=2 * b.sizes.step_tokens, max_new_tokens=b.sizes.max_new_tokens)
    questions = [b.text(b.sizes.prompt_tokens) for _ in range(b.sizes.questions)]
    beam, params = StrategySpec.parse(f"beam:m={BEAM_WIDTH}"), (generator.num_parameters(), verifier.num_parameters())
    generator.generate([ARITH.prompt(questions[0])], SamplingParams(max_new_tokens=2))  # warm-up
    verifier.score([ARITH.prompt(questions[0])], [["x"]])
    runs = {
        f"best-of-{BUDGET}": lambda: [r.at(BUDGET, "weighted") for r in sample_best_of_n(
            questions, generator, verifier, ARITH, settings, BUDGET, b.seed)],
        f"beam M={BEAM_WIDTH}, no prefix reuse": lambda: tree_search(
            beam, questions, generator, verifier, ARITH, settings, BUDGET, b.seed, reuse_prefixes=False),
        f"beam M={BEAM_WIDTH}, prefix reuse": lambda: tree_search(
            beam, questions, generator, verifier, ARITH, settings, BUDGET, b.seed, reuse_prefixes=True),
    }  # fmt: skip
    results, base = [], None
    for name, run in runs.items():
        result, seconds = clocked(run)
        results.append(result)
        spent, base = sum((r.accounting for r in result), Accounting()), base or seconds
        setting = (
            f"{len(questions)} questions; {spent.generated_tokens / spent.samples:.0f} tokens per sample; "
            f"computed {spent.computed_prompt_tokens} prefill, {spent.computed_verifier_tokens} verifier tokens"
        )
        if len(results) == 3:
            setting += "; same candidates as without reuse: " + str(same_candidates(results[1], results[2]))
        yield b.row(name, setting, seconds / base, f"x best-of-{BUDGET}", spent.flops(*params), seconds,
                    **spent.to_dict())  # fmt: skip


def same_candidates(full: list, reused: list) -> bool:
    """Whether two searches kept the same steps: in bf16 a reused state and a recomputed one may round apart."""
    return all(
        [c.steps for c in x.candidates] == [c.steps for c in y.candidates] for x, y in zip(full, reused, strict=True)
    )


SECTIONS = {"sft_train": sft_train, "prm_train": prm_train, "prm_score": prm_score, "generation": generation,
            "search": search}  # fmt: skip


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass
class Budget:
    seconds: float
    start: float = field(default_factory=time.monotonic)

    def spent(self) -> float:
        return time.monotonic() - self.start

    def over(self) -> bool:
        return self.spent() >= self.seconds


def measure(b: Bench, label: str, section: str, budget: Budget) -> dict:
    """A section's rows, or why it has none: skipped for the budget, or the error that ended it."""
    if budget.over():
        print(f"[{budget.spent():4.0f}s] {label} {section}: skipped (budget)", flush=True)
        return {"status": "skipped", "reason": f"the budget of {budget.seconds:g} s was spent"}
    record: dict = {"status": "ok", "rows": []}
    reset_peak()
    try:
        for row in SECTIONS[section](b):
            record["rows"].append(row)
            print(f"[{budget.spent():4.0f}s] {label} {row['measurement']}: {value(row)}, MFU {fmt(row['mfu'])}, "
                  f"peak {fmt(row['peak_gib'])} GiB", flush=True)  # fmt: skip
    except Exception as err:  # one failed measurement (out of memory, another transformers) loses no other
        error = f"{type(err).__name__}: {err}".splitlines()[0]
        record.update(status="error", error=error, traceback=traceback.format_exc())
        print(f"[{budget.spent():4.0f}s] {label} {section}: {error}", flush=True)
    free_memory()
    return record


def environment(device: str, peak_tflops: float | None) -> dict:
    """The chip, its dense bf16 peak and the software versions."""
    env = {"device": platform.machine(), "memory_gib": None, "peak_bf16_tflops": peak_tflops,
           "python": platform.python_version(), "cuda": torch.version.cuda}  # fmt: skip
    env.update({p: importlib.metadata.version(p) for p in ("torch", "transformers", "accelerate", "tokenizers")})
    if device == "cuda":
        name = env["device"] = torch.cuda.get_device_name(0)
        env["memory_gib"] = torch.cuda.get_device_properties(0).total_memory / 2**30
        env["peak_bf16_tflops"] = peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    return env


def fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}g}"


def value(row: dict) -> str:
    return f"{row['value']:,.0f} {row['unit']}" if row["value"] >= 100 else f"{row['value']:.3g} {row['unit']}"


def markdown(report: dict) -> str:
    env = report["environment"]
    peak = f"{env['peak_bf16_tflops']:g} TFLOP/s" if env["peak_bf16_tflops"] else "unknown (no MFU)"
    lines = [
        f"# Device check: {env['device']}",
        "",
        f"Dense bf16 peak {peak}; torch {env['torch']} (CUDA {env['cuda']}), transformers {env['transformers']}, "
        f"accelerate {env['accelerate']}, Python {env['python']}. Budget {report['config']['budget_s']:g} s, "
        f"{report['seconds']:.0f} s used. Random weights: speed and memory only. MFU: 6 N FLOPs per token trained, "
        "2 N per token read or generated, N all parameters, over the peak.",
    ]
    for name, model in report["models"].items():
        lines += ["", f"## {name}: {model['parameters']:,} parameters", ""]
        lines += ["| measurement | setting | throughput | MFU | peak GiB | s |", "|---|---|---:|---:|---:|---:|"]
        for section, record in model["sections"].items():
            lines += [f"| {r['measurement']} | {r['setting']} | {value(r)} | {fmt(r['mfu'], 2)} | "
                      f"{fmt(r['peak_gib'])} | {r['seconds']:.2f} |" for r in record.get("rows", [])]  # fmt: skip
            if record["status"] != "ok":
                lines.append(f"| {section} | {record['status']}: {record.get('reason') or record['error']} | | | | |")
    return "\n".join(lines) + "\n"


def write(report: dict, out: Path, budget: Budget) -> None:
    report["seconds"] = budget.spent()
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    (out / "gpu_check.md").write_text(markdown(report))


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    budget, device = Budget(cfg.budget_s), "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not cfg.tiny:
        raise UserError("no GPU here: --tiny runs the check with tiny configs on the CPU")
    names, sizes = (["tiny"], TINY) if cfg.tiny else (cfg.models.split(","), REAL)
    if unknown := [n for n in names if n not in MODELS]:
        raise UserError(f"unknown models {unknown}; known: {', '.join(MODELS)}")
    out = claim_report_dir(cfg.output_dir or os.environ.get("OUT") or "outputs/gpu_check", "bench.gpu_check",
                           cfg.overwrite_output_dir)  # fmt: skip
    env = environment(device, cfg.peak_tflops)
    report = {"environment": env, "config": asdict(cfg), "sizes": asdict(sizes), "models": {}}
    peak_tflops = env["peak_bf16_tflops"]
    print(f"{env['device']}, dense bf16 peak {fmt(peak_tflops)} TFLOP/s; writing {out}", flush=True)
    for name in names:
        dims = dict(zip(FIELDS, MODELS[name], strict=True))
        tokenizer = synthetic_tokenizer(dims["vocab_size"], sizes.step_tokens)
        config = Qwen2Config(**dims, num_labels=1, bos_token_id=tokenizer.bos_token_id,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
        with torch.device("meta"):
            parameters = AutoModelForCausalLM.from_config(config).num_parameters()
        b = Bench(config, tokenizer, sizes, device, peak_tflops and peak_tflops * 1e12, cfg.seed)
        model = report["models"][name] = {"config": dims, "parameters": parameters, "sections": {}}
        for section in SECTIONS:
            model["sections"][section] = measure(b, name, section, budget)
            write(report, out, budget)
    print(markdown(report), flush=True)
    return report


if __name__ == "__main__":
    main()
