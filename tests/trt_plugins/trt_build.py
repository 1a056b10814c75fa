"""Compiling the TensorRT plugins and their test drivers on a machine without TensorRT.

- header_sets(): every TensorRT C++ header folder found: $TENSORRT_INCLUDE_DIRS (os.pathsep
  separated), $TENSORRT_INCLUDE, a TensorRT install ($TENSORRT_ROOT, JetPack / deb places), and
  the exact copies of NVIDIA's headers in ../shared/third_party/tensorrt/<version>/include.
- a stub libnvinfer (cpp/fake_nvinfer.cpp: getPluginRegistry, getLogger over a fake registry) in
  a fake TensorRT root, so the real CMake build (csrc/tensorrt/CMakeLists.txt) configures, links
  with --no-undefined and produces a library that can be dlopened;
- the harness (cpp/trt_harness.cpp) linked against that stub.

Builds are cached under the temp folder by a hash of everything that goes into them (sources,
headers, tool versions), so a rerun with nothing changed costs nothing; compiles use one job.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trt_files import REPO, TENSORRT_SOURCES

CPP = Path(__file__).resolve().parent / "cpp"
KERNELS = REPO / "csrc" / "kernels"
SHARED_HEADERS = REPO.parent / "shared" / "third_party" / "tensorrt"
SYSTEM_HEADER_DIRS = (
    "/usr/include/aarch64-linux-gnu",  # JetPack
    "/usr/include/x86_64-linux-gnu",  # deb packages
    "/usr/include",
    "/usr/local/tensorrt/include",
    "/opt/tensorrt/include",
)
CACHE = Path(tempfile.gettempdir()) / "sspnet-trt-tests"
COMPILE_TIMEOUT_S = 900


@dataclass(frozen=True)
class HeaderSet:
    include: Path
    version: str  # "10.3.0" from NvInferVersion.h

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def __str__(self) -> str:
        return f"TensorRT {self.version} ({self.include})"


def header_version(include: Path) -> str:
    text = (include / "NvInferVersion.h").read_text(errors="replace")
    parts = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        match = re.search(rf"#define\s+(?:NV_TENSORRT_{part}|TRT_{part}_ENTERPRISE)\s+(\d+)", text)
        parts.append(match.group(1) if match else "?")
    return ".".join(parts)


def header_sets() -> list[HeaderSet]:
    candidates = [Path(p) for p in os.environ.get("TENSORRT_INCLUDE_DIRS", "").split(os.pathsep) if p]
    candidates += [Path(p) for p in (os.environ.get("TENSORRT_INCLUDE"), os.environ.get("TENSORRT_ROOT")) if p]
    candidates += [Path(p) for p in SYSTEM_HEADER_DIRS]
    if SHARED_HEADERS.is_dir():
        candidates += sorted(SHARED_HEADERS.glob("*/include"))
    found, seen = [], set()
    for candidate in candidates:
        for folder in (candidate, candidate / "include"):
            if (folder / "NvInferRuntime.h").is_file() and (folder / "NvInferVersion.h").is_file():
                real = folder.resolve()
                if real not in seen:
                    seen.add(real)
                    found.append(HeaderSet(folder, header_version(folder)))
                break
    return found


def header_set(version_prefix: str) -> HeaderSet | None:
    """The first header set whose version starts with `version_prefix` ("10.3", "11.")."""
    return next((h for h in header_sets() if h.version.startswith(version_prefix)), None)


def cuda_root() -> Path | None:
    """The CUDA toolkit root ($CUDA_HOME, else /usr/local/cuda): bin/nvcc and cuda_runtime_api.h."""
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and (Path(root) / "include" / "cuda_runtime_api.h").is_file():
            return Path(root)
    return None


def cuda_library_dir(cuda: Path) -> Path:
    for name in ("lib64", "lib", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib", "targets/aarch64-linux/lib"):
        if any((cuda / name).glob("libcudart.so*")):
            return cuda / name
    return cuda / "lib64"


def missing_tools(*tools: str) -> str | None:
    """A skip reason naming the first missing tool, or None."""
    for tool in tools:
        if tool == "nvcc":
            cuda = cuda_root()
            if cuda is None or not (cuda / "bin" / "nvcc").is_file():
                return "no CUDA toolkit with nvcc (set CUDA_HOME)"
        elif tool == "cuda":
            if cuda_root() is None:
                return "no CUDA headers (cuda_runtime_api.h; set CUDA_HOME)"
        elif shutil.which(tool) is None:
            return f"no {tool} on PATH"
    return None


# ---- caching ---------------------------------------------------------------------------------


def _tool_version(tool: str) -> str:
    try:
        return subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60).stdout
    except OSError:
        return ""


def content_key(*parts) -> str:
    """A hash of files (their bytes), folders (every file in them but Markdown) and plain values."""
    digest = hashlib.sha256()
    for part in parts:
        paths = []
        if isinstance(part, Path) and part.is_dir():
            paths = sorted(p for p in part.rglob("*") if p.is_file() and p.suffix != ".md")  # docs do not build
        elif isinstance(part, Path) and part.is_file():
            paths = [part]
        else:
            digest.update(repr(part).encode())
        for path in paths:
            digest.update(str(path).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def cached_folder(kind: str, key: str) -> tuple[Path, bool]:
    """(folder, ready): ready when a previous build with this key finished."""
    folder = CACHE / f"{kind}-{key}"
    return folder, (folder / ".done").is_file()


def mark_done(folder: Path) -> None:
    (folder / ".done").write_text("ok\n")


def run(command: list[str], cwd: Path | None = None, env: dict | None = None, timeout: int = COMPILE_TIMEOUT_S):
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def check_run(command: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    result = run(command, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{what} failed ({' '.join(command[:3])} ...):\n{(result.stdout + result.stderr)[-4000:]}")
    return result


# ---- compiling -------------------------------------------------------------------------------


def include_flags(headers: HeaderSet, cuda: Path) -> list[str]:
    return ["-isystem", str(headers.include), "-isystem", str(cuda / "include")]


def plugin_sources() -> list[Path]:
    """SSPNET_PLUGIN_SOURCES of csrc/tensorrt/CMakeLists.txt: what the library is built from."""
    cmake = (TENSORRT_SOURCES / "CMakeLists.txt").read_text()
    block = re.search(r"set\(SSPNET_PLUGIN_SOURCES(.*?)\)", cmake, re.S).group(1)
    return [TENSORRT_SOURCES / name for name in block.split()]


# Our code: the flags of the CMake build and of scripts/check_tensorrt_headers.sh, warnings as errors.
PLUGIN_FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-DSSPNET_WITH_CUDA=1", "-fPIC", "-O0"]
# Test drivers: also -Werror; TensorRT's deprecated V1 plugin classes appear in the fake registry.
DRIVER_FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-Wno-deprecated-declarations", "-O1"]


def compile_plugin_objects(headers: HeaderSet, cuda: Path) -> dict[str, object]:
    """Every plugin source compiled against `headers` with -Wall -Wextra -Werror.

    {"folder": Path, "objects": [Path], "failures": {source name: compiler output}}; cached.
    """
    key = content_key(
        "objects",
        TENSORRT_SOURCES,
        KERNELS,
        headers.include.resolve(),
        headers.version,
        cuda.resolve(),
        _tool_version("g++"),
        PLUGIN_FLAGS,
    )
    folder, ready = cached_folder("objects", key)
    sources = plugin_sources()
    objects = [folder / f"{source.stem}.o" for source in sources]
    failures = {}
    if not ready:
        folder.mkdir(parents=True, exist_ok=True)
        for source, target in zip(sources, objects):
            command = [
                "g++",
                *PLUGIN_FLAGS,
                f"-I{TENSORRT_SOURCES}",
                f"-I{KERNELS}",
                *include_flags(headers, cuda),
                "-c",
                str(source),
                "-o",
                str(target),
            ]
            result = run(command)
            if result.returncode != 0:
                failures[str(source.relative_to(REPO))] = result.stderr[-3000:]
        if not failures:
            mark_done(folder)
    return {"folder": folder, "objects": objects, "failures": failures}


def stub_tensorrt_root(headers: HeaderSet, cuda: Path) -> Path:
    """A TensorRT root: include/ -> the headers, lib/libnvinfer.so(.MAJOR) = cpp/fake_nvinfer.cpp."""
    key = content_key(
        "stub",
        CPP / "fake_nvinfer.cpp",
        CPP / "fake_tensorrt.h",
        headers.include.resolve(),
        headers.version,
        _tool_version("g++"),
    )
    root, ready = cached_folder("stub-root", key)
    if ready:
        return root
    (root / "lib").mkdir(parents=True, exist_ok=True)
    include = root / "include"
    if not include.exists():
        include.symlink_to(headers.include.resolve(), target_is_directory=True)
    soname = f"libnvinfer.so.{headers.major}"
    check_run(
        [
            "g++",
            *DRIVER_FLAGS,
            "-fPIC",
            "-shared",
            *include_flags(headers, cuda),
            str(CPP / "fake_nvinfer.cpp"),
            f"-Wl,-soname,{soname}",
            "-o",
            str(root / "lib" / soname),
        ],
        "building the stub libnvinfer",
    )
    link = root / "lib" / "libnvinfer.so"
    if not link.exists():
        link.symlink_to(soname)
    mark_done(root)
    return root


def cmake_environment(cuda: Path, path_without_nvcc: bool = True) -> dict:
    """The environment of a default JetPack shell: nvcc not on PATH, CUDA_HOME may be set."""
    env = {k: v for k, v in os.environ.items() if k not in ("TENSORRT_ROOT", "CUDACXX", "CMAKE_CUDA_COMPILER")}
    env["CUDA_HOME"] = str(cuda)
    if path_without_nvcc:
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if p and not (Path(p) / "nvcc").exists()
        )
    return env


def cmake_build(headers: HeaderSet, cuda: Path) -> dict[str, object]:
    """libsspnet_trt_plugins.so built by csrc/tensorrt/CMakeLists.txt against `headers` and the stub
    libnvinfer, nvcc found through CUDA_HOME only (not on PATH). {"library", "root", "log"}; cached."""
    root = stub_tensorrt_root(headers, cuda)
    # One architecture keeps the nvcc work small; the GPU check script builds for the host GPU.
    arch = os.environ.get("SSPNET_TEST_CUDA_ARCH", "87")
    key = content_key(
        "cmake",
        TENSORRT_SOURCES,
        KERNELS,
        root / "lib",
        headers.include.resolve(),
        headers.version,
        arch,
        _tool_version("cmake"),
        _tool_version(str(cuda / "bin" / "nvcc")),
        _tool_version("g++"),
    )
    folder, ready = cached_folder("cmake", key)
    library = folder / "build" / "libsspnet_trt_plugins.so"
    log = folder / "build.log"
    if ready:
        return {"library": library, "root": root, "log": log.read_text()}
    folder.mkdir(parents=True, exist_ok=True)
    env = cmake_environment(cuda)
    configure = check_run(
        [
            "cmake",
            "-S",
            str(TENSORRT_SOURCES),
            "-B",
            str(folder / "build"),
            f"-DTENSORRT_ROOT={root}",
            f"-DCMAKE_CUDA_ARCHITECTURES={arch}",
        ],
        "configuring csrc/tensorrt with CMake",
        env=env,
    )
    build = check_run(["cmake", "--build", str(folder / "build"), "-j", "1"], "building csrc/tensorrt", env=env)
    log.write_text(configure.stdout + configure.stderr + build.stdout + build.stderr)
    mark_done(folder)
    return {"library": library, "root": root, "log": log.read_text()}


def compile_driver(source: Path, headers: HeaderSet, cuda: Path, name: str, extra: list[str]) -> Path:
    """A test driver (cpp/*.cpp) compiled against `headers`; cached."""
    key = content_key(
        "driver",
        source,
        CPP / "fake_tensorrt.h",
        CPP / "fake_nvinfer.cpp",
        headers.include.resolve(),
        headers.version,
        extra,
        _tool_version("g++"),
    )
    folder, ready = cached_folder(name, key)
    binary = folder / name
    if not ready:
        folder.mkdir(parents=True, exist_ok=True)
        check_run(
            ["g++", *DRIVER_FLAGS, *include_flags(headers, cuda), f"-I{CPP}", str(source), *extra, "-o", str(binary)],
            f"compiling {source.name} against {headers}",
        )
        mark_done(folder)
    return binary


def compile_harness(headers: HeaderSet, cuda: Path, stub_root: Path) -> Path:
    lib = cuda_library_dir(cuda)
    return compile_driver(
        CPP / "trt_harness.cpp",
        headers,
        cuda,
        "trt_harness",
        [
            f"-L{stub_root / 'lib'}",
            "-lnvinfer",
            f"-L{lib}",
            "-lcudart",
            "-ldl",
            f"-Wl,-rpath,{stub_root / 'lib'}:{lib}",
        ],
    )
