"""The `tensorrt` flavour: sspnet's custom torch ops as single custom ONNX nodes for TensorRT.

TensorRT's ONNX parser turns a node it does not know into a plugin: it looks up a plugin creator
by the node's op_type plus its `plugin_version` and `plugin_namespace` attributes, and hands every
other attribute to the creator as a PluginField of the same name (the node's domain is ignored).
So the nodes written here must match the plugins exactly. Everything about them (op type,
version, namespace, input and output order, field names and types) is read from ONE file,
runtime/plugin_fields.json, at export time; the C++ plugin creators are tested against the same
file. Nothing here repeats a field name except to say which torch-op argument fills it.

Differences between a plugin and the torch op are bridged around the node with standard ops:
the NMS plugin takes int32 labels and returns int32 keep / [N, 1] num_valid, where the torch op
returns int64 keep / [N] num_valid.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

import onnx_ir as ir
from onnx.defs import OpSchema
from onnxscript import opset18 as op
from onnxscript import values

DOMAIN = "sspnet"  # informational: TensorRT ignores the domain, ONNX needs one for custom ops

ROI_ALIGN_PLUGIN = "SSPNetMultiLevelRoIAlign"
NMS_PLUGIN = "SSPNetBatchedNMS"

# JSON field type -> ONNX attribute type.
_ATTRIBUTE_TYPES = {
    "int32": OpSchema.AttrType.INT,
    "float32": OpSchema.AttrType.FLOAT,
    "float32[]": OpSchema.AttrType.FLOATS,
    "int32[]": OpSchema.AttrType.INTS,
}
# JSON tensor dtype -> ONNX type string ("float32|float16" and "same as X" share the type T).
_FLOAT_TYPES = ["tensor(float)", "tensor(float16)"]
_FIXED_TYPES = {"int32": "tensor(int32)", "int64": "tensor(int64)", "float32": "tensor(float)"}


@functools.cache
def plugin_fields() -> dict:
    """The `plugins` object of runtime/plugin_fields.json (installed as sspnet.runtime data)."""
    text = resources.files("sspnet.runtime").joinpath("plugin_fields.json").read_text()
    return json.loads(text)["plugins"]


def plugin_description(name: str) -> dict:
    plugins = plugin_fields()
    if name not in plugins:
        raise KeyError(f"plugin {name!r} is not described in plugin_fields.json (has {sorted(plugins)})")
    return plugins[name]


def _tensor_type(dtype: str) -> str:
    if dtype == "float32|float16" or dtype.startswith("same as"):
        return "T"
    if dtype not in _FIXED_TYPES:
        raise ValueError(f"plugin_fields.json: unsupported tensor dtype {dtype!r}")
    return _FIXED_TYPES[dtype]


def _formal_parameter(tensor: dict) -> OpSchema.FormalParameter:
    if tensor["shape"].startswith("L x"):  # a list of tensors, e.g. the pyramid levels
        option = OpSchema.FormalParameterOption.Variadic
    elif tensor.get("optional", False):
        option = OpSchema.FormalParameterOption.Optional
    else:
        option = OpSchema.FormalParameterOption.Single
    return OpSchema.FormalParameter(
        tensor["name"], _tensor_type(tensor["dtype"]), tensor.get("doc", ""), param_option=option
    )


@functools.cache
def plugin_schema(name: str) -> OpSchema:
    """An ONNX OpSchema for the plugin's node, generated from plugin_fields.json.

    Attributes: every plugin field plus the strings `plugin_version` and `plugin_namespace`.
    The schema is not registered globally; it only tells the exporter how to build the node.
    """
    plugin = plugin_description(name)
    attributes = [
        OpSchema.Attribute("plugin_version", OpSchema.AttrType.STRING, "TensorRT plugin version"),
        OpSchema.Attribute("plugin_namespace", OpSchema.AttrType.STRING, "TensorRT plugin namespace"),
    ]
    for field, spec in plugin["fields"].items():
        if spec["type"] not in _ATTRIBUTE_TYPES:
            raise ValueError(f"plugin_fields.json: {name}.{field} has unsupported type {spec['type']!r}")
        attributes.append(OpSchema.Attribute(field, _ATTRIBUTE_TYPES[spec["type"]], spec.get("doc", "")))
    return OpSchema(
        name,
        DOMAIN,
        int(plugin["version"]),
        doc=f"TensorRT plugin {plugin['namespace']}::{name} version {plugin['version']}",
        inputs=[_formal_parameter(t) for t in plugin["inputs"]],
        outputs=[_formal_parameter(t) for t in plugin["outputs"]],
        type_constraints=[("T", _FLOAT_TYPES, "float32 or float16 data")],
        attributes=attributes,
    )


def plugin_attributes(name: str, field_values: dict) -> dict:
    """Node attributes for plugin `name`: every JSON field, converted to its JSON type.

    field_values must give a value for every field (no silent defaults: a field the torch op does
    not provide has to be set on purpose) and nothing else.
    """
    plugin = plugin_description(name)
    fields = plugin["fields"]
    missing = sorted(set(fields) - set(field_values))
    unknown = sorted(set(field_values) - set(fields))
    if missing or unknown:
        raise ValueError(
            f"{name}: attribute values do not match plugin_fields.json fields (missing {missing}, unknown {unknown})"
        )
    attributes = {"plugin_version": str(plugin["version"]), "plugin_namespace": str(plugin["namespace"])}
    for field, spec in fields.items():
        value = field_values[field]
        if spec["type"] == "int32":
            attributes[field] = int(value)
        elif spec["type"] == "float32":
            attributes[field] = float(value)
        elif spec["type"] == "float32[]":
            attributes[field] = [float(v) for v in value]
        else:  # int32[]
            attributes[field] = [int(v) for v in value]
    return attributes


def _plugin_op(name: str) -> values.Op:
    return values.Op(values.Opset(DOMAIN, int(plugin_description(name)["version"])), name, plugin_schema(name))


def multi_level_roi_align(
    features,
    rois,
    spatial_scales,
    output_height: int,
    output_width: int,
    sampling_ratio: int,
    aligned: bool,
    finest_scale: float,
):
    """torch.ops.sspnet.multi_level_roi_align -> one SSPNetMultiLevelRoIAlign node."""
    attributes = plugin_attributes(
        ROI_ALIGN_PLUGIN,
        {
            "output_height": output_height,
            "output_width": output_width,
            "sampling_ratio": sampling_ratio,
            "aligned": int(bool(aligned)),
            "finest_scale": finest_scale,
            "spatial_scales": spatial_scales,
        },
    )
    # Keyword inputs: the exporter's positional handling of a variadic input is unreliable.
    return _plugin_op(ROI_ALIGN_PLUGIN)(rois=rois, features=list(features), **attributes)


def batched_nms(
    boxes,
    scores,
    labels,
    iou_threshold: float,
    method: int,
    sigma: float,
    score_threshold: float,
    min_score: float,
    max_output: int,
):
    """torch.ops.sspnet.batched_nms -> one SSPNetBatchedNMS node (+ casts to the torch op's types)."""
    attributes = plugin_attributes(
        NMS_PLUGIN,
        {
            "method": method,
            "iou_threshold": iou_threshold,
            "sigma": sigma,
            "score_threshold": score_threshold,
            "min_score": min_score,
            "max_output": max_output,
            "class_aware": int(labels is not None),
        },
    )
    inputs = {"boxes": boxes, "scores": scores}
    if labels is not None:
        inputs["labels"] = op.Cast(labels, to=ir.DataType.INT32)
    keep, keep_scores, num_valid = _plugin_op(NMS_PLUGIN)(**inputs, **attributes)
    keep = op.Cast(keep, to=ir.DataType.INT64)
    num_valid = op.Cast(op.Squeeze(num_valid, op.Constant(value_ints=[1])), to=ir.DataType.INT64)
    return keep, keep_scores, num_valid
