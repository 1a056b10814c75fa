"""Fixtures for the TensorRT tests (helpers in trt_files.py).

Only tests marked `tensorrt` need TensorRT (they skip with the reason otherwise); everything else
here runs on any machine.
"""

import sys
from pathlib import Path

import pytest

# Make trt_files importable from the test files whatever pytest's import mode is.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from trt_files import METADATA, write_onnx  # noqa: E402


@pytest.fixture
def trt_onnx(tmp_path):
    """A tensorrt-flavour ONNX (dynamic batch, 96x128, K=16) with valid sspnet metadata."""
    return write_onnx(tmp_path / "model_trt.onnx", METADATA)
