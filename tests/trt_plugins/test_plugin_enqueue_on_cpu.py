"""The TensorRT plugins' enqueue, run on the CPU: the plugin library built from csrc/tensorrt with
its .cu kernels compiled for the CPU execution layer of tests/cuda_on_cpu (trt_cpu_build.py), for
each TensorRT header set, plain (under the layer's forward, reverse and random thread orders),
under AddressSanitizer + UndefinedBehaviorSanitizer and under ThreadSanitizer, driven by
cpp/trt_harness.cpp as TensorRT drives it: getCreators / registry lookup -> createPlugin with the
fields of the plugin nodes of a real tensorrt-flavour export -> format negotiation ->
configurePlugin -> getWorkspaceSize -> serialise -> createPlugin(kRUNTIME) -> attachToContext ->
onShapeChange -> enqueue on host buffers standing in for device memory.

Every tensor and the workspace are allocated at exactly their size (the workspace at what
getWorkspaceSize asked for), and enqueue runs at the profile's opt and max shapes: at max the
kernel needs all of the workspace the plugin reserved, so under ASan an overrun by one byte is
reported. Outputs are compared with sspnet.ops on the CPU on the same inputs, fp32, fp16 and
mixed (fp32 RoIs next to fp16 features).

This is the plugin's enqueue contract on the CPU, not a GPU run: timing, the real CUB and nvcc's
code generation are not covered (docs/cuda-on-cpu.md).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from harness_enqueue import PROFILES, enqueue_outputs, reference, write_enqueue_inputs
from harness_spec import _IDENTIFIER, evaluate_size, plugin_nodes, symbol_profiles, write_spec
from trt_build import header_set, missing_tools
from trt_cpu_build import harness, missing_layer, plugin_library, run_harness
from trt_files import TENSORRT_SOURCES

PRESET = "faster_rcnn_r18_sspnet_small"
# (header version prefix, flavour, schedule of the layer): every header set plain, JetPack's 10.3
# also under the reverse and random schedules, under ASan + UBSan and under TSan.
RUNS = [
    ("10.3", "plain", "forward"),
    ("10.3", "plain", "reverse"),
    ("10.3", "plain", "random"),
    ("10.16", "plain", "forward"),
    ("11.", "plain", "forward"),
    ("10.3", "asan", "random"),
    ("10.3", "tsan", "random"),
]


@pytest.fixture(scope="module")
def export_nodes(exported_detector):
    import onnx

    return plugin_nodes(onnx.load(str(exported_detector(PRESET, "tensorrt")), load_external_data=False))


def _skip_reason(version: str) -> str | None:
    reason = missing_tools("g++", "cuda") or missing_layer()
    if reason is None and header_set(version) is None:
        reason = f"no TensorRT {version}x C++ headers found (set TENSORRT_INCLUDE_DIRS)"
    return reason


def _small_profiles(nodes) -> dict:
    """Batch 1 at opt and 2 at max (the default profile is 2 / 4): every emulated CUDA thread costs
    CPU time, and a batch of 2 at max still covers batch > 1 and the full-workspace case."""
    small = {}
    for expression in symbol_profiles(nodes):
        if set(_IDENTIFIER.findall(expression)) == {"batch"}:
            small[expression] = tuple(evaluate_size(expression, {"batch": b}) for b in (1, 1, 2))
    return small


def _run(export_nodes, folder, version, flavour, schedule="forward", substitutions=None):
    headers = header_set(version)
    built = plugin_library(headers, flavour, substitutions)
    binary = harness(headers, flavour, built)
    spec = folder / "spec.txt"
    profiles = write_spec(export_nodes, spec, _small_profiles(export_nodes))
    arrays = write_enqueue_inputs(export_nodes, profiles, folder)
    return run_harness(binary, built["library"], spec, folder, flavour, schedule, seed=1), arrays


@pytest.fixture(scope="module", params=RUNS, ids=lambda r: f"trt{r[0].rstrip('.')}-{r[1]}-{r[2]}")
def run(request, export_nodes, tmp_path_factory):
    version, flavour, schedule = request.param
    reason = _skip_reason(version)
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp(f"enqueue-{flavour}-{schedule}")
    result, arrays = _run(export_nodes, folder, version, flavour, schedule)
    assert result.returncode == 0, f"the harness failed ({flavour}, {schedule}):\n{result.stderr[-6000:]}"
    report = json.loads(result.stdout)
    assert report["schedule"] == schedule
    return {"report": report, "stderr": result.stderr, "folder": folder, "arrays": arrays}


def _nodes(run, export_nodes):
    nodes = run["report"]["nodes"]
    assert [n["name"] for n in nodes] == [n.name for n in export_nodes]
    return list(zip(export_nodes, nodes))


def test_the_layer_is_the_device_and_nothing_reaches_stderr(run):
    assert run["report"]["cuda_devices"] == 1
    assert run["stderr"] == ""  # every plugin message went to TensorRT's logger; no layer report


def test_every_combination_configures_with_a_workspace_on_the_layer(run, export_nodes):
    for node, result in _nodes(run, export_nodes):
        assert result["build_plugin"], result["build_messages"]
        for configured in result["configured"]:
            # Hard NMS asks CUB (here the layer's stand-in) for its workspace: it must answer.
            assert configured["configure_status"] == 0, configured["messages"]
            if node.op_type == "SSPNetBatchedNMS":
                assert configured["workspace_bytes"] > 0
            else:
                assert configured["workspace_bytes"] == 0


def _check(node, label, got, expected):
    if node.op_type == "SSPNetBatchedNMS":
        keep, scores, num_valid = got
        np.testing.assert_array_equal(num_valid, expected[2], err_msg=f"{node.name} {label} num_valid")
        np.testing.assert_array_equal(keep, expected[0], err_msg=f"{node.name} {label} keep")
        # fp32: the same arithmetic (-ffp-contract=off on both sides); fp16: the kept scores are
        # fp16 values either way.
        tolerance = 1e-6 if label == "fp32" else 1e-3
        np.testing.assert_allclose(scores, expected[1], rtol=tolerance, atol=tolerance, err_msg=f"{node.name} {label}")
        return
    # RoIAlign: fp32 within float rounding of the summation order; fp16 / mixed outputs are fp16.
    tolerance = 1e-5 if label == "fp32" else 2e-3
    np.testing.assert_allclose(got[0], expected[0], rtol=tolerance, atol=tolerance, err_msg=f"{node.name} {label}")


def test_enqueue_matches_sspnet_ops_at_opt_and_max_shapes(run, export_nodes):
    for index, (node, result) in enumerate(_nodes(run, export_nodes)):
        runs = {(r["profile"], r["label"]): r for r in result["enqueue"]}
        labels = {"fp32", "fp16", "mixed"} if node.op_type == "SSPNetMultiLevelRoIAlign" else {"fp32", "fp16"}
        assert set(runs) == {(p, label) for p in PROFILES for label in labels}, node.name
        for (profile, label), enqueued in sorted(runs.items()):
            assert enqueued["status"] == 0 and enqueued["cuda_ok"], (node.name, enqueued)
            inputs = run["arrays"][(index, profile)]
            expected = reference(node, inputs, label, "cpu")
            got = enqueue_outputs(run["folder"], index, profile, label, expected)
            _check(node, label, got, expected)
            if node.op_type == "SSPNetBatchedNMS":
                assert (got[2] > 0).all(), "a test input where NMS keeps nothing proves little"


def test_asan_catches_a_plugin_that_asks_for_too_little_workspace(export_nodes, tmp_path):
    """The check can fail: getWorkspaceSize asks for one alignment unit (256 bytes) less than the
    kernel uses while the plugin keeps the full size for enqueue. The harness allocates exactly
    what getWorkspaceSize asked for, so the kernel's write past it is reported with its line."""
    reason = _skip_reason("10.3")
    if reason:
        pytest.skip(reason)
    source = TENSORRT_SOURCES / "batchedNms" / "batchedNmsPlugin.cpp"
    tail = "      fail(problem);\n    }\n    return bytes"
    planted = {source: (f"{tail};", f"{tail} - 256;")}
    result, _ = _run(export_nodes, tmp_path, "10.3", "asan", substitutions=planted)
    assert result.returncode != 0, result.stdout[-2000:]
    assert "AddressSanitizer: heap-buffer-overflow" in result.stderr, result.stderr[-4000:]
    assert "csrc/kernels/batched_nms_cuda.cu:" in result.stderr, result.stderr[-4000:]
