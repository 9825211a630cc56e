"""The device check (bench/gpu_check.py) with tiny configs on the CPU: the whole script where the packages a lent
GPU machine lacks are missing, and a budget that runs out between measurements."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import gpu_check

ROOT = Path(__file__).resolve().parents[1]
MISSING = ("datasets", "deepspeed", "math_verify", "latex2sympy2_extended", "vllm")  # not on the GPU machine
# None in sys.modules: an import fails, and importlib.util.find_spec (transformers' availability checks) says absent
RUN = "import runpy, sys\nsys.modules.update(dict.fromkeys({missing}))\nsys.argv = {argv}\n" + (
    "runpy.run_module('bench.gpu_check', run_name='__main__')"
)


def test_the_check_runs_without_the_packages_a_lent_gpu_lacks(tmp_path):
    argv = ["bench.gpu_check", "--tiny", "--output_dir", str(tmp_path), "--peak_tflops", "1"]
    proc = subprocess.run(
        [sys.executable, "-c", RUN.format(missing=MISSING, argv=argv)],
        cwd=ROOT,  # the worktree's packages, as on the device machine (the repo root, nothing installed)
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    sections = report["models"]["tiny"]["sections"]
    assert list(sections) == list(gpu_check.SECTIONS)
    for name, record in sections.items():
        assert record["status"] == "ok", (name, record.get("traceback"))
    rows = {row["measurement"]: row for record in sections.values() for row in record["rows"]}
    assert len(rows) == 1 + 1 + 3 + len(gpu_check.TINY.batch_sizes) + 3
    for name, row in rows.items():
        assert 0 < row["value"] < math.inf and 0 < row["seconds"], name
        assert 0 < row["mfu"] < 1, name  # against a peak of 1 TFLOP/s: a CPU core does not reach it
    for name in ("SFT train step", "PRM train step"):
        assert math.isfinite(rows[name]["loss"]) and rows[name]["parameters"] > 0
    assert rows["best-of-16"]["value"] == 1
    beam, reused = rows["beam M=4, no prefix reuse"], rows["beam M=4, prefix reuse"]
    assert reused["cached_prompt_tokens"] > 0 and beam["cached_prompt_tokens"] == 0
    assert "same candidates as without reuse: True" in reused["setting"]  # float32: the reused states are exact
    table = (tmp_path / "gpu_check.md").read_text()
    assert "Dense bf16 peak 1 TFLOP/s" in table and "transformers" in table
    assert all(f"| {name} |" in table for name in rows)
    assert "tiny SFT train step:" in proc.stdout  # a progress line per measurement


def test_a_spent_budget_skips_the_rest_and_says_so(tmp_path, monkeypatch):
    verdicts = iter([False])  # the first measurement starts; the budget is spent when it ends
    monkeypatch.setattr(gpu_check.Budget, "over", lambda self: next(verdicts, True))
    gpu_check.main(["--tiny", "--output_dir", str(tmp_path), "--budget_s", "60"])
    sections = json.loads((tmp_path / "gpu_check.json").read_text())["models"]["tiny"]["sections"]
    assert sections["sft_train"]["status"] == "ok" and len(sections["sft_train"]["rows"]) == 1
    skipped = [name for name, record in sections.items() if record["status"] == "skipped"]
    assert skipped == list(gpu_check.SECTIONS)[1:]
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| SFT train step |" in table
    assert all(f"| {name} | skipped: the budget of 60 s was spent |" in table for name in skipped)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with a GPU runs the real sizes")
def test_real_sizes_need_a_gpu(capsys):
    with pytest.raises(SystemExit) as exit_:
        gpu_check.main(["--output_dir", "unused"])
    assert exit_.value.code == 2 and "--tiny" in capsys.readouterr().err
