"""`make reproduce`'s verdicts: computed from a bundle of per-question outcomes, each from a paired interval."""

import json

import numpy as np
import pytest

from eval import reproduction
from eval.outcomes import Outcomes, SplitOutcomes, label
from tests.conftest import ROOT

BUDGETS = (1, 2, 4, 8, 16, 32, 64)


def split(n: int, accuracy: dict, seeds: int, rng) -> SplitOutcomes:
    """Questions of rising difficulty value; `accuracy[strategy]` maps a budget to a success probability."""
    results = {}
    for strategy, by_budget in accuracy.items():
        for budget, p in by_budget.items():
            k = 4 if strategy.startswith("lookahead") else 1
            bits = {str(s): "".join("1" if rng.random() < p else "0" for _ in range(n)) for s in range(seeds)}
            results[label(strategy, budget)] = {"generations": budget * k, "seeds": bits}
    values = list(np.linspace(0, 1, n))
    return SplitOutcomes([f"q{i}" for i in range(n)], [1 + i % 8 for i in range(n)], values, values, results)


def track(beam_edge: float, n: int = 400, seed: int = 0) -> dict:
    """A track whose beam search leads best-of-N by `beam_edge` at every budget."""
    rng = np.random.default_rng(seed)
    accuracy = {
        "best_of_n:select=weighted": {b: 0.3 for b in BUDGETS},
        "best_of_n:select=majority": {b: 0.3 for b in BUDGETS},
        "beam:m=4": {b: 0.3 + beam_edge for b in BUDGETS if b >= 4},
        "beam:m=sqrt": {b: 0.3 for b in (1, 4, 16, 64)},
        "lookahead:m=4:k=3": {4: 0.3},
        "revision:l=1:select=weighted": {b: 0.3 for b in BUDGETS},
        "revision:l=all:select=weighted": {b: 0.3 for b in BUDGETS},
    }
    outcomes = Outcomes({"validation": split(n // 2, accuracy, 1, rng), "test": split(n, accuracy, 2, rng)})
    greedy = {name: "1" * len(s.ids) for name, s in outcomes.splits.items()}  # the larger model: always right
    flops = {"pool": "all", "size_ratio": 13.4, "policy_params": 10**6, "verifier_params": 10**6,
             "verifier_training_flops": 0.0, "pretraining_tokens": 10**6, "large_greedy": greedy,
             "rows": [{"inference_to_pretraining": r} for r in (0.16, 0.79, 22)]}  # fmt: skip
    prm = {"per_question": [[3.0, 4.0]] * n, "step_auc": 0.9, "first_error_f1": 0.7}
    return {"eval": outcomes.to_dict(), "settings": {"bins": 5, "folds": 2, "baseline": "best_of_n:select=weighted",
            "seed": 0}, "prm": prm, "flops": flops}  # fmt: skip


def bundle(beam_edge: float) -> dict:
    chains = [{"id": f"q{i}", "level": 1, "chains": ["0011", "0111"]} for i in range(100)]
    return {"format": reproduction.BUNDLE_FORMAT, "tracks": {"paper": track(beam_edge), "strong": track(0.0, seed=1)},
            "revisions": {"per_question": chains}}  # fmt: skip


def verdicts(result: dict, track_name: str = "paper") -> dict:
    return {k: (r["tracks"].get(track_name) or r["tracks"]["both"])["verdict"] for k, r in result["findings"].items()}


def test_verdicts_come_from_paired_intervals():
    result = reproduction.findings(reproduction.ReproductionConfig(), bundle(beam_edge=0.3))
    paper, strong = verdicts(result, "paper"), verdicts(result, "strong")
    assert paper["prm_pairwise"] == "reproduced"  # 0.75 of pairs, every question
    assert paper["weighted_vs_majority"] == "inconclusive"  # the same accuracy: noise either way
    assert paper["beam_small_budget_hard"] == "reproduced" and strong["beam_small_budget_hard"] == "inconclusive"
    assert paper["beam_gap_shrinks"] == "inconclusive"  # the same lead at every budget: no shrinking
    assert paper["lookahead_below_beam"] == "reproduced"  # beam:m=4 chosen on validation over beam:m=sqrt
    assert paper["revision_index_rises"] == "reproduced"  # 0 at the first attempt, 1 at the last
    assert paper["sequential_beats_parallel_easy"] == "inconclusive"
    # the larger model is always right: at ceiling on every easy bin, and it wins the hardest
    assert paper["flops_R22_hardest_counted"] == "reproduced" and paper["flops_R0.16_easy_counted"] == "not run"
    row = result["findings"]["lookahead_below_beam"]["tracks"]["paper"]
    assert row["comparison"].startswith("beam:m=4 @ N=16 - lookahead:m=4:k=3 @ N=4")
    assert row["low"] > 0 and row["detectable"] > 0 and row["questions"] == 400


def test_a_bundle_recomputes_its_findings_exactly(tmp_path):
    cfg = ["--output_dir", str(tmp_path / "a")]
    (tmp_path / "bundle.json").write_text(json.dumps(bundle(beam_edge=0.3)))
    first = reproduction.main(["--bundle", str(tmp_path / "bundle.json"), *cfg])
    again = reproduction.main(["--bundle", str(tmp_path / "a/outcomes.json"), "--output_dir", str(tmp_path / "b")])
    assert first == again and (tmp_path / "a/findings.json").read_text() == (tmp_path / "b/findings.json").read_text()
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- findings:start -->\nold\n<!-- findings:end -->\nrest\n")
    reproduction.main(["--bundle", str(tmp_path / "bundle.json"), "--output_dir", str(tmp_path / "c"), "--readme",
                       str(readme)])  # fmt: skip
    assert readme.read_text() == f"intro\n{reproduction.readme_block(first)}\nrest\n"


def test_a_bundle_without_a_run_a_finding_needs_is_one_line(tmp_path, capsys):
    broken = bundle(0.0)
    del broken["tracks"]["paper"]["eval"]["splits"]["test"]["results"]["best_of_n:select=majority @ N=16"]
    (tmp_path / "b.json").write_text(json.dumps(broken))
    with pytest.raises(SystemExit):
        reproduction.main(["--bundle", str(tmp_path / "b.json"), "--output_dir", str(tmp_path / "o")])
    assert "lacks a run a finding needs" in capsys.readouterr().err


COMMITTED = ROOT / "docs/reproduction"


@pytest.mark.skipif(not (COMMITTED / "outcomes.json").is_file(), reason="no committed reproduction yet")
def test_the_committed_outcomes_recompute_the_committed_findings_and_the_readme_table(tmp_path):
    result = reproduction.main(["--config", str(ROOT / "recipes/arith-tiny/reproduce.yaml"), "--bundle",
                                str(COMMITTED / "outcomes.json"), "--output_dir", str(tmp_path)])  # fmt: skip
    assert (tmp_path / "findings.json").read_text() == (COMMITTED / "findings.json").read_text()
    assert reproduction.readme_block(result) in (ROOT / "README.md").read_text()
