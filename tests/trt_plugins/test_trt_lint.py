"""sspnet.export.trt_lint: the TensorRT ONNX-parser lint.

- its operator table is the support matrix of ../shared/reference/onnx-tensorrt-operators.md,
  row for row (where that file is present);
- each rule fires on a small graph built to break it, and stays quiet on the same graph made right;
- every preset's real export, both flavours, has no error (the warnings are printed).
"""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from trt_files import REPO

from sspnet.errors import SSPNetError, UsageError
from sspnet.export.trt_lint import SUPPORTED_TYPES, format_findings, lint_export, lint_graph

MATRIX = REPO.parent / "shared" / "reference" / "onnx-tensorrt-operators.md"
PRESETS = ["faster_rcnn_r18_sspnet_small", "fovea_r18_sspnet_small", "faster_rcnn_r50_sspnet", "fovea_r50_sspnet"]


def matrix_rows() -> dict[str, tuple[str, ...]]:
    rows = {}
    for line in MATRIX.read_text().splitlines():
        if not line.startswith("|") or line.startswith(("| Operator", "|---")):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        types = tuple(t for t in re.split(r"[,\s]+", cells[2]) if t) if len(cells) > 2 else ()
        rows[cells[0]] = types if cells[1] == "Y" else ()
    return rows


@pytest.mark.skipif(not MATRIX.is_file(), reason=f"the support matrix is not here ({MATRIX})")
def test_table_is_the_support_matrix():
    assert SUPPORTED_TYPES == matrix_rows()


# ---- small graphs ----------------------------------------------------------------------------


def model(nodes, inputs, outputs, initializers=(), opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def value(name, elem=TensorProto.FLOAT, shape=(1, 3, 8, 8)):
    return helper.make_tensor_value_info(name, elem, list(shape))


def errors(findings):
    return [f for f in findings if f.severity == "error"]


def only(findings, severity):
    assert len(findings) == 1, format_findings(findings)
    assert findings[0].severity == severity
    return findings[0].message


def test_a_plain_supported_graph_has_no_finding():
    graph = model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [value("x")], [value("y")])
    assert lint_graph(graph) == []


def test_an_unsupported_op_is_an_error():
    graph = model([helper.make_node("Unique", ["x"], ["y"], name="u")], [value("x", shape=(8,))], [value("y", shape=(8,))])
    assert "not supported" in only(lint_graph(graph), "error")


def test_an_op_missing_from_the_matrix_is_an_error():
    graph = model([helper.make_node("Frobnicate", ["x"], ["y"], name="f")], [value("x")], [value("y")])
    assert "not in the parser's support matrix" in only(lint_graph(graph), "error")


def test_a_custom_op_without_a_plugin_is_an_error():
    node = helper.make_node("MyOp", ["x"], ["y"], name="m", domain="custom")
    graph = model([node], [value("x")], [value("y")])
    assert "no TensorRT plugin" in only(lint_graph(graph), "error")


def test_the_opset_range():
    graph = model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [value("x")], [value("y")], opset=21)
    assert "opset 21" in only(lint_graph(graph), "error")


def test_an_unlisted_input_type_is_a_warning():
    graph = model([helper.make_node("Clip", ["x"], ["y"], name="c")],
                  [value("x", TensorProto.INT64, (4,))], [value("y", TensorProto.INT64, (4,))])
    assert "INT64" in only(lint_graph(graph), "warning")


@pytest.mark.parametrize(
    "attributes, problem",
    [
        ({"mode": "cubic"}, "mode 'cubic'"),
        ({"coordinate_transformation_mode": "tf_crop_and_resize"}, "tf_crop_and_resize"),
        ({"mode": "nearest", "nearest_mode": "nonsense"}, "nearest_mode"),
        ({"antialias": 1, "mode": "linear"}, "antialias"),
        ({"keep_aspect_ratio_policy": "not_larger"}, "keep_aspect_ratio_policy"),
    ],
)
def test_resize_restrictions(attributes, problem):
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    bad = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="r", **attributes)
    good = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="r", mode="linear")
    out = value("y", shape=(1, 3, 16, 16))
    assert problem in only(lint_graph(model([bad], [value("x")], [out], [scales])), "error")
    assert lint_graph(model([good], [value("x")], [out], [scales])) == []


def test_axes_must_be_an_initializer():
    axes_input = value("axes", TensorProto.INT64, (1,))
    node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean")
    out = value("y", shape=(1, 3, 8, 1))
    assert "must be an initializer" in only(lint_graph(model([node], [value("x"), axes_input], [out])), "error")
    axes = numpy_helper.from_array(np.array([3], np.int64), "axes")
    assert lint_graph(model([node], [value("x")], [out], [axes])) == []
    constant = helper.make_node("Constant", [], ["axes"], value=axes)  # a Constant node counts too
    assert lint_graph(model([constant, node], [value("x")], [out])) == []


@pytest.mark.parametrize(
    "attributes, problem",
    [({"kernel_shape": [2]}, "2D or 3D"), ({"kernel_shape": [2, 2], "dilations": [2, 2]}, "dilations")],
)
def test_pooling_restrictions(attributes, problem):
    shape = (1, 3, 8) if len(attributes["kernel_shape"]) == 1 else (1, 3, 8, 8)
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", **attributes)
    graph = model([node], [value("x", shape=shape)], [value("y", shape=shape)])
    assert problem in only(lint_graph(graph), "error")


def test_uint8_only_at_the_network_boundary():
    to_uint8 = helper.make_node("Cast", ["x"], ["q"], name="to_u8", to=TensorProto.UINT8)
    back = helper.make_node("Cast", ["q"], ["y"], name="to_f", to=TensorProto.FLOAT)
    graph = model([to_uint8, back], [value("x")], [value("y")])
    message = only(lint_graph(graph), "error")
    assert "UINT8" in message and "'q'" in message
    # a UINT8 network input cast to float (the sspnet contract's `images`) is fine
    cast = helper.make_node("Cast", ["images"], ["y"], name="cast", to=TensorProto.FLOAT)
    assert lint_graph(model([cast], [value("images", TensorProto.UINT8)], [value("y")])) == []


def test_dequantize_needs_a_zero_zero_point():
    scale = numpy_helper.from_array(np.array(0.5, np.float32), "scale")
    zero = numpy_helper.from_array(np.array(3, np.int8), "zero")
    node = helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["y"], name="dq")
    graph = model([node], [value("q", TensorProto.INT8)], [value("y")], [scale, zero])
    assert "x_zero_point" in only(lint_graph(graph), "error")


# ---- plugin nodes ----------------------------------------------------------------------------


def roi_align_node(**overrides):
    attributes = dict(output_height=7, output_width=7, sampling_ratio=0, aligned=1, finest_scale=56.0,
                      spatial_scales=[0.25, 0.125], plugin_version="1", plugin_namespace="sspnet")
    attributes.update(overrides)
    attributes = {k: v for k, v in attributes.items() if v is not None}
    node = helper.make_node("SSPNetMultiLevelRoIAlign", ["rois", "p2", "p3"], ["pooled"], name="roi",
                            domain="sspnet", **attributes)
    inputs = [value("rois", shape=("R", 5)), value("p2", shape=(1, 4, 16, 16)), value("p3", shape=(1, 4, 8, 8))]
    graph = helper.make_graph([node], "g", inputs, [value("pooled", shape=("R", 4, 7, 7))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("sspnet", 1)])


def test_a_correct_plugin_node_has_no_finding():
    assert lint_graph(roi_align_node()) == []


@pytest.mark.parametrize(
    "overrides, problem",
    [
        ({"plugin_version": "2"}, "plugin_version"),
        ({"plugin_namespace": None}, "plugin_namespace"),
        ({"output_height": 7.0}, "'output_height' is FLOAT"),
        ({"sampling_ratio": 2**31}, "does not fit int32"),
        ({"spatial_scales": [0.25, 0.125, 0.0625]}, "3 inputs, expected"),
    ],
)
def test_plugin_node_mismatches_are_errors(overrides, problem):
    found = errors(lint_graph(roi_align_node(**overrides)))
    assert any(problem in f.message for f in found), format_findings(found)


def test_plugin_node_extra_and_missing_attributes_are_warnings():
    findings = lint_graph(roi_align_node(aligned=None, colour=3))
    assert errors(findings) == []
    messages = " ".join(f.message for f in findings)
    assert "'colour' is not a field" in messages and "aligned" in messages


# ---- the exporter's use -------------------------------------------------------------------------


def test_strict_mode_refuses_and_report_mode_logs():
    bad = model([helper.make_node("Unique", ["x"], ["y"], name="u")], [value("x", shape=(8,))], [value("y", shape=(8,))])
    logged = []
    assert len(lint_export(bad, "report", logged.append)) == 1
    assert "1 error(s)" in logged[0] and "Unique 'u'" in logged[0]
    with pytest.raises(SSPNetError, match="cannot import .*Unique 'u'"):
        lint_export(bad, "strict", logged.append)
    assert lint_export(bad, "off", logged.append) == []
    with pytest.raises(UsageError, match="lint mode"):
        lint_export(bad, "loud", logged.append)


def test_export_checks_the_lint_mode_before_any_work(tmp_path):
    from sspnet.export.onnx_export import export_onnx

    with pytest.raises(UsageError, match="lint mode"):
        export_onnx(tmp_path / "missing.safetensors", tmp_path / "out.onnx", trt_lint="loud")
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize("flavor", ["tensorrt", "portable"])
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_export_passes(preset, flavor, exported_detector):
    findings = lint_graph(onnx.load(str(exported_detector(preset, flavor)), load_external_data=False))
    print(format_findings(findings))
    assert errors(findings) == [], format_findings(findings)


def test_quantized_tensorrt_export_is_buildable_qdq_with_float_plugin_io(exported_detector, tmp_path):
    """`sspnet quantize` on a tensorrt-flavour export: the result is symmetric int8 Q/DQ,
    every plugin node still reads and writes float tensors (its inputs come from float ops, never
    straight from a QuantizeLinear), and the parser lint finds no error."""
    from PIL import Image

    from sspnet.export.quantize import QuantizeSettings, quantize_onnx, read_quantization

    images = tmp_path / "calib"
    images.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        Image.fromarray(rng.integers(0, 256, (256, 320, 3), dtype=np.uint8)).save(images / f"{index}.png")
    source = exported_detector("faster_rcnn_r18_sspnet_small", "tensorrt")
    out = tmp_path / "model_trt_int8.onnx"
    report = quantize_onnx(source, out, images, QuantizeSettings(max_tiles=2, progress=False))
    # ONNX Runtime cannot run the plugins, so the RoI box head they feed stays float (and says so).
    assert report.kept_float["after plugins"], report.kept_float

    model = onnx.load(str(out), load_external_data=False)
    assert read_quantization(out)["tensorrt_compatible"] is True
    producers = {output: node for node in model.graph.node for output in node.output}
    from harness_spec import plugin_descriptions

    plugin_types = set(plugin_descriptions())
    plugins = [node for node in model.graph.node if node.op_type in plugin_types]
    assert {node.op_type for node in plugins} == plugin_types  # both plugins survive quantization
    for node in plugins:
        for name in node.input:
            source_node = producers.get(name)
            assert source_node is None or source_node.op_type != "QuantizeLinear", (node.name, name)
    assert any(node.op_type == "QuantizeLinear" for node in model.graph.node)
    findings = lint_graph(model)
    assert errors(findings) == [], format_findings(findings)
