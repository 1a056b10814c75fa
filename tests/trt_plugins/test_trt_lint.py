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
from sspnet.export.trt_lint import SUPPORTED_TYPES, format_findings, lint_export, lint_graph
from trt_files import REPO

from sspnet.errors import SSPNetError, UsageError

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
    graph = model(
        [helper.make_node("Unique", ["x"], ["y"], name="u")], [value("x", shape=(8,))], [value("y", shape=(8,))]
    )
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
    graph = model(
        [helper.make_node("Clip", ["x"], ["y"], name="c")],
        [value("x", TensorProto.INT64, (4,))],
        [value("y", TensorProto.INT64, (4,))],
    )
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
    attributes = dict(
        output_height=7,
        output_width=7,
        sampling_ratio=0,
        aligned=1,
        finest_scale=56.0,
        spatial_scales=[0.25, 0.125],
        plugin_version="1",
        plugin_namespace="sspnet",
    )
    attributes.update(overrides)
    attributes = {k: v for k, v in attributes.items() if v is not None}
    node = helper.make_node(
        "SSPNetMultiLevelRoIAlign", ["rois", "p2", "p3"], ["pooled"], name="roi", domain="sspnet", **attributes
    )
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
    bad = model(
        [helper.make_node("Unique", ["x"], ["y"], name="u")], [value("x", shape=(8,))], [value("y", shape=(8,))]
    )
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


# ---- Q/DQ rules (export/trt_lint_qdq.py) -------------------------------------------------------
# One small quantized graph made the way TensorRT wants it, then each rule's pattern planted in it.

K = 4  # output channels of the convolutions


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def qdq_graph(plant: str = "", opset: int = 18):
    """x -> Q/DQ -> conv1 (+ReLU) -> Q/DQ -> conv2 -> Add(identity: conv1's quantized ReLU) -> ReLU
    -> Q/DQ -> Concat(shared scale) -> Q/DQ -> conv3 -> y. `plant` breaks one rule."""
    inits = [
        const("s_x", np.float32(0.02)),
        const("s_a", np.float32(0.05)),
        const("zp", np.int8(0)),
        const("b", np.zeros(K, np.float32)),
    ]
    weights = np.full((K, 3, 3, 3), 5, np.int8)
    weights2 = np.full((K, K, 1, 1), 7, np.int8)
    w_scale = np.full(K, 0.01, np.float32)
    w_axis = 0
    if plant == "weight-int8-min":
        weights[0, 0, 0, 0] = -128
    if plant == "weight-axis":
        w_axis = 1
        weights = np.full((K, K, 3, 3), 5, np.int8)  # so axis 1 has K entries too: only the axis is wrong
    if plant == "weight-scale-length":
        w_scale = np.full(K - 1, 0.01, np.float32)
    inits += [
        const("w1_q", weights),
        const("w2_q", weights2),
        const("w3_q", np.full((K, 2 * K, 1, 1), 3, np.int8)),
        const("w_s", w_scale),
        const("w_s2", np.full(K, 0.01, np.float32)),
        const("w_s3", np.full(K, 0.01, np.float32)),
    ]
    in_channels = K if plant == "weight-axis" else 3
    x_scale = "s_x"
    if plant == "scale-non-positive":
        inits[0] = const("s_x", np.float32(-0.02))
    if plant == "scale-not-finite":
        inits[0] = const("s_x", np.float32(np.inf))
    nodes = []
    if plant == "scale-not-constant":
        nodes.append(helper.make_node("Abs", ["x_scale_in"], ["s_x_dyn"], name="dynamic_scale"))
        x_scale = "s_x_dyn"
    dq_w1 = dict(axis=w_axis)
    nodes += [
        helper.make_node("QuantizeLinear", ["x", x_scale, "zp"], ["x_q"], name="q_x"),
        helper.make_node("DequantizeLinear", ["x_q", x_scale, "zp"], ["x_dq"], name="dq_x"),
        helper.make_node("DequantizeLinear", ["w1_q", "w_s", "zp"], ["w1"], name="dq_w1", **dq_w1),
        helper.make_node("Conv", ["x_dq", "w1", "b"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
    ]
    if plant in ("q-on-weighted-output", "qdq-around-relu"):  # ONNX Runtime's default: Conv -> Q/DQ -> ReLU
        nodes += [
            helper.make_node("QuantizeLinear", ["c1", "s_a", "zp"], ["c1_q"], name="q_c1"),
            helper.make_node("DequantizeLinear", ["c1_q", "s_a", "zp"], ["c1_dq"], name="dq_c1"),
            helper.make_node("Relu", ["c1_dq"], ["r1"], name="relu1"),
        ]
    else:
        nodes.append(helper.make_node("Relu", ["c1"], ["r1"], name="relu1"))
    nodes += [
        helper.make_node("QuantizeLinear", ["r1", "s_a", "zp"], ["r1_q"], name="q_r1"),
        helper.make_node("DequantizeLinear", ["r1_q", "s_a", "zp"], ["r1_dq"], name="dq_r1"),
        helper.make_node("DequantizeLinear", ["w2_q", "w_s2", "zp"], ["w2"], name="dq_w2", axis=0),
        helper.make_node("Conv", ["r1_dq", "w2", "b"], ["c2"], name="conv2"),
    ]
    if plant == "add-both-quantized":
        nodes += [
            helper.make_node("QuantizeLinear", ["c2", "s_a", "zp"], ["c2_q"], name="q_c2"),
            helper.make_node("DequantizeLinear", ["c2_q", "s_a", "zp"], ["c2_dq"], name="dq_c2"),
            helper.make_node("Add", ["c2_dq", "r1_dq"], ["sum"], name="add"),
        ]
    else:  # the identity input alone quantized: TensorRT fuses the Add into conv2
        nodes.append(helper.make_node("Add", ["c2", "r1_dq"], ["sum"], name="add"))
    concat_scale = "s_b" if plant == "concat-scales" else "s_a"
    inits.append(const("s_b", np.float32(0.07)))
    nodes += [
        helper.make_node("Relu", ["sum"], ["r2"], name="relu2"),
        helper.make_node("QuantizeLinear", ["r2", "s_a", "zp"], ["r2_q"], name="q_r2"),
        helper.make_node("DequantizeLinear", ["r2_q", "s_a", "zp"], ["r2_dq"], name="dq_r2"),
        helper.make_node("QuantizeLinear", ["c2", concat_scale, "zp"], ["c2_cq"], name="q_c2_concat"),
        helper.make_node("DequantizeLinear", ["c2_cq", concat_scale, "zp"], ["c2_cdq"], name="dq_c2_concat"),
        helper.make_node("Concat", ["r2_dq", "c2_cdq"], ["cat"], name="concat", axis=1),
        helper.make_node("QuantizeLinear", ["cat", "s_a", "zp"], ["cat_q"], name="q_cat"),
        helper.make_node("DequantizeLinear", ["cat_q", "s_a", "zp"], ["cat_dq"], name="dq_cat"),
        helper.make_node("DequantizeLinear", ["w3_q", "w_s3", "zp"], ["w3"], name="dq_w3", axis=0),
        helper.make_node("Conv", ["cat_dq", "w3", "b"], ["y"], name="conv3"),
    ]
    outputs = [value("y", shape=(1, K, 8, 8))]
    if plant == "dq-into-plugin":
        nodes.append(helper.make_node("SSPNetBatchedNMS", ["cat_dq", "cat_dq"], ["kept"], name="nms", domain="sspnet"))
        outputs.append(value("kept", shape=(1, 8)))
    inputs = [value("x", shape=(1, in_channels, 8, 8))]
    if plant == "scale-not-constant":
        inputs.append(value("x_scale_in", shape=()))
    graph = helper.make_graph(nodes, "qdq", inputs, outputs, initializer=inits)
    imports = [helper.make_opsetid("", opset)] + (
        [helper.make_opsetid("sspnet", 1)] if plant == "dq-into-plugin" else []
    )
    return helper.make_model(graph, opset_imports=imports)


def rule_findings(findings):
    return [f for f in findings if f.rule]


def test_a_graph_placed_as_tensorrt_wants_has_no_qdq_finding():
    from sspnet.export.trt_lint import fusion_blockers

    findings = lint_graph(qdq_graph())
    assert rule_findings(findings) == [], format_findings(findings)
    assert errors(findings) == []
    assert set(fusion_blockers(findings).values()) == {0}
    onnx.checker.check_model(qdq_graph(), full_check=True)  # the reference graph itself is valid ONNX


@pytest.mark.parametrize(
    "plant, rule, severity, names",
    [
        ("scale-not-constant", "qdq-scale", "error", {"q_x", "dq_x"}),
        ("scale-non-positive", "qdq-scale", "error", {"q_x", "dq_x"}),
        ("scale-not-finite", "qdq-scale", "error", {"q_x", "dq_x"}),
        ("weight-axis", "weight-axis", "error", {"dq_w1"}),
        ("weight-scale-length", "weight-axis", "error", {"dq_w1"}),
        ("weight-int8-min", "weight-int8-min", "error", {"dq_w1"}),
        ("q-on-weighted-output", "q-on-weighted-output", "warning", {"q_c1"}),
        ("qdq-around-relu", "qdq-around-relu", "warning", {"relu1"}),
        ("add-both-quantized", "add-both-quantized", "warning", {"add"}),
        ("concat-scales", "concat-scales", "warning", {"concat"}),
        ("dq-into-plugin", "dq-into-plugin", "warning", {"nms"}),
    ],
)
def test_each_planted_qdq_pattern_is_reported(plant, rule, severity, names):
    from sspnet.export.trt_lint import fusion_blockers

    findings = lint_graph(qdq_graph(plant))
    found = [f for f in findings if f.rule == rule]
    assert {f.node for f in found} == names and {f.severity for f in found} == {severity}, format_findings(findings)
    other = {f.rule for f in rule_findings(findings)} - {rule, "q-on-weighted-output", "qdq-around-relu"}
    assert not other, format_findings(findings)  # the plant breaks its own rule only
    if severity == "warning":
        assert fusion_blockers(findings)[rule] == len(names)
        assert "fusion blockers" in format_findings(findings).splitlines()[0]


def test_per_axis_qdq_below_opset_13_is_an_error():
    findings = [f for f in lint_graph(qdq_graph(opset=12)) if f.rule == "per-axis-opset"]
    assert {f.node for f in findings} == {"dq_w1", "dq_w2", "dq_w3"}
    assert not [f for f in lint_graph(qdq_graph(opset=13)) if f.rule == "per-axis-opset"]


def test_output_channel_axis_of_each_weighted_layer():
    from sspnet.export.trt_lint_qdq import output_channel_axis

    assert output_channel_axis(helper.make_node("Conv", ["x", "w"], ["y"]), 4) == 0
    assert output_channel_axis(helper.make_node("ConvTranspose", ["x", "w"], ["y"]), 4) == 1
    assert output_channel_axis(helper.make_node("Gemm", ["x", "w"], ["y"], transB=1), 2) == 0
    assert output_channel_axis(helper.make_node("Gemm", ["x", "w"], ["y"]), 2) == 1
    assert output_channel_axis(helper.make_node("MatMul", ["x", "w"], ["y"]), 2) == 1


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_quantized_for_tensorrt_has_no_error_and_no_fusion_blocker(preset, exported_detector, tmp_path):
    from PIL import Image
    from sspnet.export.quantize import QuantizeSettings, quantize_onnx
    from sspnet.export.trt_lint import fusion_blockers

    images = tmp_path / "calib"
    images.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 320, 3), dtype=np.uint8)).save(images / "0.png")
    out = tmp_path / "int8.onnx"
    quantize_onnx(
        exported_detector(preset, "tensorrt"),
        out,
        images,
        QuantizeSettings(method="minmax", max_tiles=1, progress=False),
        log=lambda *_: None,
    )
    findings = lint_graph(onnx.load(str(out), load_external_data=False))
    assert errors(findings) == [], format_findings(findings)
    assert set(fusion_blockers(findings).values()) == {0}, format_findings(findings)
