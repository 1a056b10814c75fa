"""Fixtures for the TensorRT tests (helpers in trt_files.py and trt_build.py).

Only tests marked `tensorrt` need TensorRT (they skip with the reason otherwise); the plugin
tests compile against TensorRT's headers where any are found (trt_build.header_sets()) and skip
with the reason where none are; everything else here runs on any machine.
"""

import sys
from pathlib import Path

import pytest

# Make trt_files / trt_build / harness_spec importable whatever pytest's import mode is.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from trt_files import METADATA, write_onnx  # noqa: E402

EXPORT_IMGSZ = (256, 320)


@pytest.fixture
def trt_onnx(tmp_path):
    """A tensorrt-flavour ONNX (dynamic batch, 96x128, K=16) with valid sspnet metadata."""
    return write_onnx(tmp_path / "model_trt.onnx", METADATA)


@pytest.fixture(scope="session")
def exported_detector(tmp_path_factory):
    """(preset, flavor) -> path of a real export (random weights, seed 0, dynamic batch, 256x320).

    Each export is made once per test session and shared by the harness and the lint tests: the
    exporter takes about a minute per preset on a 2-core machine.
    """
    exports = {}

    def get(preset: str, flavor: str) -> Path:
        if (preset, flavor) not in exports:
            torch = pytest.importorskip("torch")
            try:
                from sspnet.export.onnx_export import export_onnx

                from sspnet.models import build_model
            except ImportError as error:  # the exporter's optional dependencies
                pytest.skip(f"the ONNX exporter cannot be imported here: {error}")
            torch.manual_seed(0)
            model = build_model(preset).eval()
            path = tmp_path_factory.mktemp("export") / f"{preset}_{flavor}.onnx"
            export_onnx(model, path, flavor=flavor, imgsz=EXPORT_IMGSZ, batch="dynamic")
            exports[(preset, flavor)] = path
        return exports[(preset, flavor)]

    return get
