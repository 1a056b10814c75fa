"""Config resolution from the command line and the dataset YAML, and its errors."""

import argparse
import json

import pytest
import yaml

from sspnet.cli import train as train_cli
from sspnet.engine.config import (
    TrainConfig,
    config_from_dict,
    finalize_schedule,
    load_config,
    resolve_data,
    save_config,
    validate,
)
from sspnet.errors import InputError, UsageError


def _write_split(root, name):
    (root / "imgs").mkdir(exist_ok=True)
    path = root / f"{name}.json"
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    return path


def _args(**kwargs):
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    argv = []
    for key, value in kwargs.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            for v in value:
                argv += [flag, str(v)]
        else:
            argv += [flag, str(value)]
    return parser.parse_args(argv)


@pytest.fixture
def synth_layout(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    for split in ("train", "val"):
        (tmp_path / "annotations" / f"{split}.json").write_text("{}")
    return tmp_path


def test_folder_layout(synth_layout):
    data = resolve_data(synth_layout)
    assert data.train.annotations.endswith("annotations/train.json")
    assert data.val.annotations.endswith("annotations/val.json")
    assert data.train.images == data.val.images == str((synth_layout / "images").resolve())


def test_folder_without_val_has_no_val_split(synth_layout):
    (synth_layout / "annotations" / "val.json").unlink()
    assert resolve_data(synth_layout).val is None


def test_folder_with_missing_parts_names_them(tmp_path):
    with pytest.raises(InputError, match=r"missing: .*images.*train\.json"):
        resolve_data(tmp_path)


def test_yaml_relative_paths_resolve_against_the_yaml(tmp_path):
    _write_split(tmp_path, "tr")
    _write_split(tmp_path, "va")
    spec = tmp_path / "data.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "train": {"images": "imgs", "annotations": "tr.json"},
                "val": {"images": str(tmp_path / "imgs"), "annotations": "va.json"},
            }
        )
    )
    data = resolve_data(spec)
    assert data.train.images == str((tmp_path / "imgs").resolve())
    assert data.train.annotations == str((tmp_path / "tr.json").resolve())
    assert data.val.annotations == str((tmp_path / "va.json").resolve())
    assert data.source == str(spec)


@pytest.mark.parametrize(
    "content, message",
    [
        ("- a\n- b\n", "must hold a mapping"),
        ("val: {images: imgs, annotations: tr.json}\n", "no 'train' split"),
        ("train: {images: imgs, annotations: tr.json}\ntest: {}\n", r"unknown key\(s\) \['test'\]"),
        ("train: imgs\n", "split 'train' must be a mapping"),
        ("train: {images: imgs}\n", "exactly the keys"),
        ("train: {images: nowhere, annotations: tr.json}\n", "images folder .*nowhere"),
        ("train: {images: imgs, annotations: missing.json}\n", "annotation file .*missing.json"),
        ("train: {images: 3, annotations: tr.json}\n", "'images' must be a non-empty path"),
        ("train: {images: [unclosed\n", "not valid YAML"),
    ],
)
def test_yaml_errors_name_the_problem(tmp_path, content, message):
    _write_split(tmp_path, "tr")
    spec = tmp_path / "data.yaml"
    spec.write_text(content)
    with pytest.raises(InputError, match=message):
        resolve_data(spec)


def test_data_argument_errors(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        resolve_data(tmp_path / "nope")
    other = tmp_path / "data.txt"
    other.write_text("x")
    with pytest.raises(InputError, match="not a .yaml"):
        resolve_data(other)


def test_cli_defaults_follow_the_spec_recipe(synth_layout):
    config = train_cli.config_from_args(
        _args(preset="fovea_r18_sspnet_small", data=synth_layout, out=synth_layout / "run", device="cpu")
    )
    assert (config.lr, config.momentum, config.weight_decay) == (0.002, 0.9, 1e-4)
    assert config.epochs == 12 and config.max_iters is None
    assert config.batch_size == 4  # FoveaBox: 4 images per GPU
    assert config.clip_grad is None and config.amp is False and config.augment == "full"
    faster = train_cli.config_from_args(
        _args(preset="faster_rcnn_r18_sspnet_small", data=synth_layout, out=synth_layout / "run", device="cpu")
    )
    assert faster.batch_size == 1  # Faster R-CNN: 1 image per GPU


def test_cli_recipe_fills_preset_overrides_and_optimiser_and_explicit_flags_win(synth_layout):
    from sspnet.engine.recipes import SYNTHETIC_CPU

    config = train_cli.config_from_args(
        _args(recipe="synthetic-cpu", data=synth_layout, out="r", device="cpu", max_iters=10)
    )
    assert config.preset == SYNTHETIC_CPU.preset and config.model_overrides == SYNTHETIC_CPU.overrides
    assert (config.batch_size, config.lr, config.clip_grad, config.augment) == (2, 0.02, 5.0, "none")
    mine = train_cli.config_from_args(
        _args(recipe="synthetic-cpu", data=synth_layout, out="r", device="cpu", lr=0.01, set=["score_thr=0.1"])
    )
    assert mine.lr == 0.01 and mine.batch_size == 2
    assert mine.model_overrides == {**SYNTHETIC_CPU.overrides, "score_thr": 0.1}
    with pytest.raises(UsageError, match="unknown; choose from"):
        train_cli.config_from_args(_args(recipe="nope", data=synth_layout, out="r", device="cpu"))
    with pytest.raises(UsageError, match="not --preset"):
        train_cli.config_from_args(
            _args(
                recipe="synthetic-cpu", preset="faster_rcnn_r18_sspnet_small", data=synth_layout, out="r", device="cpu"
            )
        )


def test_cli_overrides_are_validated_by_the_model_config(synth_layout):
    config = train_cli.config_from_args(
        _args(
            preset="fovea_r18_sspnet_small",
            data=synth_layout,
            out="r",
            device="cpu",
            set=["score_thr=0.1", "neck=fpn", "attention_loss=none"],
        )
    )
    assert config.model_overrides == {"score_thr": 0.1, "neck": "fpn", "attention_loss": "none"}
    with pytest.raises(UsageError, match="no_such_key"):
        train_cli.config_from_args(
            _args(preset="fovea_r18_sspnet_small", data=synth_layout, out="r", device="cpu", set=["no_such_key=1"])
        )
    with pytest.raises(UsageError, match="KEY=VALUE"):
        train_cli.parse_overrides(["score_thr"])


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(epochs=None, max_iters=None), "exactly one of --epochs / --max-iters"),
        (dict(epochs=2, max_iters=5), "exactly one of --epochs / --max-iters"),
        (dict(epochs=0), "--epochs must be a positive integer"),
        (dict(batch_size=0), "--batch-size must be a positive integer"),
        (dict(lr=0.0), "--lr must be a finite number > 0"),
        (dict(lr=-0.01), "--lr must be a finite number > 0"),
        (dict(lr=float("nan")), "--lr must be a finite number > 0"),
        (dict(lr=float("inf")), "--lr must be a finite number > 0"),
        (dict(clip_grad=-1.0), "--clip-grad must be a finite number > 0"),
        (dict(seed=-1), r"--seed must be an integer in \[0, 2\*\*32\)"),
        (dict(workers=-1), "--workers must be an integer >= 0"),
        (dict(log_every=0), "--log-every must be a positive integer"),
        (dict(augment="heavy"), "--augment must be one of"),
        (dict(device="tpu"), "--device must be one of"),
        (dict(amp=True), "--amp needs --device cuda"),
    ],
)
def test_validation_errors_name_the_option(synth_layout, changes, message):
    config = TrainConfig(preset="fovea_r18_sspnet_small", data=resolve_data(synth_layout), out="r", epochs=1)
    for key, value in changes.items():
        setattr(config, key, value)
    with pytest.raises(UsageError, match=message):
        validate(config)


def test_cli_rejects_amp_on_cpu_and_unknown_preset(synth_layout):
    with pytest.raises(UsageError, match="--amp needs --device cuda"):
        train_cli.config_from_args(
            _args(preset="fovea_r18_sspnet_small", data=synth_layout, out="r", device="cpu", amp=True)
        )
    with pytest.raises(UsageError, match="unknown preset"):
        train_cli.config_from_args(_args(preset="nope", data=synth_layout, out="r", device="cpu"))


def test_schedule_is_scaled_to_the_run(synth_layout):
    config = TrainConfig(preset="p", data=resolve_data(synth_layout), out="r", epochs=12, batch_size=2)
    finalize_schedule(config, dataset_size=101, world_size=2)  # ceil(101 / 4) = 26 iterations / epoch
    assert (config.iters_per_epoch, config.total_iters) == (26, 312)
    assert config.milestones == [8 * 26, 11 * 26]
    assert config.warmup_iters == 31  # 10 % of 312 < 500
    config = TrainConfig(preset="p", data=resolve_data(synth_layout), out="r", max_iters=9000)
    finalize_schedule(config, dataset_size=10, world_size=1)
    assert config.milestones == [6000, 8250] and config.warmup_iters == 500


def test_config_yaml_round_trip_and_errors(synth_layout, tmp_path):
    config = TrainConfig(
        preset="fovea_r18_sspnet_small",
        data=resolve_data(synth_layout),
        out="r",
        max_iters=7,
        model_overrides={"neck": "fpn"},
    )
    finalize_schedule(config, dataset_size=5, world_size=1)
    path = tmp_path / "config.yaml"
    save_config(config, path)
    assert load_config(path) == config
    raw = yaml.safe_load(path.read_text())
    with pytest.raises(InputError, match=r"unknown key\(s\) \['colour'\]"):
        config_from_dict({**raw, "colour": 1})
    with pytest.raises(InputError, match="missing key 'preset'"):
        config_from_dict({k: v for k, v in raw.items() if k != "preset"})
    with pytest.raises(UsageError, match="nothing to resume"):
        load_config(tmp_path / "absent.yaml")


def test_resume_rejects_changed_settings_but_allows_workers(synth_layout, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig(preset="fovea_r18_sspnet_small", data=resolve_data(synth_layout), out=str(run), max_iters=7)
    finalize_schedule(config, dataset_size=5, world_size=1)
    save_config(config, run / "config.yaml")
    resumed = train_cli.resume_config(_args(out=run, resume=True, workers=0))
    assert resumed.workers == 0 and resumed.max_iters == 7
    with pytest.raises(UsageError, match="--lr 0.1 differs"):
        train_cli.resume_config(_args(out=run, resume=True, lr=0.1))
    with pytest.raises(UsageError, match="--set .* differs"):
        train_cli.resume_config(_args(out=run, resume=True, set=["neck=fpn"]))
