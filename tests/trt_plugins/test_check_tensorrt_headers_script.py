"""scripts/check_tensorrt_headers.sh: argument handling and failure reporting.

No TensorRT here, so the headers are stubs: an NvInferRuntime.h that is an #error, and a
cuda_runtime_api.h that only declares cudaStream_t. The field tables (*Fields.cpp, fieldBinding.cpp)
include no TensorRT header and must compile; the four sources that include NvInferRuntime.h must be
reported as failing.
"""

import os
import shutil
import subprocess

import pytest
from trt_files import REPO

SCRIPT = REPO / "scripts" / "check_tensorrt_headers.sh"

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="no g++ on PATH")


def run_script(args, env_extra):
    env = {key: value for key, value in os.environ.items() if key not in ("TENSORRT_INCLUDE", "CXX")}
    env.update(env_extra)
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def stub_headers(tmp_path):
    trt = tmp_path / "TensorRT-10.3.0" / "include"
    trt.mkdir(parents=True)
    (trt / "NvInferRuntime.h").write_text('#error "stub TensorRT header"\n')
    (trt / "NvInferVersion.h").write_text(
        "#define NV_TENSORRT_MAJOR 10\n#define NV_TENSORRT_MINOR 3\n#define NV_TENSORRT_PATCH 0\n"
    )
    cuda = tmp_path / "cuda"
    (cuda / "include").mkdir(parents=True)
    (cuda / "include" / "cuda_runtime_api.h").write_text("#pragma once\ntypedef struct CUstream_st* cudaStream_t;\n")
    return trt, cuda


def test_without_a_header_folder_it_says_how_to_give_one():
    run = run_script([], {})
    assert run.returncode == 1
    assert "TENSORRT_INCLUDE" in run.stderr


def test_a_folder_without_tensorrt_headers_is_named(tmp_path):
    run = run_script([str(tmp_path)], {})
    assert run.returncode == 1
    assert f"no NvInferRuntime.h in '{tmp_path}'" in run.stderr


def test_compile_errors_fail_and_name_exactly_the_sources_that_include_tensorrt(stub_headers):
    trt, cuda = stub_headers
    # The TensorRT root is accepted as well as its include/ folder; the version is read from it.
    run = run_script([str(trt.parent)], {"CUDA_HOME": str(cuda)})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "(TensorRT 10.3.0)" in run.stdout
    assert "stub TensorRT header" in run.stderr
    summary = run.stderr[run.stderr.index("FAILED: 4 of 7") :]
    failed = sorted(line.strip() for line in summary.splitlines()[1:] if line.strip())
    assert failed == [
        "csrc/tensorrt/batchedNms/batchedNmsPlugin.cpp",
        "csrc/tensorrt/common/pluginLibrary.cpp",
        "csrc/tensorrt/common/pluginSupport.cpp",
        "csrc/tensorrt/multiLevelRoIAlign/multiLevelRoIAlignPlugin.cpp",
    ]


def test_real_headers_pass_and_a_matrix_fails_on_the_bad_set(stub_headers):
    from trt_build import cuda_root, header_set

    real = header_set("10.3")
    if real is None or cuda_root() is None:
        pytest.skip("no TensorRT 10.3 headers or CUDA headers found")
    stub, _ = stub_headers
    run = run_script([str(real.include), str(stub)], {"CUDA_HOME": str(cuda_root())})
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"OK: all 7 plugin sources compile against TensorRT {real.version}" in run.stdout
    assert "FAILED: 4 of 7 plugin sources do not compile against TensorRT 10.3.0 (" in run.stderr
    assert str(stub) in run.stderr
