"""Tests that need TensorRT, a CUDA GPU and the built plugin library (a Jetson, or a PC with
TensorRT >= 10). Everywhere else they are skipped with the reason; nothing here has run yet.

- the library registers both creators, with the fields runtime/plugin_fields.json names;
- a one-layer engine per plugin against independent references: runtime/nms.py (NumPy greedy
  NMS) and torchvision.ops.roi_align on the level the documented rule picks;
- the whole path: `sspnet doctor` exports a small model, builds an engine, compares with ONNX Runtime.
"""

import json

import numpy as np
import pytest
from trt_files import PLUGIN_FIELDS, tensorrt_installed

from sspnet.cli import main

pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.skipif(not tensorrt_installed(), reason="TensorRT (the `tensorrt` Python package) is not installed"),
]


def plugin_library_or_skip():
    from sspnet.runtime.tensorrt_common import find_plugin_library, load_plugin_library

    try:
        find_plugin_library()
    except FileNotFoundError as error:
        pytest.skip(f"the plugin library is not built: {str(error).splitlines()[0]}")
    return load_plugin_library()


@pytest.fixture(scope="module")
def trt():
    from sspnet.runtime.tensorrt_common import cuda_call, import_cudart, import_tensorrt

    try:
        cuda_call(import_cudart().cudaGetDeviceCount(), "cudaGetDeviceCount")
    except (ImportError, RuntimeError) as error:
        pytest.skip(f"no usable CUDA device: {error}")
    plugin_library_or_skip()
    return import_tensorrt()


def spec(name):
    return json.loads(PLUGIN_FIELDS.read_text())["plugins"][name]


def test_both_creators_are_registered(trt):
    from sspnet.runtime.sidecar import expected_plugin_versions
    from sspnet.runtime.tensorrt_common import registered_plugin_versions

    registered = registered_plugin_versions(trt)
    for name, version in expected_plugin_versions().items():
        assert version in registered.get(name, []), name


@pytest.mark.parametrize("name", ["SSPNetMultiLevelRoIAlign", "SSPNetBatchedNMS"])
def test_creator_field_names_match_the_json(trt, name):
    creator = trt.get_plugin_registry().get_creator(name, spec(name)["version"], spec(name)["namespace"])
    assert creator is not None
    types = {trt.PluginFieldType.INT32: "int32", trt.PluginFieldType.FLOAT32: "float32"}
    declared = {field.name: types[field.type] for field in creator.field_names}
    expected = {field: value["type"].rstrip("[]") for field, value in spec(name)["fields"].items()}
    assert declared == expected


# ---- one-plugin engines ---------------------------------------------------------------------------


def run_plugin(trt, name, fields, inputs, output_names):
    """Build a network of one plugin layer with static shapes, run it once, return its outputs."""
    from sspnet.runtime.tensorrt_backend import DeviceBuffer

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    tensors = [
        network.add_input(key, trt.DataType.INT32 if value.dtype == np.int32 else trt.DataType.FLOAT, value.shape)
        for key, value in inputs.items()
    ]
    field_types = {
        "int32": (np.int32, trt.PluginFieldType.INT32),
        "float32": (np.float32, trt.PluginFieldType.FLOAT32),
        "float32[]": (np.float32, trt.PluginFieldType.FLOAT32),
    }
    plugin_fields = []
    for field, value in fields.items():
        dtype, field_type = field_types[spec(name)["fields"][field]["type"]]
        plugin_fields.append(trt.PluginField(field, np.atleast_1d(np.asarray(value, dtype)), field_type))
    creator = trt.get_plugin_registry().get_creator(name, spec(name)["version"], spec(name)["namespace"])
    plugin = creator.create_plugin(name, trt.PluginFieldCollection(plugin_fields), trt.TensorRTPhase.BUILD)
    layer = network.add_plugin_v3(tensors, [], plugin)
    for index, output in enumerate(output_names):
        layer.get_output(index).name = output
        network.mark_output(layer.get_output(index))
    serialized = builder.build_serialized_network(network, builder.create_builder_config())
    assert serialized is not None, "engine build failed (see the TensorRT log)"
    engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
    context = engine.create_execution_context()
    buffers = {}
    for key, value in inputs.items():
        buffers[key] = DeviceBuffer(value.nbytes)
        buffers[key].copy_from_host(np.ascontiguousarray(value))
    results = {}
    for output in output_names:
        results[output] = np.zeros(tuple(context.get_tensor_shape(output)), trt.nptype(engine.get_tensor_dtype(output)))
        buffers[output] = DeviceBuffer(results[output].nbytes)
    for key, buffer in buffers.items():
        assert context.set_tensor_address(key, buffer.ptr)
    assert context.execute_v2(
        [buffers[t].ptr for t in (engine.get_tensor_name(i) for i in range(engine.num_io_tensors))]
    )
    for output in output_names:
        buffers[output].copy_to_host(results[output])
    for buffer in buffers.values():
        buffer.free()
    return results


def random_boxes(rng, count, size=200.0):
    corners = rng.uniform(0, size, (count, 2))
    extents = rng.uniform(5, 60, (count, 2))
    return np.concatenate([corners, corners + extents], axis=1).astype(np.float32)


@pytest.mark.parametrize("class_aware", [0, 1])
def test_nms_plugin_matches_numpy_greedy_nms(trt, class_aware):
    from sspnet.runtime.nms import batched_nms, nms

    rng = np.random.default_rng(class_aware)
    batch, boxes_per_image, max_output = 2, 300, 64
    boxes = np.stack([random_boxes(rng, boxes_per_image) for _ in range(batch)])
    scores = rng.permutation(batch * boxes_per_image).reshape(batch, boxes_per_image).astype(np.float32) / 1000 + 0.001
    inputs = {"boxes": boxes, "scores": scores}
    labels = rng.integers(0, 3, (batch, boxes_per_image)).astype(np.int32)
    if class_aware:
        inputs["labels"] = labels
    out = run_plugin(
        trt,
        "SSPNetBatchedNMS",
        {
            "method": 0,
            "iou_threshold": 0.5,
            "score_threshold": 0.0,
            "max_output": max_output,
            "class_aware": class_aware,
        },
        inputs,
        ["keep", "keep_scores", "num_valid"],
    )
    for image in range(batch):
        if class_aware:
            expected = batched_nms(boxes[image], scores[image], labels[image], 0.5)[:max_output]
        else:
            expected = nms(boxes[image], scores[image], 0.5)[:max_output]
        count = int(out["num_valid"][image, 0])
        assert count == len(expected)
        np.testing.assert_array_equal(out["keep"][image, :count], expected)
        np.testing.assert_array_equal(out["keep_scores"][image, :count], scores[image][expected])
        assert (out["keep"][image, count:] == -1).all() and (out["keep_scores"][image, count:] == 0).all()


def test_roi_align_plugin_matches_torchvision_per_level(trt):
    torch = pytest.importorskip("torch", reason="torchvision is the reference")
    roi_align = pytest.importorskip("torchvision.ops", reason="torchvision is the reference").roi_align

    rng = np.random.default_rng(0)
    strides, finest_scale, batch, channels, image = [4, 8, 16, 32], 56.0, 2, 8, 256
    features = [rng.standard_normal((batch, channels, image // s, image // s)).astype(np.float32) for s in strides]
    boxes = random_boxes(rng, 40, size=150.0) * rng.uniform(0.5, 4.0, (40, 1)).astype(np.float32)
    rois = np.concatenate([rng.integers(0, batch, (40, 1)).astype(np.float32), boxes], axis=1)
    inputs = {"rois": rois, **{f"p{k}": f for k, f in enumerate(features)}}
    fields = {
        "output_height": 7,
        "output_width": 7,
        "sampling_ratio": 2,
        "aligned": 1,
        "finest_scale": finest_scale,
        "spatial_scales": [1.0 / s for s in strides],
    }
    pooled = run_plugin(trt, "SSPNetMultiLevelRoIAlign", fields, inputs, ["pooled"])["pooled"]

    # The level rule of csrc/kernels/multi_level_roi_align.h, written out here.
    scale = np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None))
    levels = np.clip(np.floor(np.log2(scale / finest_scale + 1e-6)), 0, len(strides) - 1).astype(int)
    assert len(set(levels.tolist())) > 1, "the test RoIs should cover several levels"
    for index, level in enumerate(levels):
        expected = roi_align(
            torch.from_numpy(features[level]),
            torch.from_numpy(rois[index : index + 1]),
            (7, 7),
            spatial_scale=1.0 / strides[level],
            sampling_ratio=2,
            aligned=True,
        )
        np.testing.assert_allclose(pooled[index], expected[0].numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_doctor_passes_end_to_end(trt, capsys):
    pytest.importorskip("torch", reason="the doctor exports its test model with torch")
    code = main(["doctor", "--images", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "everything needed for TensorRT inference works" in out
