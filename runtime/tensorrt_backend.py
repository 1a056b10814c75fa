"""TensorRT backend: runs an sspnet .engine built by `sspnet build-engine` (runtime/engine_builder.py).

    backend = TensorRTBackend("model_fp16.engine", cuda_graph=True)   # or load_backend("model_fp16.engine")
    outputs = backend.infer(images_uint8_nchw)       # {"num_dets", "boxes", "scores", "labels"}
    Detector(backend).detect(frame)                  # tiling etc. as for ONNX Runtime (runtime/detector.py)

Loading: import tensorrt, load libsspnet_trt_plugins.so (runtime/tensorrt_common.py, shared with the
engine builder), read the engine's JSON sidecar (runtime/sidecar.py) for the model facts, refuse an engine built for
another TensorRT version / GPU / plugin version, deserialize, and check the engine's I/O against
the ONNX contract.

Running: every shape is fixed (batch = `batch`, default the profile's largest; H, W = the export
size), so all buffers are allocated once: device buffers plus pinned host buffers, one CUDA stream.
One call = async copy-in, execute_async_v3, async copy-out, one synchronize. With cuda_graph=True
that whole sequence is captured once into a CUDA graph and replayed.

CUDA goes through NVIDIA's cuda-python (`cuda.bindings.runtime`); no torch. `tensorrt` and `cuda`
are imported inside functions, so this module imports on machines that have neither.
"""

from __future__ import annotations

import ctypes
import errno
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sspnet.errors import InputError, UsageError

from .backend import Backend, ModelMetadata
from .contract import INPUT_NAME, OUTPUT_NAMES
from .sidecar import check_compatible, read_sidecar, sha256_of, sidecar_path
from .tensorrt_common import (
    cuda_call,
    gpu_facts,
    import_cudart,
    import_tensorrt,
    load_plugin_library,
    registered_plugin_versions,
)

# dtype of every contract tensor
CONTRACT_DTYPES = {
    INPUT_NAME: np.dtype(np.uint8),
    "num_dets": np.dtype(np.int32),
    "boxes": np.dtype(np.float32),
    "scores": np.dtype(np.float32),
    "labels": np.dtype(np.int32),
}


# ---- CUDA ---------------------------------------------------------------------------------------


class DeviceBuffer:
    """`nbytes` of device memory (cudaMalloc); `ptr` is the address as an int."""

    def __init__(self, nbytes: int):
        self.nbytes = int(nbytes)
        self.ptr = int(cuda_call(import_cudart().cudaMalloc(max(self.nbytes, 1)), f"cudaMalloc({self.nbytes})"))

    def copy_from_host(self, array: np.ndarray) -> None:
        """Synchronous host -> device copy (used by the calibrator, not on the inference path)."""
        cudart = import_cudart()
        if array.nbytes != self.nbytes:
            raise ValueError(f"copy of {array.nbytes} bytes into a device buffer of {self.nbytes}")
        cuda_call(
            cudart.cudaMemcpy(self.ptr, array.ctypes.data, self.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice),
            "cudaMemcpy",
        )

    def copy_to_host(self, array: np.ndarray) -> np.ndarray:
        """Synchronous device -> host copy into a C-contiguous `array` of the same size."""
        cudart = import_cudart()
        if array.nbytes != self.nbytes or not array.flags.c_contiguous:
            raise ValueError(f"copy of a device buffer of {self.nbytes} bytes into {array.nbytes} (contiguous) bytes")
        cuda_call(
            cudart.cudaMemcpy(array.ctypes.data, self.ptr, self.nbytes, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost),
            "cudaMemcpy",
        )
        return array

    def free(self) -> None:
        if self.ptr:
            cuda_call(import_cudart().cudaFree(self.ptr), "cudaFree")
            self.ptr = 0


class PinnedBuffer:
    """A page-locked host array (cudaMallocHost) of `shape` / `dtype`, so async copies are truly async."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype):
        self.nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        self.ptr = int(cuda_call(import_cudart().cudaMallocHost(max(self.nbytes, 1)), f"cudaMallocHost({self.nbytes})"))
        raw = (ctypes.c_uint8 * max(self.nbytes, 1)).from_address(self.ptr)
        self.array = np.frombuffer(raw, dtype=np.uint8, count=self.nbytes).view(dtype).reshape(shape)

    def free(self) -> None:
        if self.ptr:
            self.array = None
            cuda_call(import_cudart().cudaFreeHost(self.ptr), "cudaFreeHost")
            self.ptr = 0


# ---- buffer planning (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class BufferSpec:
    """One engine I/O tensor: name, shape, dtype, direction."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    is_input: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def plan_io_buffers(batch: int, input_size: tuple[int, int], max_detections: int) -> list[BufferSpec]:
    """The contract's tensors for a batch: images uint8 [B, 3, H, W], num_dets int32 [B, 1],
    boxes float32 [B, K, 4], scores float32 [B, K], labels int32 [B, K]."""
    for name, value in (
        ("batch", batch),
        ("input H", input_size[0]),
        ("input W", input_size[1]),
        ("max_detections", max_detections),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"plan_io_buffers: {name} must be a positive integer, got {value!r}")
    height, width = int(input_size[0]), int(input_size[1])
    batch, k = int(batch), int(max_detections)
    shapes = {
        INPUT_NAME: (batch, 3, height, width),
        "num_dets": (batch, 1),
        "boxes": (batch, k, 4),
        "scores": (batch, k),
        "labels": (batch, k),
    }
    return [
        BufferSpec(name, shapes[name], CONTRACT_DTYPES[name], name == INPUT_NAME)
        for name in (INPUT_NAME, *OUTPUT_NAMES)
    ]


def check_engine_io(
    plan: list[BufferSpec], engine_io: dict[str, tuple[bool, np.dtype, tuple[int, ...]]], where: str
) -> None:
    """Compare planned buffers with an engine's tensors {name: (is_input, dtype, shape)}; raise
    ValueError listing every difference (names, direction, dtype, shape)."""
    problems = []
    planned = {spec.name: spec for spec in plan}
    for name in sorted(set(engine_io) - set(planned)):
        if engine_io[name][0]:
            problems.append(f"extra input {name!r} (the contract has one input, {INPUT_NAME!r})")
    for spec in plan:
        if spec.name not in engine_io:
            problems.append(f"missing {'input' if spec.is_input else 'output'} {spec.name!r}")
            continue
        is_input, dtype, shape = engine_io[spec.name]
        if is_input != spec.is_input:
            problems.append(f"{spec.name!r} is an {'input' if is_input else 'output'}, the contract says otherwise")
        if np.dtype(dtype) != spec.dtype:
            problems.append(f"{spec.name!r} is {np.dtype(dtype)}, the contract says {spec.dtype}")
        if tuple(shape) != spec.shape:
            problems.append(f"{spec.name!r} has shape {tuple(shape)}, expected {spec.shape}")
    if problems:
        raise InputError(f"{where}: the engine does not follow the sspnet contract: " + "; ".join(problems))


def choose_run_batch(profile_min: int, profile_max: int, requested: int | None) -> int:
    """The batch every inference uses: `requested` (within the engine's profile) or the profile max."""
    if requested is None:
        return int(profile_max)
    if isinstance(requested, bool) or not isinstance(requested, int) or not profile_min <= requested <= profile_max:
        raise UsageError(
            f"batch must be an integer in the engine's range [{profile_min}, {profile_max}], got {requested!r}"
        )
    return requested


# ---- the backend --------------------------------------------------------------------------------


class TensorRTBackend(Backend):
    """An sspnet TensorRT engine with all buffers allocated once.

    Args:
        path: the .engine / .plan file; its sidecar `<path>.json` must sit next to it.
        plugin_library: libsspnet_trt_plugins.so (default: see plugin_library_candidates).
        batch: images per execution (default: the largest batch of the engine's profile).
        cuda_graph: capture copy-in + execute + copy-out once into a CUDA graph and replay it.
        device: CUDA device index.
        check_versions: refuse an engine whose sidecar names another TensorRT / GPU / plugin version.
    Not thread-safe: one backend per thread.
    """

    name = "tensorrt"

    def __init__(
        self,
        path: str | Path,
        plugin_library: str | Path | None = None,
        batch: int | None = None,
        cuda_graph: bool = False,
        device: int = 0,
        check_versions: bool = True,
    ):
        self._buffers: dict[str, tuple[DeviceBuffer, PinnedBuffer]] = {}
        self._stream = None
        self._graph_exec = None
        trt = import_tensorrt()
        cudart = import_cudart()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(errno.ENOENT, "TensorRT engine file does not exist", str(self.path))
        sidecar = read_sidecar(self.path)
        self.sidecar = sidecar
        self.metadata = ModelMetadata.from_props(sidecar["metadata"], source=str(sidecar_path(self.path)))

        cuda_call(cudart.cudaSetDevice(device), f"cudaSetDevice({device})")
        self.plugin_library = load_plugin_library(plugin_library)
        gpu_name, capability = gpu_facts(device)
        errors, notes = check_compatible(
            sidecar,
            tensorrt_version=trt.__version__,
            compute_capability=capability,
            gpu_name=gpu_name,
            plugin_versions=registered_plugin_versions(trt),
            engine_sha256=sha256_of(self.path),
        )
        for note in notes:
            warnings.warn(f"{self.path.name}: {note}", stacklevel=2)
        if errors and check_versions:
            raise InputError("refusing to load this engine: " + "; ".join(errors), path=self.path)

        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise RuntimeError(f"{self.path}: TensorRT could not deserialize the engine (see the TensorRT log above)")
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise RuntimeError(f"{self.path}: TensorRT could not create an execution context (out of GPU memory?)")

        self._batch = self._choose_batch(batch)
        height, width = self.metadata.input_size
        if not self._context.set_input_shape(INPUT_NAME, (self._batch, 3, height, width)):
            raise RuntimeError(f"{self.path}: the engine rejects input shape {(self._batch, 3, height, width)}")
        plan = plan_io_buffers(self._batch, self.metadata.input_size, self.metadata.max_detections)
        check_engine_io(plan, self._engine_io(trt), str(self.path))

        self._stream = cuda_call(
            cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking), "cudaStreamCreateWithFlags"
        )
        for spec in plan:
            device_buffer, host_buffer = DeviceBuffer(spec.nbytes), PinnedBuffer(spec.shape, spec.dtype)
            self._buffers[spec.name] = (device_buffer, host_buffer)
            if not self._context.set_tensor_address(spec.name, device_buffer.ptr):
                raise RuntimeError(f"{self.path}: set_tensor_address({spec.name!r}) failed")
        self.uses_cuda_graph = False
        if cuda_graph:
            self._capture_graph()

    # -- Backend interface --

    @property
    def fixed_batch(self) -> int:
        return self._batch

    @property
    def fixed_hw(self) -> tuple[int, int]:
        return self.metadata.input_size

    def _run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        cudart = import_cudart()
        np.copyto(self._buffers[INPUT_NAME][1].array, images)
        if self._graph_exec is not None:
            cuda_call(cudart.cudaGraphLaunch(self._graph_exec, self._stream), "cudaGraphLaunch")
        else:
            self._enqueue()
        cuda_call(cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        return {name: self._buffers[name][1].array.copy() for name in OUTPUT_NAMES}

    # -- internals --

    def _choose_batch(self, requested: int | None) -> int:
        engine_batch = self._engine.get_tensor_shape(INPUT_NAME)[0]
        if engine_batch >= 1:  # an engine built from a fixed-batch ONNX
            return choose_run_batch(engine_batch, engine_batch, requested)
        smallest, _, largest = self._engine.get_tensor_profile_shape(INPUT_NAME, 0)
        return choose_run_batch(int(smallest[0]), int(largest[0]), requested)

    def _engine_io(self, trt) -> dict[str, tuple[bool, np.dtype, tuple[int, ...]]]:
        io = {}
        for index in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(index)
            is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
            io[name] = (is_input, dtype, tuple(self._context.get_tensor_shape(name)))
        return io

    def _enqueue(self) -> None:
        """Copy-in, execute, copy-out, all queued on the stream (no synchronisation)."""
        cudart = import_cudart()
        device_images, host_images = self._buffers[INPUT_NAME]
        cuda_call(
            cudart.cudaMemcpyAsync(
                device_images.ptr,
                host_images.ptr,
                host_images.nbytes,
                cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
                self._stream,
            ),
            "cudaMemcpyAsync (images)",
        )
        if not self._context.execute_async_v3(int(self._stream)):
            raise RuntimeError(f"{self.path.name}: execute_async_v3 failed (see the TensorRT log above)")
        for name in OUTPUT_NAMES:
            device_buffer, host_buffer = self._buffers[name]
            cuda_call(
                cudart.cudaMemcpyAsync(
                    host_buffer.ptr,
                    device_buffer.ptr,
                    host_buffer.nbytes,
                    cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                    self._stream,
                ),
                f"cudaMemcpyAsync ({name})",
            )

    def _capture_graph(self) -> None:
        """Record _enqueue into a CUDA graph; on failure warn and keep the plain path."""
        cudart = import_cudart()
        # TensorRT finishes shape-dependent setup on the first enqueue; it must not happen in capture.
        self._enqueue()
        cuda_call(cudart.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")
        graph = None
        try:
            cuda_call(
                cudart.cudaStreamBeginCapture(
                    self._stream, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
                ),
                "cudaStreamBeginCapture",
            )
            try:
                self._enqueue()
            finally:  # always leave capture mode, even when the enqueue failed
                graph = cuda_call(cudart.cudaStreamEndCapture(self._stream), "cudaStreamEndCapture")
            self._graph_exec = cuda_call(cudart.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
            self.uses_cuda_graph = True
        except RuntimeError as error:
            warnings.warn(
                f"{self.path.name}: CUDA graph capture failed ({error}); running without a graph",
                stacklevel=3,
            )
        finally:
            if graph is not None:
                cudart.cudaGraphDestroy(graph)

    def close(self) -> None:
        """Free the graph, buffers and stream (also done when the backend is garbage-collected)."""
        if not self._buffers and self._stream is None:
            return
        cudart = import_cudart()
        if self._stream is not None:
            cudart.cudaStreamSynchronize(self._stream)
        if self._graph_exec is not None:
            cudart.cudaGraphExecDestroy(self._graph_exec)
            self._graph_exec = None
        for device_buffer, host_buffer in self._buffers.values():
            device_buffer.free()
            host_buffer.free()
        self._buffers = {}
        if self._stream is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: modules may already be gone
            pass
