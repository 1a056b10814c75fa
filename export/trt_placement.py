"""Move the Q/DQ nodes of ONNX Runtime's symmetric quantization to where TensorRT wants them.

    placed, stats = place_for_tensorrt(quantized_model, float_model)

ONNX Runtime's QDQ quantizer quantizes every input and output of every node it quantizes. For
TensorRT that splits the fusions it would make, so this pass keeps a Q/DQ pair on an edge (tensor
-> reader) only where NVIDIA's placement recommendations for TensorRT ask for int8:
  - the activation input of a weighted layer (Conv, ConvTranspose, Gemm, MatMul) and of MaxPool;
  - one input of a residual Add, the identity one: the input not produced by a weighted layer
    (both weighted: the one computed first), so TensorRT fuses the Add (and a following ReLU) into
    the other input's convolution; an Add with no weighted input stays float;
  - the inputs of a Concat whose output is quantized, all with the output's scale (shared), so
    TensorRT can elide the concat; otherwise (and in the fp16 form, see place_for_tensorrt) the
    Concat and its inputs stay float.
Everything else reads the float tensor: ReLU (fused into its Conv), Sigmoid, Mul, Resize,
ReduceMean, Expand, the head outputs and post-processing, and every TensorRT plugin. Constants
ONNX Runtime quantized as inputs of non-weighted nodes (scalars of a Mul, ...) get their float
value back from the float model. The calibrated scales themselves are unchanged.

Why written here: ONNX Runtime's options (op types, OpTypesToExcludeOutputQuantization) can keep
the Q off weighted layers' outputs but cannot quantize a single input of an Add or share a
Concat's scales; NVIDIA's Model Optimizer does all of it but cannot calibrate a graph with
TensorRT plugin nodes without TensorRT (see docs/int8.md). Its placement on the portable
flavour is the reference benchmarks/bench_int8.py compares this one with.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
POOLS = ("MaxPool",)


@dataclass
class PlacementStats:
    """Counts of the rewrite (reported by `sspnet quantize` and the benchmark)."""

    edges_kept: int = 0  # tensor -> reader edges still through a Q/DQ pair
    edges_float: int = 0  # edges now reading the float tensor
    constants_restored: int = 0  # non-weight constants given back their float value
    concats_shared: int = 0  # concats whose inputs now share the output's scale
    concats_float: int = 0


class _Graph:
    def __init__(self, model):
        self.model = model
        self.initializers = {init.name: init for init in model.graph.initializer}
        self.refresh()

    def refresh(self):
        self.producers = {out: node for node in self.model.graph.node for out in node.output}
        self.readers = defaultdict(list)  # tensor -> [(node, input index)]
        for node in self.model.graph.node:
            for index, name in enumerate(node.input):
                if name:
                    self.readers[name].append((node, index))
        self.order = {id(node): k for k, node in enumerate(self.model.graph.node)}

    def quantized_source(self, name):
        """(the float tensor T, its Q) when `name` is DQ(Q(T)) of an activation; else None."""
        dq = self.producers.get(name)
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] in self.initializers:
            return None
        q = self.producers.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            return None
        return q.input[0], q

    def float_producer(self, name):
        """The node producing the float tensor behind `name` (through a Q/DQ pair)."""
        source = self.quantized_source(name)
        return self.producers.get(source[0] if source else name)


def _identity_inputs(graph: _Graph, add) -> set[int]:
    """Input indices of a residual Add that TensorRT wants quantized (see the module docstring)."""
    producers = [graph.float_producer(name) for name in add.input]
    weighted = [p is not None and p.op_type in WEIGHTED for p in producers]
    if len(add.input) != 2 or not any(weighted):
        return set()
    if all(weighted):  # quantize the one computed first; the Add fuses into the later convolution
        return {min((0, 1), key=lambda k: graph.order[id(producers[k])])}
    return {weighted.index(False)}


def place_for_tensorrt(quantized, original, share_concat_scales: bool = True):
    """Rewrite `quantized` (ONNX Runtime's symmetric QDQ model of `original`) in place; returns it
    and PlacementStats. share_concat_scales False: every Concat stays float (its output is still
    quantized for its readers); the fp16 form needs that, because ONNX Runtime fuses DQ -> Concat
    -> Q into its QLinearConcat, which takes no fp16 scales, and would refuse to load the model."""
    graph = _Graph(quantized)
    stats = PlacementStats()
    originals = {node.name: node for node in original.graph.node if node.name}
    float_constants = {init.name: init for init in original.graph.initializer}

    # 1. Constants quantized as inputs of non-weighted nodes get their float value back.
    for node in quantized.graph.node:
        for index, name in enumerate(node.input):
            dq = graph.producers.get(name)
            if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in graph.initializers:
                continue
            if node.op_type in WEIGHTED and index >= 1:
                continue  # weights (and float biases) of weighted layers stay as they are
            source = originals.get(node.name)
            if source is None or index >= len(source.input) or source.input[index] not in float_constants:
                continue
            float_name = source.input[index]
            if float_name not in graph.initializers:
                quantized.graph.initializer.append(float_constants[float_name])
                graph.initializers[float_name] = float_constants[float_name]
            node.input[index] = float_name
            stats.constants_restored += 1
    graph.refresh()

    # 2. Activation edges: keep the Q/DQ only where the reader wants int8 (Concats in step 3).
    identity = {id(node): _identity_inputs(graph, node) for node in quantized.graph.node if node.op_type == "Add"}
    for node in quantized.graph.node:
        for index, name in enumerate(node.input):
            source = graph.quantized_source(name)
            if source is None or node.op_type == "Concat":
                continue
            wants_int8 = (
                (node.op_type in WEIGHTED and index == 0)
                or node.op_type in POOLS
                or (node.op_type == "Add" and index in identity[id(node)])
            )
            if wants_int8:
                stats.edges_kept += 1
            else:
                node.input[index] = source[0]
                stats.edges_float += 1
    graph.refresh()

    # 3. Concats: shared scales when the output stays quantized for a reader, else float.
    for node in quantized.graph.node:
        if node.op_type != "Concat":
            continue
        sources = [graph.quantized_source(name) for name in node.input]
        out_q = next(
            (
                reader
                for reader, _ in graph.readers.get(node.output[0], [])
                if reader.op_type == "QuantizeLinear"
                and any(
                    dq.op_type == "DequantizeLinear" and graph.readers.get(dq.output[0])
                    for dq, _ in graph.readers.get(reader.output[0], [])
                )
            ),
            None,
        )
        if share_concat_scales and out_q is not None and all(sources):
            for _, q in sources:
                q.input[1] = out_q.input[1]
                for dq, _ in graph.readers.get(q.output[0], []):
                    if dq.op_type == "DequantizeLinear":
                        dq.input[1] = out_q.input[1]
            stats.concats_shared += 1
            stats.edges_kept += len(sources)
        else:
            for index, source in enumerate(sources):
                if source is not None:
                    node.input[index] = source[0]
                    stats.edges_float += 1
            stats.concats_float += 1
    graph.refresh()

    _drop_unread(quantized)
    quantized.graph.ClearField("value_info")  # shapes and types are inferred again by whoever needs them
    return quantized, stats


def _drop_unread(model) -> None:
    """Remove Q / DQ nodes and initializers nothing reads any more (repeated: a DQ's removal frees its Q)."""
    outputs = {value.name for value in model.graph.output}
    while True:
        read = {name for node in model.graph.node for name in node.input} | outputs
        unread = [
            node
            for node in model.graph.node
            if node.op_type in ("QuantizeLinear", "DequantizeLinear") and not set(node.output) & read
        ]
        if not unread:
            break
        for node in unread:
            model.graph.node.remove(node)
    read = {name for node in model.graph.node for name in node.input} | outputs
    keep = [init for init in model.graph.initializer if init.name in read]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


__all__ = ["PlacementStats", "place_for_tensorrt"]
