"""Hand-built ONNX models that obey the runtime contract, for the runtime tests.

The "marker model" is a tiny real detector written with standard ONNX ops: every pixel whose red
value is > 0 is a detection. For the K brightest red pixels (TopK) at (x, y) it returns

    box   = (x - R, y - R, x + R + 1, y + R + 1)   R = MARKER_RADIUS
    score = red / 255
    label = green value at that pixel
    num_dets = number of pixels with red > 0 (capped at K)

so a test can paint markers into a frame and write the expected detections in closed form.
Rows past num_dets hold the zero-valued pixels TopK returned: padding the runtime must ignore.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper

MARKER_RADIUS = 2
OPSET = 17

VALID_PROPS = {
    "sspnet_version": "0.1.0",
    "preset": "test_marker",
    "variant": "faster_rcnn",
    "classes": json.dumps(["person"]),
    "input_size": json.dumps([96, 128]),
    "max_detections": "16",
    "score_threshold": "0.05",
    "nms": json.dumps({"method": "hard", "iou_threshold": 0.5}),
    "flavor": "portable",
    "batch": "dynamic",
}


def metadata_props(input_size, max_detections, batch, **overrides) -> dict[str, str]:
    props = dict(VALID_PROPS)
    props.update(
        input_size=json.dumps(list(input_size)),
        max_detections=str(max_detections),
        batch="dynamic" if batch is None else str(batch),
    )
    props.update(overrides)
    return props


def _const(name: str, values, dtype=np.int64):
    array = np.asarray(values, dtype=dtype)
    return helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(array, name))


def _save(graph, path, props: dict[str, str] | None) -> str:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    if props is not None:
        helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def build_marker_model(
    path,
    input_size=(96, 128),
    k=16,
    batch=None,
    dynamic_hw=False,
    props: dict[str, str] | None = "default",
    input_dtype=TensorProto.UINT8,
    drop_output: str | None = None,
) -> str:
    """Write the marker model (see module docstring) to `path` and return the path.

    batch None -> dynamic N, else a fixed N; dynamic_hw -> symbolic H, W in the graph input.
    props "default" -> valid metadata for these settings, None -> no metadata, or a dict.
    input_dtype / drop_output break the contract on purpose (float input, a missing output).
    """
    height, width = input_size
    dims = ["N" if batch is None else batch, 3]
    dims += ["H", "W"] if dynamic_hw else [height, width]
    if props == "default":
        props = metadata_props(input_size, k, batch)
    r = float(MARKER_RADIUS)
    nodes = [
        _const("flat_shape", [0, -1]),
        _const("k", [k]),
        _const("zero_i", 0),
        _const("one_i", 1),
        _const("three_i", 3),
        _const("minus_r", -r, np.float32),
        _const("plus_r1", r + 1.0, np.float32),
        _const("scale", 1.0 / 255.0, np.float32),
        _const("zero_f", 0.0, np.float32),
        _const("axis1", [1]),
        _const("last_axis", [-1]),
        helper.make_node("Cast", ["images"], ["image_f"], to=TensorProto.FLOAT),
        helper.make_node("Gather", ["image_f", "zero_i"], ["red"], axis=1),
        helper.make_node("Gather", ["image_f", "one_i"], ["green"], axis=1),
        helper.make_node("Reshape", ["red", "flat_shape"], ["red_flat"]),
        helper.make_node("Reshape", ["green", "flat_shape"], ["green_flat"]),
        helper.make_node("TopK", ["red_flat", "k"], ["values", "index"], axis=-1),
        helper.make_node("Shape", ["images"], ["shape"]),
        helper.make_node("Gather", ["shape", "three_i"], ["width"], axis=0),
        helper.make_node("Mod", ["index", "width"], ["x_i"]),
        helper.make_node("Div", ["index", "width"], ["y_i"]),
        helper.make_node("Cast", ["x_i"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["y_i"], ["y"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "minus_r"], ["x1"]),
        helper.make_node("Add", ["y", "minus_r"], ["y1"]),
        helper.make_node("Add", ["x", "plus_r1"], ["x2"]),
        helper.make_node("Add", ["y", "plus_r1"], ["y2"]),
    ]
    for name in ("x1", "y1", "x2", "y2"):
        nodes.append(helper.make_node("Unsqueeze", [name, "last_axis"], [name + "_u"]))
    nodes += [
        helper.make_node("Concat", ["x1_u", "y1_u", "x2_u", "y2_u"], ["boxes"], axis=-1),
        helper.make_node("Mul", ["values", "scale"], ["scores"]),
        helper.make_node("GatherElements", ["green_flat", "index"], ["label_f"], axis=1),
        helper.make_node("Cast", ["label_f"], ["labels"], to=TensorProto.INT32),
        helper.make_node("Greater", ["values", "zero_f"], ["is_marker"]),
        helper.make_node("Cast", ["is_marker"], ["is_marker_i"], to=TensorProto.INT32),
        helper.make_node("ReduceSum", ["is_marker_i", "axis1"], ["num_dets"], keepdims=1),
    ]
    n = dims[0]
    outputs = [
        helper.make_tensor_value_info("num_dets", TensorProto.INT32, [n, 1]),
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [n, k, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [n, k]),
        helper.make_tensor_value_info("labels", TensorProto.INT32, [n, k]),
    ]
    outputs = [o for o in outputs if o.name != drop_output]
    graph = helper.make_graph(
        nodes, "marker_model", [helper.make_tensor_value_info("images", input_dtype, dims)], outputs
    )
    return _save(graph, path, props)


def build_constant_model(path, input_size, outputs: dict[str, np.ndarray], props: dict[str, str]) -> str:
    """A batch-1 model ignoring its input and returning the given arrays (to break the contract)."""
    height, width = input_size
    nodes = [
        helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(value, name))
        for name, value in outputs.items()
    ]
    types = {np.dtype(np.int32): TensorProto.INT32, np.dtype(np.float32): TensorProto.FLOAT}
    graph = helper.make_graph(
        nodes,
        "constant_model",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 3, height, width])],
        [helper.make_tensor_value_info(n, types[v.dtype], v.shape) for n, v in outputs.items()],
    )
    return _save(graph, path, props)


def paint_markers(frame: np.ndarray, markers) -> np.ndarray:
    """Set red = value, green = label at each (x, y, value, label); frame is RGB HWC uint8."""
    for x, y, value, label in markers:
        frame[y, x, 0] = value
        frame[y, x, 1] = label
    return frame


def expected_detections(markers, frame_h, frame_w):
    """Closed-form detections of the marker model in frame pixels, clipped, sorted by score."""
    r = MARKER_RADIUS
    rows = sorted(markers, key=lambda m: -m[2])
    boxes = np.array([[x - r, y - r, x + r + 1, y + r + 1] for x, y, _, _ in rows], dtype=np.float32).reshape(-1, 4)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, frame_w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, frame_h)
    scores = np.array([v / 255.0 for _, _, v, _ in rows], dtype=np.float32)
    labels = np.array([label for _, _, _, label in rows], dtype=np.int64)
    return boxes, scores, labels
