"""runtime/plugin_fields.json (read by the exporter and the runtime) and the C++ plugin sources
(csrc/tensorrt) describe the same plugins: names, versions, namespace, fields, types, defaults,
output counts. The C++ side is read by compiling its field tables (no TensorRT header needed) into
a small program that prints them, plus a few source-level checks of the TensorRT-dependent files.

Also: the field reader's behaviour (tests/trt_plugins/cpp/field_reading_checks.cpp) and an nvcc
compile check of the TensorRT-free plugin sources as CUDA translation units.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from trt_files import PLUGIN_FIELDS, REPO, TENSORRT_SOURCES

PLUGIN_DIRS = {"SSPNetMultiLevelRoIAlign": "multiLevelRoIAlign", "SSPNetBatchedNMS": "batchedNms"}
FIELD_SOURCES = [
    TENSORRT_SOURCES / "common" / "fieldBinding.cpp",
    TENSORRT_SOURCES / "multiLevelRoIAlign" / "multiLevelRoIAlignFields.cpp",
    TENSORRT_SOURCES / "batchedNms" / "batchedNmsFields.cpp",
]
INCLUDES = [f"-I{REPO / 'csrc' / 'kernels'}", f"-I{TENSORRT_SOURCES}"]
CPP_TESTS = Path(__file__).resolve().parent / "cpp"


def json_plugins() -> dict:
    return json.loads(PLUGIN_FIELDS.read_text())["plugins"]


def compile_and_run(tmp_path, driver: str) -> subprocess.CompletedProcess:
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler (g++) on PATH to compile the plugin field tables")
    binary = tmp_path / driver.replace(".cpp", "")
    build = subprocess.run(
        [
            compiler,
            "-std=c++17",
            "-Wall",
            "-Wextra",
            *INCLUDES,
            *map(str, FIELD_SOURCES),
            str(CPP_TESTS / driver),
            "-o",
            str(binary),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, f"compiling {driver} failed:\n{build.stderr}"
    return subprocess.run([str(binary)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def cpp_plugins(tmp_path_factory) -> dict:
    """What the C++ sources declare, as printed by cpp/plugin_fields_dump.cpp."""
    run = compile_and_run(tmp_path_factory.mktemp("dump"), "plugin_fields_dump.cpp")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_same_plugins_versions_and_namespace(cpp_plugins):
    plugins = json_plugins()
    assert sorted(cpp_plugins["plugins"]) == sorted(plugins)
    for name, spec in plugins.items():
        assert cpp_plugins["plugins"][name]["version"] == str(spec["version"]), name
        assert cpp_plugins["namespace"] == spec["namespace"], name


@pytest.mark.parametrize("plugin", sorted(PLUGIN_DIRS))
def test_same_fields_types_and_defaults(cpp_plugins, plugin):
    expected = json_plugins()[plugin]["fields"]
    declared = cpp_plugins["plugins"][plugin]["fields"]
    assert list(declared) == list(expected), "field names (and order) differ"
    for field, spec in expected.items():
        assert declared[field]["type"] == spec["type"], field
        assert declared[field]["default"] == pytest.approx(spec["default"], rel=1e-7), field


@pytest.mark.parametrize("plugin", sorted(PLUGIN_DIRS))
def test_output_count_and_registration_in_sources(plugin):
    """The TensorRT-dependent sources cannot be compiled here: check what they declare as text."""
    folder = TENSORRT_SOURCES / PLUGIN_DIRS[plugin]
    header = (folder / f"{PLUGIN_DIRS[plugin]}Plugin.h").read_text()
    source = (folder / f"{PLUGIN_DIRS[plugin]}Plugin.cpp").read_text()
    outputs = int(re.search(r"kNbOutputs = (\d+);", header).group(1))
    assert outputs == len(json_plugins()[plugin]["outputs"])
    creator = re.search(r"class (\w+PluginCreator) final : public nvinfer1::IPluginCreatorV3One", header).group(1)
    # One creator instance, in common/pluginLibrary.cpp: registered while the library loads
    # (gCreators) and returned by getCreators() (gCreatorList).
    library = (TENSORRT_SOURCES / "common" / "pluginLibrary.cpp").read_text()
    instances = re.findall(rf"^{creator} (g\w+);$", library, re.M)
    assert len(instances) == 1, instances
    for array in ("gCreators", "gCreatorList"):
        listed = re.search(rf"{array}{{([^}}]*)}};", library).group(1)
        assert f"&{instances[0]}" in listed, array
    plugin_class = re.search(r"class (\w+Plugin) final : public nvinfer1::IPluginV3,", header).group(1)
    for interface in ("IPluginV3OneCore", "IPluginV3OneBuild", "IPluginV3OneRuntime"):
        assert f"public nvinfer1::{interface}" in header, interface
    # Both creator and plugin report the name / version / namespace constants the dump printed,
    # and every phase reads fields through the one table (bindFields).
    for owner in (plugin_class, creator):
        assert re.search(rf"{owner}::getPluginNamespace\(\) const noexcept {{ return kPluginNamespace; }}", source)
    assert "fieldSignatures(bindFields(" in source  # getFieldNames
    assert "fieldValues(bindFields(" in source  # getFieldsToSerialize
    assert re.search(r"readPluginFields\(&?\w+, bindFields\(", source)  # createPlugin, build and runtime phase


@pytest.mark.parametrize("plugin", sorted(PLUGIN_DIRS))
def test_plugin_readme_lists_every_field(plugin):
    readme = (TENSORRT_SOURCES / PLUGIN_DIRS[plugin] / "README.md").read_text()
    assert plugin in readme
    for field in json_plugins()[plugin]["fields"]:
        assert f"`{field}`" in readme, field


def test_field_reading_behaviour(tmp_path):
    run = compile_and_run(tmp_path, "field_reading_checks.cpp")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith("0 failures")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc on PATH (CUDA toolkit) for the compile check")
def test_field_sources_compile_as_cuda_with_the_kernel_cuda_declarations(tmp_path):
    unity = tmp_path / "fields_unity.cu"
    unity.write_text("".join(f'#include "{source}"\n' for source in FIELD_SOURCES))
    build = subprocess.run(
        [
            "nvcc",
            "-std=c++17",
            "-DSSPNET_WITH_CUDA=1",
            "-arch=sm_87",
            *INCLUDES,
            "-c",
            str(unity),
            "-o",
            str(tmp_path / "fields.o"),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
