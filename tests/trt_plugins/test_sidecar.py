"""The engine sidecar and the checks made before an engine is loaded (runtime/sidecar.py). No TensorRT."""

import json
import re

import onnx
import pytest
from sspnet.runtime.sidecar import (
    SidecarError,
    check_compatible,
    make_sidecar,
    read_onnx_metadata,
    read_sidecar,
    sidecar_path,
    tensorrt_release,
    write_sidecar,
)
from trt_files import METADATA, write_onnx

PLUGINS = {"SSPNetBatchedNMS": "1", "SSPNetMultiLevelRoIAlign": "1"}
REGISTERED = {"SSPNetBatchedNMS": ["1"], "SSPNetMultiLevelRoIAlign": ["1"]}


def a_sidecar(**overrides):
    values = dict(
        metadata=METADATA,
        onnx_path="/models/m_trt.onnx",
        onnx_sha256="ab" * 32,
        engine_sha256="cd" * 32,
        tensorrt_version="10.3.0.30",
        plugin_versions=PLUGINS,
        plugin_library="/x/libsspnet_trt_plugins.so",
        gpu_name="Orin",
        compute_capability="8.7",
        build={"precision": "fp16", "batch": [1, 4, 8]},
        sspnet_version="0.1.0",
    )
    values.update(overrides)
    return make_sidecar(**values)


def device(**overrides):
    """This device's facts for check_compatible, matching a_sidecar() unless overridden."""
    facts = dict(
        tensorrt_version="10.3.0.30",
        compute_capability="8.7",
        gpu_name="Orin",
        plugin_versions=REGISTERED,
        engine_sha256="cd" * 32,
    )
    facts.update(overrides)
    return facts


# ---- ONNX metadata from the protobuf bytes, against the onnx package's own reader ----------------


@pytest.mark.parametrize("padding", [0, 300_000])
def test_read_onnx_metadata_matches_onnx(tmp_path, padding):
    props = dict(METADATA, extra="ünïcode ✓", empty="")
    path = write_onnx(tmp_path / "m.onnx", props, padding_bytes=padding)
    reference = {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}
    assert read_onnx_metadata(path) == reference == props


def test_read_onnx_metadata_without_props_is_empty(tmp_path):
    assert read_onnx_metadata(write_onnx(tmp_path / "m.onnx")) == {}


def test_read_onnx_metadata_rejects_garbage(tmp_path):
    path = tmp_path / "not_onnx.onnx"
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match="not_onnx.onnx: not a readable ONNX model"):
        read_onnx_metadata(path)


# ---- the sidecar file -----------------------------------------------------------------------------


def test_sidecar_round_trip(tmp_path):
    engine = tmp_path / "m_fp16.engine"
    written = write_sidecar(engine, a_sidecar())
    assert written == tmp_path / "m_fp16.engine.json" == sidecar_path(engine)
    loaded = read_sidecar(engine)
    assert loaded["metadata"] == METADATA
    assert loaded["tensorrt"] == {"version": "10.3.0.30"}
    assert loaded["plugins"]["versions"] == PLUGINS and loaded["plugins"]["namespace"] == "sspnet"
    assert loaded["gpu"] == {"name": "Orin", "compute_capability": "8.7"}
    assert loaded["build"]["batch"] == [1, 4, 8]
    assert loaded["onnx"]["sha256"] == "ab" * 32 and loaded["engine"]["sha256"] == "cd" * 32


def test_missing_sidecar_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(SidecarError, match=r"m\.engine\.json does not exist.*--sidecar-only"):
        read_sidecar(tmp_path / "m.engine")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s.pop("gpu"), r"missing key\(s\) \['gpu'\]"),
        (lambda s: s.update(sidecar_version=2), "sidecar_version 2"),
        (lambda s: s.update(tensorrt={"v": "10"}), "'tensorrt' must be an object with 'version'"),
    ],
)
def test_broken_sidecar_is_a_clear_error(tmp_path, mutate, message):
    sidecar = a_sidecar()
    mutate(sidecar)
    (tmp_path / "m.engine.json").write_text(json.dumps(sidecar))
    with pytest.raises(SidecarError, match=message):
        read_sidecar(tmp_path / "m.engine")


def test_sidecar_that_is_not_json(tmp_path):
    (tmp_path / "m.engine.json").write_text("{ not json")
    with pytest.raises(SidecarError, match="not valid JSON"):
        read_sidecar(tmp_path / "m.engine")


# ---- compatibility ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version, release", [("10.3.0.30", (10, 3, 0)), ("10.3", (10, 3, 0)), ("11.1.0.106", (11, 1, 0))]
)
def test_tensorrt_release(version, release):
    assert tensorrt_release(version) == release


def test_tensorrt_release_rejects_non_versions():
    with pytest.raises(ValueError, match="not a TensorRT version"):
        tensorrt_release("ten")


def test_same_device_is_compatible():
    assert check_compatible(a_sidecar(), **device()) == ([], [])


def test_only_the_build_number_differs_is_compatible():
    assert check_compatible(a_sidecar(), **device(tensorrt_version="10.3.0.26")) == ([], [])


@pytest.mark.parametrize(
    "facts, message",
    [
        (
            dict(tensorrt_version="10.3.1.0"),
            "built with TensorRT 10.3.0.30, this device has TensorRT 10.3.1.0",
        ),
        (dict(tensorrt_version="11.0.0.1"), "this device has TensorRT 11.0.0.1"),
        (
            dict(compute_capability="9.0", gpu_name="H100"),
            "compute capability 8.7 \\(Orin\\), this GPU is 9.0 \\(H100\\)",
        ),
        (
            dict(plugin_versions={"SSPNetMultiLevelRoIAlign": ["1"]}),
            "plugin SSPNetBatchedNMS version 1.*no such plugin",
        ),
        (
            dict(plugin_versions={**REGISTERED, "SSPNetBatchedNMS": ["2"]}),
            "SSPNetBatchedNMS version 1.*versions \\['2'\\]",
        ),
        (dict(engine_sha256="ee" * 32), "SHA-256 differs"),
    ],
)
def test_incompatible_engine_is_refused_with_the_reason(facts, message):
    errors, warnings = check_compatible(a_sidecar(), **device(**facts))
    assert len(errors) == 1 and not warnings
    assert re.search(message, errors[0]), errors[0]


def test_other_gpu_name_with_the_same_capability_only_warns():
    errors, warnings = check_compatible(a_sidecar(), **device(gpu_name="Orin (nvgpu)"))
    assert errors == []
    assert len(warnings) == 1 and "'Orin'" in warnings[0] and "'Orin (nvgpu)'" in warnings[0]


def test_every_problem_is_reported_at_once():
    errors, _ = check_compatible(
        a_sidecar(), **device(tensorrt_version="10.7.0", compute_capability="8.6", plugin_versions={})
    )
    assert len(errors) == 4  # TensorRT, GPU, and both plugins
