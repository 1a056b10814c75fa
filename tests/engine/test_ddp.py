"""Data-parallel training (torchrun, gloo on CPU) against one process with the same global batch.

Setting where the two must agree: FoveaBox (no random sampling), a plain FPN neck (the SSFPN's CAM
BatchNorm normalises per process by design, as the original's per-GPU BN does, which would make
the runs differ), the backbone's BatchNorms frozen (norm_eval, the preset default), no augmentation,
and images that differ in their pixels but share their boxes (FoveaBox divides its losses by the
batch's number of positives, which then equals the mean of per-image normalisations).
Two processes x 1 image must then log the same total loss per iteration as one process x 2 images
(rank 0 logs the mean over processes), end with the same weights and report the same val AP (the
evaluation is sharded over the processes and gathered): that checks the sharding of the batches,
the gradient averaging and the rank-0-only writing. Wrong sharding (both ranks on the same image)
changes the losses, because the images differ; one process with batch 1 is ~1e-2 off in the loss.
"""

import os
import subprocess
import sys

import pytest
import torch
from train_settings import TINY_FOVEA

from sspnet.engine.runlog import read_log
from sspnet.io.checkpoint_files import read_checkpoint

PLAIN_FPN = {**TINY_FOVEA, "neck": "fpn", "attention_loss": "none"}
ITERATIONS = 5


def _train_argv(data, out, batch_size):
    sets = [item for key, value in PLAIN_FPN.items() for item in ("--set", f"{key}={value}")]
    return [
        "-m",
        "sspnet",
        "train",
        "--preset",
        "fovea_r18_sspnet_small",
        "--data",
        str(data),
        "--out",
        str(out),
        "--max-iters",
        str(ITERATIONS),
        "--batch-size",
        str(batch_size),
        "--workers",
        "0",
        "--device",
        "cpu",
        "--augment",
        "none",
        "--log-every",
        "1",
        "--eval-every",
        "1",
        *sets,
    ]


def _run(argv, timeout=150):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_two_processes_match_one_process_with_the_same_global_batch(same_boxes_data, tmp_path):
    single, multi = tmp_path / "single", tmp_path / "ddp"
    _run(_train_argv(same_boxes_data, single, batch_size=2))
    _run(
        [
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            *_train_argv(same_boxes_data, multi, batch_size=1),
        ]
    )

    single_log = read_log(single / "log.jsonl", "train")
    multi_log = read_log(multi / "log.jsonl", "train")
    assert [r["iter"] for r in multi_log] == list(range(1, ITERATIONS + 1))  # rank 0 alone writes the log
    single_loss = [r["loss"] for r in single_log]
    multi_loss = [r["loss"] for r in multi_log]
    assert len(set(round(v, 4) for v in single_loss)) == ITERATIONS  # the loss moves: not a vacuous match
    assert multi_loss == pytest.approx(single_loss, rel=1e-5)  # batch-1 single process: ~1e-2 off
    for key in ("loss_cls", "loss_bbox"):
        assert [r[key] for r in multi_log] == pytest.approx([r[key] for r in single_log], rel=1e-5), key

    # evaluation after each epoch (2 iterations) and at the end, sharded over the two processes
    single_val = read_log(single / "log.jsonl", "val")
    multi_val = read_log(multi / "log.jsonl", "val")
    assert [r["iter"] for r in multi_val] == [r["iter"] for r in single_val] == [2, 4, 5]
    for a, b in zip(single_val, multi_val):
        assert b["AP50_all"] == pytest.approx(a["AP50_all"], abs=1e-6)

    single_w, _ = read_checkpoint(single / "last.safetensors")
    multi_w, info = read_checkpoint(multi / "last.safetensors")
    assert info["extra"]["iteration"] == ITERATIONS
    for key, value in single_w.items():
        if value.is_floating_point():
            torch.testing.assert_close(multi_w[key], value, rtol=1e-5, atol=1e-6, msg=key)  # batch 1: 1e-3 off
