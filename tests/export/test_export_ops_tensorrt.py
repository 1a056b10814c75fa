"""The tensorrt-flavour custom nodes: generated from runtime/plugin_fields.json field by field,
and, run through onnx's ReferenceEvaluator, equal to the portable graph in ONNX Runtime and to
PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from export_graphs import (
    ROI_INPUTS,
    SPATIAL_SCALES,
    nms_graph,
    pyramid,
    requires_ops,
    roi_align_graph,
    run_ort,
    run_reference,
)
from onnx import AttributeProto

pytestmark = requires_ops

# Read the JSON file directly (not through sspnet.export) so the test is independent of the
# exporter's own reader.
PLUGIN_JSON = Path(__file__).resolve().parents[2] / "runtime" / "plugin_fields.json"
PLUGINS = json.loads(PLUGIN_JSON.read_text())["plugins"]
ATTRIBUTE_TYPES = {
    "int32": AttributeProto.INT,
    "float32": AttributeProto.FLOAT,
    "float32[]": AttributeProto.FLOATS,
    "int32[]": AttributeProto.INTS,
}


def custom_nodes(model) -> list:
    return [node for node in model.graph.node if node.domain not in ("", "ai.onnx")]


def check_node_against_json(node, expected_values: dict) -> None:
    """op_type, plugin_version / plugin_namespace, and every field (name, type, value) == JSON."""
    assert node.op_type in PLUGINS
    plugin = PLUGINS[node.op_type]
    attributes = {a.name: a for a in node.attribute}
    assert set(attributes) == set(plugin["fields"]) | {"plugin_version", "plugin_namespace"}
    assert attributes["plugin_version"].type == AttributeProto.STRING
    assert attributes["plugin_version"].s.decode() == plugin["version"]
    assert attributes["plugin_namespace"].s.decode() == plugin["namespace"]
    for field, spec in plugin["fields"].items():
        attribute = attributes[field]
        assert attribute.type == ATTRIBUTE_TYPES[spec["type"]], field
        value = onnx.helper.get_attribute_value(attribute)
        if isinstance(value, list):
            np.testing.assert_allclose(value, expected_values[field], rtol=1e-7, err_msg=field)
        else:
            assert value == pytest.approx(expected_values[field], rel=1e-7), field
    assert len(node.output) == len(plugin["outputs"])


def test_roi_align_node_matches_plugin_fields():
    _, model = roi_align_graph("tensorrt", output_size=5, sampling_ratio=2, aligned=False, finest_scale=40.0)
    (node,) = custom_nodes(model)
    assert node.op_type == "SSPNetMultiLevelRoIAlign"
    check_node_against_json(
        node,
        dict(
            output_height=5,
            output_width=5,
            sampling_ratio=2,
            aligned=0,
            finest_scale=40.0,
            spatial_scales=list(SPATIAL_SCALES),
        ),
    )
    # inputs in JSON order: rois, then the pyramid levels finest first
    assert [i for i in node.input] == ["rois", "p2", "p3", "p4", "p5"]
    assert len(model.graph.node) == 1  # nothing else: the plugin does the whole op


@pytest.mark.parametrize("class_aware", [True, False])
def test_nms_node_matches_plugin_fields(class_aware):
    _, model = nms_graph(
        "tensorrt",
        iou_threshold=0.3,
        method=1,
        sigma=0.25,
        score_threshold=0.05,
        min_score=0.01,
        max_output=7,
        class_aware=class_aware,
    )
    (node,) = custom_nodes(model)
    assert node.op_type == "SSPNetBatchedNMS"
    check_node_against_json(
        node,
        dict(
            method=1,
            iou_threshold=0.3,
            sigma=0.25,
            score_threshold=0.05,
            min_score=0.01,
            max_output=7,
            class_aware=int(class_aware),
        ),
    )
    # inputs in JSON order; labels (int32, as the plugin takes them) only when class-aware
    assert list(node.input[:2]) == ["boxes", "scores"]
    assert len(node.input) == (3 if class_aware else 2)
    if class_aware:
        (cast,) = [n for n in model.graph.node if n.output[0] == node.input[2]]
        assert cast.op_type == "Cast" and cast.input[0] == "labels"
        assert onnx.helper.get_attribute_value(cast.attribute[0]) == onnx.TensorProto.INT32


def test_tensorrt_roi_align_equals_portable_and_pytorch():
    module, portable = roi_align_graph("portable")
    _, tensorrt = roi_align_graph("tensorrt")
    features = pyramid(seed=2)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 250, size=(40, 2))
    wh = rng.uniform(1, 600, size=(40, 2))
    rois = np.concatenate([rng.integers(0, 2, size=(40, 1)), xy, xy + wh], axis=1).astype(np.float32)
    feeds = dict(zip(ROI_INPUTS, [f.numpy() for f in features] + [rois]))
    (from_reference,) = run_reference(tensorrt, feeds)
    (from_ort,) = run_ort(portable, feeds)
    from_torch = module(*features, torch.from_numpy(rois)).numpy()
    np.testing.assert_allclose(from_reference, from_torch, rtol=0, atol=0)
    np.testing.assert_allclose(from_reference, from_ort, rtol=1e-5, atol=1e-5)


def detections(seed: int, n: int = 2, m: int = 60):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 60, size=(n, m, 2))
    wh = rng.uniform(5, 25, size=(n, m, 2))
    boxes = np.concatenate([xy, xy + wh], axis=2).astype(np.float32)
    scores = rng.uniform(0, 1, size=(n, m)).astype(np.float32)
    labels = rng.integers(0, 2, size=(n, m)).astype(np.int64)
    return boxes, scores, labels


def test_tensorrt_hard_nms_equals_portable_and_pytorch():
    config = dict(iou_threshold=0.5, score_threshold=0.1, max_output=25, class_aware=True)
    module, portable = nms_graph("portable", **config)
    _, tensorrt = nms_graph("tensorrt", **config)
    boxes, scores, labels = detections(1)
    feeds = dict(boxes=boxes, scores=scores, labels=labels)
    from_reference = run_reference(tensorrt, feeds)
    from_ort = run_ort(portable, feeds)
    from_torch = [t.numpy() for t in module(*(torch.from_numpy(a) for a in (boxes, scores, labels)))]
    for ref, ort_out, torch_out in zip(from_reference, from_ort, from_torch):
        assert ref.dtype == torch_out.dtype and ref.shape == torch_out.shape
        np.testing.assert_array_equal(ref, torch_out)
        np.testing.assert_array_equal(ref, ort_out)


def test_tensorrt_soft_nms_keeps_soft_nms():
    """Soft-NMS survives in this flavour: decayed scores, as the PyTorch op gives them."""
    config = dict(iou_threshold=0.3, method=1, min_score=0.05, max_output=40, class_aware=False)
    module, tensorrt = nms_graph("tensorrt", **config)
    boxes, scores, labels = detections(2, n=1)
    from_reference = run_reference(tensorrt, dict(boxes=boxes, scores=scores, labels=labels))
    from_torch = [t.numpy() for t in module(*(torch.from_numpy(a) for a in (boxes, scores, labels)))]
    for ref, torch_out in zip(from_reference, from_torch):
        np.testing.assert_array_equal(ref, torch_out)
    # decayed: some kept score is lower than the same box's input score
    count = int(from_reference[2][0])
    kept = from_reference[0][0, :count]
    assert (from_reference[1][0, :count] < scores[0, kept] - 1e-6).any()
