"""End-to-end training runs on tiny data: CLI outputs, exact resume, crash during a save."""

import argparse
import os

import pytest
import torch
from train_settings import TINY_FASTER, TINY_FOVEA

from sspnet.checkpoint import load_model
from sspnet.cli import main as sspnet_main
from sspnet.cli import train as train_cli
from sspnet.engine.config import load_config
from sspnet.engine.runlog import read_log
from sspnet.engine.state import decode_resume_state
from sspnet.engine.trainer import train
from sspnet.errors import UsageError
from sspnet.io.checkpoint_files import read_checkpoint


def _sets(overrides):
    return [item for key, value in overrides.items() for item in ("--set", f"{key}={value}")]


def _config(data, out, preset, overrides, **options):
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    argv = ["--preset", preset, "--data", str(data), "--out", str(out), "--device", "cpu", *_sets(overrides)]
    for key, value in options.items():
        argv += ["--" + key.replace("_", "-"), str(value)]
    return train_cli.config_from_args(parser.parse_args(argv))


def _weights(path):
    state, _ = read_checkpoint(path)
    return state


def test_cli_run_writes_config_log_and_checkpoints(synth_data, tmp_path, capsys):
    out = tmp_path / "run"
    code = sspnet_main(
        [
            "train",
            "--preset",
            "fovea_r18_sspnet_small",
            "--data",
            str(synth_data),
            "--out",
            str(out),
            "--epochs",
            "2",
            "--batch-size",
            "3",
            "--workers",
            "1",
            "--device",
            "cpu",
            "--augment",
            "none",
            "--log-every",
            "1",
            *_sets(TINY_FOVEA),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "AP50" in printed and "tiny" in printed  # the TinyPerson table after each evaluation

    config = load_config(out / "config.yaml")
    assert (config.iters_per_epoch, config.total_iters) == (2, 4)  # 6 train images / batch 3, 2 epochs
    assert config.milestones == [2, 4]  # epochs round(2*8/12) = 1 and round(2*11/12) = 2
    train_records = read_log(out / "log.jsonl", "train")
    assert [r["iter"] for r in train_records] == [1, 2, 3, 4]
    assert [r["epoch"] for r in train_records] == [0, 0, 1, 1]
    for record in train_records:
        assert record["loss"] == pytest.approx(sum(v for k, v in record.items() if k.startswith("loss_")), rel=1e-5)
    val_records = read_log(out / "log.jsonl", "val")
    assert [r["iter"] for r in val_records] == [2, 4]  # after each epoch
    assert all("AP50_tiny" in r for r in val_records) and val_records[0]["best"] is True

    # last/best are loadable checkpoints of our format; best holds the best val AP50_tiny
    last = load_model(out / "last.safetensors")
    assert last.checkpoint_info["preset"] == "fovea_r18_sspnet_small"
    assert last.checkpoint_info["extra"]["iteration"] == 4
    best_iteration = max(val_records, key=lambda r: (r["AP50_tiny"], -r["iter"]))["iter"]
    assert read_checkpoint(out / "best.safetensors")[1]["extra"]["iteration"] == best_iteration
    state = decode_resume_state(out / "last_state.safetensors")
    assert state["progress"]["iteration"] == 4
    assert state["progress"]["best_metric"] == pytest.approx(max(r["AP50_tiny"] for r in val_records))


def test_cli_reports_bad_arguments(tmp_path, capsys):
    code = sspnet_main(
        [
            "train",
            "--preset",
            "fovea_r18_sspnet_small",
            "--data",
            str(tmp_path / "missing"),
            "--out",
            str(tmp_path / "run"),
            "--max-iters",
            "2",
            "--device",
            "cpu",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("sspnet train: --data:") and "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_resume_equals_an_uninterrupted_run_and_drops_the_rolled_back_log(synth_data, tmp_path):
    # Faster R-CNN: its RPN / RoI samplers draw from the global RNG, so the RNG state must resume too.
    options = dict(max_iters=5, batch_size=2, workers=0, augment="none", log_every=1, eval_every=0)
    reference = _config(synth_data, tmp_path / "straight", "faster_rcnn_r18_sspnet_small", TINY_FASTER, **options)
    train(reference)

    split = _config(synth_data, tmp_path / "split", "faster_rcnn_r18_sspnet_small", TINY_FASTER, **options)
    first = train(split, stop_after_iters=2)  # stops mid-epoch (3 iterations per epoch)
    assert first.iteration == 2
    assert decode_resume_state(tmp_path / "split" / "last_state.safetensors")["progress"]["iteration"] == 2
    # as if the run had gone on to iteration 4 and been killed mid-line before its next checkpoint
    with open(tmp_path / "split" / "log.jsonl", "a") as log:
        log.write(
            '{"type": "train", "iter": 3, "loss": 9.0}\n{"type": "val", "iter": 3, "AP50_tiny": 1.0}\n'
            '{"type": "train", "iter": 4, "lo'
        )
    second = train(load_config(tmp_path / "split" / "config.yaml"), resume=True)
    assert second.iteration == 5

    straight_log = read_log(tmp_path / "straight" / "log.jsonl", "train")
    split_log = read_log(tmp_path / "split" / "log.jsonl", "train")
    assert [r["iter"] for r in split_log] == [1, 2, 3, 4, 5]
    for a, b in zip(straight_log, split_log):
        for key in ("loss", "loss_rpn_cls", "loss_cls", "loss_bbox", "lr"):
            assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-9), (a["iter"], key)
    straight_w = _weights(tmp_path / "straight" / "last.safetensors")
    split_w = _weights(tmp_path / "split" / "last.safetensors")
    for key, value in straight_w.items():
        torch.testing.assert_close(split_w[key], value, rtol=1e-6, atol=1e-7, msg=key)
    assert read_log(tmp_path / "split" / "log.jsonl", "val") == []
    resume = read_log(tmp_path / "split" / "log.jsonl", "resume")
    assert [(r["iter"], r["rolled_back_records"]) for r in resume] == [(2, 3)]


def test_crash_during_a_save_keeps_the_previous_checkpoint(synth_data, tmp_path, monkeypatch):
    options = dict(max_iters=4, batch_size=2, workers=0, augment="none", log_every=1, eval_every=0)
    reference = _config(synth_data, tmp_path / "straight", "fovea_r18_sspnet_small", TINY_FOVEA, **options)
    train(reference)

    run = tmp_path / "run"
    train(_config(synth_data, run, "fovea_r18_sspnet_small", TINY_FOVEA, **options), stop_after_iters=2)
    before_state = (run / "last_state.safetensors").read_bytes()
    before_weights = (run / "last.safetensors").read_bytes()

    # the next save (end of epoch 1, iteration 3) dies after its temporary file is fully written
    real_replace = os.replace
    written = []

    def crash(src, dst):
        written.append((os.path.getsize(src), dst))
        raise OSError("simulated crash while renaming the checkpoint into place")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        train(load_config(run / "config.yaml"), resume=True)
    monkeypatch.setattr(os, "replace", real_replace)
    assert written and written[0][0] > 0 and str(written[0][1]).endswith("last_state.safetensors")

    # the previous checkpoint is intact and loadable, and no temporary file is left behind
    assert (run / "last_state.safetensors").read_bytes() == before_state
    assert (run / "last.safetensors").read_bytes() == before_weights
    assert decode_resume_state(run / "last_state.safetensors")["progress"]["iteration"] == 2
    load_model(run / "last.safetensors")
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]

    # resuming from it reproduces the uninterrupted run
    result = train(load_config(run / "config.yaml"), resume=True)
    assert result.iteration == 4
    straight_w = _weights(tmp_path / "straight" / "last.safetensors")
    resumed_w = _weights(run / "last.safetensors")
    for key, value in straight_w.items():
        torch.testing.assert_close(resumed_w[key], value, rtol=1e-6, atol=1e-7, msg=key)


def test_resume_without_checkpoint_is_a_clear_error(synth_data, tmp_path):
    config = _config(
        synth_data, tmp_path / "run", "fovea_r18_sspnet_small", TINY_FOVEA, max_iters=2, workers=0, augment="none"
    )
    from sspnet.engine.config import finalize_schedule, save_config

    (tmp_path / "run").mkdir()
    finalize_schedule(config, 6, 1)
    save_config(config, tmp_path / "run" / "config.yaml")
    with pytest.raises(UsageError, match="no complete checkpoint"):
        train(load_config(tmp_path / "run" / "config.yaml"), resume=True)
