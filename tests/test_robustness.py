"""make robustness: runs of the policy recipe per seed and thread count, judged against their median."""

from core.outputs import marked_block, replace_marked_block
from eval import robustness
from tests.conftest import TINY_POLICY_ARGS


def run(seed, threads, loss, level1):
    return {"seed": seed, "threads": threads, "validation_loss": loss, "pass_at_1": {"1": level1, "2": 0.5}}


def test_a_run_outside_the_band_or_below_the_floor_does_not_hold(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("seed: 0\n")
    cfg = robustness.RobustnessConfig(policy_recipe=str(recipe))
    steady = robustness.judge(cfg, [run(0, 1, 0.10, 0.9), run(1, 1, 0.11, 0.8), run(2, 1, 0.12, 0.95)])
    assert steady["holds"] and steady["validation_loss"]["median"] == 0.11
    spread = robustness.judge(cfg, [run(0, 1, 0.05, 0.9), run(1, 1, 0.10, 0.9), run(2, 1, 0.20, 0.9)])
    assert not spread["holds"] and [r["loss_within_band"] for r in spread["runs"]] == [False, True, False]
    weak = robustness.judge(cfg, [run(0, 1, 0.1, 0.6), run(1, 2, 0.1, 0.9)])
    assert not weak["holds"] and "**not all runs hold**" in robustness.markdown(weak)


def test_runs_train_report_and_resume(tmp_path, capsys):
    tiny = " ".join(TINY_POLICY_ARGS[2:] + ["--max_steps", "30", "--train_per_level", "200"])
    argv = ["--policy_recipe", TINY_POLICY_ARGS[1], "--train_args", tiny, "--seeds", "0", "--threads", "1",
            "--output_dir", str(tmp_path / "out")]  # fmt: skip
    result = robustness.main(argv)
    [only] = result["runs"]
    assert only["validation_loss"] > 0 and set(only["pass_at_1"]) == {"1", "2", "3"}
    assert (tmp_path / "out/robustness.md").read_text().startswith("# Robustness")
    capsys.readouterr()
    robustness.main(argv)  # finished runs are not trained again
    assert "training.policy" not in capsys.readouterr().out


def test_the_readme_table_is_generated_from_the_runs(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("seed: 0\n")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- robustness:start -->\nold\n<!-- robustness:end -->\nrest\n")
    cfg = robustness.RobustnessConfig(policy_recipe=str(recipe), readme=str(readme))
    result = robustness.judge(cfg, [run(0, 1, 0.10, 0.9), run(1, 2, 0.11, 0.8), run(2, 1, 0.12, 0.95)])
    table = robustness.summary(result)
    assert "| 1 | 0.900 | 0.800-0.950 |" in table and "median 0.1100, range 0.1000-0.1200" in table
    assert "seed 1 with 2 threads" in table and "all within the bounds" in table
    replace_marked_block(readme, "robustness", table)
    assert readme.read_text() == f"intro\n{marked_block('robustness', table)}\nrest\n"
