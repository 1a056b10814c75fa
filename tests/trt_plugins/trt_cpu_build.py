"""The TensorRT plugin library with its CUDA kernels on the CPU execution layer (tests/cuda_on_cpu),
and the harness that drives it, for running the plugins' enqueue without a GPU.

What goes in, per TensorRT header set and flavour ("plain", "asan" = AddressSanitizer +
UndefinedBehaviorSanitizer, "tsan" = ThreadSanitizer; the sanitizer flags of each unit are the
layer's own, see coc_build.build_library):
- libsspnet_trt_plugins.so: the sources CMake builds the real library from (csrc/tensorrt's
  SSPNET_PLUGIN_SOURCES, every .cpp of csrc/kernels) plus every .cu of csrc/kernels rewritten by
  the layer's rewrite_cuda.py and compiled as C++ (coc_build.cuda_unit), linked like CMake links
  it (--no-undefined, exports.map: only getCreators / setLoggerFinder leave it);
- libcuda_on_cpu_runtime.so: the layer's scheduler and cudart stand-ins (runtime.cpp), one copy
  shared by the library and the harness, as libcudart would be;
- libnvinfer: the stub of cpp/fake_nvinfer.cpp (trt_build.stub_tensorrt_root);
- trt_harness built with TRT_HARNESS_CUDA_ON_CPU (one device, the default stream).
Objects are cached by coc_build (build/cuda_on_cpu/), links under trt_build.CACHE.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from trt_build import (
    CPP,
    KERNELS,
    PLUGIN_FLAGS,
    HeaderSet,
    cached_folder,
    check_run,
    content_key,
    cuda_root,
    mark_done,
    plugin_sources,
    stub_tensorrt_root,
)
from trt_files import REPO, TENSORRT_SOURCES

LAYER_DIR = REPO / "tests" / "cuda_on_cpu"
FLAVOURS = ("plain", "asan", "tsan")
SCHEDULES = ("forward", "reverse", "random")


def coc_build():
    """The layer's builder module (tests/cuda_on_cpu/coc_build.py)."""
    if str(LAYER_DIR) not in sys.path:
        sys.path.insert(0, str(LAYER_DIR))
    import coc_build

    return coc_build


def missing_layer() -> str | None:
    """A skip reason when the layer or its toolchain is not here, else None."""
    if not (LAYER_DIR / "coc_build.py").is_file():
        return f"no CPU execution layer ({LAYER_DIR / 'coc_build.py'})"
    if cuda_root() is None or not coc_build().have_toolchain():
        return "no g++ or no CUDA headers (cuda_runtime.h; set CUDA_HOME) for the CPU execution layer"
    return None


def _our_headers(headers: HeaderSet) -> str:
    """Text of every header our units may include (cache key of their objects), plus which
    TensorRT headers (by folder and version)."""
    files = sorted(TENSORRT_SOURCES.rglob("*.h")) + [CPP / "fake_tensorrt.h"]
    return "".join(p.read_text() for p in files) + coc_build()._layer_text() + f"{headers.include}:{headers.version}"


def _named(path: Path) -> str:
    return f'#line 1 "{path.relative_to(REPO)}"\n{path.read_text()}'


def _sanitize(flavour: str) -> list[str]:
    """Flags of the units whose CUDA threads the sanitizer watches (kernels, plugin glue)."""
    return list(coc_build().SANITIZE[flavour])


def _host_sanitize(flavour: str) -> list[str]:
    """Flags of the layer's runtime and the CPU twins: as coc_build builds them (under TSan they are
    not instrumented; the runtime adds CUDA's happens-before edges itself)."""
    return _sanitize(flavour) if flavour == "asan" else []


def _plugin_flags(headers: HeaderSet, flavour: str) -> list[str]:
    """The library's flags (as trt_build's compile matrix and CMake: warnings are errors)."""
    cuda = cuda_root()
    # PLUGIN_FLAGS' -O0: the glue is not where the time goes, and -O1 under ASan compiles ~4x slower.
    return [
        *PLUGIN_FLAGS,
        "-g",
        "-ffp-contract=off",
        "-fvisibility=hidden",
        *_sanitize(flavour),
        f"-I{TENSORRT_SOURCES}",
        f"-I{KERNELS}",
        "-isystem",
        str(headers.include),
        "-isystem",
        str(cuda / "include"),
    ]


def _link(kind: str, objects: list[Path], name: str, command_tail: list[str], flavour: str) -> Path:
    key = content_key(kind, *objects, command_tail, flavour)
    folder, ready = cached_folder(kind, key)
    target = folder / name
    if not ready:
        folder.mkdir(parents=True, exist_ok=True)
        check_run(
            ["g++", *map(str, objects), *command_tail, *_sanitize(flavour), "-o", str(target)],
            f"linking {name} ({flavour})",
        )
        mark_done(folder)
    return target


def runtime_library(flavour: str) -> Path:
    """libcuda_on_cpu_runtime.so: the layer's runtime.cpp alone."""
    coc = coc_build()
    flags = [*coc.base_flags(), *_host_sanitize(flavour)] + (["-DCUDA_ON_CPU_TSAN"] if flavour == "tsan" else [])
    obj = coc._compile(_named(coc.LAYER / "runtime.cpp"), ".cpp", flags, coc._layer_text())
    return _link(
        "coc-runtime", [obj], "libcuda_on_cpu_runtime.so", ["-shared", "-Wl,-soname,libcuda_on_cpu_runtime.so"], flavour
    )


def plugin_library(
    headers: HeaderSet, flavour: str, substitutions: dict[Path, tuple[str, str]] | None = None
) -> dict[str, Path]:
    """{"library", "runtime", "stub_root"}: the plugin library on the layer, cached.

    substitutions: {plugin source: (old text, new text)}, a planted bug; the old text must occur
    exactly once (a plant that no longer applies fails loudly instead of testing the real code).
    """
    coc = coc_build()
    key_text = _our_headers(headers)
    units = []
    for source in plugin_sources():
        text = _named(source)
        if source in (substitutions or {}):
            old, new = substitutions[source]
            if text.count(old) != 1:
                raise ValueError(f"{source.name}: the text to replace is not there exactly once: {old!r}")
            text = text.replace(old, new)
        units.append((text, ".cpp", _plugin_flags(headers, flavour)))
    objects = [coc._compile(text, suffix, flags, key_text) for text, suffix, flags in units]
    # The kernels include no TensorRT header: one object serves every header set.
    host_flags = [*coc.base_flags(), *_host_sanitize(flavour), "-fopenmp"]
    kernel_units = [(_named(source), ".cpp", host_flags) for source in sorted(KERNELS.glob("*.cpp"))]
    for source in sorted(KERNELS.glob("*.cu")):
        text, suffix, flags = coc.cuda_unit(str(source.relative_to(REPO)), source.read_text(), flavour)
        kernel_units.append((text, suffix, flags))
    objects += [coc._compile(text, suffix, flags, coc._layer_text()) for text, suffix, flags in kernel_units]
    runtime = runtime_library(flavour)
    stub_root = stub_tensorrt_root(headers, cuda_root())
    library = _link(
        f"trt-cpu-{flavour}",
        objects,
        "libsspnet_trt_plugins.so",
        [
            "-shared",
            "-fopenmp",
            f"-L{stub_root / 'lib'}",
            "-lnvinfer",
            f"-L{runtime.parent}",
            "-lcuda_on_cpu_runtime",
            "-Wl,--no-undefined",
            "-Wl,--exclude-libs,ALL",
            f"-Wl,--version-script={TENSORRT_SOURCES / 'common' / 'exports.map'}",
            f"-Wl,-rpath,{stub_root / 'lib'}:{runtime.parent}",
        ],
        flavour,
    )
    return {"library": library, "runtime": runtime, "stub_root": stub_root}


def harness(headers: HeaderSet, flavour: str, built: dict[str, Path]) -> Path:
    """cpp/trt_harness.cpp against `headers`, on the layer's runtime instead of libcudart."""
    coc = coc_build()
    flags = [
        "-std=c++17",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-Wno-deprecated-declarations",
        "-O0",
        "-g",
        "-DTRT_HARNESS_CUDA_ON_CPU",
        *_sanitize(flavour),
        f"-I{CPP}",
        "-isystem",
        str(headers.include),
        "-isystem",
        str(cuda_root() / "include"),
    ]
    objects = [coc._compile(_named(CPP / "trt_harness.cpp"), ".cpp", flags, _our_headers(headers))]
    runtime, stub_lib = built["runtime"], built["stub_root"] / "lib"
    # The stub libnvinfer holds the registry and logger both the harness and the library use.
    return _link(
        f"trt-cpu-harness-{flavour}",
        objects,
        "trt_harness",
        [
            f"-L{stub_lib}",
            "-lnvinfer",
            f"-L{runtime.parent}",
            "-lcuda_on_cpu_runtime",
            "-ldl",
            f"-Wl,-rpath,{stub_lib}:{runtime.parent}",
        ],
        flavour,
    )


def run_harness(
    binary: Path,
    library: Path,
    spec: Path,
    enqueue_dir: Path | None,
    flavour: str,
    schedule: str = "forward",
    seed: int = 0,
    timeout: int = 600,
) -> subprocess.CompletedProcess:
    """The harness under `schedule`; a sanitizer report makes it exit non-zero."""
    env = dict(os.environ, SSPNET_COC_SCHEDULE=schedule, SSPNET_COC_SEED=str(seed))
    command = [str(binary), str(library), str(spec)] + (["--enqueue", str(enqueue_dir)] if enqueue_dir else [])
    if flavour == "asan":
        # Leaks: the library stays loaded and TensorRT owns its creators for the life of the
        # process. Any other report stops the run.
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:halt_on_error=1"
        env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    if flavour == "tsan":
        env["TSAN_OPTIONS"] = "halt_on_error=1:exitcode=66"
        if shutil.which("setarch"):
            # GCC 12's TSan refuses some address layouts ("unexpected memory mapping"); without
            # randomisation it always starts (as tests/cuda_on_cpu/coc_sanitized.py does).
            command = ["setarch", platform.machine(), "-R", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
