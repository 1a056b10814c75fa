"""ONNX Runtime backend: runs an exported .onnx model on CPU (default), CUDA or TensorRT providers.

    backend = OnnxRuntimeBackend("model.onnx", providers=["cuda"], intra_op_num_threads=4)
    outputs = backend.infer(images_uint8_nchw)   # {"num_dets", "boxes", "scores", "labels"}

Reads the model facts from the ONNX metadata_props (no `onnx` package needed: ONNX Runtime
exposes them) and checks the graph's input / outputs against the contract at load time, so a
wrong file fails on load with a message rather than mid-inference.

Next to a busy neighbour (CPU provider, default thread count): ONNX Runtime cannot change the
intra-op thread count of a live session, so the backend keeps one session per thread count it
needs: the all-cores one, and a one-thread one built beside it in the background at load time;
each call runs on the session whose count runtime/threads.py's ThreadGovernor picks from the
load other processes put on the machine (the same estimate the torch backend uses). A count in
between (machines with more than two cores) gets its session built in the background the first
time it is asked for; until then calls run on the all-cores one. Off: SSPNET_ADAPTIVE_THREADS=0,
a fixed `intra_op_num_threads` (predict --threads N), or a GPU provider. The price is the memory
of the extra sessions (each holds its own copy of the weights; measured by
benchmarks/bench_neighbours.py, "onnxruntime_sessions" in its JSON).
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sspnet.errors import InputError, MissingDependencyError, UsageError

from .backend import Backend, ModelMetadata
from .contract import INPUT_NAME, OUTPUT_NAMES
from .threads import configure_onnxruntime_session, onnxruntime_thread_governor

# Short names accepted in `providers=`; full ONNX Runtime names work too.
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
OUTPUT_TYPES = {
    "num_dets": "tensor(int32)",
    "boxes": "tensor(float)",
    "scores": "tensor(float)",
    "labels": "tensor(int32)",
}


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as error:
        raise MissingDependencyError(
            "the ONNX Runtime backend needs the `onnxruntime` package "
            "(pip install 'sspnet[runtime]', or onnxruntime-gpu for CUDA)"
        ) from error
    return onnxruntime


def resolve_providers(
    providers: Sequence[str | tuple[str, dict]] | None, available: Sequence[str]
) -> list[str | tuple[str, dict]]:
    """Turn user provider names ("cpu", "cuda", "tensorrt" or full names, optionally as
    (name, options) pairs) into ONNX Runtime's list, CPU last as the fallback for unsupported nodes.

    Raises ValueError naming an unknown or unavailable provider and listing the available ones.
    """
    if providers is None:
        providers = ["cpu"]
    if isinstance(providers, str):
        providers = [providers]
    resolved = []
    for entry in providers:
        name, options = entry if isinstance(entry, tuple) else (entry, None)
        if not isinstance(name, str):
            raise TypeError(f"providers: each entry must be a name or (name, options), got {entry!r}")
        full_name = PROVIDER_ALIASES.get(name.lower(), name)
        if full_name not in available:
            raise UsageError(
                f"providers: execution provider {name!r} is not available in this onnxruntime "
                f"install; available: {list(available)} (CUDA / TensorRT need onnxruntime-gpu)"
            )
        resolved.append((full_name, options) if options else full_name)
    names = [entry[0] if isinstance(entry, tuple) else entry for entry in resolved]
    if "CPUExecutionProvider" not in names:
        resolved.append("CPUExecutionProvider")
    return resolved


class OnnxRuntimeBackend(Backend):
    """An exported sspnet .onnx model in an onnxruntime.InferenceSession.

    providers: e.g. ["cpu"] (default), ["cuda"], ["tensorrt", "cuda"], or (name, options) pairs.
    intra_op_num_threads: threads inside one op; None lets ONNX Runtime decide (all cores) and
        adapts the count to other processes' load (module docstring); a number fixes it.
    adaptive_threads: None follows SSPNET_ADAPTIVE_THREADS (default on); False turns adapting off.
    """

    name = "onnxruntime"

    def __init__(
        self,
        path: str | Path,
        providers: Sequence[str | tuple[str, dict]] | None = None,
        intra_op_num_threads: int | None = None,
        adaptive_threads: bool | None = None,
    ):
        ort = _import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(errno.ENOENT, "model file does not exist", str(self.path))
        if intra_op_num_threads is not None and (not isinstance(intra_op_num_threads, int) or intra_op_num_threads < 0):
            raise UsageError(
                f"intra_op_num_threads must be a non-negative int (0 = ONNX Runtime's default), "
                f"got {intra_op_num_threads!r}"
            )
        requested = resolve_providers(providers, ort.get_available_providers())
        self._ort, self._requested = ort, requested
        try:
            self.session = self._new_session(intra_op_num_threads)
        except Exception as error:  # ONNX Runtime raises its own exception types for bad files
            hint = ""
            if "No Op registered" in str(error):
                hint = " (a `tensorrt`-flavour export has plugin nodes: run the `portable` one here)"
            raise InputError(
                f"onnxruntime backend: cannot load {str(self.path)!r} as an ONNX model: {error}{hint}"
            ) from error
        self._check_providers_active(requested)

        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = ModelMetadata.from_props(props, source=str(self.path))
        self._fixed_batch, self._fixed_hw = self._check_graph()

        # adaptive thread count: {threads: session}, the all-cores session under the governor's maximum
        self.thread_governor = onnxruntime_thread_governor(self.providers, intra_op_num_threads, adaptive_threads)
        self.sessions: dict[int, object] = {}
        self._building: set[int] = set()
        if self.thread_governor is not None:
            self.sessions[self.thread_governor.max_threads] = self.session
            self._build_in_background(1)

    def _new_session(self, threads: int | None):
        """An InferenceSession of this model with sspnet's settings and `threads` intra-op threads
        (None / 0: ONNX Runtime's default, one per core)."""
        options = self._ort.SessionOptions()
        configure_onnxruntime_session(options)  # no spin-waiting: holds up on a busy CPU (runtime/threads.py)
        if threads:
            options.intra_op_num_threads = threads
        return self._ort.InferenceSession(str(self.path), options, providers=self._requested)

    def _build_in_background(self, threads: int) -> None:
        """Build (and run once, so its first real call is not slow) the session with `threads`
        threads on a background thread; calls keep using the all-cores session until it is ready."""
        if threads in self.sessions or threads in self._building:
            return
        self._building.add(threads)

        def build():
            session = self._new_session(threads)
            batch = self.fixed_batch or 1
            height, width = self.metadata.input_size
            session.run(None, {INPUT_NAME: np.zeros((batch, 3, height, width), np.uint8)})
            self.sessions[threads] = session

        threading.Thread(target=build, name=f"sspnet-ort-{threads}-thread-session", daemon=True).start()

    def session_for_call(self):
        """The session the next call runs on: the one with the governor's thread count when it is
        built (building it if needed), else the all-cores one."""
        if self.thread_governor is None:
            return self.session
        threads = self.thread_governor.before_call()
        session = self.sessions.get(threads)
        if session is None:
            self._build_in_background(threads)
            return self.session
        return session

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually uses, in priority order."""
        return self.session.get_providers()

    @property
    def fixed_batch(self) -> int | None:
        return self._fixed_batch

    @property
    def fixed_hw(self) -> tuple[int, int] | None:
        return self._fixed_hw

    def _run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session_for_call().run(list(OUTPUT_NAMES), {INPUT_NAME: images})
        return dict(zip(OUTPUT_NAMES, values))

    def _check_providers_active(self, requested) -> None:
        # ONNX Runtime silently falls back to CPU when e.g. the CUDA libraries fail to load.
        active = self.session.get_providers()
        for entry in requested:
            name = entry[0] if isinstance(entry, tuple) else entry
            if name not in active:
                raise MissingDependencyError(
                    f"onnxruntime backend: provider {name} was requested but the session only "
                    f"activated {active} (check the CUDA / cuDNN / TensorRT libraries and the log above)"
                )

    def _check_graph(self) -> tuple[int | None, tuple[int, int] | None]:
        """Check input/outputs against the contract; return (fixed batch, fixed (H, W))."""
        where = str(self.path)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            raise InputError(
                f"{where}: the contract has one input {INPUT_NAME!r}, the model has {[i.name for i in inputs]}"
            )
        image_input = inputs[0]
        if image_input.type != "tensor(uint8)":
            raise InputError(f"{where}: input {INPUT_NAME!r} must be uint8, the model declares {image_input.type}")
        shape = image_input.shape
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise InputError(f"{where}: input {INPUT_NAME!r} must be [N, 3, H, W], the model declares {shape}")

        outputs = {o.name: o for o in self.session.get_outputs()}
        missing = [name for name in OUTPUT_NAMES if name not in outputs]
        if missing:
            raise InputError(f"{where}: the contract's output(s) {missing} are missing; the model has {list(outputs)}")
        for name, expected in OUTPUT_TYPES.items():
            if outputs[name].type != expected:
                raise InputError(
                    f"{where}: output {name!r} must be {expected}, the model declares {outputs[name].type}"
                )

        fixed_batch = shape[0] if isinstance(shape[0], int) else None
        if fixed_batch != self.metadata.batch:
            raise InputError(
                f"{where}: metadata says batch={self.metadata.batch or 'dynamic'} but the graph "
                f"input declares N = {shape[0]}"
            )
        height, width = shape[2], shape[3]
        if isinstance(height, int) and isinstance(width, int):
            if (height, width) != self.metadata.input_size:
                raise InputError(
                    f"{where}: metadata input_size {list(self.metadata.input_size)} disagrees with "
                    f"the graph input's H, W = {[height, width]}"
                )
            return fixed_batch, (height, width)
        return fixed_batch, None
