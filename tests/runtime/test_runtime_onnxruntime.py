"""OnnxRuntimeBackend on hand-built contract models: outputs, providers, threads, bad files, bad input."""

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto
from runtime_models import (
    MARKER_RADIUS,
    build_constant_model,
    build_marker_model,
    metadata_props,
)
from sspnet.runtime import MetadataError, load_backend
from sspnet.runtime.onnxruntime_backend import OnnxRuntimeBackend

from sspnet.errors import UsageError

R = MARKER_RADIUS


def marker_batch(markers_per_image, size=(96, 128)):
    """uint8 [N, 3, H, W] with red = value, green = label at each marker (x, y, value, label)."""
    images = np.zeros((len(markers_per_image), 3, *size), dtype=np.uint8)
    for n, markers in enumerate(markers_per_image):
        for x, y, value, label in markers:
            images[n, 0, y, x] = value
            images[n, 1, y, x] = label
    return images


def check_image_outputs(outputs, n, markers):
    """Image n's valid rows equal the marker model's closed form, brightest first."""
    count = outputs["num_dets"][n, 0]
    assert count == len(markers)
    expected = sorted(markers, key=lambda m: -m[2])
    boxes = [[x - R, y - R, x + R + 1, y + R + 1] for x, y, _, _ in expected]
    np.testing.assert_array_equal(outputs["boxes"][n, :count], np.array(boxes, np.float32).reshape(-1, 4))
    np.testing.assert_allclose(outputs["scores"][n, :count], [v / 255 for _, _, v, _ in expected], rtol=1e-6)
    np.testing.assert_array_equal(outputs["labels"][n, :count], [label for *_, label in expected])


MARKERS = [
    [(20, 10, 200, 3), (100, 50, 120, 0)],
    [(127, 95, 255, 1)],
    [],
]


def test_infer_returns_the_contract_outputs(marker_model):
    backend = load_backend(marker_model(k=16))
    outputs = backend.infer(marker_batch(MARKERS))
    assert set(outputs) == {"num_dets", "boxes", "scores", "labels"}
    assert outputs["num_dets"].dtype == np.int32 and outputs["num_dets"].shape == (3, 1)
    assert outputs["boxes"].dtype == np.float32 and outputs["boxes"].shape == (3, 16, 4)
    assert outputs["scores"].dtype == np.float32 and outputs["scores"].shape == (3, 16)
    assert outputs["labels"].dtype == np.int32 and outputs["labels"].shape == (3, 16)
    for n, markers in enumerate(MARKERS):
        check_image_outputs(outputs, n, markers)


def test_backend_describes_the_model(marker_model):
    backend = load_backend(marker_model(input_size=(64, 80), k=8))
    assert backend.name == "onnxruntime"
    assert backend.input_size == (64, 80)
    assert backend.metadata.max_detections == 8
    assert backend.fixed_batch is None
    assert backend.fixed_hw == (64, 80)
    assert backend.providers == ["CPUExecutionProvider"]
    assert "input_size=(64, 80)" in repr(backend)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_fixed_batch_model_splits_and_pads(marker_model, n):
    backend = load_backend(marker_model(batch=2))
    assert backend.fixed_batch == 2
    markers = [[(10 + 7 * i, 20 + 3 * i, 50 + 20 * i, i)] for i in range(n)]
    outputs = backend.infer(marker_batch(markers))
    assert outputs["num_dets"].shape == (n, 1)
    for i in range(n):
        check_image_outputs(outputs, i, markers[i])


def test_dynamic_hw_model_accepts_other_sizes(marker_model):
    backend = load_backend(marker_model(dynamic_hw=True))
    assert backend.fixed_hw is None
    markers = [[(150, 70, 90, 2)]]
    outputs = backend.infer(marker_batch(markers, size=(80, 200)))
    check_image_outputs(outputs, 0, markers[0])


def test_non_contiguous_batch_is_accepted(marker_model):
    backend = load_backend(marker_model())
    images = marker_batch(MARKERS)[::-1]  # negative stride view
    outputs = backend.infer(images)
    check_image_outputs(outputs, 0, MARKERS[2])
    check_image_outputs(outputs, 2, MARKERS[0])


# ---- providers and threads -------------------------------------------------------------------


@pytest.mark.parametrize("providers", [None, ["cpu"], "CPU", ["CPUExecutionProvider"]])
def test_cpu_provider_spellings(marker_model, providers):
    backend = OnnxRuntimeBackend(marker_model(), providers=providers)
    assert backend.providers == ["CPUExecutionProvider"]


def test_unknown_provider_lists_the_available_ones(marker_model):
    with pytest.raises(ValueError, match=r"'NoSuchExecutionProvider' is not available.*CPUExecutionProvider"):
        load_backend(marker_model(), providers=["NoSuchExecutionProvider"])


@pytest.mark.parametrize("alias, full", [("cuda", "CUDAExecutionProvider"), ("tensorrt", "TensorrtExecutionProvider")])
def test_unavailable_gpu_provider_is_a_clear_error(marker_model, alias, full):
    if full in onnxruntime.get_available_providers():
        pytest.skip(f"{full} is available in this onnxruntime")
    with pytest.raises(ValueError, match=f"'{alias}' is not available.*available:"):
        load_backend(marker_model(), providers=[alias])


@pytest.mark.skipif(
    "CUDAExecutionProvider" not in onnxruntime.get_available_providers(),
    reason="onnxruntime has no CUDA execution provider here",
)
def test_cuda_provider_gives_the_cpu_results(marker_model):
    backend = load_backend(marker_model(), providers=["cuda"])
    assert backend.providers[0] == "CUDAExecutionProvider"
    outputs = backend.infer(marker_batch(MARKERS))
    for n, markers in enumerate(MARKERS):
        check_image_outputs(outputs, n, markers)


def test_threads_option(marker_model):
    backend = load_backend(marker_model(), threads=1)
    assert backend.session.get_session_options().intra_op_num_threads == 1
    check_image_outputs(backend.infer(marker_batch(MARKERS[:1])), 0, MARKERS[0])


@pytest.mark.parametrize("threads", [-1, 1.5, "2"])
def test_bad_thread_count(marker_model, threads):
    with pytest.raises(UsageError, match="threads"):
        load_backend(marker_model(), threads=threads)
    with pytest.raises(ValueError, match="intra_op_num_threads"):
        OnnxRuntimeBackend(marker_model(), intra_op_num_threads=threads)


def test_an_option_of_another_backend_is_a_usage_error(marker_model):
    with pytest.raises(UsageError, match=r"onnxruntime backend .* takes no option 'device' \(torch/tensorrt only\)"):
        load_backend(marker_model(), device="cuda")


# ---- bad model files ---------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        OnnxRuntimeBackend(tmp_path / "nope.onnx")


@pytest.mark.parametrize("content", [b"", b"\x08\x01garbage" * 10, b"\xff" * 1000])
def test_corrupt_file_names_the_file(tmp_path, content):
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"cannot load .*broken\.onnx.* as an ONNX model"):
        load_backend(path)


def test_truncated_model_file(tmp_path, marker_model):
    data = open(marker_model(), "rb").read()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.onnx"):
        load_backend(path)


def test_model_without_metadata_names_the_missing_keys(marker_model):
    with pytest.raises(MetadataError, match=r"plain\.onnx.*missing sspnet metadata.*'preset'.*'input_size'"):
        load_backend(marker_model("plain.onnx", props=None))


def test_model_with_partial_metadata_names_only_missing_keys(marker_model):
    props = metadata_props((96, 128), 16, None)
    del props["classes"], props["flavor"]
    with pytest.raises(MetadataError) as error:
        load_backend(marker_model(props=props))
    message = str(error.value)
    assert "['classes', 'flavor']" in message


def test_metadata_batch_must_match_the_graph(marker_model):
    props = metadata_props((96, 128), 16, batch=4)
    with pytest.raises(ValueError, match="batch=4 but the graph input declares N = N"):
        load_backend(marker_model(batch=None, props=props))


def test_metadata_input_size_must_match_the_graph(marker_model):
    props = metadata_props((512, 640), 16, None)
    with pytest.raises(ValueError, match=r"input_size \[512, 640\] disagrees .* \[96, 128\]"):
        load_backend(marker_model(props=props))


def test_float_input_model_is_rejected(marker_model):
    with pytest.raises(ValueError, match="'images' must be uint8.*tensor\\(float\\)"):
        load_backend(marker_model(input_dtype=TensorProto.FLOAT))


def test_missing_output_is_rejected(marker_model):
    with pytest.raises(ValueError, match=r"output\(s\) \['labels'\] are missing"):
        load_backend(marker_model(drop_output="labels"))


def contract_outputs(k=4):
    return {
        "num_dets": np.array([[1]], np.int32),
        "boxes": np.zeros((1, k, 4), np.float32),
        "scores": np.zeros((1, k), np.float32),
        "labels": np.zeros((1, k), np.int32),
    }


def test_num_dets_beyond_k_is_a_runtime_error(tmp_path):
    outputs = contract_outputs(k=4)
    outputs["num_dets"] = np.array([[5]], np.int32)
    path = build_constant_model(tmp_path / "c.onnx", (8, 8), outputs, metadata_props((8, 8), 4, 1))
    backend = load_backend(path)
    with pytest.raises(RuntimeError, match=r"'num_dets' must lie in \[0, K=4\]"):
        backend.infer(np.zeros((1, 3, 8, 8), np.uint8))


def test_output_shape_breaking_the_contract_is_a_runtime_error(tmp_path):
    outputs = contract_outputs(k=4)
    outputs["scores"] = np.zeros((1, 3), np.float32)
    path = build_constant_model(tmp_path / "c.onnx", (8, 8), outputs, metadata_props((8, 8), 4, 1))
    with pytest.raises(RuntimeError, match=r"output 'scores' has shape \(1, 3\), the contract says \(1, 4\)"):
        load_backend(path).infer(np.zeros((1, 3, 8, 8), np.uint8))


# ---- bad input batches -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "images, error, pattern",
    [
        ([[[[0]]]], UsageError, "numpy.ndarray, got list"),
        (np.zeros((1, 3, 96, 128), np.float32), UsageError, "uint8.*got float32"),
        (np.zeros((1, 3, 96, 128), np.int8), UsageError, "uint8.*got int8"),
        (np.zeros((3, 96, 128), np.uint8), UsageError, r"rank 4.*\(3, 96, 128\)"),
        (np.zeros((1, 96, 128, 3), np.uint8), UsageError, "3 channels.*HWC"),
        (np.zeros((1, 1, 96, 128), np.uint8), UsageError, "3 channels"),
        (np.zeros((0, 3, 96, 128), np.uint8), UsageError, "empty batch"),
        (np.zeros((1, 3, 128, 96), np.uint8), UsageError, r"H, W = \(96, 128\), got \(128, 96\)"),
        (np.zeros((1, 3, 512, 640), np.uint8), UsageError, r"H, W = \(96, 128\), got \(512, 640\)"),
    ],
)
def test_bad_batches_are_clear_errors(marker_model, images, error, pattern):
    backend = load_backend(marker_model())
    with pytest.raises(error, match=pattern):
        backend.infer(images)
    # the backend still works afterwards
    check_image_outputs(backend.infer(marker_batch(MARKERS[:1])), 0, MARKERS[0])


def test_empty_spatial_size_on_dynamic_hw_model(marker_model):
    backend = load_backend(marker_model(dynamic_hw=True))
    with pytest.raises(UsageError, match="empty spatial size"):
        backend.infer(np.zeros((1, 3, 0, 10), np.uint8))


def test_marker_model_file_is_valid_for_the_builder_defaults(tmp_path):
    # guards the helper itself: the default builder writes metadata that matches the graph
    path = build_marker_model(tmp_path / "m.onnx", input_size=(32, 48), k=4, batch=3)
    backend = load_backend(path)
    assert (backend.fixed_batch, backend.fixed_hw, backend.metadata.max_detections) == (
        3,
        (32, 48),
        4,
    )
