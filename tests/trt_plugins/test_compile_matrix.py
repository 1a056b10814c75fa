"""Every csrc/tensorrt source against every TensorRT header set found (trt_build.header_sets():
$TENSORRT_INCLUDE_DIRS, $TENSORRT_INCLUDE, a TensorRT install, ../shared/third_party/tensorrt/*),
with the library's flags and -Wall -Wextra -Werror: a warning in our code fails, TensorRT's own
headers are system headers. The test drivers (fake registry, loader, harness) must compile against
each set too. Skipped with the reason where no headers (or no g++ / CUDA headers) exist.
"""

from __future__ import annotations

import pytest
from trt_build import (
    CPP,
    SHARED_HEADERS,
    compile_driver,
    compile_plugin_objects,
    cuda_root,
    header_sets,
    missing_tools,
    plugin_sources,
)

HEADER_SETS = header_sets()


def test_the_shared_header_copies_are_all_found():
    if not SHARED_HEADERS.is_dir():
        pytest.skip(f"no {SHARED_HEADERS}")
    versions = {h.version for h in HEADER_SETS}
    copies = {p.name for p in SHARED_HEADERS.iterdir() if (p / "include" / "NvInferRuntime.h").is_file()}
    assert {".".join(v.split(".")[:3]) for v in versions} >= {c for c in copies}, (versions, copies)


@pytest.fixture(params=HEADER_SETS or [None], ids=lambda h: f"trt{h.version}" if h else "none")
def headers(request):
    if request.param is None:
        pytest.skip("no TensorRT C++ headers found (set TENSORRT_INCLUDE_DIRS to folders holding NvInferRuntime.h)")
    reason = missing_tools("g++", "cuda")
    if reason:
        pytest.skip(reason)
    return request.param


def test_plugin_sources_compile_without_warnings(headers):
    result = compile_plugin_objects(headers, cuda_root())
    assert result["failures"] == {}, "\n\n".join(f"{name}:\n{out}" for name, out in result["failures"].items())
    assert [p.name for p in result["objects"]] == [f"{s.stem}.o" for s in plugin_sources()]
    assert all(p.is_file() for p in result["objects"])


@pytest.mark.parametrize("driver", ["plugin_library_loader.cpp", "trt_harness.cpp"])
def test_test_drivers_compile(headers, driver):
    # -fsyntax-only: whether the fake registry / expression builder fit this version's interfaces
    extra = ["-fsyntax-only"]
    compile_driver(CPP / driver, headers, cuda_root(), f"syntax-{driver[:-4]}", extra)
    compile_driver(CPP / "fake_nvinfer.cpp", headers, cuda_root(), "syntax-fake_nvinfer", extra)
