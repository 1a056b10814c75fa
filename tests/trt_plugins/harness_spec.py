"""The harness's input (cpp/trt_harness.cpp): the plugin nodes of an exported ONNX file, as the
TensorRT ONNX parser sees them: op type, attributes with their ONNX types, input and output
shapes (symbolic sizes with an optimisation profile), plus shapes each plugin must refuse.

Output shapes come from the graph where the exporter or shape inference declared them, else from
runtime/plugin_fields.json's shape formulas ("[N, max_output]") bound to the node's inputs and
attributes: either way an expectation the plugin's getOutputShapes is checked against.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from trt_files import PLUGIN_FIELDS

# The profile of each base symbol: (min, opt, max). "batch" is the exporter's dynamic batch.
BASE_PROFILES = {"batch": (1, 2, 4)}
DEFAULT_PROFILE = (1, 3, 8)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def plugin_descriptions() -> dict:
    return json.loads(PLUGIN_FIELDS.read_text())["plugins"]


def evaluate_size(expression: str, values: dict[str, int]) -> int:
    """'300*batch' with {'batch': 2} -> 600. Only + - * // ( ) integers and symbols."""
    if not re.fullmatch(r"[A-Za-z0-9_+\-*/() ]+", expression):
        raise ValueError(f"unsupported size expression {expression!r}")
    names = set(_IDENTIFIER.findall(expression))
    return int(eval(expression, {"__builtins__": {}}, {n: values[n] for n in names}))  # noqa: S307 (checked above)


@dataclass
class Tensor:
    elem_type: str  # ONNX element type name: FLOAT, INT32, ...
    dims: list  # int or a size expression (str)


@dataclass
class PluginNode:
    op_type: str
    name: str
    attributes: list  # [(name, ONNX type name, value)]
    inputs: list[Tensor]
    outputs: list[Tensor]
    bad_inputs: list = field(default_factory=list)  # [(input index, dims, refused at build, refused at runtime)]

    def attribute(self, name, default=None):
        return next((value for key, _, value in self.attributes if key == name), default)


def _value_infos(model):
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    infos = {}
    for value in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        tensor = value.type.tensor_type
        if not tensor.HasField("shape"):
            continue
        dims = []
        for dim in tensor.shape.dim:
            if dim.HasField("dim_value"):
                dims.append(int(dim.dim_value))
            elif dim.dim_param:
                dims.append(dim.dim_param)
            else:
                dims = None
                break
        if dims is not None:
            infos[value.name] = Tensor(onnx.TensorProto.DataType.Name(tensor.elem_type), dims)
    return infos


def _attribute(attribute):
    import onnx

    kind = onnx.AttributeProto.AttributeType.Name(attribute.type)
    value = onnx.helper.get_attribute_value(attribute)
    if kind == "STRING":
        value = value.decode()
    elif kind == "STRINGS":
        value = [v.decode() for v in value]
    return attribute.name, kind, value


def _shape_tokens(shape: str) -> list[str]:
    return [token.strip() for token in shape.split("[", 1)[1].rstrip("]").split(",")]


def _expected_outputs(node_inputs: list[Tensor], attributes: dict, description: dict) -> list[Tensor]:
    """Output shapes from plugin_fields.json's formulas, bound to the inputs and attributes."""
    bound = {}
    inputs = list(node_inputs)
    for spec in description["inputs"]:
        variadic = spec["shape"].startswith("L x")
        count = len(inputs) - (len(description["inputs"]) - 1) if variadic else 1
        taken, inputs = inputs[:count], inputs[count:]
        for tensor in taken:
            for token, dim in zip(_shape_tokens(spec["shape"]), tensor.dims):
                if not token.isdigit() and "_" not in token:  # H_l / W_l differ per level
                    bound.setdefault(token, dim)
    defaults = {name: spec["default"] for name, spec in description["fields"].items()}
    outputs = []
    for spec in description["outputs"]:
        dims = []
        for token in _shape_tokens(spec["shape"]):
            if token.isdigit():
                dims.append(int(token))
            elif token in bound:
                dims.append(bound[token])
            else:
                dims.append(int(attributes.get(token, defaults[token])))
        dtype = spec["dtype"]
        if dtype.startswith("same as"):
            source = dtype.split()[-1]
            index = [s["name"] for s in description["inputs"]].index(source)
            elem_type = node_inputs[index].elem_type
        else:
            elem_type = {"int32": "INT32", "int64": "INT64", "float32": "FLOAT"}[dtype]
        outputs.append(Tensor(elem_type, dims))
    return outputs


def plugin_nodes(model) -> list[PluginNode]:
    """Every node of the graph that names a described plugin (op type in plugin_fields.json)."""
    descriptions = plugin_descriptions()
    infos = _value_infos(model)
    nodes = []
    for index, node in enumerate(model.graph.node):
        if node.op_type not in descriptions:
            continue
        attributes = [_attribute(a) for a in node.attribute]
        inputs = [infos[name] for name in node.input if name]
        expected = _expected_outputs(inputs, {n: v for n, _, v in attributes}, descriptions[node.op_type])
        outputs = [infos.get(name, guess) for name, guess in zip(node.output, expected)]
        nodes.append(PluginNode(node.op_type, node.name or f"node{index}", attributes, inputs, outputs))
    return nodes


def symbol_profiles(nodes: list[PluginNode]) -> dict[str, tuple[int, int, int]]:
    """min / opt / max of every size expression used by the nodes."""
    expressions = set()
    for node in nodes:
        for tensor in node.inputs + node.outputs:
            expressions |= {d for d in tensor.dims if isinstance(d, str)}
        for _, dims, *_ in node.bad_inputs:
            expressions |= {d for d in dims if isinstance(d, str)}
    bases = set()
    for expression in expressions:
        bases |= set(_IDENTIFIER.findall(expression))
    profiles = {}
    for expression in sorted(expressions):
        values = [{base: BASE_PROFILES.get(base, DEFAULT_PROFILE)[k] for base in bases} for k in range(3)]
        profiles[expression] = tuple(evaluate_size(expression, v) for v in values)
    return profiles


def _token(dim) -> str:
    text = str(dim).replace(" ", "")
    if not text:
        raise ValueError("empty size expression")
    return text


def _dims_line(dims) -> str:
    return " ".join([str(len(dims)), *(_token(d) for d in dims)])


def write_spec(nodes: list[PluginNode], path, extra_symbols: dict | None = None) -> dict:
    """Writes the harness spec; returns the symbol profiles used."""
    profiles = symbol_profiles(nodes)
    profiles.update(extra_symbols or {})
    lines = [f"symbol {_token(name)} {lo} {opt} {hi}" for name, (lo, opt, hi) in profiles.items()]
    for node in nodes:
        lines.append(f"node {node.op_type} {node.name}")
        for name, kind, value in node.attributes:
            if kind in ("INT", "FLOAT"):
                lines.append(f"attr {name} {kind} {value!r}")
            elif kind in ("INTS", "FLOATS"):
                lines.append(f"attr {name} {kind} {len(value)} " + " ".join(repr(v) for v in value))
            elif kind == "STRING":
                if not value or any(c.isspace() for c in value):
                    raise ValueError(f"attribute {name}={value!r}: the spec cannot carry it")
                lines.append(f"attr {name} STRING {value}")
            else:
                raise ValueError(f"attribute {name} of type {kind}: the parser has no plugin field for it")
        lines += [f"input {t.elem_type} {_dims_line(t.dims)}" for t in node.inputs]
        lines += [f"output {t.elem_type} {_dims_line(t.dims)}" for t in node.outputs]
        lines += [f"bad_input {index} {_dims_line(dims)}" for index, dims, *_ in node.bad_inputs]
        lines.append("end")
    path.write_text("\n".join(lines) + "\n")
    return profiles


def opt_dims(tensor: Tensor, profiles: dict) -> list[int]:
    return [d if isinstance(d, int) else profiles[_token(d)][1] for d in tensor.dims]
