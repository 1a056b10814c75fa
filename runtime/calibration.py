"""INT8 calibration data for TensorRT 10 (implicit quantization with IInt8EntropyCalibrator2).

    batches = CalibrationBatches("calib_images/", input_size=(512, 640), batch_size=8)
    calibrator = make_entropy_calibrator(batches, cache_path="model.calib")   # needs TensorRT
    config.int8_calibrator = calibrator

`CalibrationBatches` is pure NumPy: it lists a folder's images (sorted by name), letterboxes each
to the export size with runtime.preprocess.letterbox (aspect ratio kept, zero padding bottom /
right) and yields uint8 [B, 3, H, W] RGB batches, the network input exactly as at inference. A last
batch with fewer than B images is filled up with the folder's first images again (partial="pad",
the default: every image is used) or dropped (partial="drop").

The calibration cache TensorRT writes is reused on the next build: with an existing cache no image
is read. TensorRT 11 removed implicit INT8 calibration; see engine_builder for the Q/DQ route.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sspnet.errors import InputError, UsageError
from sspnet.io.atomic import atomic_write_bytes

from .preprocess import letterbox

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
PARTIAL_MODES = ("pad", "drop")


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")
    return value


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as uint8 [H, W, 3] RGB (Pillow, a core dependency)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as error:
        raise InputError(f"calibration image {path} cannot be read: {error}") from None


class CalibrationBatches:
    """uint8 [batch_size, 3, H, W] RGB batches of a folder's images, letterboxed to input_size.

    Args:
        folder: directory with .jpg / .jpeg / .png / .bmp images (not searched recursively).
        input_size: (H, W), the model's export size.
        batch_size: images per batch (the calibrator's batch size).
        max_images: use at most this many images (the first ones by name); None uses all.
        partial: "pad" or "drop", for a last batch with fewer than batch_size images.
    """

    def __init__(
        self,
        folder: str | Path,
        input_size: tuple[int, int],
        batch_size: int,
        max_images: int | None = None,
        partial: str = "pad",
    ):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"calibration folder {str(self.folder)!r} does not exist or is not a directory")
        if len(tuple(input_size)) != 2:
            raise UsageError(f"input_size must be (H, W), got {input_size!r}")
        self.input_size = (
            _positive_int("input_size H", input_size[0]),
            _positive_int("input_size W", input_size[1]),
        )
        self.batch_size = _positive_int("batch_size", batch_size)
        if max_images is not None:
            _positive_int("max_images", max_images)
        if partial not in PARTIAL_MODES:
            raise UsageError(f"partial must be one of {list(PARTIAL_MODES)}, got {partial!r}")
        self.partial = partial
        paths = sorted(p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        self.paths = paths[:max_images] if max_images is not None else paths
        if not self.paths:
            raise InputError(f"calibration folder {str(self.folder)!r} has no {'/'.join(IMAGE_SUFFIXES)} images")
        if partial == "drop" and len(self.paths) < self.batch_size:
            raise InputError(
                f"calibration folder {str(self.folder)!r} has {len(self.paths)} images, fewer than one batch "
                f"of {self.batch_size} (use partial='pad' or a smaller batch)"
            )

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """[B, 3, H, W] of every batch."""
        return (self.batch_size, 3, *self.input_size)

    @property
    def nbytes(self) -> int:
        """Bytes of one uint8 batch (the device buffer the calibrator needs)."""
        return math.prod(self.shape)

    def __len__(self) -> int:
        if self.partial == "pad":
            return math.ceil(len(self.paths) / self.batch_size)
        return len(self.paths) // self.batch_size

    def batch_paths(self) -> list[list[Path]]:
        """The image paths of each batch; a padded last batch repeats the first images cyclically."""
        batches = []
        for index in range(len(self)):
            start = index * self.batch_size
            batches.append([self.paths[(start + k) % len(self.paths)] for k in range(self.batch_size)])
        return batches

    def load(self, path: str | Path) -> np.ndarray:
        """One image as the network sees it: uint8 [3, H, W] RGB, letterboxed to input_size."""
        image, _ = letterbox(read_rgb(path), self.input_size)
        return np.ascontiguousarray(image.transpose(2, 0, 1))

    def __iter__(self) -> Iterator[np.ndarray]:
        for paths in self.batch_paths():
            yield np.stack([self.load(path) for path in paths])


def make_entropy_calibrator(batches: CalibrationBatches | None, cache_path: str | Path | None, log=print):
    """A tensorrt.IInt8EntropyCalibrator2 feeding `batches` (TensorRT 10 only).

    With an existing `cache_path` TensorRT takes the scales from the cache and asks for no batch,
    so `batches` may be None; a new cache is written to `cache_path` after calibration.
    """
    from .tensorrt_backend import DeviceBuffer
    from .tensorrt_common import import_tensorrt

    trt = import_tensorrt()

    if not hasattr(trt, "IInt8EntropyCalibrator2"):
        raise RuntimeError(
            f"TensorRT {trt.__version__} has no IInt8EntropyCalibrator2 (removed in TensorRT 11): "
            "INT8 needs a Q/DQ model there (see `sspnet build-engine --help`)"
        )
    cache_path = None if cache_path is None else Path(cache_path)
    if batches is None and (cache_path is None or not cache_path.is_file()):
        raise UsageError("INT8 calibration needs calibration images or an existing calibration cache")

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)  # the pybind11 base must be initialised explicitly
            self._batches = iter(batches) if batches is not None else iter(())
            self._device = DeviceBuffer(batches.nbytes) if batches is not None else None
            self._done = 0

        def get_batch_size(self):
            return batches.batch_size if batches is not None else 1

        def get_batch(self, names):
            batch = next(self._batches, None)
            if batch is None:
                return None
            self._device.copy_from_host(np.ascontiguousarray(batch))
            self._done += 1
            log(f"calibration batch {self._done}/{len(batches)}")
            return [self._device.ptr]

        def read_calibration_cache(self):
            if cache_path is not None and cache_path.is_file():
                log(f"using calibration cache {cache_path}")
                return cache_path.read_bytes()
            return None

        def write_calibration_cache(self, cache):
            if cache_path is not None:
                atomic_write_bytes(cache_path, bytes(cache))
                log(f"wrote calibration cache {cache_path}")

    return EntropyCalibrator()
