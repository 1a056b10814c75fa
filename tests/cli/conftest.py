"""Fixtures for the predict / benchmark / demo tests; helpers live in cli_markers.py.

(Test modules must not `from conftest import ...`: several folders have a conftest.py and the
name resolves to whichever was imported first.)
"""

from pathlib import Path

import pytest
from cli_markers import TILE, K, build_marker_model


@pytest.fixture
def marker_onnx(tmp_path):
    return Path(build_marker_model(tmp_path / "marker.onnx", input_size=TILE, k=K))
