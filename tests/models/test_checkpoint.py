"""Checkpoints: our safetensors format, original mmdetection .pth files, atomic writes, convert."""

import os

import pytest
import torch
from spec_tables import backbone_table, fovea_head_table, neck_table, random_state_dict, spec_table

import sspnet
from sspnet.checkpoint import load_model, save_checkpoint
from sspnet.cli import main as cli_main
from sspnet.io.atomic import atomic_write, atomic_write_bytes
from sspnet.io.checkpoint_files import check_state_dict, detect_variant, read_checkpoint
from sspnet.models import build_model

SMALL = "faster_rcnn_r18_sspnet_small"


def test_spec_tables_have_the_spec_totals():
    assert len(backbone_table()) == 318 and len(neck_table()) == 49 and len(fovea_head_table()) == 20
    assert len(spec_table("faster_rcnn")) == 381 and len(spec_table("fovea")) == 387

    def params(table):
        return sum(torch.Size(s).numel() for k, s in table.items() if "running" not in k and "num_batches" not in k)

    assert params(backbone_table()) == 23_508_032 and params(neck_table()) == 8_992_004
    assert params(spec_table("faster_rcnn")) == 47_007_366 and params(spec_table("fovea")) == 37_232_201


@pytest.mark.parametrize("variant,preset", [("faster_rcnn", "faster_rcnn_r50_sspnet"), ("fovea", "fovea_r50_sspnet")])
def test_spec_key_table_loads_strictly_and_bad_keys_are_named(variant, preset):
    model = build_model(preset)
    state = random_state_dict(spec_table(variant))
    check_state_dict(model, state)
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.neck.CAM.att_conv[2].weight, state["neck.CAM.att_conv.2.weight"])
    assert detect_variant(state) == variant

    renamed = dict(state)
    renamed["neck.CAM.attention_conv.0.weight"] = renamed.pop("neck.CAM.att_conv.0.weight")
    with pytest.raises(
        ValueError,
        match=r"missing keys: neck\.CAM\.att_conv\.0\.weight.*unexpected keys: neck\.CAM\.attention_conv\.0\.weight",
    ):
        check_state_dict(model, renamed)
    reshaped = dict(state)
    reshaped["backbone.layer3.0.conv2.weight"] = torch.zeros(256, 256, 1, 1)
    with pytest.raises(
        ValueError,
        match=r"shape mismatch: backbone\.layer3\.0\.conv2\.weight "
        r"\(checkpoint \[256, 256, 1, 1\], model \[256, 256, 3, 3\]\)",
    ):
        check_state_dict(model, reshaped)


def test_fake_mmdet_pth_loads_through_load_model(tmp_path):
    state = random_state_dict(spec_table("fovea"), seed=1)
    path = tmp_path / "fovea_sspnet.pth"
    torch.save(
        {
            "meta": {"mmdet_version": "2.19.0+abc", "CLASSES": "person", "epoch": 12, "config": "model = dict(...)"},
            "state_dict": {f"module.{k}": v for k, v in state.items()},  # DDP prefix is stripped
            "optimizer": {
                "state": {0: {"momentum_buffer": torch.zeros(3)}},
                "param_groups": [{"lr": 0.002, "params": [0]}],
            },
        },
        path,
    )
    model = load_model(path)
    assert model.config.variant == "fovea" and not model.training
    assert model.checkpoint_info["classes"] == ["person"] and model.checkpoint_info["preset"] == "fovea_r50_sspnet"
    assert torch.equal(model.bbox_head.conv_reg.weight, state["bbox_head.conv_reg.weight"])
    # a renamed key in the file is named in the error
    state["bbox_head.conv_regression.weight"] = state.pop("bbox_head.conv_reg.weight")
    torch.save({"meta": {}, "state_dict": state}, path)
    with pytest.raises(ValueError, match=r"bbox_head\.conv_regression\.weight"):
        load_model(path)


class Payload:
    """Stands for arbitrary code in a malicious pickle: unpickling it would set the flag."""

    triggered = False

    def __setstate__(self, state):
        Payload.triggered = True


def test_pth_with_a_pickled_custom_class_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(1)}, "meta": {"x": Payload()}}, path)
    with pytest.raises(ValueError, match=r"refusing to unpickle .*Payload"):
        load_model(path)
    assert not Payload.triggered


def test_pth_with_both_or_no_head_keys_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="neither"):
        detect_variant({"backbone.conv1.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="both"):
        detect_variant({"rpn_head.x": torch.zeros(1), "bbox_head.y": torch.zeros(1)})


def test_safetensors_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model(SMALL, score_thr=0.2)
    path = tmp_path / "ckpt" / "model.safetensors"
    save_checkpoint(
        path,
        model,
        preset=SMALL,
        overrides={"score_thr": 0.2, "pretrained": "/x/resnet18.pth"},
        classes=("person",),
        extra={"epoch": 3, "ap50": 0.5},
    )
    state, info = read_checkpoint(path)
    assert info["preset"] == SMALL and info["overrides"] == {"score_thr": 0.2}  # pretrained is not stored
    assert info["classes"] == ["person"] and info["extra"] == {"epoch": 3, "ap50": 0.5}
    assert info["sspnet_version"] == sspnet.__version__ and info["format_version"] == 1
    assert set(state) == set(model.state_dict())
    loaded = load_model(path)
    assert loaded.config.score_thr == 0.2 and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert load_model(path, score_thr=0.4).config.score_thr == 0.4
    with pytest.raises(ValueError, match="saved from preset"):
        load_model(path, preset="fovea_r18_sspnet_small")
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]  # no temp files left


def test_safetensors_file_without_our_metadata_is_rejected(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"a": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="without sspnet metadata"):
        read_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.safetensors")


def test_save_rejects_invalid_overrides_and_extra(tmp_path):
    model = build_model(SMALL)
    with pytest.raises(ValueError, match="unknown key"):
        save_checkpoint(tmp_path / "m.safetensors", model, preset=SMALL, overrides={"bogus": 1})
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(tmp_path / "m.safetensors", model, preset=SMALL, extra={"obj": object()})
    assert not list(tmp_path.iterdir())


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "state.bin"
    atomic_write_bytes(path, b"old")

    def failing_writer(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, failing_writer)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.bin"]


def test_convert_cli_writes_our_format(tmp_path, capsys):
    torch.manual_seed(0)
    source_model = build_model(SMALL)
    source = tmp_path / "original.pth"
    torch.save(
        {"meta": {"CLASSES": "person", "mmdet_version": "2.19.0"}, "state_dict": source_model.state_dict()}, source
    )
    out = tmp_path / "converted.safetensors"
    assert cli_main(["convert", str(source), str(out), "--preset", SMALL]) == 0
    printed = capsys.readouterr().out
    n = len(source_model.state_dict())
    assert f"{n} / {n}" in printed and "faster_rcnn" in printed and "parameters" in printed
    state, info = read_checkpoint(out)
    assert info["preset"] == SMALL and info["extra"]["mmdet_version"] == "2.19.0"
    assert torch.equal(state["roi_head.bbox_head.fc_cls.weight"], source_model.roi_head.bbox_head.fc_cls.weight)
    # a wrong preset fails cleanly with the key names (a user error: exit 2, one line)
    assert cli_main(["convert", str(source), str(out), "--preset", "faster_rcnn_r50_sspnet"]) == 2
    err = capsys.readouterr().err
    assert "shape mismatch" in err and "Traceback" not in err
