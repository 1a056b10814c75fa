"""ModelMetadata parsing / validation and load_backend's dispatch by file type."""

import importlib.util
import json

import pytest
from runtime_models import VALID_PROPS
from sspnet.runtime import MetadataError, ModelMetadata, load_backend
from sspnet.runtime.contract import METADATA_KEYS

from sspnet.errors import UsageError


def test_valid_metadata_parses_to_typed_values():
    meta = ModelMetadata.from_props(VALID_PROPS)
    assert meta.sspnet_version == "0.1.0"
    assert meta.preset == "test_marker"
    assert meta.variant == "faster_rcnn"
    assert meta.classes == ("person",)
    assert meta.input_size == (96, 128)
    assert meta.max_detections == 16
    assert meta.score_threshold == pytest.approx(0.05)
    assert meta.nms == {"method": "hard", "iou_threshold": 0.5}
    assert meta.flavor == "portable"
    assert meta.batch is None


def test_sidecar_style_decoded_values_parse_the_same():
    # an engine's JSON sidecar holds decoded values rather than metadata_props strings
    sidecar = {
        key: json.loads(value) if key not in ("sspnet_version", "preset", "variant", "flavor", "batch") else value
        for key, value in VALID_PROPS.items()
    }
    sidecar["batch"] = 4
    meta = ModelMetadata.from_props(sidecar)
    assert meta.input_size == (96, 128)
    assert meta.classes == ("person",)
    assert meta.batch == 4


def test_to_props_writes_the_strings_an_exporter_stores():
    meta = ModelMetadata.from_props({**VALID_PROPS, "batch": "8"})
    props = meta.to_props()
    assert set(props) == set(METADATA_KEYS)
    assert json.loads(props["input_size"]) == [96, 128]
    assert json.loads(props["classes"]) == ["person"]
    assert props["batch"] == "8"
    assert ModelMetadata.from_props(props) == meta


def test_extra_keys_are_ignored():
    meta = ModelMetadata.from_props({**VALID_PROPS, "producer_note": "hello"})
    assert meta.preset == "test_marker"


@pytest.mark.parametrize("key", METADATA_KEYS)
def test_each_missing_key_is_named(key):
    props = {k: v for k, v in VALID_PROPS.items() if k != key}
    with pytest.raises(MetadataError, match=f"missing sspnet metadata key.*'{key}'"):
        ModelMetadata.from_props(props, source="model.onnx")


def test_no_metadata_names_every_key_and_the_source():
    with pytest.raises(MetadataError) as error:
        ModelMetadata.from_props({}, source="some/model.onnx")
    message = str(error.value)
    assert "some/model.onnx" in message
    for key in METADATA_KEYS:
        assert repr(key) in message


@pytest.mark.parametrize(
    "key, value",
    [
        ("preset", ""),
        ("classes", "person"),
        ("classes", "[]"),
        ("classes", "[1, 2]"),
        ("input_size", "[640]"),
        ("input_size", "[0, 512]"),
        ("input_size", "[512.5, 640]"),
        ("input_size", "640x512"),
        ("max_detections", "0"),
        ("max_detections", "1.5"),
        ("max_detections", "many"),
        ("max_detections", "true"),
        ("score_threshold", "1.5"),
        ("score_threshold", "low"),
        ("score_threshold", "NaN"),
        ("nms", "hard"),
        ("nms", '{"iou_threshold": 0.5}'),
        ("nms", '{"method": "hard"}'),
        ("nms", '{"method": "hard", "iou_threshold": "0.5"}'),
        ("nms", '{"method": "gaussian", "iou_threshold": 0.5, "sigma": "wide"}'),
        ("flavor", "fast"),
        ("batch", "0"),
        ("batch", "-2"),
        ("batch", "several"),
    ],
)
def test_ill_typed_value_names_key_and_value(key, value):
    with pytest.raises(MetadataError) as error:
        ModelMetadata.from_props({**VALID_PROPS, key: value}, source="model.onnx")
    message = str(error.value)
    assert f"metadata key {key!r} must be" in message
    assert repr(value) in message
    assert "model.onnx" in message


def test_metadata_error_is_a_value_error():
    assert issubclass(MetadataError, ValueError)


def test_unknown_suffix_is_rejected(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"x")
    with pytest.raises(UsageError, match=r"suffix '\.bin'.*\.safetensors.*\.pth.*\.pt.*\.onnx.*\.engine.*\.plan"):
        load_backend(path)


@pytest.mark.parametrize("name", ["missing.onnx", "missing.engine", "missing.plan"])
def test_missing_file_is_file_not_found(tmp_path, name):
    with pytest.raises(FileNotFoundError, match="missing"):
        load_backend(tmp_path / name)


def tensorrt_installed() -> bool:
    # a bare folder named tensorrt on sys.path (the old tests/tensorrt) is a namespace package: origin None
    spec = importlib.util.find_spec("tensorrt")
    return spec is not None and spec.origin is not None


@pytest.mark.skipif(tensorrt_installed(), reason="TensorRT is installed here")
@pytest.mark.parametrize("suffix", [".engine", ".plan"])
def test_engine_without_tensorrt_is_a_clear_import_error(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"not an engine")
    with pytest.raises(ImportError, match="TensorRT"):
        load_backend(path)


def test_onnx_suffix_dispatches_to_onnxruntime(marker_model):
    backend = load_backend(marker_model())
    assert backend.name == "onnxruntime"
    assert type(backend).__name__ == "OnnxRuntimeBackend"
