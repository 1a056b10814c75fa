"""Presets: YAML data validated on load, overrides, listing; parameter counts of the published presets."""

import pytest
import yaml

from sspnet.models import build_model, list_presets, load_preset
from sspnet.models import presets as presets_module


def test_list_presets_rows():
    rows = {r[0]: r for r in list_presets()}
    assert set(rows) >= {
        "faster_rcnn_r50_sspnet",
        "fovea_r50_sspnet",
        "fovea_r50_sspnet_v1",
        "fovea_r50_sspnet_v2",
        "faster_rcnn_r18_sspnet_small",
        "fovea_r18_sspnet_small",
    }
    assert rows["fovea_r50_sspnet"][1:3] == ("fovea", "ResNet-50")
    assert rows["faster_rcnn_r18_sspnet_small"][1:3] == ("faster_rcnn", "ResNet-18")
    assert all(len(r) == 5 and r[4] for r in rows.values())
    # the published presets start from scratch unless told otherwise, and say so
    assert rows["faster_rcnn_r50_sspnet"][3] == "from scratch unless --pretrained imagenet"


def test_published_faster_preset_is_the_spec_config():
    c = load_preset("faster_rcnn_r50_sspnet")
    assert (c.depth, c.frozen_stages, c.norm_eval, c.neck, c.neck_channels) == (50, 1, True, "ssfpn", 256)
    assert c.attention_loss == "v1"
    assert c.anchor_scales == [1.5, 2.5, 3.7, 8.0] and c.anchor_ratios == [0.4, 0.8, 1.4]
    assert (c.rpn_pos_iou_thr, c.rpn_neg_iou_thr, c.rpn_min_pos_iou, c.rpn_sampler) == (0.7, 0.3, 0.3, "icneg")
    assert (c.rpn_num_samples, c.rpn_pos_fraction) == (256, 0.5)
    assert (c.rpn_train_nms_pre, c.rpn_train_max_proposals, c.rpn_test_nms_pre, c.rpn_test_max_proposals) == (
        2000,
        1000,
        1000,
        1000,
    )
    assert (c.roi_num_samples, c.roi_pos_fraction, c.roi_fc_channels, c.roi_bbox_stds) == (
        512,
        0.25,
        1024,
        [0.1, 0.1, 0.2, 0.2],
    )
    assert (c.score_thr, c.nms_method, c.nms_iou_thr, c.nms_min_score, c.max_detections) == (
        0.05,
        "linear",
        0.3,
        0.05,
        500,
    )


# the FoveaBox config fovea_r50_sspnet_4x4_1x_coco of the original code, written out here by hand
SPEC_FOVEA = {
    "depth": 50,
    "frozen_stages": 1,
    "norm_eval": True,
    "neck": "ssfpn",
    "neck_channels": 256,
    "fovea_stacked_convs": 4,
    "fovea_feat_channels": 256,
    "fovea_base_edges": [8, 16, 32, 64, 128],
    "fovea_scale_ranges": [[1, 32], [8, 64], [16, 128], [32, 256], [64, 512]],
    "fovea_sigma": 0.4,
    "fovea_focal_gamma": 1.5,
    "fovea_focal_alpha": 0.4,
    "fovea_smooth_l1_beta": 0.11,
    "fovea_nms_pre": 1000,
    "score_thr": 0.05,
    "nms_method": "linear",
    "nms_iou_thr": 0.3,
    "nms_min_score": 0.05,
    "max_detections": 500,
    "fovea_centre_positive": False,
    "attention_lambda": None,
}


@pytest.mark.parametrize("name, attention", [("fovea_r50_sspnet_v1", "v1"), ("fovea_r50_sspnet_v2", "v2")])
def test_fovea_presets_are_the_original_configs(name, attention):
    c = load_preset(name)
    assert {key: getattr(c, key) for key in SPEC_FOVEA} == SPEC_FOVEA
    assert c.variant == "fovea" and c.attention_loss == attention
    # attention_lambda None = the version's default: v1 0.01 (root tree), v2 1e-4 (latest_version)
    from sspnet.models.attention import DEFAULT_LAMBDA

    assert DEFAULT_LAMBDA == {"v1": 0.01, "v2": 1e-4}
    text = (presets_module.PRESET_DIR / f"{name}.yaml").read_text()
    assert "fovea_r50_sspnet_4x4_1x_coco" in text  # names the original config it reproduces
    assert (
        ("root" in text and "Deviations: none" in text)
        if attention == "v1"
        else ("TinyHead" in text and "Deviation" in text)
    )


def test_default_fovea_preset_is_one_of_the_original_configs():
    base = presets_module.preset_base("fovea_r50_sspnet")
    assert base in ("fovea_r50_sspnet_v1", "fovea_r50_sspnet_v2")
    default, chosen = load_preset("fovea_r50_sspnet"), load_preset(base)
    differing = {k for k in vars(default) if getattr(default, k) != getattr(chosen, k)}
    assert differing == {"name", "description"}
    assert base in default.description


def test_preset_base_key(tmp_path, monkeypatch):
    monkeypatch.setattr(presets_module, "PRESET_DIR", tmp_path)
    (tmp_path / "parent.yaml").write_text(yaml.safe_dump({"variant": "fovea", "description": "p", "depth": 18}))
    (tmp_path / "child.yaml").write_text(yaml.safe_dump({"base": "parent", "score_thr": 0.2}))
    c = load_preset("child")
    assert (c.name, c.description, c.depth, c.score_thr) == ("child", "p", 18, 0.2)
    assert load_preset("child", depth=50).depth == 50
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"base": "b"}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"base": "a"}))
    with pytest.raises(ValueError, match="cycle: b -> a -> b"):
        load_preset("b")
    (tmp_path / "lost.yaml").write_text(yaml.safe_dump({"base": "nowhere"}))
    with pytest.raises(ValueError, match="unknown preset 'nowhere'"):
        load_preset("lost")


def test_overrides_apply_and_are_validated():
    c = load_preset("fovea_r18_sspnet_small", score_thr=0.2, attention_loss="v1", max_detections=100)
    assert (c.score_thr, c.attention_loss, c.max_detections) == (0.2, "v1", 100)
    with pytest.raises(ValueError, match="unknown key.*'scor_thr'"):
        load_preset("fovea_r18_sspnet_small", scor_thr=0.2)
    with pytest.raises(TypeError, match=r"'max_detections' expects int, got str '100'"):
        load_preset("fovea_r18_sspnet_small", max_detections="100")
    with pytest.raises(TypeError, match=r"'norm_eval' expects bool, got int"):
        load_preset("fovea_r18_sspnet_small", norm_eval=1)
    with pytest.raises(ValueError, match=r"\['rpn_num_samples'\] do not apply to variant 'fovea'"):
        load_preset("fovea_r18_sspnet_small", rpn_num_samples=128)
    with pytest.raises(ValueError, match=r"'nms_method' must be one of"):
        load_preset("faster_rcnn_r18_sspnet_small", nms_method="soft")
    with pytest.raises(ValueError, match="'attention_loss'"):
        load_preset("faster_rcnn_r18_sspnet_small", neck="fpn")
    assert load_preset("faster_rcnn_r18_sspnet_small", neck="fpn", attention_loss="none").neck == "fpn"
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        load_preset("nope")


def test_invalid_preset_files_fail_naming_the_file_and_key(tmp_path, monkeypatch):
    monkeypatch.setattr(presets_module, "PRESET_DIR", tmp_path)
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump({"variant": "fovea", "depth": "fifty"}))
    with pytest.raises(TypeError, match=r"broken.yaml: key 'depth' expects int, got str"):
        load_preset("broken")
    (tmp_path / "odd.yaml").write_text(yaml.safe_dump({"variant": "fovea", "fovea_scale_ranges": [1, 2]}))
    with pytest.raises(TypeError, match=r"'fovea_scale_ranges' expects list of \[low, high\] number pairs"):
        load_preset("odd")
    (tmp_path / "listy.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(TypeError, match="expected a mapping"):
        load_preset("listy")


def parameter_count(module):
    return sum(p.numel() for p in module.parameters())


def test_published_parameter_counts_match_the_spec_tables():
    faster = build_model("faster_rcnn_r50_sspnet")
    assert parameter_count(faster) == 47_007_366
    assert parameter_count(faster.backbone) == 23_508_032
    assert parameter_count(faster.neck) == 8_992_004
    assert parameter_count(faster.rpn_head) == 605_500
    assert parameter_count(faster.roi_head) == 13_901_830
    assert len(faster.state_dict()) == 381
    del faster
    fovea = build_model("fovea_r50_sspnet")
    assert parameter_count(fovea) == 37_232_201
    assert parameter_count(fovea.bbox_head) == 4_732_165
    assert len(fovea.state_dict()) == 387


def test_build_model_records_preset_and_overrides():
    model = build_model("fovea_r18_sspnet_small", score_thr=0.3)
    assert model.preset == "fovea_r18_sspnet_small" and model.overrides == {"score_thr": 0.3}
    assert model.config.score_thr == 0.3 and model.training
    with pytest.raises(ValueError, match="'variant'"):
        build_model("fovea_r18_sspnet_small", variant="faster_rcnn")
