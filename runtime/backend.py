"""The runtime backend interface and `load_backend`. NumPy only, never torch.

A backend runs one exported model file that obeys the ONNX contract (runtime/contract.py):

    input   images    uint8   [N, 3, H, W] RGB
    outputs num_dets  int32   [N, 1]
            boxes     float32 [N, K, 4]  x1, y1, x2, y2 in input pixels
            scores    float32 [N, K]
            labels    int32   [N, K]      rows past num_dets are padding

Implementations (ONNX Runtime here, TensorRT in tensorrt_backend.py) only describe their graph
(`fixed_batch`, `fixed_hw`) and run one chunk (`_run`); input checks, splitting a batch into
chunks of a fixed-batch model and padding the last chunk live once, in `Backend.infer`.
"""

from __future__ import annotations

import errno
import importlib
import json
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sspnet.errors import InputError, MissingDependencyError, UsageError

from .contract import METADATA_KEYS, OUTPUT_NAMES

FLAVORS = ("portable", "tensorrt")


class MetadataError(InputError):
    """A model file's metadata is missing keys or holds values of the wrong type."""


class ContractError(InputError, RuntimeError):
    """A model returned outputs that break the ONNX contract (missing, wrong shape, bad counts)."""


@dataclass(frozen=True)
class ModelMetadata:
    """The model facts an exported file carries (ONNX metadata_props or an engine's JSON sidecar).

    input_size is (H, W), the export (tile) size; batch is None for a dynamic batch, else the
    fixed N every inference call must use.
    """

    sspnet_version: str
    preset: str
    variant: str
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    max_detections: int
    score_threshold: float
    nms: dict = field(hash=False)
    flavor: str
    batch: int | None

    @classmethod
    def from_props(cls, props: Mapping[str, object], source: str = "model") -> ModelMetadata:
        """Parse and validate metadata.

        props maps each key of contract.METADATA_KEYS to its value: a string as stored in ONNX
        metadata_props (JSON for lists / dicts / numbers), or an already-decoded value as in a
        JSON sidecar. Unknown extra keys are ignored. Raises MetadataError naming `source`, the key,
        and what was expected.
        """
        missing = [key for key in METADATA_KEYS if key not in props]
        if missing:
            raise MetadataError(
                f"{source}: missing sspnet metadata key(s) {missing}; an sspnet model carries "
                f"{list(METADATA_KEYS)} (was it exported with `sspnet export`?)"
            )
        parse = _FieldParser(props, source)
        return cls(
            sspnet_version=parse.string("sspnet_version"),
            preset=parse.string("preset"),
            variant=parse.string("variant"),
            classes=parse.classes("classes"),
            input_size=parse.input_size("input_size"),
            max_detections=parse.positive_int("max_detections"),
            score_threshold=parse.unit_float("score_threshold"),
            nms=parse.nms("nms"),
            flavor=parse.choice("flavor", FLAVORS),
            batch=parse.batch("batch"),
        )

    def to_props(self) -> dict[str, str]:
        """The metadata_props strings that `from_props` reads back (what an exporter writes)."""
        return {
            "sspnet_version": self.sspnet_version,
            "preset": self.preset,
            "variant": self.variant,
            "classes": json.dumps(list(self.classes)),
            "input_size": json.dumps(list(self.input_size)),
            "max_detections": str(self.max_detections),
            "score_threshold": repr(float(self.score_threshold)),
            "nms": json.dumps(self.nms, sort_keys=True),
            "flavor": self.flavor,
            "batch": "dynamic" if self.batch is None else str(self.batch),
        }


class _FieldParser:
    """Reads one metadata value at a time, decoding JSON strings, with errors naming the key."""

    def __init__(self, props: Mapping[str, object], source: str):
        self.props = props
        self.source = source

    def fail(self, key: str, expected: str) -> MetadataError:
        return MetadataError(f"{self.source}: metadata key {key!r} must be {expected}, got {self.props[key]!r}")

    def decoded(self, key: str) -> object:
        value = self.props[key]
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value  # a plain string such as "faster_rcnn"
        return value

    def string(self, key: str) -> str:
        value = self.props[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "a non-empty string")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.string(key)
        if value not in choices:
            raise self.fail(key, f"one of {list(choices)}")
        return value

    def classes(self, key: str) -> tuple[str, ...]:
        value = self.decoded(key)
        if not isinstance(value, list) or not value or not all(isinstance(name, str) and name for name in value):
            raise self.fail(key, 'a non-empty JSON list of class names, e.g. ["person"]')
        return tuple(value)

    def input_size(self, key: str) -> tuple[int, int]:
        value = self.decoded(key)
        if not (isinstance(value, list) and len(value) == 2 and all(_is_positive_int(v) for v in value)):
            raise self.fail(key, "a JSON list [H, W] of two positive integers")
        return int(value[0]), int(value[1])

    def positive_int(self, key: str) -> int:
        value = self.decoded(key)
        if not _is_positive_int(value):
            raise self.fail(key, "a positive integer")
        return int(value)

    def unit_float(self, key: str) -> float:
        value = self.decoded(key)
        if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
            raise self.fail(key, "a number in [0, 1]")
        return float(value)

    def nms(self, key: str) -> dict:
        value = self.decoded(key)
        if not isinstance(value, dict):
            raise self.fail(key, 'a JSON object such as {"method": "hard", "iou_threshold": 0.5}')
        method = value.get("method")
        if not isinstance(method, str) or not method:
            raise self.fail(key, 'a JSON object whose "method" is a non-empty string')
        iou = value.get("iou_threshold")
        if not _is_number(iou) or not 0.0 <= float(iou) <= 1.0:
            raise self.fail(key, 'a JSON object whose "iou_threshold" is a number in [0, 1]')
        for name in ("sigma", "min_score"):
            if name in value and not _is_number(value[name]):
                raise self.fail(key, f'a JSON object whose "{name}" (when present) is a number')
        return dict(value)

    def batch(self, key: str) -> int | None:
        value = self.decoded(key)
        if value == "dynamic":
            return None
        if not _is_positive_int(value):
            raise self.fail(key, '"dynamic" or a positive integer')
        return int(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class Backend(ABC):
    """One loaded model. `infer` takes a uint8 [N, 3, H, W] RGB batch and returns the four contract
    outputs as NumPy arrays: num_dets int32 [N, 1], boxes float32 [N, K, 4], scores float32 [N, K],
    labels int32 [N, K].

    Subclasses set `name`, `path`, `metadata` and implement `fixed_batch`, `fixed_hw` and `_run`.
    """

    name: str  # e.g. "onnxruntime", "tensorrt"
    path: Path
    metadata: ModelMetadata

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) the model was exported for: the tile size the Detector cuts frames into."""
        return self.metadata.input_size

    @property
    @abstractmethod
    def fixed_batch(self) -> int | None:
        """N every `_run` call must receive, or None when the batch dimension is dynamic."""

    @property
    @abstractmethod
    def fixed_hw(self) -> tuple[int, int] | None:
        """(H, W) every input must have, or None when the graph accepts any spatial size."""

    @abstractmethod
    def _run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Run one chunk: C-contiguous uint8 [n, 3, H, W] with n == fixed_batch when it is set."""

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """uint8 [N, 3, H, W] RGB -> {"num_dets", "boxes", "scores", "labels"} for all N images.

        A model with a fixed batch B runs ceil(N / B) chunks; the last one is zero-padded to B and
        the padding's outputs are dropped.
        """
        return self.infer_chunks([images])

    def infer_chunks(self, batches: Iterable[np.ndarray]) -> dict[str, np.ndarray]:
        """Run several batches as ONE call and concatenate their outputs in order.

        The Detector sends the tiles of a frame this way, a few at a time (a generator that cuts
        each chunk when it is asked for it), so that memory stays bounded whatever the frame size.
        A backend that keeps per-call state (the torch backend's attention maps) treats all the
        batches as one call.
        """
        pieces = []
        with self._call_lock:
            self._start_call()
            for batch in batches:
                pieces.append(self._infer_batch(batch))
                del batch  # let the generator drop this chunk before it cuts the next
        if not pieces:
            raise UsageError(f"{self.name} backend: infer_chunks got no batches")
        if len(pieces) == 1:
            return pieces[0]
        return {name: np.concatenate([p[name] for p in pieces]) for name in OUTPUT_NAMES}

    @property
    def _call_lock(self) -> threading.Lock:
        """Serialises calls: a backend has one device context and one set of buffers (and the torch
        backend per-call attention maps), so threads sharing it take turns. dict.setdefault is atomic,
        so two first calls racing still get the same lock."""
        return self.__dict__.setdefault("_lock", threading.Lock())

    def _start_call(self) -> None:  # noqa: B027 (a hook: most backends keep no per-call state)
        """Called under the lock at the start of each infer / infer_chunks call (per-call state)."""

    def _infer_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """One batch: checked, split into chunks of a fixed-batch model, the last chunk padded."""
        images = self.check_images(images)
        chunk = self.fixed_batch or len(images)
        pieces = []
        for start in range(0, len(images), chunk):
            part = images[start : start + chunk]
            real = len(part)
            if real < chunk:
                padding = np.zeros((chunk - real, *part.shape[1:]), dtype=np.uint8)
                part = np.concatenate([part, padding])
            outputs = self.check_outputs(self._run(np.ascontiguousarray(part)), chunk)
            pieces.append({name: value[:real] for name, value in outputs.items()})
        if len(pieces) == 1:
            return pieces[0]
        return {name: np.concatenate([p[name] for p in pieces]) for name in OUTPUT_NAMES}

    def check_images(self, images: object) -> np.ndarray:
        """Validate a batch against the contract and this model; UsageError (a ValueError) otherwise."""
        if not isinstance(images, np.ndarray):
            raise UsageError(f"{self.name} backend: images must be a numpy.ndarray, got {type(images).__name__}")
        if images.dtype != np.uint8:
            raise UsageError(f"{self.name} backend: images must be uint8 (the graph normalises), got {images.dtype}")
        if images.ndim != 4:
            raise UsageError(f"{self.name} backend: images must be [N, 3, H, W] (rank 4), got shape {images.shape}")
        if images.shape[1] != 3:
            raise UsageError(
                f"{self.name} backend: images must have 3 channels (RGB) in dim 1 of [N, 3, H, W], "
                f"got shape {images.shape} (an HWC frame? use preprocess.frames_to_batch)"
            )
        if images.shape[0] == 0:
            raise UsageError(f"{self.name} backend: images is an empty batch (N = 0)")
        height, width = images.shape[2:]
        if height == 0 or width == 0:
            raise UsageError(f"{self.name} backend: images has an empty spatial size {images.shape}")
        if self.fixed_hw is not None and (height, width) != tuple(self.fixed_hw):
            raise UsageError(
                f"{self.name} backend: {self.path.name} takes images of H, W = {tuple(self.fixed_hw)}, "
                f"got {(height, width)} (use runtime.detector.Detector to tile or pad frames)"
            )
        return images

    def check_outputs(self, outputs: Mapping[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
        """Check that a chunk's outputs obey the contract; a model that breaks it is a clear error."""
        missing = [name for name in OUTPUT_NAMES if name not in outputs]
        if missing:
            raise ContractError(f"{self.path.name}: the model returned no output(s) {missing}")
        num_dets, boxes, scores, labels = (np.asarray(outputs[name]) for name in OUTPUT_NAMES)
        k = boxes.shape[1] if boxes.ndim == 3 else -1
        expected = {
            "num_dets": (num_dets, (batch, 1)),
            "boxes": (boxes, (batch, k, 4)),
            "scores": (scores, (batch, k)),
            "labels": (labels, (batch, k)),
        }
        for name, (value, shape) in expected.items():
            if value.shape != shape:
                raise ContractError(
                    f"{self.path.name}: output {name!r} has shape {value.shape}, the contract "
                    f"says {shape} for a batch of {batch}"
                )
        if num_dets.size and (num_dets.min() < 0 or num_dets.max() > k):
            raise ContractError(
                f"{self.path.name}: output 'num_dets' must lie in [0, K={k}], got values in "
                f"[{num_dets.min()}, {num_dets.max()}]"
            )
        return {
            "num_dets": num_dets.astype(np.int32, copy=False),
            "boxes": boxes.astype(np.float32, copy=False),
            "scores": scores.astype(np.float32, copy=False),
            "labels": labels.astype(np.int32, copy=False),
        }

    def __repr__(self) -> str:
        batch = "dynamic" if self.fixed_batch is None else self.fixed_batch
        return (
            f"{type(self).__name__}({str(self.path)!r}, preset={self.metadata.preset!r}, "
            f"input_size={self.input_size}, batch={batch})"
        )


# The one suffix table: which backend reads which model file, and the options each backend takes
# (`input_size` and `threads` apply to all of them). Library and CLI open models through load_backend.
MODEL_SUFFIXES = {
    "torch": (".safetensors", ".pth", ".pt"),
    "onnxruntime": (".onnx",),
    "tensorrt": (".engine", ".plan"),
}
BACKENDS = tuple(MODEL_SUFFIXES)
BACKEND_OPTIONS = {
    "torch": ("device", "precision", "cuda_graph", "record_attention"),
    "onnxruntime": ("providers",),
    "tensorrt": ("cuda_graph", "plugin_library", "device", "batch", "check_versions"),
}
# The torch backend lives outside sspnet.runtime (which never imports torch) and is imported by name,
# only when a checkpoint is opened.
TORCH_BACKEND_MODULE = "sspnet.inference.torch_backend"


def backend_for_path(path: str | Path) -> str:
    """The backend that reads a model file, from its suffix; UsageError for an unknown suffix."""
    suffix = Path(path).suffix.lower()
    for backend, suffixes in MODEL_SUFFIXES.items():
        if suffix in suffixes:
            return backend
    known = ", ".join(f"{list(suffixes)} ({backend})" for backend, suffixes in MODEL_SUFFIXES.items())
    raise UsageError(
        f"cannot tell the backend of model file {str(path)!r} from its suffix {suffix!r}; expected {known}"
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


def load_backend(
    path: str | Path,
    backend: str | None = None,
    *,
    input_size: tuple[int, int] | None = None,
    threads: int | None = None,
    **options,
) -> Backend:
    """Open any sspnet model file as a Backend; `sspnet predict --model` opens files with this too.

    .safetensors / .pth / .pt -> torch        (sspnet.inference.torch_backend; needs torch)
    .onnx                     -> onnxruntime  (sspnet.runtime.onnxruntime_backend)
    .engine / .plan           -> tensorrt     (sspnet.runtime.tensorrt_backend; needs TensorRT)

    backend: the backend's name, default from the suffix (a backend that cannot read the file is a
    UsageError). input_size (H, W): a checkpoint's input (tile) size (default 512 x 640); an exported
    file has its own, and a different input_size is an error. threads: CPU intra-op threads (0 / None:
    the default count, which the torch backend adapts to other processes' load). options: the chosen
    backend's own (BACKEND_OPTIONS); an option left None takes the backend's default, and an option the
    backend does not take is a UsageError.
    """
    path = Path(path)
    backend = backend or backend_for_path(path)
    check_backend_for_file(path, backend)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 0):
        raise UsageError("threads must be an integer >= 0 (0: the default count)", got=repr(threads))
    options = {name: value for name, value in options.items() if value is not None}
    foreign = sorted(set(options) - set(BACKEND_OPTIONS[backend]))
    if foreign:
        takers = {name: [b for b, names in BACKEND_OPTIONS.items() if name in names] for name in foreign}
        raise UsageError(
            f"the {backend} backend ({path.name}) takes no option "
            + ", ".join(f"{name!r} ({'/'.join(takers[name]) or 'no backend'} only)" for name in foreign)
        )
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "model file does not exist", str(path))
    if backend == "torch":
        return _torch_backend_module().open_checkpoint(path, input_size=input_size, threads=threads, **options)
    if backend == "onnxruntime":
        from .onnxruntime_backend import OnnxRuntimeBackend

        opened = OnnxRuntimeBackend(path, intra_op_num_threads=threads or None, **options)
    else:
        if threads:
            raise UsageError("threads: a TensorRT engine runs on the GPU; drop the CPU thread count")
        opened = _tensorrt_backend_class()(path, **options)
    if input_size is not None and tuple(input_size) != tuple(opened.input_size):
        raise UsageError(
            f"{path.name} was exported for input H, W = {tuple(opened.input_size)}, not {tuple(input_size)}; "
            "frames of any size are tiled into that size, or re-export with `sspnet export --imgsz H W`"
        )
    return opened


def _tensorrt_backend_class():
    """Import the TensorRT backend lazily, turning what is missing into one clear error."""
    try:
        tensorrt_backend = importlib.import_module(f"{__package__}.tensorrt_backend")
    except ModuleNotFoundError as error:
        if error.name == f"{__package__}.tensorrt_backend":
            what = "this build has no sspnet.runtime.tensorrt_backend module"
        elif error.name == "tensorrt":
            what = "TensorRT is not installed (no `tensorrt` Python package)"
        else:
            what = f"its dependency {error.name!r} is not installed"
        raise MissingDependencyError(
            f"load_backend: .engine/.plan files need the TensorRT backend, but {what}; "
            f"use the .onnx model with ONNX Runtime instead"
        ) from error
    if not hasattr(tensorrt_backend, "TensorRTBackend"):
        raise MissingDependencyError(f"{tensorrt_backend.__name__} defines no TensorRTBackend class")
    return tensorrt_backend.TensorRTBackend


def _torch_backend_module():
    """Import the torch backend by name (runtime never imports torch itself), or say what is missing."""
    try:
        return importlib.import_module(TORCH_BACKEND_MODULE)
    except ModuleNotFoundError as error:
        if error.name not in ("torch", "torchvision", "sspnet.inference", TORCH_BACKEND_MODULE):
            raise
        raise MissingDependencyError(
            f"checkpoints ({', '.join(MODEL_SUFFIXES['torch'])}) need torch ({error.name} is not installed); "
            "on a device without torch, run the exported .onnx model or a TensorRT engine instead"
        ) from error


__all__ = [
    "BACKENDS",
    "Backend",
    "ContractError",
    "MetadataError",
    "MODEL_SUFFIXES",
    "ModelMetadata",
    "backend_for_path",
    "check_backend_for_file",
    "load_backend",
]
