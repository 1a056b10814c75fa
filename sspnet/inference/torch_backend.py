"""A PyTorch detector behind the runtime's Backend interface, so the runtime's Detector (tiling,
merging) and everything built on it (predict, benchmark) treat torch, ONNX Runtime and TensorRT
alike.

    backend = TorchBackend.from_checkpoint("runs/a/best.safetensors", input_size=(512, 640))
    detections = Detector(backend).detect(frame)

It lives here, not in runtime/, because runtime/ never imports torch.

The wrapped model must follow the contract in eval mode: model(uint8 [N, 3, H, W] RGB) -> dict
with num_dets int32 [N, 1], boxes float32 [N, K, 4], scores float32 [N, K], labels int32 [N, K]
(every sspnet detector does). Options:

- precision "fp16": the forward runs under CUDA autocast (float16); outputs are returned as float32.
- cuda_graph=True (CUDA only): the first call of each input shape warms up, captures the forward
  into a CUDA graph, and later calls of that shape only copy the input in and replay the graph.
  This works because the detector's outputs have fixed shapes (no data-dependent sizes).
- record_attention=True: a forward hook on the model's neck keeps the SSPNet attention maps
  (A0..A3) of the last `infer` / `infer_chunks` call (all tiles of the Detector's last frame),
  for the heat-map overlays (`last_attention`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import sspnet
from sspnet.errors import UsageError
from sspnet.runtime.backend import Backend, ModelMetadata
from sspnet.runtime.contract import OUTPUT_NAMES
from sspnet.runtime.threads import torch_thread_governor

PRECISIONS = ("fp32", "fp16")
DEFAULT_INPUT_SIZE = (512, 640)  # (H, W): the default export / tile size


def model_metadata(model: torch.nn.Module, input_size: tuple[int, int]) -> ModelMetadata:
    """The facts an export of `model` at `input_size` would carry (flavor "torch": not exported).

    The NMS entry is the model's own (soft-NMS stays soft in PyTorch)."""
    from sspnet.export.metadata import class_names

    config = model.config
    info = getattr(model, "checkpoint_info", None) or {}
    classes = tuple(info.get("classes") or class_names(config))
    return ModelMetadata(
        sspnet_version=sspnet.__version__,
        preset=str(config.name),
        variant=str(config.variant),
        classes=classes,
        input_size=(int(input_size[0]), int(input_size[1])),
        max_detections=int(config.max_detections),
        score_threshold=float(config.score_thr),
        nms={
            "method": config.nms_method,
            "iou_threshold": float(config.nms_iou_thr),
            "sigma": float(config.nms_sigma),
            "min_score": float(config.nms_min_score),
        },
        flavor="torch",
        batch=None,
    )


def _check_input_size(input_size) -> tuple[int, int]:
    if (
        not isinstance(input_size, (tuple, list))
        or len(input_size) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in input_size)
    ):
        raise UsageError(f"input_size must be (H, W), two positive integers, got {input_size!r}")
    return int(input_size[0]), int(input_size[1])


class TorchBackend(Backend):
    """A contract-following torch.nn.Module as a runtime Backend (see the module docstring).

    Args:
        model: the detector (put in eval mode and moved to `device` here).
        input_size: (H, W) of the model inputs, i.e. the tile size the Detector cuts frames into.
            sspnet detectors need multiples of 32.
        device: torch device (default: "cuda" when available, else "cpu").
        precision: "fp32" or "fp16" (CUDA only).
        cuda_graph: capture and replay CUDA graphs (CUDA only).
        record_attention: keep the neck's attention maps of the last call (SSPNet necks only).
        metadata: the model facts; default `model_metadata(model, input_size)` (needs model.config).
        path: the checkpoint file, if any (shown in reports).
        adaptive_threads: on a CPU, run each call on the cores other processes leave free
            (sspnet.runtime.threads.ThreadGovernor; at most torch.get_num_threads() at creation).
            None (default): on unless SSPNET_ADAPTIVE_THREADS=0. Pass False when the thread
            count was fixed on purpose.
    """

    name = "torch"

    def __init__(
        self,
        model: torch.nn.Module,
        input_size: tuple[int, int] = DEFAULT_INPUT_SIZE,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        cuda_graph: bool = False,
        record_attention: bool = False,
        metadata: ModelMetadata | None = None,
        path: str | Path | None = None,
        adaptive_threads: bool | None = None,
    ):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        input_size = _check_input_size(input_size)
        if metadata is None:
            if getattr(model, "config", None) is None:
                raise UsageError(f"{type(model).__name__} has no sspnet `config`: pass metadata= explicitly")
            if input_size[0] % 32 or input_size[1] % 32:
                raise UsageError(f"input_size (H, W) must be multiples of 32 for sspnet detectors, got {input_size}")
            metadata = model_metadata(model, input_size)
        elif tuple(metadata.input_size) != input_size:
            raise UsageError(f"metadata.input_size {metadata.input_size} != input_size {input_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if precision not in PRECISIONS:
            raise UsageError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        if precision == "fp16" and self.device.type != "cuda":
            raise UsageError("precision fp16 needs a CUDA device (CPU float16 kernels are slow or missing)")
        if cuda_graph and self.device.type != "cuda":
            raise UsageError("cuda_graph=True needs a CUDA device")
        if cuda_graph and record_attention:
            raise UsageError("record_attention needs eager mode: a replayed CUDA graph runs no hooks")
        self.model = model.eval().to(self.device)
        self.metadata = metadata
        self.path = Path(path) if path is not None else Path(f"<{metadata.preset}>")
        self.precision = precision
        self.cuda_graph = cuda_graph
        self._graphs: dict[tuple[int, ...], tuple] = {}  # input shape -> (graph, static in, static out)
        self._attention_chunks: list[list[np.ndarray]] = []
        self.record_attention = record_attention
        if record_attention:
            self._hook_attention()
        self.thread_governor = torch_thread_governor(torch, self.device.type, adaptive_threads)

    @classmethod
    def from_checkpoint(cls, path: str | Path, input_size: tuple[int, int] = DEFAULT_INPUT_SIZE, **options):
        """Load an sspnet .safetensors checkpoint (or an original SSPNet .pth) as a TorchBackend."""
        from sspnet.checkpoint import load_model

        return cls(load_model(path), input_size=input_size, path=path, **options)

    def _start_call(self) -> None:
        # one call (`infer`, or a Detector sending a frame's tiles in chunks): one set of attention maps
        self._attention_chunks = []

    # ---- the Backend interface -----------------------------------------------------------------
    @property
    def fixed_batch(self) -> int | None:
        return None

    @property
    def fixed_hw(self) -> tuple[int, int] | None:
        return None  # any multiple of 32; the Detector always sends input_size

    def _run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        if self.thread_governor is not None:
            self.thread_governor.before_call()
        batch = torch.from_numpy(images)
        with torch.no_grad():
            if self.cuda_graph:
                outputs = self._replay(batch)
            else:
                batch = batch.to(self.device, non_blocking=True)
                with torch.autocast("cuda", dtype=torch.float16, enabled=self.precision == "fp16"):
                    outputs = self.model(batch)
        missing = [name for name in OUTPUT_NAMES if name not in outputs]
        if missing:
            raise RuntimeError(
                f"{type(self.model).__name__} returned no {missing}; the contract needs {list(OUTPUT_NAMES)}"
            )
        return {
            name: outputs[name].detach().float().cpu().numpy()
            if name in ("boxes", "scores")
            else outputs[name].detach().cpu().numpy()
            for name in OUTPUT_NAMES
        }

    # ---- CUDA graphs ---------------------------------------------------------------------------
    def _replay(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Copy `batch` into the static input of this shape's graph (captured on first use), replay."""
        key = tuple(batch.shape)
        if key not in self._graphs:
            self._graphs[key] = self._capture(batch)
        graph, static_input, static_outputs = self._graphs[key]
        static_input.copy_(batch, non_blocking=True)
        graph.replay()
        return static_outputs

    def _capture(self, batch: torch.Tensor) -> tuple:
        static_input = batch.to(self.device).clone()
        autocast = dict(device_type="cuda", dtype=torch.float16, enabled=self.precision == "fp16")
        # Warm-up on a side stream (lazy initialisation, cuDNN autotuning) before capture, as
        # torch.cuda.graphs recommends.
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), torch.autocast(**autocast):
            for _ in range(3):
                self.model(static_input)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph), torch.autocast(**autocast):
                static_outputs = self.model(static_input)
        except Exception as error:  # capture fails on host syncs / data-dependent shapes
            raise RuntimeError(
                f"cannot capture {self.metadata.preset} into a CUDA graph for input {list(batch.shape)}: "
                f"{error} (run without cuda_graph)"
            ) from error
        return graph, static_input, static_outputs

    # ---- memory ---------------------------------------------------------------------------------
    def reset_peak_device_memory(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_device_memory_mb(self) -> float | None:
        """Peak CUDA memory allocated by torch since the last reset (None on CPU)."""
        if self.device.type != "cuda":
            return None
        return torch.cuda.max_memory_allocated(self.device) / 2**20

    # ---- attention maps ---------------------------------------------------------------------------
    def _hook_attention(self) -> None:
        neck = getattr(self.model, "neck", None)
        if neck is None:
            raise UsageError(f"record_attention: {type(self.model).__name__} has no `neck` module")

        def keep_attention(module, inputs, output):
            attention = output[1] if isinstance(output, tuple) and len(output) == 2 else ()
            self._attention_chunks.append([a.detach().float().cpu().numpy() for a in attention])

        neck.register_forward_hook(keep_attention)

    @property
    def last_attention(self) -> list[np.ndarray]:
        """Attention maps of the last `infer` / `infer_chunks` call: one float32 [N, 1, H_l, W_l] per level (A0..A3,
        strides 4, 8, 16, 32), values in [0, 1]. Raises when the model's neck makes none (plain FPN)."""
        if not self.record_attention:
            raise RuntimeError("attention maps are only kept with TorchBackend(record_attention=True)")
        chunks = [c for c in self._attention_chunks if c]
        if not chunks:
            raise UsageError(
                f"{self.metadata.preset}: the neck returned no attention maps (an FPN neck has none; "
                "SSPNet's SSFPN has A0..A3)"
            )
        levels = len(chunks[0])
        return [np.concatenate([chunk[level] for chunk in chunks]) for level in range(levels)]


def open_checkpoint(
    path: str | Path, input_size: tuple[int, int] | None = None, threads: int | None = None, **options
) -> TorchBackend:
    """What sspnet.runtime.load_backend calls for a checkpoint: threads > 0 fixes torch's CPU thread
    count (and turns the adaptive count off); 0 / None keeps the default count, adapted to the load."""
    if threads:
        torch.set_num_threads(threads)
    return TorchBackend.from_checkpoint(
        path, input_size=tuple(input_size or DEFAULT_INPUT_SIZE), adaptive_threads=False if threads else None, **options
    )


__all__ = ["TorchBackend", "model_metadata", "open_checkpoint", "PRECISIONS", "DEFAULT_INPUT_SIZE"]
