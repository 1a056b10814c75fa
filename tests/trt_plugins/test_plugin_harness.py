"""The sspnet TensorRT plugins driven the way TensorRT and its ONNX parser drive them
(cpp/trt_harness.cpp), from the plugin nodes of a real tensorrt-flavour export of
faster_rcnn_r18_sspnet_small, against TensorRT 10.3 (JetPack 6.1 / 6.2) and 11.x headers.

The library under test is the one csrc/tensorrt/CMakeLists.txt builds (against the stub
libnvinfer of cpp/fake_nvinfer.cpp), loaded with a plain dlopen: its errors must reach the
application's TensorRT logger (libnvinfer's getLogger()), never stderr.

Without a CUDA device the harness runs everything but enqueue; the NMS plugin's hard-NMS
workspace query (CUB asks the device) must then fail loudly. With a device, enqueue runs on
device buffers and is compared with sspnet.ops on the same inputs (fp32 and fp16).
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from harness_enqueue import enqueue_outputs, reference, write_enqueue_inputs
from harness_spec import opt_dims, plugin_descriptions, plugin_nodes, write_spec
from trt_build import cmake_build, compile_harness, cuda_root, header_set, missing_tools

PRESET = "faster_rcnn_r18_sspnet_small"
HEADER_VERSIONS = ["10.3", "11."]
FIELD_TYPES = {"int32": 5, "float32": 1, "float32[]": 1, "int32[]": 5}  # nvinfer1::PluginFieldType
WORKSPACE_FIELD = "workspace_bytes"


def _skip_reason(version_prefix: str) -> str | None:
    reason = missing_tools("g++", "cmake", "nm", "nvcc")
    if reason is None and header_set(version_prefix) is None:
        reason = f"no TensorRT {version_prefix}x C++ headers found (set TENSORRT_INCLUDE_DIRS)"
    return reason


def _bad_inputs(node) -> list:
    """(input index, dims, refused by getOutputShapes, refused by onShapeChange)."""
    if node.op_type == "SSPNetMultiLevelRoIAlign":
        rois = node.inputs[0].dims[0]
        batch, channels, height = node.inputs[1].dims[:3]
        return [
            (0, [rois, 4], True, True),  # known at build time: refused at once
            (0, [rois, "trail_four"], False, True),  # dynamic at build time: onShapeChange must catch it
            (1, [batch, channels, height], True, True),
        ]
    batch, boxes = node.inputs[0].dims[:2]
    return [
        (0, [batch, boxes, 5], True, True),
        (0, [batch, boxes, "trail_five"], False, True),
        (1, [batch, boxes + 1 if isinstance(boxes, int) else f"{boxes}+1"], True, True),
    ]


@pytest.fixture(scope="module")
def export_nodes(exported_detector):
    import onnx

    path = exported_detector(PRESET, "tensorrt")
    nodes = plugin_nodes(onnx.load(str(path), load_external_data=False))
    for node in nodes:
        node.bad_inputs = _bad_inputs(node)
    return nodes


@pytest.fixture(scope="module", params=HEADER_VERSIONS, ids=lambda v: f"trt{v.rstrip('.')}")
def harness(request, export_nodes, tmp_path_factory):
    reason = _skip_reason(request.param)
    if reason:
        pytest.skip(reason)
    headers, cuda = header_set(request.param), cuda_root()
    build = cmake_build(headers, cuda)
    binary = compile_harness(headers, cuda, build["root"])
    folder = tmp_path_factory.mktemp("harness")
    spec = folder / "spec.txt"
    profiles = write_spec(export_nodes, spec, {"trail_four": (4, 4, 4), "trail_five": (5, 5, 5)})
    command = [str(binary), str(build["library"]), str(spec)]
    arrays = None
    if _cuda_device():
        arrays = write_enqueue_inputs(export_nodes, profiles, folder)
        command += ["--enqueue", str(folder)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    return {
        "report": report,
        "stderr": run.stderr,
        "headers": headers,
        "folder": folder,
        "arrays": arrays,
        "profiles": profiles,
    }


def _cuda_device() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _nodes(harness, export_nodes):
    report_nodes = harness["report"]["nodes"]
    assert [n["name"] for n in report_nodes] == [n.name for n in export_nodes]
    return list(zip(export_nodes, report_nodes))


def test_export_has_both_plugins(export_nodes):
    assert {n.op_type for n in export_nodes} == set(plugin_descriptions())


def test_headers_are_the_version_asked_for(harness):
    report, headers = harness["report"], harness["headers"]
    assert f"{report['nv_tensorrt_major']}.{report['nv_tensorrt_minor']}" == ".".join(headers.version.split(".")[:2])


def test_plain_dlopen_registers_every_plugin_and_logs_nothing_to_stderr(harness):
    descriptions = plugin_descriptions()
    expected = sorted(f"{d['namespace']}::{name}/{d['version']}" for name, d in descriptions.items())
    assert sorted(harness["report"]["registered"]) == expected
    # Dozens of refusals below each log an error: all of them through TensorRT's logger.
    assert harness["stderr"] == ""


def test_parser_finds_each_creator_and_passes_every_attribute(harness, export_nodes):
    descriptions = plugin_descriptions()
    for node, result in _nodes(harness, export_nodes):
        description = descriptions[node.op_type]
        assert result["lookup"] == {
            "version": description["version"],
            "namespace": description["namespace"],
            "found": True,
        }
        assert result["creator_kind"] == "PLUGIN CREATOR_V3ONE"
        attributes = {name for name, _, _ in node.attributes} - {"plugin_version", "plugin_namespace"}
        assert sorted(result["fields_passed"]) == sorted(attributes) == sorted(description["fields"])
        assert result["fields_absent"] == []
        assert result["build_plugin"], result["build_messages"]
        assert result["capabilities"] == {
            "core": True,
            "build": True,
            "runtime": True,
            "identity_matches_creator": True,
        }


def test_serialised_fields_hold_the_node_attributes(harness, export_nodes):
    descriptions = plugin_descriptions()
    for node, result in _nodes(harness, export_nodes):
        fields = descriptions[node.op_type]["fields"]
        serialised = {f["name"]: f for f in result["serialised_fields"]}
        assert set(serialised) - {WORKSPACE_FIELD} == set(fields)
        for name, spec in fields.items():
            value = node.attribute(name)
            expected = value if isinstance(value, list) else [value]
            assert serialised[name]["type"] == FIELD_TYPES[spec["type"]], name
            assert serialised[name]["length"] == len(expected), name
            # float attributes travel as float32 (the parser's kFLOAT32)
            assert serialised[name]["values"] == pytest.approx([float(np.float32(v)) for v in expected], rel=1e-6)


def test_output_shapes_match_the_graph(harness, export_nodes):
    profiles = harness["profiles"]
    for node, result in _nodes(harness, export_nodes):
        shapes = result["output_shapes"]
        assert shapes["status"] == 0, shapes["messages"]
        assert result["nb_outputs"] == len(node.outputs)
        for declared, dims in zip(node.outputs, shapes["dims"]):
            expected_opt = opt_dims(declared, profiles)
            expected_max = [d if isinstance(d, int) else profiles[str(d).replace(" ", "")][2] for d in declared.dims]
            assert [d["opt"] for d in dims] == expected_opt, node.name
            assert [d["max"] for d in dims] == expected_max, node.name
            assert [d["constant"] for d in dims] == [isinstance(d, int) for d in declared.dims], node.name


def test_format_combinations_position_by_position(harness, export_nodes):
    for node, result in _nodes(harness, export_nodes):
        assert result["lookahead_independent"], node.name
        assert result["output_types_agree"], node.name
        combinations = {tuple(c) for c in result["format_combinations"]}
        n_in, n_out = len(node.inputs), len(node.outputs)
        if node.op_type == "SSPNetMultiLevelRoIAlign":
            expected = {
                tuple(["FLOAT:LINEAR"] * (n_in + n_out)),
                tuple(["HALF:LINEAR"] * (n_in + n_out)),
                # RoIs stay fp32 next to fp16 features (fp16 RoIs lose 0.5 px above 512 px)
                tuple(["FLOAT:LINEAR"] + ["HALF:LINEAR"] * (n_in - 1 + n_out)),
            }
        else:
            labels = ["INT32:LINEAR"] * (n_in - 2)
            expected = {
                tuple([f"{t}:LINEAR", f"{t}:LINEAR", *labels, "INT32:LINEAR", f"{t}:LINEAR", "INT32:LINEAR"])
                for t in ("FLOAT", "HALF")
            }
        assert combinations == expected, node.name


def test_configure_and_workspace(harness, export_nodes):
    has_device = harness["report"]["cuda_devices"] > 0
    for node, result in _nodes(harness, export_nodes):
        assert result["configured"], node.name
        for configured in result["configured"]:
            needs_device = node.op_type == "SSPNetBatchedNMS" and node.attribute("method") == 0
            if needs_device and not has_device:
                # CUB's temporary-storage query needs a device: a loud build failure, never a
                # silent 0-byte workspace.
                assert configured["configure_status"] != 0
                assert any("workspace size query failed" in m for m in configured["messages"])
                continue
            assert configured["configure_status"] == 0, configured["messages"]
            if node.op_type == "SSPNetBatchedNMS":
                assert configured["workspace_bytes"] > 0
            else:
                assert configured["workspace_bytes"] == 0  # RoIAlign needs no scratch memory


def test_serialise_deserialise_and_copies(harness, export_nodes):
    has_device = harness["report"]["cuda_devices"] > 0
    for node, result in _nodes(harness, export_nodes):
        assert result["runtime_plugin"], result["runtime_messages"]
        assert result["roundtrip_equal"], node.name
        assert result["copies"] == {
            "clone_distinct": True,
            "clone_outlives_original": True,
            "attached_distinct": True,
            "attached_outlive_original": True,
        }
        assert result["on_shape_change"]["status"] == 0, result["on_shape_change"]["messages"]
        names = [f["name"] for f in result["serialised_fields"]]
        configured_fp32 = next(c for c in result["configured"] if c["label"] == "fp32")
        # The reserved workspace travels with the engine once configurePlugin has measured it.
        carries_workspace = node.op_type == "SSPNetBatchedNMS" and configured_fp32["configure_status"] == 0
        assert (WORKSPACE_FIELD in names) == carries_workspace, node.name
        if carries_workspace:
            field = next(f for f in result["serialised_fields"] if f["name"] == WORKSPACE_FIELD)
            assert field["type"] == 10 and field["values"] == [configured_fp32["workspace_bytes"]]  # kINT64
        if node.op_type == "SSPNetBatchedNMS" and (node.attribute("method") != 0 or has_device):
            assert carries_workspace, node.name  # soft-NMS sizes need no device query


def test_wrong_fields_and_shapes_are_refused_with_a_message(harness, export_nodes):
    for node, result in _nodes(harness, export_nodes):
        cases = {c["case"]: c for c in result["refusals"]}
        for case in cases.values():
            if case["refused"]:
                assert case["messages"], case["case"]  # a refusal always says why, on the logger
        field_cases = [c for c in cases.values() if c["case"].startswith(("field ", "unknown field"))]
        assert len(field_cases) == 1 + 4 * len(plugin_descriptions()[node.op_type]["fields"])
        for case in field_cases:
            assert case["refused"], case["case"]
            name = case["case"].split()[2] if case["case"].startswith("unknown") else case["case"].split()[1]
            assert any(f"'{name}'" in m for m in case["messages"]), case
        for index, dims, at_build, at_runtime in node.bad_inputs:
            text = f"input {index} [" + ", ".join(str(d).replace(" ", "") for d in dims) + "]"
            assert cases[f"getOutputShapes with {text}"]["refused"] == at_build, text
            assert cases[f"onShapeChange with {text}"]["refused"] == at_runtime, text
        assert cases["getOutputDataTypes with one input too many"]["refused"]


def test_enqueue_matches_sspnet_ops_on_the_gpu(harness, export_nodes):
    if harness["report"]["cuda_devices"] == 0 or harness["arrays"] is None:
        pytest.skip(
            "no CUDA device: enqueue runs only where a GPU is present (on the CPU execution layer: "
            "test_plugin_enqueue_on_cpu.py)"
        )
    folder = harness["folder"]
    for index, (node, result) in enumerate(_nodes(harness, export_nodes)):
        runs = {(r["profile"], r["label"]): r for r in result["enqueue"]}
        assert {("opt", "fp32"), ("opt", "fp16"), ("max", "fp32")} <= set(runs), node.name
        for (profile, label), run in runs.items():
            assert run["status"] == 0 and run["cuda_ok"], (node.name, run)
            expected = reference(node, harness["arrays"][(index, profile)], label, "cuda")
            got = enqueue_outputs(folder, index, profile, label, expected)
            for k, (out, ref) in enumerate(zip(got, expected)):
                if label == "mixed":  # fp16 output of fp32 arithmetic: one fp16 rounding apart
                    np.testing.assert_allclose(out, ref, rtol=2e-3, atol=2e-3, err_msg=f"{node.name} {k}")
                else:
                    np.testing.assert_array_equal(out, ref, err_msg=f"{node.name} {profile} {label} output {k}")
