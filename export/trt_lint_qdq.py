"""Q/DQ rules of the TensorRT lint: what the parser rejects or mis-reads in a quantized graph
(errors), and what keeps TensorRT from fusing it (warnings, "fusion blockers").

    from sspnet.export.trt_lint_qdq import lint_qdq
    findings = lint_qdq(model, graph)          # graph: trt_lint's tensor facts of the same model

Errors (the parser refuses the graph or reads it wrongly):
  qdq-scale        a Q/DQ scale that is not a constant, or has a value <= 0, NaN or inf
  weight-axis      a weight DequantizeLinear whose `axis` is not the layer's output-channel axis
                   (Conv: 0, ConvTranspose: 1, Gemm: 0 with transB=1 else 1, MatMul: last), or
                   whose per-channel scale length is not the number of output channels K
  weight-int8-min  -128 in int8 weights: TensorRT quantizes to [-127, 127] (symmetric), so the
                   weight cannot round-trip
  per-axis-opset   a per-axis (1-D) scale below opset 13, where Q/DQ had no `axis`

Warnings (counted and printed as fusion blockers; NVIDIA's Q/DQ placement recommendations for
TensorRT: quantize the inputs of weighted layers, not their outputs):
  q-on-weighted-output  a QuantizeLinear on a Conv / Gemm / MatMul output that some reader takes in
                        float (a ReLU, a sigmoid, a Resize, ...): TensorRT cannot fuse that layer
                        with what follows. A Q whose readers all want int8 (weighted layers,
                        pooling, a residual Add's identity input, a shared-scale Concat) is the
                        recommended pattern and is not reported.
  qdq-around-relu       a Relu that reads a DequantizeLinear: the Conv + ReLU fusion is split
  add-both-quantized    an Add with a DequantizeLinear on both inputs: TensorRT fuses Conv + Add
                        only when the residual (identity) input alone is quantized
  concat-scales         a Concat whose quantized inputs (and quantized output) use different
                        scales: TensorRT requantizes instead of eliding the concat
  dq-into-plugin        a DequantizeLinear read directly by a TensorRT plugin node
"""

from __future__ import annotations

import numpy as np

ERROR_RULES = ("qdq-scale", "weight-axis", "weight-int8-min", "per-axis-opset")
FUSION_RULES = ("q-on-weighted-output", "qdq-around-relu", "add-both-quantized", "concat-scales", "dq-into-plugin")
WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# Readers that take int8 from a Q on a weighted layer's output without breaking a fusion.
INT8_READERS = WEIGHTED + ("MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Add")
STANDARD_DOMAINS = ("", "ai.onnx")


def output_channel_axis(layer, rank: int) -> int:
    """The axis of the output channels K in the weight of `layer` (a weighted node)."""
    if layer.op_type == "Conv":
        return 0
    if layer.op_type == "ConvTranspose":
        return 1
    if layer.op_type == "Gemm":
        trans_b = next((a.i for a in layer.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return rank - 1  # MatMul: [.., K_in, K_out]


def _axis(node, rank: int) -> int:
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    return axis + rank if axis < 0 else axis


def lint_qdq(model, graph) -> list:
    """Q/DQ findings of `model`; `graph` is trt_lint's _Graph of it (types, constants, producers,
    consumers)."""
    from .trt_lint import Finding

    findings: list[Finding] = []
    opset = next((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), 13)
    nodes = list(model.graph.node)

    def add(severity, node, rule, message):
        findings.append(Finding(severity, node.name, node.op_type, message, rule))

    def scale_of(node):
        values = graph.constant_values(node.input[1]) if len(node.input) > 1 else None
        return None if values is None else np.asarray(values, dtype=np.float64)

    def source(name):
        """(producer of `name` seen through one DequantizeLinear, whether a DQ was passed)."""
        producer = graph.producers.get(name)
        if producer is not None and producer.op_type == "DequantizeLinear":
            quantize = graph.producers.get(producer.input[0])
            return (quantize, True)
        return (producer, False)

    for node in nodes:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        # ---- errors: what the parser refuses or mis-reads
        scale = scale_of(node)
        if scale is None:
            add(
                "error",
                node,
                "qdq-scale",
                f"scale '{node.input[1]}' is not a constant: TensorRT takes only constant (initializer) scales",
            )
            continue
        if not np.isfinite(scale).all() or (scale <= 0).any():
            bad = scale[~np.isfinite(scale) | (scale <= 0)].ravel()[:3]
            add(
                "error",
                node,
                "qdq-scale",
                f"scale '{node.input[1]}' has values that are not finite and "
                f"positive ({', '.join(f'{v:g}' for v in bad)})",
            )
        if scale.ndim >= 1 and scale.size > 1 and opset < 13:
            add(
                "error",
                node,
                "per-axis-opset",
                f"per-axis scale (length {scale.size}) at opset {opset}: per-axis Q/DQ needs opset >= 13",
            )
        if node.op_type != "DequantizeLinear":
            continue
        weights = graph.constant_values(node.input[0])
        if weights is None:
            continue
        if weights.dtype == np.int8 and (weights == -128).any():
            add(
                "error",
                node,
                "weight-int8-min",
                f"int8 weights '{node.input[0]}' hold -128: TensorRT's int8 range is [-127, 127]",
            )
        layers = [
            c
            for c in graph.consumers.get(node.output[0], [])
            if c.op_type in WEIGHTED and len(c.input) > 1 and c.input[1] == node.output[0]
        ]
        if not layers or scale.size <= 1:
            continue
        layer = layers[0]
        expected = output_channel_axis(layer, weights.ndim)
        axis = _axis(node, weights.ndim)
        if axis != expected:
            add(
                "error",
                node,
                "weight-axis",
                f"per-channel weight scale on axis {axis}; {layer.op_type} "
                f"'{layer.name}' has its output channels on axis {expected}",
            )
        elif scale.size != weights.shape[expected]:
            add(
                "error",
                node,
                "weight-axis",
                f"{scale.size} scales for {weights.shape[expected]} output channels of {layer.op_type} '{layer.name}'",
            )

    # ---- warnings: fusion blockers
    for node in nodes:
        if node.op_type == "QuantizeLinear":
            producer = graph.producers.get(node.input[0])
            if producer is None or producer.op_type not in WEIGHTED:
                continue
            readers = [
                r
                for dq in graph.consumers.get(node.output[0], [])
                if dq.op_type == "DequantizeLinear"
                for r in graph.consumers.get(dq.output[0], [])
            ]
            floats = sorted({r.op_type for r in readers if r.op_type not in INT8_READERS})
            if floats:
                add(
                    "warning",
                    node,
                    "q-on-weighted-output",
                    f"quantizes the output of {producer.op_type} '{producer.name}', read in float by "
                    f"{', '.join(floats)}: the layer cannot fuse with it",
                )
        elif node.op_type == "Relu" and source(node.input[0])[1]:
            add(
                "warning",
                node,
                "qdq-around-relu",
                "reads a DequantizeLinear: Q/DQ between the layer and its ReLU split the Conv + ReLU fusion",
            )
        elif node.op_type == "Add" and len(node.input) == 2 and all(source(name)[1] for name in node.input):
            add(
                "warning",
                node,
                "add-both-quantized",
                "both inputs dequantized: TensorRT fuses a residual "
                "Add into the Conv only when the identity input alone "
                "is quantized",
            )
        elif node.op_type == "Concat":
            scales = []
            for name in node.input:
                producer = graph.producers.get(name)
                if producer is not None and producer.op_type == "DequantizeLinear":
                    scales.append(scale_of(producer))
            for reader in graph.consumers.get(node.output[0], []):
                if reader.op_type == "QuantizeLinear":
                    scales.append(scale_of(reader))
            scales = [s for s in scales if s is not None]
            if len(scales) > 1 and any(
                s.shape != scales[0].shape or not np.array_equal(s, scales[0]) for s in scales[1:]
            ):
                distinct = len({tuple(np.ravel(s)) for s in scales})
                add(
                    "warning",
                    node,
                    "concat-scales",
                    f"{distinct} different scales on its quantized inputs and "
                    "output: TensorRT requantizes instead of eliding the concat",
                )
        elif node.domain not in STANDARD_DOMAINS and node.domain != "com.microsoft":
            dequantized = [
                name
                for name in node.input
                if name
                and (graph.producers.get(name) is not None and graph.producers[name].op_type == "DequantizeLinear")
            ]
            if dequantized:
                add(
                    "warning",
                    node,
                    "dq-into-plugin",
                    f"plugin reads {len(dequantized)} DequantizeLinear "
                    "output(s) directly: quantize before the plugin's "
                    "producer, not on its inputs",
                )
    return findings


def fusion_blockers(findings) -> dict[str, int]:
    """{rule: count} of the fusion-blocker warnings among `findings` (every rule, zeros included)."""
    counts = dict.fromkeys(FUSION_RULES, 0)
    for finding in findings:
        if finding.rule in counts:
            counts[finding.rule] += 1
    return counts


__all__ = ["ERROR_RULES", "FUSION_RULES", "fusion_blockers", "lint_qdq", "output_channel_axis"]
