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
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sspnet.errors import InputError, MissingDependencyError, UsageError

from .contract import METADATA_KEYS, OUTPUT_NAMES

FLAVORS = ("portable", "tensorrt")
ONNX_SUFFIXES = (".onnx",)
TENSORRT_SUFFIXES = (".engine", ".plan")


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
        return MetadataError(
            f"{self.source}: metadata key {key!r} must be {expected}, got {self.props[key]!r}"
        )

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
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(name, str) and name for name in value)
        ):
            raise self.fail(key, 'a non-empty JSON list of class names, e.g. ["person"]')
        return tuple(value)

    def input_size(self, key: str) -> tuple[int, int]:
        value = self.decoded(key)
        if not (
            isinstance(value, list) and len(value) == 2 and all(_is_positive_int(v) for v in value)
        ):
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
        for batch in batches:
            pieces.append(self._infer_batch(batch))
            del batch  # let the generator drop this chunk before it cuts the next
        if not pieces:
            raise ValueError(f"{self.name} backend: infer_chunks got no batches")
        if len(pieces) == 1:
            return pieces[0]
        return {name: np.concatenate([p[name] for p in pieces]) for name in OUTPUT_NAMES}

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
        """Validate a batch against the contract and this model; raise TypeError / ValueError."""
        if not isinstance(images, np.ndarray):
            raise TypeError(
                f"{self.name} backend: images must be a numpy.ndarray, got {type(images).__name__}"
            )
        if images.dtype != np.uint8:
            raise TypeError(
                f"{self.name} backend: images must be uint8 (the graph normalises), got {images.dtype}"
            )
        if images.ndim != 4:
            raise ValueError(
                f"{self.name} backend: images must be [N, 3, H, W] (rank 4), got shape {images.shape}"
            )
        if images.shape[1] != 3:
            raise ValueError(
                f"{self.name} backend: images must have 3 channels (RGB) in dim 1 of [N, 3, H, W], "
                f"got shape {images.shape} (an HWC frame? use preprocess.frames_to_batch)"
            )
        if images.shape[0] == 0:
            raise ValueError(f"{self.name} backend: images is an empty batch (N = 0)")
        height, width = images.shape[2:]
        if height == 0 or width == 0:
            raise ValueError(
                f"{self.name} backend: images has an empty spatial size {images.shape}"
            )
        if self.fixed_hw is not None and (height, width) != tuple(self.fixed_hw):
            raise ValueError(
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


def load_backend(path: str | Path, **options) -> Backend:
    """Open a model file with the runtime its suffix names.

    .onnx           -> ONNX Runtime   (options: providers, intra_op_num_threads)
    .engine / .plan -> TensorRT       (sspnet.runtime.tensorrt_backend; needs TensorRT installed)
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ONNX_SUFFIXES + TENSORRT_SUFFIXES:
        raise UsageError(
            f"load_backend: cannot tell the runtime for {str(path)!r} from its suffix {suffix!r}; "
            f"expected one of {list(ONNX_SUFFIXES + TENSORRT_SUFFIXES)}"
        )
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "model file does not exist", str(path))
    if suffix in ONNX_SUFFIXES:
        from .onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, **options)
    return _tensorrt_backend_class()(path, **options)


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


__all__ = ["Backend", "ContractError", "MetadataError", "ModelMetadata", "load_backend"]
