"""`sspnet train` in a user's hands: one process owns a run folder, a killed run leaves no stale lock
and its resume drops the rolled-back log records, bad input is one line (exit 2) before anything is
written, and the data load report is printed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import save_file
from train_settings import TINY_FOVEA

from sspnet.cli import main as sspnet_main
from sspnet.data.tinyperson import load_annotations
from sspnet.engine.config import TrainConfig, finalize_schedule, load_config, resolve_data, save_config
from sspnet.engine.runlog import read_log
from sspnet.engine.state import decode_resume_state
from sspnet.engine.trainer import Trainer
from sspnet.errors import BusyError
from sspnet.io.run_lock import acquire_run_lock

PRESET = "fovea_r18_sspnet_small"
SETS = [item for key, value in TINY_FOVEA.items() for item in ("--set", f"{key}={value}")]
QUICK = [
    "--batch-size",
    "2",
    "--workers",
    "0",
    "--device",
    "cpu",
    "--augment",
    "none",
    "--eval-every",
    "0",
    "--log-every",
    "1",
    *SETS,
]

HOLDER = """
import sys, time
from sspnet.io.run_lock import acquire_run_lock
lock = acquire_run_lock(sys.argv[1])
print("locked", flush=True)
time.sleep(600)
"""


def snapshot(folder) -> dict[str, str]:
    """Relative path -> sha256 of every file below `folder`."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def train_cli(capsys, *argv) -> tuple[int, str, str]:
    code = sspnet_main(["train", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_user_error(code: int, err: str, fragment: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sspnet train: "), err
    assert fragment in lines[0], err


def fabricated_run(synth_data, run):
    """A run folder as a live run has it: config, a checkpoint stand-in, a log."""
    config = TrainConfig(
        preset=PRESET,
        data=resolve_data(synth_data),
        out=str(run),
        max_iters=4,
        batch_size=2,
        workers=0,
        augment="none",
        eval_every=0,
        model_overrides=dict(TINY_FOVEA),
    )
    run.mkdir()
    finalize_schedule(config, 6, 1)
    save_config(config, run / "config.yaml")
    save_file({"stand_in": torch.zeros(1)}, str(run / "last_state.safetensors"))  # not a resume state
    (run / "log.jsonl").write_text('{"type": "train", "iter": 1, "loss": 1.0}\n')


# --- one process owns a run folder -----------------------------------------------------------------


def test_a_locked_run_folder_refuses_a_second_train_and_a_resume_and_nothing_changes(synth_data, tmp_path, capsys):
    run = tmp_path / "run"
    fabricated_run(synth_data, run)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(run)
        busy = f"{run} is in use by another sspnet train process"
        code, _, err = train_cli(
            capsys, "--preset", PRESET, "--data", synth_data, "--out", run, "--max-iters", 2, *QUICK
        )
        assert_one_line_user_error(code, err, busy)
        code, _, err = train_cli(capsys, "--out", run, "--resume")
        assert_one_line_user_error(code, err, busy)
        assert snapshot(run) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # the holder died without cleaning up: the lock is free, so --resume gets as far as the checkpoint
    code, _, err = train_cli(capsys, "--out", run, "--resume")
    assert_one_line_user_error(code, err, "last_state.safetensors: not an sspnet resume state")


def test_a_killed_train_leaves_no_stale_lock_and_its_resume_drops_the_rolled_back_log_records(synth_data, tmp_path):
    run = tmp_path / "run"
    argv = [
        sys.executable,
        "-m",
        "sspnet",
        "train",
        "--preset",
        PRESET,
        "--data",
        str(synth_data),
        "--out",
        str(run),
        "--max-iters",
        "1000",
        *QUICK,
    ]  # 3 iterations per epoch: a checkpoint every 3
    with open(tmp_path / "train.out", "w") as out:
        live = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            deadline = time.monotonic() + 300
            while not (
                (run / "last_state.safetensors").exists()
                and (run / "log.jsonl").exists()
                and len((run / "log.jsonl").read_text().splitlines()) >= 5
            ):
                assert live.poll() is None, (tmp_path / "train.out").read_text()[-3000:]
                assert time.monotonic() < deadline, "the training run did not get going"
                time.sleep(0.05)
            with pytest.raises(BusyError):  # the live run holds its folder
                acquire_run_lock(run)
        finally:
            live.send_signal(signal.SIGKILL)
            live.wait(timeout=30)

    checkpoint = decode_resume_state(run / "last_state.safetensors")["progress"]["iteration"]
    rolled_back = 0
    for line in (run / "log.jsonl").read_text().splitlines():
        try:
            rolled_back += json.loads(line)["iter"] > checkpoint
        except ValueError:  # a line torn by the kill
            rolled_back += 1
    trainer = Trainer(load_config(run / "config.yaml"), resume=True)  # the lock is free again
    trainer.fit(stop_after_iters=checkpoint + 2)
    assert [r["iter"] for r in read_log(run / "log.jsonl", "train")] == list(range(1, checkpoint + 3))
    resume = read_log(run / "log.jsonl", "resume")
    assert len(resume) == 1 and resume[0]["iter"] == checkpoint and resume[0]["rolled_back_records"] == rolled_back


# --- bad input: one line, exit 2, nothing written ----------------------------------------------------


def _copy_data(synth_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synth_data, data)
    return data


def _empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def _existing_file(tmp_path):
    (tmp_path / "run").write_text("notes")
    return tmp_path / "run"


# case -> (argv from (synth_data, tmp_path); --preset is added unless a preset, recipe or --resume is
# given), a fragment of the expected message
BAD_INPUT = {
    "missing data folder": (lambda d, t: ["--data", t / "nope", "--out", t / "run"], "does not exist"),
    "data folder without annotations": (lambda d, t: ["--data", _empty_folder(t), "--out", t / "run"], "missing:"),
    "unknown preset": (lambda d, t: ["--preset", "nope", "--data", d, "--out", t / "run"], "unknown preset 'nope'"),
    "unknown recipe": (lambda d, t: ["--recipe", "nope", "--data", d, "--out", t / "run"], "--recipe:"),
    "zero epochs": (
        lambda d, t: ["--data", d, "--out", t / "run", "--epochs", 0],
        "--epochs must be a positive integer",
    ),
    "negative max-iters": (lambda d, t: ["--data", d, "--out", t / "run", "--max-iters", -5], "--max-iters must be"),
    "negative lr": (lambda d, t: ["--data", d, "--out", t / "run", "--lr", -0.1], "--lr must be a finite number > 0"),
    "zero batch": (lambda d, t: ["--data", d, "--out", t / "run", "--batch-size", 0], "--batch-size must be"),
    "negative seed": (lambda d, t: ["--data", d, "--out", t / "run", "--seed", -1], "--seed must be"),
    "set without value": (lambda d, t: ["--data", d, "--out", t / "run", "--set", "neck"], "KEY=VALUE"),
    "set unknown key": (lambda d, t: ["--data", d, "--out", t / "run", "--set", "no_such_key=1"], "no_such_key"),
    "out is a file": (lambda d, t: ["--data", d, "--out", _existing_file(t)], "it is an existing text file"),
    "out is the data folder": (lambda d, t: ["--data", d, "--out", d], "it is the input folder"),
    "out inside the data folder": (
        lambda d, t: ["--data", d, "--out", d / "images" / "run"],
        "lies inside the input folder",
    ),
    "resume with nothing to resume": (lambda d, t: ["--out", t / "run", "--resume"], "nothing to resume"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_one_line_before_anything_is_written(case, synth_data, tmp_path, capsys):
    data_before = snapshot(synth_data)
    build, fragment = BAD_INPUT[case]
    argv = build(synth_data, tmp_path)
    if "--preset" not in argv and "--recipe" not in argv and "--resume" not in argv:
        argv = ["--preset", PRESET, *argv]
    run_before = snapshot(tmp_path)
    code, _, err = train_cli(capsys, *argv, "--device", "cpu")
    assert_one_line_user_error(code, err, fragment)
    assert snapshot(synth_data) == data_before
    assert snapshot(tmp_path) == run_before  # no config, log, checkpoint or folder written


def test_resume_without_a_checkpoint_and_a_damaged_annotation_file_are_one_line(synth_data, tmp_path, capsys):
    run = tmp_path / "run"
    fabricated_run(synth_data, run)
    (run / "last_state.safetensors").unlink()
    before = snapshot(run)
    code, _, err = train_cli(capsys, "--out", run, "--resume")
    assert_one_line_user_error(code, err, "no complete checkpoint")
    assert {k: v for k, v in snapshot(run).items() if not k.startswith(".")} == before

    data = _copy_data(synth_data, tmp_path)
    (data / "annotations" / "train.json").write_text('{"images": [')
    code, _, err = train_cli(
        capsys, "--preset", PRESET, "--data", data, "--out", tmp_path / "run2", "--max-iters", 2, *QUICK
    )
    assert_one_line_user_error(code, err, "train.json")
    assert not (tmp_path / "run2" / "config.yaml").exists()


def test_out_holding_the_data_yaml_is_refused(synth_data, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    spec = out / "config.yaml"  # would be replaced by the run's own config.yaml
    spec.write_text(
        f"train: {{images: {synth_data / 'images'}, annotations: {synth_data / 'annotations/train.json'}}}\n"
    )
    before = spec.read_bytes()
    code, _, err = train_cli(capsys, "--preset", PRESET, "--data", spec, "--out", out, "--max-iters", 2, *QUICK)
    assert_one_line_user_error(code, err, "it is the folder of the input")
    assert spec.read_bytes() == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_a_device(synth_data, tmp_path, capsys):
    code, _, err = train_cli(
        capsys,
        "--preset",
        PRESET,
        "--data",
        synth_data,
        "--out",
        tmp_path / "run",
        "--max-iters",
        2,
        "--device",
        "cuda",
    )
    assert_one_line_user_error(code, err, "no CUDA device")
    assert not (tmp_path / "run" / "config.yaml").exists()


# --- nothing accepted silently -----------------------------------------------------------------------


def test_train_prints_what_the_loader_kept_and_dropped(synth_data, tmp_path, capsys):
    data = _copy_data(synth_data, tmp_path)
    train_json = data / "annotations" / "train.json"
    coco = json.loads(train_json.read_text())
    first = coco["images"][0]
    coco["images"].append({**first, "id": 9001, "file_name": "not_there.jpg"})  # a missing image
    coco["images"].append({**coco["images"][1], "id": 9002})  # same file, only an ignore region
    coco["annotations"].append(
        {"id": 9001, "image_id": 9002, "bbox": [5, 5, 20, 20], "category_id": 1, "ignore": True, "iscrowd": 0}
    )
    coco["annotations"].append({"id": 9002, "image_id": first["id"], "bbox": [3, 3, 0, 9], "category_id": 1})  # no area
    train_json.write_text(json.dumps(coco))
    expected = load_annotations(train_json, image_root=data / "images")
    without_person = sum(not (~record.ignore_mask).any() for record in expected.records)
    assert without_person >= 1
    expected_val = load_annotations(data / "annotations" / "val.json", image_root=data / "images").report

    code, out, err = train_cli(
        capsys, "--preset", PRESET, "--data", data, "--out", tmp_path / "run", "--max-iters", 1, *QUICK
    )
    assert code == 0, err
    train_line = next(line for line in out.splitlines() if line.startswith("train data: "))
    assert train_line == (
        f"train data: {expected.report}; {without_person} image(s) without a person box not used for training"
    )
    assert "not_there.jpg" in train_line  # the missing image is named
    assert f"val data: {expected_val}" in out.splitlines()
