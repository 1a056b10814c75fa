"""Whole-detector export: the small presets with random weights at 256x320, both flavours.

Random weights give few confident boxes, so the score threshold and soft-NMS min_score are set to
0: every image then has hundreds of detections to compare. Parity is checked against the eager
PyTorch model (with hard NMS for the portable graph, which only has hard NMS).
"""

from __future__ import annotations

import copy
import json

import numpy as np
import onnx
import pytest
import torch
from export_graphs import requires_ops
from sspnet.runtime.contract import INPUT_NAME, METADATA_KEYS, OUTPUT_NAMES

pytestmark = requires_ops

IMGSZ = (256, 320)
OVERRIDES = dict(score_thr=0.0, nms_min_score=0.0, max_detections=100)
MIN_MATCHED_PCT = 97.0  # random weights: many near-equal scores, so a rare NMS tie may flip


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """(preset, flavor, batch) -> (model, path); each exported once per test module."""
    from sspnet.export.onnx_export import export_onnx

    from sspnet.models import build_model

    cache = {}

    def get(preset: str, flavor: str, batch="dynamic"):
        key = (preset, flavor, batch)
        if key not in cache:
            torch.manual_seed(0)
            model = build_model(preset, **OVERRIDES).eval()
            path = tmp_path_factory.mktemp("onnx") / f"{preset}_{flavor}_{batch}.onnx"
            export_onnx(model, path, flavor=flavor, imgsz=IMGSZ, batch=batch)
            cache[key] = (model, path)
        return cache[key]

    return get


def io_types(path) -> dict:
    model = onnx.load(str(path))
    result = {}
    for value in list(model.graph.input) + list(model.graph.output):
        tensor = value.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in tensor.shape.dim]
        result[value.name] = (onnx.TensorProto.DataType.Name(tensor.elem_type), dims)
    return result


def images(count: int, seed: int = 0) -> np.ndarray:
    from sspnet.export.parity import synthetic_images

    return synthetic_images(count, IMGSZ, seed=seed)


def hard_nms_copy(model):
    twin = copy.deepcopy(model)
    twin.config.nms_method = "hard"
    return twin


def check_contract(path, batch_dim) -> None:
    types = io_types(path)
    assert list(types) == [INPUT_NAME, *OUTPUT_NAMES]
    k = OVERRIDES["max_detections"]
    assert types[INPUT_NAME] == ("UINT8", [batch_dim, 3, *IMGSZ])
    assert types["num_dets"] == ("INT32", [batch_dim, 1])
    assert types["boxes"] == ("FLOAT", [batch_dim, k, 4])
    assert types["scores"] == ("FLOAT", [batch_dim, k])
    assert types["labels"] == ("INT32", [batch_dim, k])


@pytest.mark.parametrize("preset", ["faster_rcnn_r18_sspnet_small", "fovea_r18_sspnet_small"])
def test_portable_export_contract_batches_and_parity(exports, preset):
    from sspnet.export.parity import compare_detections, run_onnx, run_pytorch

    model, path = exports(preset, "portable")
    batch_dim = io_types(path)[INPUT_NAME][1][0]
    assert isinstance(batch_dim, str)  # a named dynamic dimension
    check_contract(path, batch_dim)
    exported = onnx.load(str(path))
    assert {node.domain for node in exported.graph.node} <= {"", "ai.onnx"}  # standard ops only

    batch = images(3)
    reference = run_pytorch(hard_nms_copy(model), batch, batch_size=3)
    for batch_size in (1, 3):
        outputs = run_onnx(path, batch, "portable", batch_size=batch_size)
        assert outputs["num_dets"].shape == (3, 1) and outputs["num_dets"].dtype == np.int32
        assert outputs["labels"].dtype == np.int32 and outputs["boxes"].dtype == np.float32
        stats = compare_detections(reference, outputs, score_min=0.0)
        assert stats["reference"] > 0, "no detections to compare: lower the thresholds"
        assert stats["matched_pct"] >= MIN_MATCHED_PCT, stats
        assert stats["max_score_diff"] <= 1e-3 and stats["max_box_diff"] <= 0.05, stats
        # rows past num_dets are padding
        for i, count in enumerate(outputs["num_dets"][:, 0]):
            assert (outputs["scores"][i, count:] == 0).all()


def test_portable_export_metadata(exports):
    model, path = exports("faster_rcnn_r18_sspnet_small", "portable")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert set(METADATA_KEYS) <= set(props)
    assert props["preset"] == "faster_rcnn_r18_sspnet_small"
    assert props["variant"] == "faster_rcnn"
    assert json.loads(props["input_size"]) == list(IMGSZ)
    assert int(props["max_detections"]) == OVERRIDES["max_detections"]
    assert float(props["score_threshold"]) == OVERRIDES["score_thr"]
    assert props["flavor"] == "portable" and props["batch"] == "dynamic"
    assert json.loads(props["classes"]) == ["person"]
    nms = json.loads(props["nms"])
    # the preset asks for linear soft-NMS; the portable graph does hard NMS and says so
    assert model.config.nms_method == "linear"
    assert nms["method"] == "hard" and nms["config_method"] == "linear"
    assert nms["iou_threshold"] == pytest.approx(model.config.nms_iou_thr)
    # the ONNX Runtime backend (the consumer) accepts it
    runtime_backend = pytest.importorskip("sspnet.runtime.backend")
    metadata = runtime_backend.ModelMetadata.from_props(props, source=str(path))
    assert metadata.batch is None and tuple(metadata.input_size) == IMGSZ


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["faster_rcnn_r18_sspnet_small", "fovea_r18_sspnet_small"])
def test_tensorrt_export_nodes_and_reference_parity(exports, preset):
    from sspnet.export.parity import compare_detections, run_onnx, run_pytorch

    model, path = exports(preset, "tensorrt")
    batch_dim = io_types(path)[INPUT_NAME][1][0]
    check_contract(path, batch_dim)
    graph = onnx.load(str(path)).graph
    custom = [node.op_type for node in graph.node if node.domain not in ("", "ai.onnx")]
    if preset.startswith("faster"):
        # RPN proposals NMS + final NMS, and the RoI extraction
        assert sorted(custom) == ["SSPNetBatchedNMS", "SSPNetBatchedNMS", "SSPNetMultiLevelRoIAlign"]
    else:
        assert custom == ["SSPNetBatchedNMS"]
    final_nms = [n for n in graph.node if n.op_type == "SSPNetBatchedNMS"][-1]
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in final_nms.attribute}
    assert attributes["method"] == 1  # soft-NMS (linear) kept in this flavour
    assert attributes["max_output"] == OVERRIDES["max_detections"]

    if not preset.startswith("faster"):
        return  # FoveaBox's only plugin is the NMS, whose reference run the op tests cover
    batch = images(1, seed=1)
    reference = run_pytorch(model, batch, batch_size=1)
    outputs = run_onnx(path, batch, "tensorrt", batch_size=1)
    stats = compare_detections(reference, outputs, score_min=0.0)
    assert stats["reference"] > 0
    assert stats["matched_pct"] >= MIN_MATCHED_PCT, stats
    assert stats["max_score_diff"] <= 1e-3, stats


def test_cli_export_fixed_batch_with_verify(tmp_path, capsys):
    from sspnet.checkpoint import save_checkpoint
    from sspnet.cli import main
    from sspnet.models import build_model

    torch.manual_seed(0)
    overrides = dict(OVERRIDES, nms_method="hard")
    model = build_model("fovea_r18_sspnet_small", **overrides)
    checkpoint = save_checkpoint(
        tmp_path / "fovea.safetensors", model, preset="fovea_r18_sspnet_small", overrides=overrides
    )
    out = tmp_path / "fovea.onnx"
    code = main(
        [
            "export",
            str(checkpoint),
            "--flavor",
            "portable",
            "--imgsz",
            *map(str, IMGSZ),
            "--batch",
            "2",
            "--out",
            str(out),
            "--verify",
            "--verify-images",
            "2",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert out.is_file()
    check_contract(out, 2)
    assert "ONNX: export success" in printed and "matched" in printed
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["batch"] == "2" and json.loads(props["nms"])["method"] == "hard"


def test_export_argument_errors(tmp_path, capsys):
    from sspnet.export.onnx_export import export_onnx

    from sspnet.cli import main
    from sspnet.models import build_model

    model = build_model("fovea_r18_sspnet_small")
    with pytest.raises(ValueError, match="flavor"):
        export_onnx(model, tmp_path / "x.onnx", flavor="openvino")
    with pytest.raises(ValueError, match="opset"):
        export_onnx(model, tmp_path / "x.onnx", opset=13)
    with pytest.raises(ValueError, match="batch"):
        export_onnx(model, tmp_path / "x.onnx", batch=0)
    with pytest.raises(ValueError, match="imgsz"):
        export_onnx(model, tmp_path / "x.onnx", imgsz=(256,))
    assert main(["export", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.safetensors"), "--batch", "two"]) == 2
    assert "--batch" in capsys.readouterr().err
