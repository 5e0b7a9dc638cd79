"""The GPU check's dry run: every step of benchmarks/gpu_check.py on the CPU at tiny sizes, so it cannot rot.

The script runs in a subprocess, as on the GPU machine (it puts the repository on its own path, spawns DDP ranks
and must exit non-zero on a failed step).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
STEPS = [
    "environment",
    "finetune_step",
    "simclr_batch",
    "method_b_steps",
    "cli_end_to_end",
    "ddp_gather",
    "onnx_export",
]


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", *args], cwd=ROOT, capture_output=True, text=True, timeout=400
    )


@pytest.mark.slow
def test_dry_run_passes_every_step(tmp_path: Path):
    done = run_check("--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    document = json.loads((tmp_path / "gpu.json").read_text())
    assert document["environment"]["mode"] == "dry-run"
    assert [step["name"] for step in document["steps"]] == STEPS
    for step in document["steps"]:
        assert step["passed"], f"{step['name']}: {step.get('error')}"
        assert {"seconds", "peak_memory_gib", "figures"} <= set(step)
        assert all(ok is not False for ok in step["figures"].get("checks", {}).values())
    figures = {step["name"]: step["figures"] for step in document["steps"]}
    # the batch search found the simulated limit by doubling, then bisection
    search = figures["simclr_batch"]["sides"]["32"]
    assert (search["max_batch"], search["first_failing_batch"], search["stopped_by"]) == (4, 5, "bisected")
    assert search["ratio_marsvision_vs_lightly"] > 0
    # the gathered SimCLR loss is the one-process loss, not the loss of one rank's images alone
    simclr = figures["ddp_gather"]["attempts"][-1]["ranks"][0]["simclr"]
    assert abs(simclr["loss_mean_over_ranks"] - simclr["loss_one_process"]) < 1e-4
    assert abs(simclr["loss_without_gather"] - simclr["loss_one_process"]) > 1e-3
    assert figures["cli_end_to_end"]["train"]["final_test_pass_devices"] == ["cpu"]
    assert "7 of 7 steps passed" in (tmp_path / "gpu.md").read_text()


@pytest.mark.slow
def test_a_failed_step_fails_the_run_and_the_results_stay_out_of_the_repository():
    done = run_check("--only", "environment", "--budget-s", "0")  # every step starts after its budget: skipped
    assert done.returncode == 1, done.stderr[-3000:]
    match = re.search(r"wrote (\S+)/gpu\.json", done.stdout)
    assert match, done.stdout
    out = Path(match.group(1))
    try:
        assert ROOT / "benchmarks" / "results" not in (out, *out.parents)
        (step,) = json.loads((out / "gpu.json").read_text())["steps"]
        assert not step["passed"] and "time budget" in step["error"]
    finally:
        shutil.rmtree(out, ignore_errors=True)
