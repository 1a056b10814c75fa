"""Builds the `sspnet` distribution and its compiled extension `sspnet._C`.

The CPU kernels are always built. The CUDA kernels are built when a CUDA toolkit is found:
`CUDA_HOME` first, then the real location of the `nvcc` on PATH (which may be a wrapper script
outside the toolkit root), then /usr/local/cuda. Set SSPNET_WITH_CUDA=0 to force a CPU-only build.
Architectures come from TORCH_CUDA_ARCH_LIST; the default is Jetson Orin (8.7) plus the GPU of
this machine, if any.

The TensorRT plugin library (csrc/tensorrt, CMake, no torch) is built too when TensorRT's headers
are found (TENSORRT_ROOT or the system places) and copied to sspnet/lib/; otherwise one line says
it was skipped. Set SSPNET_WITH_TENSORRT=0 to skip it on purpose.

Without torch in the build environment (e.g. plain `pip install .` with build isolation, or a Jetson
that only runs `sspnet.runtime`), or with SSPNET_BUILD_EXTENSION=0, the package installs pure-Python: no
`sspnet._C`, and the TensorRT plugins are then built with CMake directly (csrc/tensorrt/README.md).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent.resolve()


def find_cuda_home():
    """The CUDA toolkit root, or None. Must run before torch.utils.cpp_extension is imported."""
    if os.environ.get("SSPNET_WITH_CUDA", "1") == "0":
        return None
    candidates = []
    if os.environ.get("CUDA_HOME"):
        candidates.append(Path(os.environ["CUDA_HOME"]))
    nvcc = shutil.which("nvcc")
    if nvcc:
        nvcc_path = Path(nvcc).resolve()
        candidates.append(nvcc_path.parent.parent)
        # A wrapper script like `exec /usr/local/cuda-13.0/bin/nvcc "$@"`: follow it.
        try:
            text = nvcc_path.read_text(errors="ignore")[:4096]
            match = re.search(r"(/\S+)/bin/nvcc", text)
            if match:
                candidates.append(Path(match.group(1)))
        except OSError:
            pass
    candidates.append(Path("/usr/local/cuda"))
    for root in candidates:
        if (root / "bin" / "nvcc").is_file() and (root / "include" / "cuda_runtime_api.h").is_file():
            return root
    return None


CUDA_HOME = find_cuda_home()
if CUDA_HOME is not None:
    os.environ["CUDA_HOME"] = str(CUDA_HOME)

try:
    if os.environ.get("SSPNET_BUILD_EXTENSION", "1") == "0":
        raise ImportError("SSPNET_BUILD_EXTENSION=0")
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension  # noqa: E402
except ImportError:  # runtime-only install: sspnet.runtime needs no torch
    BuildExtension = None


def default_arch_list():
    archs = ["8.7"]  # Jetson Orin
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            archs.append(f"{major}.{minor}")
    except Exception:  # no driver: keep Orin only
        pass
    return ";".join(dict.fromkeys(archs))


def extension():
    kernel_dir = ROOT / "csrc" / "kernels"
    torch_dir = ROOT / "csrc" / "torch"
    cpp_sources = sorted(str(p.relative_to(ROOT)) for p in kernel_dir.glob("*.cpp"))
    cpp_sources += sorted(str(p.relative_to(ROOT)) for p in torch_dir.glob("*.cpp"))
    # torch >= 2.13 headers need C++20; the kernels themselves are plain C++17 (TensorRT side).
    cxx_flags = ["-O3", "-std=c++20", "-fopenmp"]
    common = dict(
        name="sspnet._C",
        include_dirs=[str(kernel_dir)],
        extra_link_args=["-fopenmp"],
    )
    if CUDA_HOME is None:
        print("sspnet: no CUDA toolkit found -> building the CPU kernels only", file=sys.stderr)
        return CppExtension(sources=cpp_sources, extra_compile_args={"cxx": cxx_flags}, **common)
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", default_arch_list())
    print(
        f"sspnet: CUDA toolkit {CUDA_HOME}, architectures {os.environ['TORCH_CUDA_ARCH_LIST']}",
        file=sys.stderr,
    )
    cu_sources = sorted(str(p.relative_to(ROOT)) for p in kernel_dir.glob("*.cu"))
    arch_define = f'-DSSPNET_CUDA_ARCHS="{os.environ["TORCH_CUDA_ARCH_LIST"]}"'
    return CUDAExtension(
        sources=cpp_sources + cu_sources,
        define_macros=[("SSPNET_WITH_CUDA", "1")],
        extra_compile_args={
            "cxx": cxx_flags + [arch_define],
            "nvcc": ["-O3", "-std=c++17", "--expt-relaxed-constexpr", "-lineinfo"],
        },
        **common,
    )


TENSORRT_HEADER_DIRS = (
    "/usr/include/aarch64-linux-gnu",  # JetPack
    "/usr/include/x86_64-linux-gnu",  # TensorRT .deb packages
    "/usr/include",
    "/usr/local/tensorrt/include",
    "/opt/tensorrt/include",
)


def find_tensorrt_headers():
    """The directory holding NvInferRuntime.h ($TENSORRT_ROOT/include first), or None."""
    candidates = list(TENSORRT_HEADER_DIRS)
    if os.environ.get("TENSORRT_ROOT"):
        candidates.insert(0, os.path.join(os.environ["TENSORRT_ROOT"], "include"))
    for directory in candidates:
        if os.path.isfile(os.path.join(directory, "NvInferRuntime.h")):
            return Path(directory)
    return None


def build_tensorrt_plugins(package_dirs):
    """cmake csrc/tensorrt into build/tensorrt and copy libsspnet_trt_plugins.so into each of
    `package_dirs` (sspnet/lib of the build tree and, for editable installs, of the source tree)."""
    if os.environ.get("SSPNET_WITH_TENSORRT", "1") == "0":
        print("sspnet: SSPNET_WITH_TENSORRT=0 -> skipping the TensorRT plugins (csrc/tensorrt)", file=sys.stderr)
        return
    headers = find_tensorrt_headers()
    if headers is None or CUDA_HOME is None or shutil.which("cmake") is None:
        missing = "TensorRT headers (set TENSORRT_ROOT)" if headers is None else "a CUDA toolkit or cmake"
        print(f"sspnet: no {missing} -> skipping the TensorRT plugins (csrc/tensorrt)", file=sys.stderr)
        return
    build_dir = ROOT / "build" / "tensorrt"
    configure = [
        "cmake",
        "-S",
        str(ROOT / "csrc" / "tensorrt"),
        "-B",
        str(build_dir),
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCMAKE_CUDA_COMPILER={CUDA_HOME / 'bin' / 'nvcc'}",
        f"-DPython3_EXECUTABLE={sys.executable}",
    ]
    if os.environ.get("TENSORRT_ROOT"):
        configure.append(f"-DTENSORRT_ROOT={os.environ['TENSORRT_ROOT']}")
    print(f"sspnet: building the TensorRT plugins against {headers}", file=sys.stderr)
    try:
        subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "-j", os.environ.get("MAX_JOBS", "2")], check=True)
    except subprocess.CalledProcessError:
        print(
            "sspnet: building the TensorRT plugins FAILED (log above); sspnet is installed without them",
            file=sys.stderr,
        )
        return
    for directory in package_dirs:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copy2(build_dir / "libsspnet_trt_plugins.so", directory / "libsspnet_trt_plugins.so")


def extension_build_options():
    """ext_modules and cmdclass for setup(): the torch extension + TensorRT plugins, or nothing."""
    if BuildExtension is None:
        print(
            "sspnet: torch is not importable or SSPNET_BUILD_EXTENSION=0 -> pure-Python install (no sspnet._C)",
            file=sys.stderr,
        )
        return {}

    class BuildExtensions(BuildExtension.with_options(use_ninja=True)):
        """The torch extension, then the TensorRT plugins (when TensorRT is present)."""

        def run(self):
            super().run()
            targets = [Path(self.build_lib) / "sspnet" / "lib"]
            if self.inplace:  # editable install: the package is the source tree
                targets.append(ROOT / "sspnet" / "lib")
            build_tensorrt_plugins(targets)

    return {"ext_modules": [extension()], "cmdclass": {"build_ext": BuildExtensions}}


def packages():
    """export/ and runtime/ are top-level folders that install as sspnet.export / sspnet.runtime.
    sspnet/models/presets holds only YAML files (package data), so it is listed by name."""
    found = find_packages(include=["sspnet", "sspnet.*"]) + ["sspnet.models.presets"]
    for folder in ("export", "runtime"):
        found.append(f"sspnet.{folder}")
        found += [f"sspnet.{folder}.{sub}" for sub in find_packages(folder)]
    return found


setup(
    packages=packages(),
    package_dir={"sspnet": "sspnet", "sspnet.export": "export", "sspnet.runtime": "runtime"},
    **extension_build_options(),
)
