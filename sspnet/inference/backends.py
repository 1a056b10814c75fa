"""One function to open any model file as a runtime Backend, with the backend chosen from the
file type unless named:

    .safetensors / .pth / .pt  -> torch        (sspnet.inference.torch_backend; imports torch)
    .onnx                      -> onnxruntime  (sspnet.runtime.onnxruntime_backend)
    .engine / .plan            -> tensorrt     (sspnet.runtime.tensorrt_backend; needs TensorRT)

torch is imported only for the torch backend, so ONNX Runtime / TensorRT use works without it.
"""

from __future__ import annotations

import errno
from pathlib import Path

from sspnet.errors import UsageError
from sspnet.runtime.backend import ONNX_SUFFIXES, TENSORRT_SUFFIXES

BACKENDS = ("torch", "onnxruntime", "tensorrt")
TORCH_SUFFIXES = (".safetensors", ".pth", ".pt")


def backend_for_path(path: str | Path) -> str:
    """The default backend of a model file, from its suffix; UsageError for an unknown suffix."""
    suffix = Path(path).suffix.lower()
    if suffix in TORCH_SUFFIXES:
        return "torch"
    if suffix in ONNX_SUFFIXES:
        return "onnxruntime"
    if suffix in TENSORRT_SUFFIXES:
        return "tensorrt"
    raise UsageError(
        f"cannot tell the backend of model file {str(path)!r} from its suffix {suffix!r}; expected "
        f"{list(TORCH_SUFFIXES)} (torch), {list(ONNX_SUFFIXES)} (onnxruntime) or "
        f"{list(TENSORRT_SUFFIXES)} (tensorrt), or name it with --backend"
    )


def check_backend_for_file(path: str | Path, backend: str) -> None:
    """A backend can only run the file types it reads (e.g. onnxruntime needs a .onnx file)."""
    if backend not in BACKENDS:
        raise UsageError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    native = backend_for_path(path)
    if native != backend:
        raise UsageError(
            f"backend {backend!r} cannot run {Path(path).name!r}, a {native} model file "
            f"(export a checkpoint with `sspnet export`, build an engine with `sspnet build-engine`)"
        )


def open_backend(
    path: str | Path,
    backend: str | None = None,
    *,
    input_size: tuple[int, int] | None = None,
    device: str | None = None,
    precision: str = "fp32",
    cuda_graph: bool = False,
    record_attention: bool = False,
    providers=None,
    threads: int | None = None,
):
    """Open `path` with `backend` (default: from the suffix) and return a runtime Backend.

    input_size (H, W): the torch model's input (tile) size (default 512 x 640); an exported file
    has its own, and a different input_size is an error. device / precision / record_attention:
    torch only. cuda_graph: torch and tensorrt. providers: onnxruntime only. threads: CPU intra-op
    threads (onnxruntime: the session's; torch: torch.set_num_threads, and a fixed count turns its
    adaptive thread count off).
    """
    path = Path(path)
    backend = backend or backend_for_path(path)
    check_backend_for_file(path, backend)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "model file does not exist", str(path))
    if backend == "torch":
        import torch

        from sspnet.inference.torch_backend import DEFAULT_INPUT_SIZE, TorchBackend

        if threads:
            torch.set_num_threads(threads)

        return TorchBackend.from_checkpoint(
            path, input_size=tuple(input_size or DEFAULT_INPUT_SIZE), device=device, precision=precision,
            cuda_graph=cuda_graph, record_attention=record_attention,
            adaptive_threads=False if threads else None,  # 0 / None: the default count, adapted
        )
    if record_attention:
        raise UsageError(f"attention maps need the torch backend (a checkpoint), not {backend}")
    if precision != "fp32" and backend == "onnxruntime":
        raise UsageError("onnxruntime runs the precision the .onnx file was exported with; drop --precision")
    if backend == "onnxruntime":
        from sspnet.runtime.onnxruntime_backend import OnnxRuntimeBackend

        opened = OnnxRuntimeBackend(path, providers=providers, intra_op_num_threads=threads)
    else:
        from sspnet.runtime.backend import load_backend

        opened = load_backend(path, cuda_graph=cuda_graph)
    if input_size is not None and tuple(input_size) != tuple(opened.input_size):
        raise UsageError(
            f"{path.name} was exported for input H, W = {tuple(opened.input_size)}, not {tuple(input_size)}; "
            "frames of any size are tiled into that size, or re-export with `sspnet export --imgsz H W`"
        )
    return opened


__all__ = ["BACKENDS", "TORCH_SUFFIXES", "backend_for_path", "check_backend_for_file", "open_backend"]
