"""No folder of the test tree may shadow NVIDIA's `tensorrt` package inside pytest.

pyproject puts tests/ on sys.path (pythonpath = ["tests"]); a folder tests/tensorrt then imports
as an empty namespace package named `tensorrt`, so `import tensorrt` "succeeds" without TensorRT
and a real install is hidden. The TensorRT tests live in tests/trt_plugins for that reason.
"""

import importlib.util
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_folder_is_named_like_an_nvidia_package():
    for name in ("tensorrt", "tensorrt_libs", "tensorrt_bindings", "cuda", "pycuda"):
        assert not (TESTS / name).exists(), f"tests/{name} would shadow the `{name}` package in pytest"


def test_import_tensorrt_does_not_resolve_into_the_test_tree():
    spec = importlib.util.find_spec("tensorrt")
    if spec is None:
        return  # not installed, and nothing shadows it
    locations = [spec.origin or ""] + list(spec.submodule_search_locations or [])
    for location in locations:
        assert TESTS not in Path(location).resolve().parents, f"`tensorrt` resolves to {location}"
