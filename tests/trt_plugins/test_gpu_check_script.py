"""scripts/gpu_check.sh, the one command for a GPU machine, in its --dry-run mode (no GPU here):
it must check its tools and options, plan all six steps and write a valid summary."""

import json
import os
import subprocess
import sys

import pytest
from trt_files import REPO

SCRIPT = REPO / "scripts" / "gpu_check.sh"
STEPS = ["build", "tests", "memcheck", "kernels", "detector", "harness", "trt_int8"]


def run_script(*args, python=sys.executable):
    # The script gets the interpreter running the tests: found on PATH it could be one without torch.
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    env["PYTHON"] = python
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)


def test_dry_run_plans_every_step(tmp_path):
    run = run_script("--dry-run", "--out", str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["dry_run"] is True
    assert [s["step"] for s in summary["steps"]] == STEPS
    for step in summary["steps"]:
        assert step["status"] in ("skipped (dry run)", "skipped (no compute-sanitizer)", "skipped (no trtexec)"), step
    commands = {s["step"]: s["command"] for s in summary["steps"]}
    assert "--reference-torchvision" in commands["detector"] and "--imgsz 512 640" in commands["detector"]
    assert "test_plugin_harness.py" in commands["harness"]
    assert "--device cuda" in commands["kernels"]


def test_the_interpreter_given_is_the_one_used(tmp_path):
    run = run_script("--dry-run", "--out", str(tmp_path), python=str(tmp_path / "no-such-python"))
    assert run.returncode == 1
    assert f"{tmp_path / 'no-such-python'} lacks torch" in run.stderr


def test_unknown_arguments_are_refused():
    run = run_script("--fast")
    assert run.returncode == 2
    assert "unknown argument '--fast'" in run.stderr


@pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v nvidia-smi"], capture_output=True).returncode == 0,
    reason="a GPU driver is present",
)
def test_without_a_gpu_only_the_dry_run_is_allowed(tmp_path):
    run = run_script("--out", str(tmp_path))
    assert run.returncode == 2
    assert "--dry-run" in run.stderr


def test_dry_run_plans_the_int8_vs_fp16_trtexec_step(tmp_path):
    """Step 7: fp16 and INT8 engines of one export, profiled layer by layer, summarised into JSON."""
    run = run_script("--dry-run", "--out", str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    command = {s["step"]: s["command"] for s in json.loads((tmp_path / "summary.json").read_text())["steps"]}[
        "trt_int8"
    ]
    for piece in (
        "--profilingVerbosity=detailed",
        "--dumpLayerInfo",
        "--dumpProfile",
        "sspnet quantize",
        "--exportLayerInfo=",
        "--exportTimes=",
        "sspnet.benchmark.trt_layers",
        "trt_int8_layers.json",
    ):
        assert piece in command, piece
    assert command.count("build-engine") == 2 and "fp16.layers.json" in command and "int8.layers.json" in command
