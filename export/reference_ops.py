"""Python implementations of the TensorRT plugin nodes, for onnx.reference.ReferenceEvaluator.

They let a `tensorrt`-flavour graph run on a machine without TensorRT: each custom node calls the
same sspnet kernels through torch.ops.sspnet, and follows the PLUGIN's contract (int32 keep,
[N, 1] num_valid ...) as runtime/plugin_fields.json describes it, so the run checks the exported
node wiring, not only the kernels.

    session = reference_evaluator(model_proto)   # ReferenceEvaluator with the plugin nodes
    outputs = session.run(None, {"images": images})
"""

from __future__ import annotations

import numpy as np
from onnx.reference.op_run import OpRun
from sspnet.export.ops_tensorrt import DOMAIN, NMS_PLUGIN, ROI_ALIGN_PLUGIN, plugin_fields


def _check_attributes(name: str, attributes: dict) -> None:
    """A node must carry exactly the JSON fields plus plugin_version / plugin_namespace."""
    plugin = plugin_fields()[name]
    expected = set(plugin["fields"]) | {"plugin_version", "plugin_namespace"}
    if set(attributes) != expected:
        raise ValueError(f"{name} node attributes {sorted(attributes)} != plugin fields {sorted(expected)}")
    if attributes["plugin_version"] != plugin["version"] or attributes["plugin_namespace"] != plugin["namespace"]:
        raise ValueError(
            f"{name} node is version {attributes['plugin_version']!r} namespace "
            f"{attributes['plugin_namespace']!r}; plugin_fields.json says {plugin['version']!r} "
            f"{plugin['namespace']!r}"
        )


def _as_str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _multi_level_roi_align(rois, *features, **attributes):
    """rois [R, 5], features L x [N, C, H_l, W_l] -> pooled [R, C, output_height, output_width]."""
    import torch

    import sspnet.ops  # noqa: F401  (registers torch.ops.sspnet)

    pooled = torch.ops.sspnet.multi_level_roi_align(
        [torch.from_numpy(np.ascontiguousarray(f)) for f in features],
        torch.from_numpy(np.ascontiguousarray(rois)),
        [float(s) for s in attributes["spatial_scales"]],
        int(attributes["output_height"]),
        int(attributes["output_width"]),
        int(attributes["sampling_ratio"]),
        bool(attributes["aligned"]),
        float(attributes["finest_scale"]),
    )
    return (pooled.numpy(),)


def _batched_nms(boxes, scores, labels=None, **attributes):
    """boxes [N, M, 4], scores [N, M], labels int32 [N, M] or absent ->
    keep int32 [N, max_output], keep_scores [N, max_output], num_valid int32 [N, 1]."""
    import torch

    import sspnet.ops  # noqa: F401

    class_aware = bool(attributes["class_aware"])
    if class_aware != (labels is not None):
        raise ValueError(f"{NMS_PLUGIN}: class_aware={int(class_aware)} but labels input present={labels is not None}")
    keep, keep_scores, num_valid = torch.ops.sspnet.batched_nms(
        torch.from_numpy(np.ascontiguousarray(boxes)),
        torch.from_numpy(np.ascontiguousarray(scores)),
        None if labels is None else torch.from_numpy(np.ascontiguousarray(labels)).long(),
        float(attributes["iou_threshold"]),
        int(attributes["method"]),
        float(attributes["sigma"]),
        float(attributes["score_threshold"]),
        float(attributes["min_score"]),
        int(attributes["max_output"]),
    )
    return (
        keep.numpy().astype(np.int32),
        keep_scores.numpy(),
        num_valid.numpy().astype(np.int32).reshape(-1, 1),
    )


_IMPLEMENTATIONS = {ROI_ALIGN_PLUGIN: _multi_level_roi_align, NMS_PLUGIN: _batched_nms}


def _make_op_class(name: str, implementation) -> type:
    def _run(self, *inputs, **attributes):
        attributes = {key: _as_str(value) if key.startswith("plugin_") else value for key, value in attributes.items()}
        _check_attributes(name, attributes)
        return implementation(*inputs, **attributes)

    return type(name, (OpRun,), {"op_domain": DOMAIN, "_run": _run, "__doc__": implementation.__doc__})


def plugin_reference_ops() -> list[type]:
    """One OpRun class per plugin in plugin_fields.json (error if a plugin has no implementation)."""
    missing = sorted(set(plugin_fields()) - set(_IMPLEMENTATIONS))
    if missing:
        raise NotImplementedError(f"no reference implementation for plugins {missing}")
    return [_make_op_class(name, _IMPLEMENTATIONS[name]) for name in plugin_fields()]


class GatherElements(OpRun):
    """Standard GatherElements with np.take_along_axis: onnx's own reference uses np.choose,
    which refuses an axis longer than 64 (numpy's limit), and the detector gathers over ~1000."""

    op_domain = ""

    def _run(self, data, indices, axis=None):
        axis = 0 if axis is None else int(axis)
        indices = np.where(indices < 0, indices + data.shape[axis], indices)
        return (np.take_along_axis(data, indices, axis=axis),)


def reference_evaluator(model, verbose: int = 0):
    """onnx.reference.ReferenceEvaluator for a tensorrt-flavour graph (plugins in Python)."""
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model, new_ops=[*plugin_reference_ops(), GatherElements], verbose=verbose)
