"""`make reproduce`'s report: verdicts from the chain's JSON outputs, and a finding not run is said so."""

import json

from eval import reproduction


def write(path, record):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def chain_outputs(root, pairwise=0.9, c2i=0.3, match_at_4=None):
    prm = {"pairwise": {"all": {"accuracy": pairwise}}, "step_auc": 0.95, "first_error_f1": {"f1": 0.75}}
    write(root / "prm/eval/prm_eval.json", prm)
    write(root / "prm-verifier-base/eval/prm_eval.json", prm)
    curves = {"best_of_n:select=weighted": {"1": 0.2, "4": 0.3, "16": 0.4},
              "best_of_n:select=majority": {"1": 0.2, "4": 0.25, "16": 0.3},
              "beam:m=4": {"4": 0.5, "16": 0.7},
              "revision:l=1:select=weighted": {"1": 0.2, "4": 0.3, "16": 0.4},
              "revision:l=4:select=weighted": {"4": 0.35, "16": 0.38}}  # fmt: skip
    bins = [{"questions": 10, "curves": curves}, {"questions": 10, "curves": curves}]
    # best-of-N's budget to reach compute-optimal's accuracy; None: not within the largest budget (16)
    pools = {"search": {"compute_optimal": {"1": 0.2, "4": 0.45, "16": 0.6},
                        "baseline_budget_to_match": {"1": 1, "4": match_at_4, "16": None}}}  # fmt: skip
    binning = {"bins": bins, "pools": pools}
    write(root / "reproduce/eval/report.json",
          {"budgets": [1, 4, 16], "curves": curves, "binnings": {"oracle": binning, "predicted": binning}})  # fmt: skip
    steps = [{"accuracy": 0.5}, {"accuracy": 0.6}, {"accuracy": 0.55}]
    write(root / "revision/report/report.json",
          {"by_level": {"1": {"steps": steps}, "2": {"steps": steps}}, "correct_to_incorrect_rate": c2i})  # fmt: skip


def test_verdicts_follow_the_goals_and_a_missing_flops_comparison_is_not_run(tmp_path):
    chain_outputs(tmp_path / "outputs")
    rows = reproduction.main(["--outputs", str(tmp_path / "outputs"), "--eval_dir",
                              str(tmp_path / "outputs/reproduce/eval"), "--out", str(tmp_path / "docs")])  # fmt: skip
    verdicts = {r["finding"]: r["reproduced"] for r in rows}
    assert verdicts["PRM on the policy (make train-prm) tells a question's solutions apart"] is True
    assert verdicts["PRM-weighted best-of-16 beats majority voting"] is True
    assert verdicts["Beam search at N=16 with the trained PRM"] is True
    assert verdicts["Revisions rarely break a correct answer"] is True
    # best-of-N still below at 16 where compute-optimal spends 4: at least 4x
    assert verdicts["Compute-optimal search (oracle bins) needs fewer generations than best-of-N"] is True
    assert verdicts["FLOPs-matched against a 13.4x larger policy"] is None
    readme = (tmp_path / "docs/README.md").read_text()
    assert "1 not run" in readme and "| not run |" in readme
    assert json.loads((tmp_path / "docs/findings.json").read_text()) == rows


def test_a_weak_prm_and_a_breaking_reviser_are_not_reproduced(tmp_path):
    chain_outputs(tmp_path / "outputs", pairwise=0.6, c2i=0.8, match_at_4=8)
    rows = reproduction.findings(tmp_path / "outputs", tmp_path / "outputs/reproduce/eval")
    verdicts = {r["finding"]: r["reproduced"] for r in rows}
    assert verdicts["PRM on the policy (make train-prm) tells a question's solutions apart"] is False
    assert verdicts["Revisions rarely break a correct answer"] is False
    assert verdicts["Compute-optimal search (oracle bins) needs fewer generations than best-of-N"] is False  # 2x


def test_flops_matched_rows_are_judged_by_their_regime(tmp_path):
    chain_outputs(tmp_path / "outputs")
    rows = [
        {"inference_to_pretraining": 0.79, "matched_budget": 60.5, "small_by_bin": {"0": None, "1": None}},
        {"inference_to_pretraining": 22, "matched_budget": 15.1, "small_by_bin": {"0": 0.1, "1": 0.9}},
    ]
    write(tmp_path / "outputs/reproduce/eval/flops_matched.json",
          {"size_ratio": 13.4, "large_by_bin": {"0": 0.5, "1": 0.95}, "rows": rows})  # fmt: skip
    found = reproduction.findings(tmp_path / "outputs", tmp_path / "outputs/reproduce/eval")
    verdicts = {r["finding"]: r["reproduced"] for r in found}
    assert verdicts["FLOPs-matched at R=0.79 (X=60)"] is None  # X beyond the curves: not measured
    assert verdicts["FLOPs-matched at R=22 (X=15)"] is True  # the larger model ahead on the hardest bin
