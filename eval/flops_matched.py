"""Test-time compute vs a larger model at matched FLOPs (Snell et al. section 7).

    python -m eval.flops_matched --large_policy outputs/arith-tiny/policy-large --eval_dir outputs/arith-tiny/eval

A model M times larger, pre-trained on the same D_pre tokens, costs 6*M*N*D_pre to train and
2*M*N*D_inf to serve D_inf tokens. The small model (N parameters) matches that total when it
spends X times more inference tokens. The paper leaves the verifier out:

    6*N*D_pre + 2*N*X*D_inf = 6*M*N*D_pre + 2*M*N*D_inf   =>   X = M + 3*(M - 1) / R,

with R = D_inf / D_pre (the paper: 0.16, 0.79 and 22). Counting the verifier (N_v parameters)
reading every generated token (2*N_v per token) and the training of its backbone when that is not
the policy itself (V = 6*N_v*D_v, D_v from `verifier_base`'s train_metrics.json) gives

    X_v = (M + 3*(M - 1) / R - V / (2*N*R*D_pre)) * N / (N + N_v).

Both are shown. As in the paper the large model answers greedily (pass@1 at temperature 0) and the
comparison is made per oracle difficulty bin of `make eval` (the small policy's pass@1): per
question, the small model's compute-optimal outcome at budget X (`eval.scaling_analysis`, choices
made on the validation split; log2-linear between measured budgets) against the large model's
greedy outcome, as a paired difference with its 95% interval. An X beyond the largest measured
budget is reported as such, never extrapolated. The large model's per-question outcomes are saved
beside the report, so the findings can be recomputed without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.checkpoints import check_model_path, load_policy, read_metadata
from core.config import UserError, cli, parse_config
from core.stats import Ratio, interval
from eval.compute_optimal import at_budget
from eval.outcomes import Outcomes
from eval.scaling_analysis import AnalysisSettings, compute_optimal, difficulty_bins
from search.generation.generator import SamplingParams
from search.generation.hf_generator import HFGenerator
from search.grading import answers_match
from search.prompting import PromptConfig, resolve_format
from search.questions import load_questions
from search.step_format import check_compatible


def matched_budget(size_ratio: float, inference_to_pretraining: float) -> float:
    """X = M + 3(M-1)/R: the small model's inference multiplier at the large model's total FLOPs."""
    if size_ratio < 1 or inference_to_pretraining <= 0:
        raise ValueError("the size ratio must be >= 1 and the token ratio R > 0")
    return size_ratio + 3 * (size_ratio - 1) / inference_to_pretraining


def matched_budget_with_verifier(size_ratio: float, ratio: float, policy_params: int, verifier_params: int,
                                 verifier_training_flops: float, pretraining_tokens: float) -> float:  # fmt: skip
    """X_v of the module docstring: the verifier's inference and extra training counted."""
    training = verifier_training_flops / (2 * policy_params * ratio * pretraining_tokens)
    return (matched_budget(size_ratio, ratio) - training) * policy_params / (policy_params + verifier_params)


@dataclass
class FlopsMatchedConfig:
    large_policy: str = "outputs/arith-tiny/policy-large"  # the larger model, trained on the same data
    eval_dir: str = "outputs/arith-tiny/eval"  # make eval's folder (its outcomes.json)
    ratios: str = "0.16,0.79,22"  # R = inference / pre-training tokens (the paper's three regimes)
    pool: str = "all"  # which of make eval's strategy pools the small model chooses from
    verifier_base: str | None = None  # the verifier's backbone when it is not the policy (its training FLOPs counted)
    max_new_tokens: int = 160  # the most tokens one whole solution may have (longer ones are cut off and counted)
    batch_size: int = 128  # sequences per forward batch (speed only)
    output_dir: str | None = None  # default: <eval_dir>/flops_matched


CONFIG_TYPES = (FlopsMatchedConfig,)


def train_tokens(checkpoint: str) -> float:
    """The tokens a checkpoint was trained on, from its train_metrics.json (`training.policy` records them)."""
    path = Path(checkpoint) / "train_metrics.json"
    tokens = json.loads(path.read_text()).get("train_tokens") if path.is_file() else None
    if not tokens:
        raise UserError(f"{path}: no train_tokens recorded (retrain it with this version of training.policy)")
    return float(tokens)


def large_greedy(cfg: FlopsMatchedConfig, outcomes: Outcomes) -> tuple[dict, int, int]:
    """The large model's greedy outcome per question of each split ("0"/"1" strings), and both sizes."""
    small, large = outcomes.meta["policy"], check_model_path(cfg.large_policy, "large policy checkpoint")
    fmt = resolve_format(small, PromptConfig())
    try:
        check_compatible(fmt, read_metadata(large, "large policy checkpoint").step_format, large)
    except ValueError as err:
        raise UserError(str(err)) from None
    generator = HFGenerator.from_pretrained(large, fmt, batch_size=cfg.batch_size)
    greedy = {}
    for name, dataset in outcomes.meta["datasets"].items():
        questions = {q.id: q for q in load_questions(dataset)}
        ids = outcomes.splits[name].ids
        texts = generator.generate([fmt.prompt(questions[i].text) for i in ids],
                                   SamplingParams(0.0, 1.0, cfg.max_new_tokens))  # fmt: skip
        greedy[name] = "".join("1" if answers_match(fmt.extract_answer(g[0].text), questions[i].gold) else "0"
                               for i, g in zip(ids, texts, strict=True))  # fmt: skip
    return greedy, generator.model.num_parameters(), load_policy(small).num_parameters()


def compare(outcomes: Outcomes, greedy: dict, budget: float | None, pool: str, settings: AnalysisSettings,
            bins: list[int]) -> dict | None:  # fmt: skip
    """Small (compute-optimal at `budget`) minus large (greedy) on the test questions of `bins` (oracle), with its
    interval; None when the budget is beyond the measured ones."""
    test = outcomes.splits["test"]
    curve = {}
    for g in sorted({v["generations"] for v in test.results.values()}):
        found = compute_optimal(outcomes, "oracle", pool, g, settings)
        if found is not None:
            curve[g] = found[0]
    small = at_budget(curve, budget) if budget is not None else None
    if small is None:
        return None
    members = np.isin(difficulty_bins(test, "oracle", settings), bins)
    large = np.frombuffer(greedy["test"].encode(), dtype=np.uint8) - ord("0")
    diff = interval(Ratio.mean(small[members]) - Ratio.mean(large[members].astype(float)), settings.seed)
    return {"small": float(small[members].mean()), "large": float(large[members].mean()), "difference": diff.to_dict()}


@cli
def main(argv: list[str] | None = None) -> dict:
    (cfg,) = parse_config(CONFIG_TYPES, argv)
    outcomes = Outcomes.load(Path(cfg.eval_dir) / "outcomes.json")
    report_path = Path(cfg.eval_dir) / "report.json"
    if not report_path.is_file():
        raise UserError(f"eval report not found: {report_path} (run make eval)")
    report = json.loads(report_path.read_text())
    if "settings" not in report or "oracle" not in report.get("binnings", {}):
        raise UserError(f"{report_path} was not written by this version of eval.scaling: rerun make eval")
    if cfg.pool not in report["binnings"]["oracle"]["pools"]:
        raise UserError(f"the eval has no pool {cfg.pool!r}; it has {', '.join(report['binnings']['oracle']['pools'])}")
    greedy, large_params, small_params = large_greedy(cfg, outcomes)
    verifier = outcomes.meta.get("verifier")
    verifier_params = load_policy_params(verifier) if verifier and verifier != "none" else 0
    verifier_training = 6 * verifier_params * train_tokens(cfg.verifier_base) if cfg.verifier_base else 0.0
    settings = AnalysisSettings(**report["settings"])
    pretraining = train_tokens(outcomes.meta["policy"])
    result = flops_rows(outcomes, greedy, large_params / small_params, small_params, verifier_params,
                        verifier_training, pretraining, cfg.ratios, cfg.pool, settings)  # fmt: skip
    result.update(small_policy=outcomes.meta["policy"], large_policy=cfg.large_policy, large_greedy=greedy,
                  verifier=verifier, verifier_base=cfg.verifier_base)  # fmt: skip
    out = Path(cfg.output_dir) if cfg.output_dir else Path(cfg.eval_dir) / "flops_matched"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text(flops_markdown(result))
    print(flops_markdown(result))
    return result


def load_policy_params(path: str) -> int:
    """Parameters of a verifier checkpoint of this project (a causal LM backbone or a token classifier)."""
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

    from core.checkpoints import load_model

    head = (read_metadata(path, "verifier checkpoint").reward_model or {}).get("head")
    auto = AutoModelForCausalLM if head == "likelihood" else AutoModelForTokenClassification
    return load_model(auto, path, "verifier checkpoint").num_parameters()


def flops_rows(outcomes: Outcomes, greedy: dict, size_ratio: float, policy_params: int, verifier_params: int,
               verifier_training: float, pretraining_tokens: float, ratios: str, pool: str,
               settings: AnalysisSettings) -> dict:  # fmt: skip
    """Per R and accounting, X and the small-minus-large comparison on the hardest oracle bin and on the easier
    bins (the upper three of five)."""
    groups = {"hardest": [0], "easy_and_medium": list(range(settings.bins - 3, settings.bins))}
    rows = []
    for ratio in (float(r) for r in ratios.split(",")):
        budgets = {"verifier not counted": matched_budget(size_ratio, ratio),
                   "verifier counted": matched_budget_with_verifier(size_ratio, ratio, policy_params, verifier_params,
                                                                    verifier_training, pretraining_tokens)}  # fmt: skip
        for accounting, x in budgets.items():
            cells = {group: compare(outcomes, greedy, x, pool, settings, members) for group, members in groups.items()}
            rows.append({"inference_to_pretraining": ratio, "accounting": accounting, "matched_budget": x, **cells})
    return {"size_ratio": size_ratio, "policy_params": policy_params, "verifier_params": verifier_params,
            "verifier_training_flops": verifier_training, "pretraining_tokens": pretraining_tokens, "pool": pool,
            "rows": rows}  # fmt: skip


def flops_markdown(result: dict) -> str:
    lines = [
        f"# Test-time compute vs a {result['size_ratio']:.1f}x larger model at matched FLOPs",
        "",
        f"Small `{result['small_policy']}` with compute-optimal test-time compute (pool `{result['pool']}`,",
        f"choices made on the eval's choice split) at X generations per question; large `{result['large_policy']}`",
        "greedy. Verifier",
        f"`{result['verifier']}` ({result['verifier_params']:,} parameters; extra training "
        f"{result['verifier_training_flops']:.3g} FLOPs). Cells: small - large [95% interval] on the test questions",
        "of the hardest oracle bin and of the easier three bins; 'beyond': X past the largest measured budget.",
        "",
        "| R | accounting | X | hardest bin | easy and medium bins |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in result["rows"]:
        cells = []
        for group in ("hardest", "easy_and_medium"):
            c = r[group]
            d = None if c is None else c["difference"]
            cells.append("beyond" if c is None else f"{c['small']:.3f} - {c['large']:.3f} = "
                         f"{d['estimate']:+.3f} [{d['low']:+.2f}, {d['high']:+.2f}]")  # fmt: skip
        lines.append(f"| {r['inference_to_pretraining']:g} | {r['accounting']} | {r['matched_budget']:.1f} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
