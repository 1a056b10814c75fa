"""The TensorRT and CUDA helpers that both the engine builder (runtime/engine_builder.py) and the
TensorRT backend (runtime/tensorrt_backend.py) use: importing `tensorrt` and cuda-python with a clear
error when they are missing, reading the GPU's name and compute capability, and finding, loading and
checking the sspnet plugin library.

`tensorrt` and `cuda` are imported inside functions, so this module imports on machines that have
neither (and never imports torch).
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

from sspnet.errors import MissingDependencyError

from .sidecar import expected_plugin_versions, plugin_namespace

PLUGIN_LIBRARY_NAME = "libsspnet_trt_plugins.so"
PLUGIN_LIBRARY_ENV = "SSPNET_TRT_PLUGINS"


# ---- imports ------------------------------------------------------------------------------------


def import_tensorrt():
    """NVIDIA's `tensorrt` module, or MissingDependencyError (an ImportError) saying how to get it."""
    advice = (
        "the TensorRT backend needs the `tensorrt` Python package (JetPack: apt install "
        "python3-libnvinfer; x86: pip install tensorrt); on machines without TensorRT run the "
        ".onnx model with ONNX Runtime"
    )
    try:
        import tensorrt
    except ImportError as error:
        raise MissingDependencyError(advice) from error
    if getattr(tensorrt, "__file__", None) is None or not hasattr(tensorrt, "Builder"):
        # A plain folder named `tensorrt` on sys.path (e.g. a tests/tensorrt folder; ours is
        # tests/trt_plugins for this reason) imports as an empty namespace package.
        raise MissingDependencyError(
            f"{advice} (`import tensorrt` found only the folder(s) {list(getattr(tensorrt, '__path__', []))})"
        )
    return tensorrt


def import_cudart():
    """cuda-python's runtime module: `cuda.bindings.runtime` (cuda-python >= 12.6), else `cuda.cudart`."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as error:
            raise MissingDependencyError(
                "the TensorRT backend needs NVIDIA's cuda-python (pip install 'cuda-python>=12.2')"
            ) from error
    return cudart


# ---- CUDA ---------------------------------------------------------------------------------------


def cuda_call(result, what: str):
    """cuda-python calls return (error, *values): raise RuntimeError naming `what` unless cudaSuccess,
    else return the value(s)."""
    cudart = import_cudart()
    error, *values = result if isinstance(result, tuple) else (result,)
    if error != cudart.cudaError_t.cudaSuccess:
        description = cudart.cudaGetErrorString(error)[1]
        description = description.decode() if isinstance(description, bytes) else str(description)
        raise RuntimeError(f"CUDA error in {what}: {getattr(error, 'name', error)} ({description})")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def gpu_facts(device: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability "major.minor") of a CUDA device."""
    cudart = import_cudart()
    props = cuda_call(cudart.cudaGetDeviceProperties(device), f"cudaGetDeviceProperties({device})")
    name = props.name
    name = name.split(b"\0", 1)[0].decode() if isinstance(name, bytes) else str(name)
    return name, f"{props.major}.{props.minor}"


# ---- the plugin library -------------------------------------------------------------------------

_loaded_libraries: dict[Path, ctypes.CDLL] = {}


def plugin_library_candidates() -> list[Path]:
    """Where the plugin library is looked for, in order: $SSPNET_TRT_PLUGINS, the installed package
    (sspnet/lib/, where setup.py puts it), a source checkout's build/tensorrt/ (plain cmake)."""
    import sspnet

    package = Path(sspnet.__file__).resolve().parent
    candidates = [
        package / "lib" / PLUGIN_LIBRARY_NAME,
        package.parent / "build" / "tensorrt" / PLUGIN_LIBRARY_NAME,
    ]
    if os.environ.get(PLUGIN_LIBRARY_ENV):
        candidates.insert(0, Path(os.environ[PLUGIN_LIBRARY_ENV]))
    return candidates


def find_plugin_library(path: str | Path | None = None) -> Path:
    """The plugin library file: `path` if given (it must exist), else the first existing candidate.
    FileNotFoundError (one line, with a filename) otherwise."""
    if path is None and os.environ.get(PLUGIN_LIBRARY_ENV):
        path = os.environ[PLUGIN_LIBRARY_ENV]
        where = f"${PLUGIN_LIBRARY_ENV}"
    else:
        where = "plugin_library"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(errno.ENOENT, f"TensorRT plugin library ({where}) does not exist", str(path))
        return path
    candidates = plugin_library_candidates()
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        errno.ENOENT,
        f"the sspnet TensorRT plugin library was not found (looked at: {looked}); "
        "build it on this device (csrc/tensorrt/README.md): cmake -S csrc/tensorrt -B build/tensorrt "
        "[-DTENSORRT_ROOT=...] && cmake --build build/tensorrt, or reinstall sspnet where TensorRT is "
        f"installed, or set {PLUGIN_LIBRARY_ENV}=/path/to/{PLUGIN_LIBRARY_NAME}",
        PLUGIN_LIBRARY_NAME,
    )


def load_plugin_library(path: str | Path | None = None) -> Path:
    """Load the plugin library once per process with a plain dlopen (ctypes): its load-time
    registration registers both creators (csrc/tensorrt/common/pluginLibrary.cpp, path 1).

    tensorrt is imported first so libnvinfer comes from the same place as the Python bindings and
    the plugins land in the registry those bindings use. The library also exports the entry points
    of trt.get_plugin_registry().load_library (path 2), but that path depends on getCreators() taking
    the load-time registration over inside TensorRT's loader, which has never been run; the plain
    dlopen is the long-established path, and the one the printed trtexec line (--staticPlugins) uses.
    """
    import_tensorrt()
    library = find_plugin_library(path).resolve()
    if library not in _loaded_libraries:
        try:
            _loaded_libraries[library] = ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
        except OSError as error:
            raise RuntimeError(f"cannot load the TensorRT plugin library {library}: {error}") from error
    return library


def registered_plugin_versions(trt=None) -> dict[str, list[str]]:
    """{sspnet plugin name: versions registered under the sspnet namespace} from TensorRT's registry."""
    trt = trt or import_tensorrt()
    registry = trt.get_plugin_registry()
    namespace = plugin_namespace()
    found: dict[str, set[str]] = {}
    lookup = getattr(registry, "get_creator", None) or registry.get_plugin_creator
    for name, version in expected_plugin_versions().items():
        if lookup(name, version, namespace) is not None:  # the lookup the ONNX parser makes
            found.setdefault(name, set()).add(version)
    # Other versions, only to say what is there when the expected one is missing.
    creators = getattr(registry, "all_creators", None) or getattr(registry, "plugin_creator_list", [])
    for creator in creators:
        name = getattr(creator, "name", None)
        if name in expected_plugin_versions() and getattr(creator, "plugin_namespace", "") == namespace:
            found.setdefault(name, set()).add(str(getattr(creator, "plugin_version", "?")))
    return {name: sorted(versions) for name, versions in found.items()}
