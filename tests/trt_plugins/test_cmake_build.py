"""csrc/tensorrt/CMakeLists.txt itself, configured and built as on a fresh JetPack shell: nvcc is not
on PATH (only CUDA_HOME says where the toolkit is), TensorRT is a root with the 10.3 headers
(JetPack 6.1 / 6.2) and a stub libnvinfer (cpp/fake_nvinfer.cpp) providing the symbols the library
imports. Then the library's dynamic symbol table: exactly the two plugin-library entry points
exported, exactly getPluginRegistry and getLogger imported from TensorRT.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from trt_build import cmake_build, cmake_environment, cuda_root, header_set, missing_tools
from trt_files import TENSORRT_SOURCES

ENTRY_POINTS = {"getCreators", "setLoggerFinder"}
TENSORRT_IMPORTS = {"getPluginRegistry", "getLogger"}


@pytest.fixture(scope="module")
def build():
    reason = missing_tools("g++", "cmake", "nm", "nvcc")
    if reason:
        pytest.skip(reason)
    headers = header_set("10.3")
    if headers is None:
        pytest.skip("no TensorRT 10.3 C++ headers found (set TENSORRT_INCLUDE_DIRS)")
    return cmake_build(headers, cuda_root())


def dynamic_symbols(library, *flags) -> dict[str, str]:
    out = subprocess.run(["nm", "-D", *flags, str(library)], capture_output=True, text=True, check=True).stdout
    symbols = {}
    for line in out.splitlines():
        parts = line.split()
        symbols[parts[-1].split("@")[0]] = parts[-2]
    return symbols


def test_nvcc_found_through_cuda_home_alone(build):
    env = cmake_environment(cuda_root())
    assert shutil.which("nvcc", path=env["PATH"]) is None  # the build ran without nvcc on PATH
    cache = (build["library"].parent / "CMakeCache.txt").read_text()
    found = re.search(r"^SSPNET_NVCC:FILEPATH=(.*)$", cache, re.M).group(1)
    assert found == str(cuda_root() / "bin" / "nvcc")
    used = next(build["library"].parent.glob("CMakeFiles/*/CMakeCUDACompiler.cmake")).read_text()
    assert f'set(CMAKE_CUDA_COMPILER "{found}")' in used
    assert "sspnet: TensorRT 10.3" in build["log"]


def test_only_the_entry_points_are_exported(build):
    defined = {name: kind for name, kind in dynamic_symbols(build["library"], "--defined-only").items()}
    assert set(defined) == ENTRY_POINTS, sorted(defined)
    assert all(kind == "T" for kind in defined.values())


def test_tensorrt_symbols_imported(build):
    undefined = dynamic_symbols(build["library"], "--undefined-only")
    from_nowhere = {name for name, kind in undefined.items() if kind == "U"}
    # everything else comes with a version (glibc, libstdc++, libcudart, libgomp)
    out = subprocess.run(
        ["nm", "-D", "--undefined-only", str(build["library"])], capture_output=True, text=True, check=True
    ).stdout
    unversioned = {line.split()[-1] for line in out.splitlines() if "@" not in line and line.split()[-2] == "U"}
    assert unversioned == TENSORRT_IMPORTS, sorted(unversioned)
    assert TENSORRT_IMPORTS <= from_nowhere


def test_readme_build_command_is_the_one_tested():
    readme = (TENSORRT_SOURCES / "README.md").read_text()
    assert "cmake -S csrc/tensorrt -B build/tensorrt -DCMAKE_CUDA_ARCHITECTURES=87" in readme
    assert "/usr/local/cuda/bin" in readme and "CUDA_HOME" in readme  # where nvcc is looked for
