"""Fixtures for the runtime tests; the model builders live in runtime_models.py."""

import sys
from pathlib import Path

import pytest

# Make runtime_models importable from the test files whatever pytest's import mode is.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from runtime_models import build_marker_model  # noqa: E402


@pytest.fixture
def marker_model(tmp_path):
    """Factory: marker_model(name="m.onnx", **build_marker_model kwargs) -> path."""

    def make(name="marker.onnx", **kwargs):
        return build_marker_model(tmp_path / name, **kwargs)

    return make
