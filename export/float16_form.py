"""The fp16 TensorRT form of a Q/DQ model: what is not int8 runs in fp16, post-processing in fp32.

    model = to_float16(model, fp16_nodes={"/backbone/conv1/Conv", ...})

TensorRT 11 builds strongly typed networks: every layer runs in the type the ONNX gives it, so
the float layers of an fp32 Q/DQ model (the ReLUs, sigmoids, gating Muls, Resizes, the Faster
R-CNN box head after the RoIAlign plugin) would run in fp32. This pass gives them fp16 the way
NVIDIA Model Optimizer's AutoCast does, with ONNX Runtime's maintained converter
(onnxruntime.transformers.float16: initializers, value types and the Casts at the borders):
  - fp16: the network body (`fp16_nodes`, see fp16_region: backbone, neck, heads, what feeds them,
    their Q/DQ nodes, whose scales become fp16, so the graph needs opset >= 19) and the RoIAlign
    plugin's features and output;
  - fp32: everything else, where range needs it: anchors and box decoding, scores before NMS and
    the NMS plugin, and the RoI coordinates the RoIAlign plugin reads (its mixed I/O takes fp32
    rois next to fp16 features, csrc/tensorrt/multiLevelRoIAlign/README.md).
"""

from __future__ import annotations

FP16_OPSET = 19  # QuantizeLinear / DequantizeLinear take fp16 scales from opset 19 on
ROI_ALIGN_PLUGIN = "SSPNetMultiLevelRoIAlign"


SHAPE_ONLY = ("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity")


ROI_INPUTS = {ROI_ALIGN_PLUGIN: 0, "RoiAlign": 1}
WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")  # the rois input: RoI coordinates stay fp32


def fp16_region(model, body: set[str]) -> set[str]:
    """Names of the nodes that run in fp16: the weighted layers of the `body` (backbone, neck,
    heads, Faster R-CNN's box head) and everything that feeds them (their Q/DQ, ReLUs, residual
    Adds, the input normalisation, the attention arithmetic), but not what produces RoI
    coordinates: the walk up the graph stops at a RoIAlign's rois and at the proposal decoding
    behind them. Reshapes between fp16 layers are fp16 too. Everything else (anchors, box decoding,
    scores, NMS) is fp32."""
    from collections import defaultdict

    producers = {out: node for node in model.graph.node for out in node.output}
    readers = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            readers[name].append(node)

    def ancestors(seeds, skip_rois=False, stop=frozenset()):
        found, frontier = set(), list(seeds)
        while frontier:
            node = frontier.pop()
            if node.name in found or node.name in stop:
                continue
            found.add(node.name)
            skip = ROI_INPUTS.get(node.op_type) if skip_rois else None
            frontier += [producers[name] for k, name in enumerate(node.input) if k != skip and name in producers]
        return found

    by_name = {node.name: node for node in model.graph.node}
    weighted = [node for node in model.graph.node if node.name in body and node.op_type in WEIGHTED]
    # What the RoI coordinates are computed from (proposal decoding, anchors) stays fp32; the
    # backbone and RPN layers they start from do not.
    roi_nodes = [
        producers[node.input[ROI_INPUTS[node.op_type]]]
        for node in model.graph.node
        if node.op_type in ROI_INPUTS and node.input[ROI_INPUTS[node.op_type]] in producers
    ]
    roi_sources = ancestors(roi_nodes)
    features = ancestors(by_name[name] for name in roi_sources if by_name[name].op_type in WEIGHTED)
    fp16 = ancestors(weighted, skip_rois=True, stop=frozenset(roi_sources - features))
    changed = True
    while changed:  # a reshape between fp16 layers is fp16 too (no Cast pair around it)
        changed = False
        for node in model.graph.node:
            if node.name in fp16 or node.op_type not in SHAPE_ONLY:
                continue
            source = producers.get(node.input[0])
            users = [reader for out in node.output for reader in readers[out]]
            if source is not None and source.name in fp16 and users and all(u.name in fp16 for u in users):
                fp16.add(node.name)
                changed = True
    return fp16


def float16_copy(model):
    """A float (not quantized) model with the same fp16 / fp32 split as the fp16 TensorRT form:
    the fp16 baseline a strongly typed TensorRT 11 build compares the INT8 engine with."""
    from .quantize import AFTER_PLUGINS, plan_body

    plan = plan_body(model)
    return to_float16(model, fp16_region(model, set(plan.quantize) | set(plan.kept_float.get(AFTER_PLUGINS, []))))


def to_float16(model, fp16_nodes: set[str]):
    """A copy of `model` with the nodes named in `fp16_nodes` (and the RoIAlign plugin) in fp16."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version < FP16_OPSET:
            opset.version = FP16_OPSET  # Q/DQ, Resize, Pad, Cast... changed nothing this graph relies on
    plugins = {node.op_type for node in model.graph.node if node.domain not in ("", "ai.onnx", "com.microsoft")}
    fp16_plugins = {ROI_ALIGN_PLUGIN} & plugins
    blocked = [
        node.name for node in model.graph.node if node.name not in fp16_nodes and node.op_type not in fp16_plugins
    ]
    converted = convert_float_to_float16(
        model,
        keep_io_types=True,
        disable_shape_infer=False,
        op_block_list=list(DEFAULT_OP_BLOCK_LIST) + sorted(plugins - fp16_plugins),
        node_block_list=blocked,
    )
    _roi_coordinates_in_fp32(converted)
    _drop_round_trips(converted)
    _sort_topologically(converted)
    onnx.checker.check_model(converted)
    return converted


def _drop_round_trips(model) -> None:
    """The converter casts every output of an fp32 node to fp16 and back to fp32 before the next
    fp32 node: remove those fp32 -> fp16 -> fp32 round trips (they only lose precision)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    }
    types.update({init.name: init.data_type for init in model.graph.initializer})
    producers = {out: node for node in model.graph.node for out in node.output}

    def cast_to(node):
        return next((a.i for a in node.attribute if a.name == "to"), None) if node.op_type == "Cast" else None

    for node in model.graph.node:
        for index, name in enumerate(node.input):
            back = producers.get(name)
            if back is None or cast_to(back) != onnx.TensorProto.FLOAT:
                continue
            down = producers.get(back.input[0])
            if (
                down is not None
                and cast_to(down) == onnx.TensorProto.FLOAT16
                and types.get(down.input[0]) == onnx.TensorProto.FLOAT
            ):
                node.input[index] = down.input[0]
    outputs = {v.name for v in model.graph.output}
    while True:
        read = {name for node in model.graph.node for name in node.input} | outputs
        unread = [node for node in model.graph.node if node.op_type == "Cast" and not set(node.output) & read]
        if not unread:
            break
        for node in unread:
            model.graph.node.remove(node)
    model.graph.ClearField("value_info")  # the converter's types of rewired tensors are stale


def _sort_topologically(model) -> None:
    """The converter appends its Casts at the end of the node list; ONNX wants producers first.
    (A stable Kahn sort: nodes keep their order wherever their inputs allow it.)"""
    available = {v.name for v in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    pending, ordered = list(model.graph.node), []
    while pending:
        waiting = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):  # inputs from nowhere: leave them for the checker to name
            ordered += waiting
            break
        pending = waiting
    copies = [type(node)() for node in ordered]
    for copy, node in zip(copies, ordered):
        copy.CopyFrom(node)
    del model.graph.node[:]
    model.graph.node.extend(copies)


def _roi_coordinates_in_fp32(model) -> None:
    """The RoIAlign plugin reads its rois (input 0) in fp32: undo the converter's Cast to fp16 there."""
    import onnx

    producers = {out: node for node in model.graph.node for out in node.output}
    for node in model.graph.node:
        if node.op_type != ROI_ALIGN_PLUGIN:
            continue
        cast = producers.get(node.input[0])
        to = next((a.i for a in cast.attribute if a.name == "to"), None) if cast is not None else None
        if cast is not None and cast.op_type == "Cast" and to == onnx.TensorProto.FLOAT16:
            node.input[0] = cast.input[0]


__all__ = ["FP16_OPSET", "float16_copy", "fp16_region", "to_float16"]
