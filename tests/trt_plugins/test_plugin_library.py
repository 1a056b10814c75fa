"""The plugin library's registration (csrc/tensorrt/common/pluginLibrary.cpp) against TensorRT's
plugin-library contract, without libnvinfer or a GPU, for every TensorRT header set found: the
plugin glue objects (test_compile_matrix.py) are linked into a shared library (the CUDA kernels
left unresolved), then

- its dynamic symbol table must define `getCreators` and `setLoggerFinder` with C linkage (TensorRT
  finds them with dlsym by these exact names);
- tests/trt_plugins/cpp/plugin_library_loader.cpp loads it the two ways TensorRT loads plugin
  libraries, against the fake registry of cpp/fake_tensorrt.h (refuses duplicate
  name/version/namespace as TensorRT documents), and each way must register each creator once.

The library CMake builds (visibility, exported symbols) is test_cmake_build.py.
"""

import json
import shutil
import subprocess

import pytest
from trt_build import CPP, compile_driver, compile_plugin_objects, cuda_root, header_sets, missing_tools, run
from trt_files import PLUGIN_FIELDS

HEADER_SETS = header_sets()


@pytest.fixture(scope="module", params=HEADER_SETS or [None], ids=lambda h: f"trt{h.version}" if h else "none")
def headers(request):
    if request.param is None:
        pytest.skip("no TensorRT C++ headers found (set TENSORRT_INCLUDE_DIRS to folders holding NvInferRuntime.h)")
    reason = missing_tools("g++", "cuda")
    if reason:
        pytest.skip(reason)
    return request.param


@pytest.fixture(scope="module")
def glue_library(headers, tmp_path_factory):
    """The plugin sources as one shared library, like the CMake target minus libnvinfer and the kernels."""
    objects = compile_plugin_objects(headers, cuda_root())
    assert objects["failures"] == {}, sorted(objects["failures"])
    library = tmp_path_factory.mktemp("plugin_library") / "libsspnet_trt_plugins_glue.so"
    link = run(["g++", "-shared", *map(str, objects["objects"]), "-o", str(library)])
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
def loading_report(headers, glue_library):
    cuda = cuda_root()
    binary = compile_driver(
        CPP / "plugin_library_loader.cpp",
        headers,
        cuda,
        "plugin_library_loader",
        [str(CPP / "fake_nvinfer.cpp"), "-rdynamic", "-ldl"],
    )
    result = subprocess.run([str(binary), str(glue_library)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


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
