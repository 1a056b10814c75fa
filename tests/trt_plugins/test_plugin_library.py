"""The plugin library's registration (csrc/tensorrt/common/pluginLibrary.cpp) against TensorRT's
plugin-library contract, without libnvinfer or a GPU: the plugin glue sources are compiled into a
shared library (the CUDA kernels left unresolved), then

- its dynamic symbol table must define `getCreators` and `setLoggerFinder` with C linkage (TensorRT
  finds them with dlsym by these exact names);
- tests/trt_plugins/cpp/plugin_library_loader.cpp loads it the two ways TensorRT loads plugin
  libraries, against a fake registry that refuses duplicate name/version/namespace as TensorRT
  documents, and each way must register each creator exactly once.

Needs TensorRT's C++ headers: $TENSORRT_INCLUDE (the folder with NvInferRuntime.h, or a TensorRT
root), else JetPack's / the deb packages' /usr/include/<arch>-linux-gnu. Skipped without them (the
pip wheels ship no headers).
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from trt_files import PLUGIN_FIELDS, REPO, TENSORRT_SOURCES

LOADER = Path(__file__).resolve().parent / "cpp" / "plugin_library_loader.cpp"


def tensorrt_include() -> Path | None:
    candidates = [os.environ.get("TENSORRT_INCLUDE", "")]
    candidates += ["/usr/include/aarch64-linux-gnu", "/usr/include/x86_64-linux-gnu"]  # JetPack, debs
    for candidate in filter(None, candidates):
        for folder in (Path(candidate), Path(candidate) / "include"):
            if (folder / "NvInferRuntime.h").is_file():
                return folder
    return None


def cuda_include() -> Path | None:
    nvcc = shutil.which("nvcc")
    roots = [os.environ.get("CUDA_HOME", ""), str(Path(nvcc).parents[1]) if nvcc else "", "/usr/local/cuda"]
    for root in filter(None, roots):
        if (Path(root) / "include" / "cuda_runtime_api.h").is_file():
            return Path(root) / "include"
    return None


def plugin_sources() -> list[Path]:
    """SSPNET_PLUGIN_SOURCES of csrc/tensorrt/CMakeLists.txt: what the library is built from."""
    cmake = (TENSORRT_SOURCES / "CMakeLists.txt").read_text()
    block = re.search(r"set\(SSPNET_PLUGIN_SOURCES(.*?)\)", cmake, re.S).group(1)
    return [TENSORRT_SOURCES / name for name in block.split()]


@pytest.fixture(scope="module")
def headers():
    trt, cuda, compiler = tensorrt_include(), cuda_include(), shutil.which("g++")
    if trt is None:
        pytest.skip("no TensorRT C++ headers (set TENSORRT_INCLUDE to the folder holding NvInferRuntime.h)")
    if cuda is None or compiler is None:
        pytest.skip("needs g++ and CUDA's headers (cuda_runtime_api.h; set CUDA_HOME)")
    return compiler, ["-isystem", str(trt), "-isystem", str(cuda)]


@pytest.fixture(scope="module")
def glue_library(headers, tmp_path_factory):
    """The plugin sources as one shared library, like the CMake target minus libnvinfer and the kernels."""
    compiler, include_flags = headers
    folder = tmp_path_factory.mktemp("plugin_library")
    flags = ["-std=c++17", "-O0", "-fPIC", "-Wall", "-Wextra", "-DSSPNET_WITH_CUDA=1"]
    flags += [f"-I{TENSORRT_SOURCES}", f"-I{REPO / 'csrc' / 'kernels'}", *include_flags]
    objects = []
    for source in plugin_sources():
        target = folder / f"{source.stem}.o"
        command = [compiler, *flags, "-c", str(source), "-o", str(target)]
        build = subprocess.run(command, capture_output=True, text=True)
        assert build.returncode == 0, f"{source.name} does not compile:\n{build.stderr[-3000:]}"
        objects.append(str(target))
    library = folder / "libsspnet_trt_plugins_glue.so"
    link = subprocess.run([compiler, "-shared", *objects, "-o", str(library)], capture_output=True, text=True)
    assert link.returncode == 0, link.stderr[-3000:]
    return library


def test_entry_points_are_exported_with_c_linkage(glue_library):
    if shutil.which("nm") is None:
        pytest.skip("no nm on PATH")
    symbols = subprocess.run(
        ["nm", "-D", "--defined-only", str(glue_library)], capture_output=True, text=True, check=True
    ).stdout
    defined = {line.split()[-1]: line.split()[-2] for line in symbols.splitlines() if len(line.split()) == 3}
    # Unmangled names (C linkage), global text symbols in the dynamic table (visible to dlsym).
    assert defined.get("getCreators") == "T"
    assert defined.get("setLoggerFinder") == "T"


@pytest.fixture(scope="module")
def loading_report(headers, glue_library, tmp_path_factory):
    compiler, include_flags = headers
    binary = tmp_path_factory.mktemp("loader") / "plugin_library_loader"
    build = subprocess.run(
        [compiler, "-std=c++17", "-O0", "-Wno-deprecated-declarations", *include_flags, str(LOADER),
         "-rdynamic", "-ldl", "-o", str(binary)],
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        # The fake registry implements one TensorRT version's IPluginRegistry (10.x); another
        # version's interface may differ. The library itself compiled (glue_library).
        pytest.skip("the fake IPluginRegistry does not match these TensorRT headers:\n" + build.stderr[-1500:])
    run = subprocess.run([str(binary), str(glue_library)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def expected_keys() -> list[str]:
    plugins = json.loads(PLUGIN_FIELDS.read_text())["plugins"]
    return sorted(f"{spec['namespace']}::{name}/{spec['version']}" for name, spec in plugins.items())


def test_plain_dlopen_registers_each_creator_once(loading_report):
    assert sorted(loading_report["after_dlopen"]) == expected_keys()


def test_tensorrt_loader_takes_the_same_creators_over(loading_report):
    report = loading_report
    assert report["entry_points"]
    # getCreators withdraws the load-time registration, so TensorRT's registration is not refused.
    assert report["after_get_creators"] == []
    assert report["tensorrt_registration_ok"]
    assert sorted(report["after_tensorrt_registers"]) == expected_keys()
    plugins = json.loads(PLUGIN_FIELDS.read_text())["plugins"]
    assert sorted(creator["name"] for creator in report["returned"]) == sorted(plugins)
    for creator in report["returned"]:
        spec = plugins[creator["name"]]
        assert creator["kind"] == "PLUGIN CREATOR_V3ONE"
        assert (creator["version"], creator["namespace"]) == (str(spec["version"]), spec["namespace"])
        assert creator["same_object_as_load_time"], creator["name"]
    # A second call must not withdraw TensorRT's own registration.
    assert sorted(report["after_second_get_creators"]) == expected_keys()


def test_errors_go_to_the_logger_tensorrt_hands_over(loading_report):
    assert not loading_report["bad_field_plugin_created"]
    assert len(loading_report["logged_errors"]) == 1
    assert "no_such_field" in loading_report["logged_errors"][0]
