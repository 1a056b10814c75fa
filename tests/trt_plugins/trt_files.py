"""Helpers for the TensorRT tests: tiny ONNX files with sspnet metadata, repository paths."""

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN_FIELDS = REPO / "runtime" / "plugin_fields.json"
TENSORRT_SOURCES = REPO / "csrc" / "tensorrt"

METADATA = {
    "sspnet_version": "0.1.0",
    "preset": "faster_rcnn_r18_sspnet_small",
    "variant": "faster_rcnn",
    "classes": json.dumps(["person"]),
    "input_size": json.dumps([96, 128]),
    "max_detections": "16",
    "score_threshold": "0.05",
    "nms": json.dumps({"method": "hard", "iou_threshold": 0.5}),
    "flavor": "tensorrt",
    "batch": "dynamic",
}


def write_onnx(path, props=None, qdq=False, padding_bytes=0):
    """A small valid ONNX (images uint8 -> Identity) carrying `props` as metadata_props.

    qdq adds a QuantizeLinear / DequantizeLinear pair; padding_bytes adds an initializer of that
    size (so metadata sits after a large graph field, as in a real export).
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    images = helper.make_tensor_value_info("images", TensorProto.UINT8, ["N", 3, 96, 128])
    output = helper.make_tensor_value_info("out", TensorProto.FLOAT if qdq else TensorProto.UINT8, ["N", 3, 96, 128])
    nodes, initializers = [], []
    if qdq:
        initializers += [
            helper.make_tensor("scale", TensorProto.FLOAT, [], [0.5]),
            helper.make_tensor("zero", TensorProto.UINT8, [], [0]),
        ]
        nodes += [
            helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("QuantizeLinear", ["f", "scale", "zero"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["out"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["images"], ["out"]))
    if padding_bytes:
        initializers.append(onnx.numpy_helper.from_array(np.arange(padding_bytes, dtype=np.uint8), "padding"))
    graph = helper.make_graph(nodes, "tiny", [images], [output], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if props:
        helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Path(path)


def tensorrt_installed() -> bool:
    """NVIDIA's TensorRT is importable (through the backend's own import check, which also
    refuses a bare folder named `tensorrt` on sys.path)."""
    from sspnet.runtime.tensorrt_common import import_tensorrt

    try:
        import_tensorrt()
    except ImportError:
        return False
    return True
