"""Builds CUDA sources of csrc/kernels into shared libraries that run on the CPU execution layer.

    from coc_build import build_library
    lib = build_library("plain")                      # both kernels + their CPU twins + kernel_api.cpp
    lib = build_library("asan", substitutions={...})  # a planted-bug copy under ASan + UBSan

Flavours: "plain", "asan" (AddressSanitizer + UndefinedBehaviorSanitizer), "tsan"
(ThreadSanitizer). Every .cu goes through rewrite_cuda.py, then g++ -x c++ with the layer header
force-included, the real cuda_runtime.h / cuda_fp16.h of CUDA_HOME and -ffp-contract=off (no FMA
contraction: the CPU twins are compiled the same way, so rounding matches). Objects and libraries
are cached under build/cuda_on_cpu/ (or $SSPNET_CUDA_ON_CPU_BUILD) by a hash of their inputs, so a
second run does not recompile.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LAYER = HERE / "layer"
KERNELS = REPO / "csrc" / "kernels"
# SSPNET_CUDA_ON_CPU_BUILD: another cache folder (e.g. an empty one to time a cold build)
BUILD = Path(os.environ.get("SSPNET_CUDA_ON_CPU_BUILD", REPO / "build" / "cuda_on_cpu"))
sys.path.insert(0, str(HERE))
from rewrite_cuda import rewrite  # noqa: E402

CUDA_SOURCES = ("batched_nms_cuda.cu", "multi_level_roi_align_cuda.cu")
CPU_SOURCES = ("batched_nms_cpu.cpp", "multi_level_roi_align_cpu.cpp", "multi_level_roi_align.cpp")

SANITIZE = {
    "plain": [],
    "asan": ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"],
    "tsan": ["-fsanitize=thread"],
}


def cuda_home() -> Path:
    home = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda"))
    if not (home / "include" / "cuda_runtime.h").is_file():
        raise FileNotFoundError(f"no cuda_runtime.h under CUDA_HOME={home} (the CUDA toolkit headers are needed)")
    return home


def compiler() -> str:
    return os.environ.get("CXX", "g++")


def base_flags() -> list[str]:
    return [
        "-std=c++17",
        "-O1",
        "-g",
        "-fPIC",
        "-ffp-contract=off",
        "-Wall",
        "-Wno-unused-function",
        "-DSSPNET_WITH_CUDA",
        f"-I{LAYER}",
        f"-I{KERNELS}",
        f"-I{cuda_home() / 'include'}",
    ]


def _layer_text() -> str:
    """Every header a unit may include: part of each object's cache key."""
    files = sorted(LAYER.rglob("*")) + sorted(KERNELS.glob("*.h"))
    return "".join(p.read_text() for p in files if p.is_file())


def _named(path: Path) -> str:
    """The file's text, reported under its repository path (it is compiled from a cached copy)."""
    return f'#line 1 "{path.relative_to(REPO)}"\n{path.read_text()}'


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _compile(source_text: str, suffix: str, flags: list[str], headers: str) -> Path:
    key = _digest(source_text, " ".join(flags), headers, compiler())
    obj = BUILD / "obj" / f"{key}.o"
    if obj.exists():
        return obj
    obj.parent.mkdir(parents=True, exist_ok=True)
    src = BUILD / "src" / f"{key}{suffix}"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(source_text)
    tmp = obj.with_suffix(f".{os.getpid()}.tmp.o")
    run = subprocess.run([compiler(), *flags, "-c", str(src), "-o", str(tmp)], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"compiling {src} failed:\n{run.stderr}")
    os.replace(tmp, obj)
    return obj


def cuda_unit(name: str, text: str, flavour: str) -> tuple[str, str, list[str]]:
    """(source, suffix, flags) of a .cu file rewritten for the layer."""
    flags = [*base_flags(), *SANITIZE[flavour], "-x", "c++", "-include", str(LAYER / "cuda_on_cpu.h")]
    return rewrite(text, name), ".cu.cpp", flags


def build_library(
    flavour: str = "plain",
    substitutions: dict[str, dict[str, str]] | None = None,
    cuda_sources=CUDA_SOURCES,
    extra_units: list[tuple[str, str]] = (),
    kernel_api: bool = True,
) -> Path:
    """A shared library with the (maybe modified) CUDA kernels, their CPU twins and kernel_api.cpp.

    substitutions: {"batched_nms_cuda.cu": {"old text": "new text"}}, each old text must occur
    (a planted bug that no longer applies must fail loudly, not test the unmodified kernel).
    extra_units: (name, .cu text) pairs compiled the same way (the layer's own test kernels).
    kernel_api: link kernel_api.cpp and the CPU twins (needs both kernels in cuda_sources).
    """
    if flavour not in SANITIZE:
        raise ValueError(f"flavour must be one of {sorted(SANITIZE)}, got {flavour!r}")
    substitutions = substitutions or {}
    headers = _layer_text()
    units = []
    for source in cuda_sources:
        text = (KERNELS / source).read_text()
        for old, new in substitutions.get(source, {}).items():
            if old not in text:
                raise ValueError(f"{source}: the text to replace is not there: {old!r}")
            text = text.replace(old, new, 1)
        units.append(cuda_unit(f"csrc/kernels/{source}", text, flavour))
    for name, text in extra_units:
        units.append(cuda_unit(name, text, flavour))
    # The CPU twins and the scheduler are not what the sanitizers look at under TSan: OpenMP and
    # the scheduler's own bookkeeping are not instrumented (the scheduler adds CUDA's edges itself).
    host_sanitize = SANITIZE[flavour] if flavour == "asan" else []
    host_flags = [*base_flags(), *host_sanitize, "-fopenmp"]
    runtime_flags = [*base_flags(), *host_sanitize] + (["-DCUDA_ON_CPU_TSAN"] if flavour == "tsan" else [])
    if kernel_api:
        for source in CPU_SOURCES:
            units.append((_named(KERNELS / source), ".cpp", host_flags))
        units.append((_named(HERE / "kernel_api.cpp"), ".cpp", [*base_flags(), *host_sanitize]))
    units.append((_named(LAYER / "runtime.cpp"), ".cpp", runtime_flags))
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        objects = list(pool.map(lambda u: _compile(u[0], u[1], u[2], headers), units))
    key = _digest(flavour, *(o.name for o in objects))
    lib = BUILD / f"libcoc_{flavour}_{key}.so"
    if not lib.exists():
        tmp = lib.with_suffix(f".{os.getpid()}.tmp")
        # -Bsymbolic: the kernels call this library's cudaMalloc etc. even when the process has
        # loaded the real libcudart first (torch does), whose symbols would otherwise win
        link = [
            compiler(),
            "-shared",
            "-Wl,-Bsymbolic",
            "-o",
            str(tmp),
            *map(str, objects),
            "-fopenmp",
            *SANITIZE[flavour],
        ]
        run = subprocess.run(link, capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"linking {lib.name} failed:\n{run.stderr}")
        os.replace(tmp, lib)
    return lib


def sanitizer_runtime(flavour: str) -> str | None:
    """The sanitizer runtime a Python process must LD_PRELOAD to load a `flavour` library."""
    name = {"asan": "libasan.so", "tsan": "libtsan.so"}.get(flavour)
    if name is None:
        return None
    path = subprocess.run([compiler(), f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return str(Path(path).resolve()) if path and Path(path).exists() else None


def have_toolchain() -> bool:
    try:
        cuda_home()
    except FileNotFoundError:
        return False
    return shutil.which(compiler()) is not None


if __name__ == "__main__":
    for flavour in sys.argv[1:] or ["plain"]:
        print(build_library(flavour))
