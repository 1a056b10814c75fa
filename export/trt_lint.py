"""Lint an ONNX graph for TensorRT's ONNX parser before it travels to a device.

Checks every node against the parser's operator support matrix (onnx/onnx-tensorrt,
docs/operators.md at commit 7ecb49a4, Apache-2.0, which describes TensorRT 10.0 and opsets 9 to 20;
JetPack 6.1 / 6.2 ship TensorRT 10.3): the op itself, the element type of its data input, and the
restrictions the matrix lists (Resize modes, initializer-only `axes`, 2D/3D pooling, zero
zero-points, ...); the global rules (opset range; UINT8 only as a network input or output; INT8,
INT4 and FP8 only around Q/DQ); and sspnet's plugin nodes against runtime/plugin_fields.json, the
way the parser's fallback importer reads them (op type, `plugin_version`, `plugin_namespace`, one
PluginField per attribute, INT narrowed to int32).

    from sspnet.export.trt_lint import lint_file, format_findings
    print(format_findings(lint_file("model.onnx")))

Severity: "error" = the parser refuses the node (unsupported op, listed restriction violated,
plugin mismatch); "warning" = the matrix does not list this use (e.g. an element type), which
TensorRT may still accept: the matrix is documentation and sometimes narrower than the parser.
This is a static check of what the matrix says, not a TensorRT build.

A quantized graph (QuantizeLinear / DequantizeLinear nodes) also gets the Q/DQ rules of
trt_lint_qdq.py: errors for scales and weights the parser refuses or mis-reads, and warnings for
the placements that block TensorRT's fusions, counted in format_findings' first line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .trt_lint_qdq import fusion_blockers, lint_qdq

MATRIX_TENSORRT_VERSION = "10.0"
MATRIX_SOURCE = "onnx/onnx-tensorrt docs/operators.md @ 7ecb49a4"
OPSET_RANGE = (9, 20)

_FLOATS = ("FP32", "FP16", "BF16")
_NUMBERS = _FLOATS + ("INT32", "INT64")
_ANY = _NUMBERS + ("BOOL",)

# op type -> element types the parser takes (empty: not supported). Transcribed from the matrix.
SUPPORTED_TYPES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "Acos",
            "Acosh",
            "Asin",
            "Asinh",
            "Atan",
            "Atanh",
            "AveragePool",
            "BatchNormalization",
            "Ceil",
            "Celu",
            "Clip",
            "Conv",
            "ConvTranspose",
            "Cos",
            "Cosh",
            "CumSum",
            "Dropout",
            "Einsum",
            "Elu",
            "Erf",
            "Exp",
            "Floor",
            "Gemm",
            "GlobalAveragePool",
            "GlobalLpPool",
            "GlobalMaxPool",
            "GroupNormalization",
            "GRU",
            "HardSigmoid",
            "HardSwish",
            "Hardmax",
            "ImageScaler",
            "InstanceNormalization",
            "IsInf",
            "LayerNormalization",
            "LeakyRelu",
            "Log",
            "LogSoftmax",
            "LRN",
            "LSTM",
            "LpNormalization",
            "LpPool",
            "MatMul",
            "MaxPool",
            "MeanVarianceNormalization",
            "ParametricSoftplus",
            "Pow",
            "PRelu",
            "QuantizeLinear",
            "RandomNormal",
            "RandomNormalLike",
            "RandomUniform",
            "RandomUniformLike",
            "Reciprocal",
            "Resize",
            "RNN",
            "Round",
            "ScaledTanh",
            "Scan",
            "Selu",
            "Sigmoid",
            "Sin",
            "Sinh",
            "Softmax",
            "Softplus",
            "Softsign",
            "Sqrt",
            "Tan",
            "Tanh",
            "ThresholdedRelu",
            "Upsample",
        ),
        _FLOATS,
    ),
    **dict.fromkeys(
        (
            "Abs",
            "Add",
            "ArgMax",
            "ArgMin",
            "DepthToSpace",
            "Div",
            "Equal",
            "Greater",
            "GreaterOrEqual",
            "IsNaN",
            "Less",
            "LessOrEqual",
            "Max",
            "Min",
            "Mod",
            "Mul",
            "Neg",
            "Pad",
            "Range",
            "ReduceL1",
            "ReduceL2",
            "ReduceLogSum",
            "ReduceLogSumExp",
            "ReduceMax",
            "ReduceMean",
            "ReduceMin",
            "ReduceProd",
            "ReduceSum",
            "ReduceSumSquare",
            "Relu",
            "Scatter",
            "ScatterElements",
            "ScatterND",
            "Shrink",
            "Sign",
            "SpaceToDepth",
            "Sub",
            "Sum",
            "TopK",
        ),
        _NUMBERS,
    ),
    **dict.fromkeys(
        (
            "Concat",
            "Constant",
            "Expand",
            "EyeLike",
            "Flatten",
            "Gather",
            "GatherElements",
            "GatherND",
            "Identity",
            "If",
            "Loop",
            "OneHot",
            "Reshape",
            "ReverseSequence",
            "Shape",
            "Size",
            "Slice",
            "Split",
            "Squeeze",
            "Tile",
            "Transpose",
            "Trilu",
            "Unsqueeze",
            "Where",
        ),
        _ANY,
    ),
    **dict.fromkeys(
        (
            "GridSample",
            "Mish",
            "NonMaxSuppression",
            "NonZero",
            "RoiAlign",
        ),
        ("FP32", "FP16"),
    ),
    **dict.fromkeys(
        (
            "And",
            "Not",
            "Or",
            "Xor",
        ),
        ("BOOL",),
    ),
    **dict.fromkeys(
        (
            "Cast",
            "CastLike",
        ),
        ("FP32", "FP16", "BF16", "INT32", "INT64", "UINT8", "BOOL"),
    ),
    **dict.fromkeys(
        ("ConstantOfShape",),
        ("FP32",),
    ),
    **dict.fromkeys(
        ("DequantizeLinear",),
        ("INT8", "FP8", "INT4"),
    ),
    **dict.fromkeys(
        ("Gelu",),
        ("FP32", "FP16", "BF16", "INT8", "INT32", "INT64"),
    ),
    **dict.fromkeys(
        ("Mean",),
        ("FP32", "FP16", "BF16", "FP8", "INT32", "INT64"),
    ),
    **dict.fromkeys(
        (
            "AffineGrid",
            "Bernoulli",
            "BitShift",
            "BitwiseAnd",
            "BitwiseNot",
            "BitwiseOr",
            "BitwiseXor",
            "BlackmanWindow",
            "Col2Im",
            "CenterCropPad",
            "Compress",
            "ConcatFromSequence",
            "ConvInteger",
            "DFT",
            "Det",
            "DynamicQuantizeLinear",
            "HammingWindow",
            "HannWindow",
            "ImageDecoder",
            "MatMulInteger",
            "MaxRoiPool",
            "MaxUnpool",
            "MelWeightMatrix",
            "Multinomial",
            "NegativeLogLikelihoodLoss",
            "Optional",
            "OptionalGetElement",
            "OptionalHasElement",
            "QLinearConv",
            "QLinearMatMul",
            "RegexFullMatch",
            "STFT",
            "SequenceAt",
            "SequenceConstruct",
            "SequenceEmpty",
            "SequenceErase",
            "SequenceInsert",
            "SequenceLength",
            "SequenceMap",
            "SoftmaxCrossEntropyLoss",
            "SplitToSequence",
            "StringConcat",
            "StringNormalizer",
            "StringSplit",
            "TfIdfVectorizer",
            "Unique",
        ),
        (),
    ),
}

# The matrix's restrictions, as (op, input index of `axes` / `axis`): that input must be an
# initializer (or a Constant node's output, which the parser imports as weights).
_CONSTANT_INPUTS = {
    **{
        op: (1, "axes")
        for op in (
            "ReduceL1",
            "ReduceL2",
            "ReduceLogSum",
            "ReduceLogSumExp",
            "ReduceMax",
            "ReduceMean",
            "ReduceMin",
            "ReduceProd",
            "ReduceSum",
            "ReduceSumSquare",
            "Squeeze",
            "Unsqueeze",
        )
    },
    "Pad": (3, "axes"),
    "Slice": (3, "axes"),
    "CumSum": (1, "axis"),
    "OneHot": (1, "depth"),
}
_RESIZE_COORDINATE_MODES = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
_RESIZE_MODES = {"nearest", "linear"}
_RESIZE_NEAREST_MODES = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"}
_POOLS = ("AveragePool", "MaxPool", "LpPool")
_QUANTIZED_TYPES = {"INT8", "INT4", "FP8"}
_Q_DQ = {"QuantizeLinear", "DequantizeLinear"}
# ONNX element type name -> the matrix's spelling.
_MATRIX_TYPE = {
    "FLOAT": "FP32",
    "FLOAT16": "FP16",
    "BFLOAT16": "BF16",
    "DOUBLE": "DOUBLE",
    "INT32": "INT32",
    "INT64": "INT64",
    "INT8": "INT8",
    "UINT8": "UINT8",
    "BOOL": "BOOL",
    "INT4": "INT4",
    "FLOAT8E4M3FN": "FP8",
}
# JSON field type -> ONNX attribute type the parser turns into that PluginField type.
_PLUGIN_ATTRIBUTE_TYPES = {"int32": "INT", "float32": "FLOAT", "float32[]": "FLOATS", "int32[]": "INTS"}
_INT32 = (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" or "warning"
    node: str  # node name (or "graph")
    op_type: str
    message: str
    rule: str = ""  # the Q/DQ rule's name (export/trt_lint_qdq.py); "" for the support-matrix checks

    def __str__(self) -> str:
        rule = f" [{self.rule}]" if self.rule else ""
        return f"{self.severity}: {self.op_type} '{self.node}': {self.message}{rule}"


def _plugin_descriptions() -> dict:
    text = resources.files("sspnet.runtime").joinpath("plugin_fields.json").read_text()
    return json.loads(text)["plugins"]


class _Graph:
    """What the checks need to know about the tensors of one graph."""

    def __init__(self, model):
        import onnx

        try:
            inferred = onnx.shape_inference.infer_shapes(model)
        except Exception:  # noqa: BLE001 (custom ops or odd graphs: lint with what is declared)
            inferred = model
        graph = inferred.graph
        self.types = {}
        for value in list(graph.input) + list(graph.value_info) + list(graph.output):
            elem = value.type.tensor_type.elem_type
            if elem:
                self.types[value.name] = onnx.TensorProto.DataType.Name(elem)
        self.constants = {}
        for tensor in graph.initializer:
            self.types[tensor.name] = onnx.TensorProto.DataType.Name(tensor.data_type)
            self.constants[tensor.name] = tensor
        for node in graph.node:
            if node.op_type == "Constant" and node.output:
                value = next((a for a in node.attribute if a.name == "value"), None)
                self.constants[node.output[0]] = value.t if value is not None else None
        initializers = {t.name for t in graph.initializer}
        self.network_inputs = {v.name for v in graph.input if v.name not in initializers}
        self.network_outputs = {v.name for v in graph.output}
        self.producers = {out: node for node in graph.node for out in node.output}
        self.consumers = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def constant_values(self, name):
        import onnx

        tensor = self.constants.get(name)
        return None if tensor is None else onnx.numpy_helper.to_array(tensor)


def _attributes(node) -> dict:
    import onnx

    values = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        values[attribute.name] = value.decode() if isinstance(value, bytes) else value
    return values


def _check_types(node, graph: _Graph, findings: list) -> None:
    supported = SUPPORTED_TYPES[node.op_type]
    checked = [node.input[0]] if node.input and node.input[0] else []  # the data input
    if node.op_type == "ConstantOfShape":
        checked = list(node.output[:1])  # the matrix's type is that of the value it fills in
    elif node.op_type in ("Cast", "CastLike"):
        checked += list(node.output[:1])
    for name in checked:
        elem = graph.types.get(name)
        if elem is None:
            continue
        matrix = _MATRIX_TYPE.get(elem, elem)
        if matrix in supported:
            continue
        if matrix == "UINT8" and (name in graph.network_inputs or name in graph.network_outputs):
            if node.op_type in ("Cast", "CastLike"):
                continue
        findings.append(
            Finding(
                "warning",
                node.name,
                node.op_type,
                f"tensor '{name}' is {elem}; the support matrix lists {', '.join(supported)}",
            )
        )


def _check_restrictions(node, graph: _Graph, findings: list) -> None:
    attrs = _attributes(node)
    op = node.op_type

    def error(message):
        findings.append(Finding("error", node.name, op, message))

    if op in _CONSTANT_INPUTS:
        index, what = _CONSTANT_INPUTS[op]
        if len(node.input) > index and node.input[index] and node.input[index] not in graph.constants:
            error(f"`{what}` (input {index}, '{node.input[index]}') must be an initializer")
    if op == "Resize":
        coordinate = attrs.get("coordinate_transformation_mode", "half_pixel")
        if coordinate not in _RESIZE_COORDINATE_MODES:
            error(f"coordinate_transformation_mode '{coordinate}' is not supported")
        mode = attrs.get("mode", "nearest")
        if mode not in _RESIZE_MODES:
            error(f"mode '{mode}' is not supported (nearest, linear)")
        nearest = attrs.get("nearest_mode", "round_prefer_floor")
        if mode == "nearest" and nearest not in _RESIZE_NEAREST_MODES:
            error(f"nearest_mode '{nearest}' is not supported")
        if attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
            error(f"keep_aspect_ratio_policy '{attrs['keep_aspect_ratio_policy']}' is not supported (stretch only)")
        if attrs.get("antialias", 0):
            error("antialiasing is not supported")
        scales = node.input[2] if len(node.input) > 2 else ""
        if "axes" in attrs and scales and scales not in graph.constants:
            if list(attrs["axes"]) != list(range(len(attrs["axes"]))):
                error(f"with a tensor `scales`, `axes` must be 0..rank-1, got {list(attrs['axes'])}")
    if op in _POOLS:
        kernel = attrs.get("kernel_shape", [])
        if len(kernel) not in (2, 3):
            error(f"only 2D or 3D pooling is supported, kernel_shape is {list(kernel)}")
        dilations = attrs.get("dilations", [])
        if any(d != 1 for d in dilations):
            error(f"`dilations` must be empty or all ones, got {list(dilations)}")
        if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
            error("the `Indices` output is not supported")
    if op == "ScatterND" and attrs.get("reduction", "none") != "none":
        error(f"reduction '{attrs['reduction']}' is not supported")
    if op in _Q_DQ and len(node.input) > 2 and node.input[2]:
        zero_point = graph.constant_values(node.input[2])
        if zero_point is None or zero_point.any():
            name = "x_zero_point" if op == "DequantizeLinear" else "y_zero_point"
            error(f"`{name}` must be a constant zero")


def _check_plugin(node, descriptions: dict, findings: list) -> None:
    import onnx

    attrs = _attributes(node)
    description = descriptions[node.op_type]

    def error(message):
        findings.append(Finding("error", node.name, node.op_type, message))

    for key in ("plugin_version", "plugin_namespace"):
        expected = description["version" if key == "plugin_version" else "namespace"]
        if attrs.get(key) != expected:
            error(
                f"attribute {key} is {attrs.get(key)!r}; the creator is registered as {expected!r}, "
                "so the parser will not find it"
            )
    kinds = {a.name: a.type for a in node.attribute}
    for name, value in attrs.items():
        if name in ("plugin_version", "plugin_namespace"):
            continue
        spec = description["fields"].get(name)
        if spec is None:
            findings.append(
                Finding(
                    "warning",
                    node.name,
                    node.op_type,
                    f"attribute '{name}' is not a field of the plugin: the parser ignores it",
                )
            )
            continue
        kind = onnx.AttributeProto.AttributeType.Name(kinds[name])
        expected_kind = _PLUGIN_ATTRIBUTE_TYPES[spec["type"]]
        if kind != expected_kind:
            error(
                f"attribute '{name}' is {kind}; the plugin field is {spec['type']}, which the parser makes from "
                f"{expected_kind}"
            )
        elif kind in ("INT", "INTS"):
            values = value if isinstance(value, list) else [value]
            if any(not _INT32[0] <= v <= _INT32[1] for v in values):
                error(f"attribute '{name}' = {value} does not fit int32: the parser narrows it silently")
    missing = sorted(set(description["fields"]) - set(attrs))
    if missing:
        findings.append(
            Finding(
                "warning",
                node.name,
                node.op_type,
                f"no attribute for field(s) {', '.join(missing)}: the plugin's defaults apply",
            )
        )
    if node.op_type == "SSPNetMultiLevelRoIAlign":
        levels = len(attrs.get("spatial_scales", description["fields"]["spatial_scales"]["default"]))
        if len(node.input) != 1 + levels:
            error(
                f"{len(node.input)} inputs, expected rois plus one feature map per spatial_scales value ({1 + levels})"
            )
    if node.op_type == "SSPNetBatchedNMS":
        expected_inputs = 3 if attrs.get("class_aware", description["fields"]["class_aware"]["default"]) else 2
        if len([i for i in node.input if i]) != expected_inputs:
            error(f"{len(node.input)} inputs, expected {expected_inputs} (class_aware={attrs.get('class_aware', 0)})")


def lint_graph(model) -> list[Finding]:
    """Findings for an onnx.ModelProto, errors first."""
    graph = _Graph(model)
    descriptions = _plugin_descriptions()
    findings = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        findings.append(
            Finding(
                "error",
                "graph",
                "opset",
                f"opset {opset} is outside the parser's range {OPSET_RANGE[0]}..{OPSET_RANGE[1]}",
            )
        )
    for index, node in enumerate(model.graph.node):
        if not node.name:
            node = _named(node, f"node{index}")
        if node.op_type in descriptions:
            _check_plugin(node, descriptions, findings)
        elif node.domain not in ("", "ai.onnx"):
            findings.append(
                Finding(
                    "error",
                    node.name,
                    node.op_type,
                    f"custom op of domain '{node.domain}' with no TensorRT plugin: the parser's "
                    "fallback importer will not find a creator",
                )
            )
        elif node.op_type not in SUPPORTED_TYPES:
            findings.append(Finding("error", node.name, node.op_type, "not in the parser's support matrix"))
        elif not SUPPORTED_TYPES[node.op_type]:
            findings.append(Finding("error", node.name, node.op_type, "not supported by the ONNX parser"))
        else:
            _check_types(node, graph, findings)
            _check_restrictions(node, graph, findings)
        for name in node.output:
            elem = graph.types.get(name)
            if elem == "UINT8" and name not in graph.network_outputs:
                findings.append(
                    Finding(
                        "error",
                        node.name,
                        node.op_type,
                        f"output '{name}' is UINT8: TensorRT takes UINT8 only as a network input or output",
                    )
                )
            if _MATRIX_TYPE.get(elem) in _QUANTIZED_TYPES and node.op_type not in _Q_DQ:
                findings.append(
                    Finding(
                        "error",
                        node.name,
                        node.op_type,
                        f"output '{name}' is {elem}: quantized types exist only between "
                        "QuantizeLinear and DequantizeLinear",
                    )
                )
            if elem == "DOUBLE":
                findings.append(
                    Finding(
                        "warning",
                        node.name,
                        node.op_type,
                        f"output '{name}' is DOUBLE: TensorRT casts it down to FLOAT",
                    )
                )
    if any(node.op_type in _Q_DQ for node in model.graph.node):
        findings += lint_qdq(model, graph)
    return sorted(findings, key=lambda f: f.severity != "error")


def _named(node, name):
    import onnx

    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.name = name
    return copy


def lint_file(path) -> list[Finding]:
    import onnx

    return lint_graph(onnx.load(str(Path(path)), load_external_data=False))


def format_findings(findings: list[Finding]) -> str:
    errors = sum(f.severity == "error" for f in findings)
    head = (
        f"TensorRT lint ({MATRIX_SOURCE}, TensorRT {MATRIX_TENSORRT_VERSION} support matrix): "
        f"{errors} error(s), {len(findings) - errors} warning(s)"
    )
    blockers = fusion_blockers(findings)
    if any(blockers.values()):
        head += (
            f"; Q/DQ fusion blockers: {sum(blockers.values())} ("
            + ", ".join(f"{rule} {count}" for rule, count in blockers.items() if count)
            + ")"
        )
    return "\n".join([head, *(f"  {finding}" for finding in findings)])


def format_qdq_findings(findings: list[Finding]) -> str:
    """format_findings' summary line with only the errors and the Q/DQ findings listed (what
    `sspnet quantize` and `sspnet build-engine` print for a quantized model)."""
    head = format_findings(findings).splitlines()[0]
    if "fusion blockers" not in head:
        head += "; Q/DQ fusion blockers: 0"
    listed = [finding for finding in findings if finding.severity == "error" or finding.rule]
    return "\n".join([head, *(f"  {finding}" for finding in listed)])


LINT_MODES = ("report", "strict", "off")


def check_lint_mode(mode: str, option: str = "trt_lint") -> str:
    if mode not in LINT_MODES:
        from sspnet.errors import UsageError

        raise UsageError("unknown TensorRT lint mode", field=option, expected=" / ".join(LINT_MODES), got=repr(mode))
    return mode


def lint_export(model, mode: str, log) -> list[Finding]:
    """The exporter's check: "report" logs the findings; "strict" also refuses the export (an
    SSPNetError, before anything is written) when the parser would refuse a node; "off" skips."""
    if check_lint_mode(mode) == "off":
        return []
    findings = lint_graph(model)
    log(format_findings(findings))
    errors = [finding for finding in findings if finding.severity == "error"]
    if mode == "strict" and errors:
        from sspnet.errors import SSPNetError

        raise SSPNetError(
            f"{len(errors)} node(s) that TensorRT's ONNX parser cannot import (first: {errors[0]}); "
            "nothing written (lint mode strict)"
        )
    return findings


__all__ = [
    "Finding",
    "LINT_MODES",
    "MATRIX_TENSORRT_VERSION",
    "SUPPORTED_TYPES",
    "check_lint_mode",
    "format_findings",
    "format_qdq_findings",
    "fusion_blockers",
    "lint_export",
    "lint_file",
    "lint_graph",
]
