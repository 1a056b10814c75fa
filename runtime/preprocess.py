"""NumPy pre/post-processing around a backend: frames -> uint8 NCHW batches, and back.

Frames are HWC uint8 arrays, RGB or BGR (OpenCV's order). A frame reaches the export size
(H, W) in one of three ways, each described by a `FrameMapping` that also maps the model's boxes
back to frame pixels:

    pad_to(frame, (H, W))         frame smaller than the export size: zero-pad bottom / right
    letterbox(frame, (H, W))      keep the aspect ratio, resize, zero-pad bottom / right
    stretch(frame, (H, W))        resize to exactly (H, W), aspect ratio not kept

Padding goes bottom / right (as mmdetection's Pad does in training), so box coordinates need no
offset. Resizing is bilinear with pixel centres at +0.5 (OpenCV's INTER_LINEAR): cv2 when it is
importable, else Pillow's affine transform, which gives the same pixels within 1 grey level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sspnet.errors import UsageError

try:  # optional: a device image may ship without OpenCV
    import cv2
except ImportError:
    cv2 = None

COLOR_ORDERS = ("rgb", "bgr")


def check_frame(frame: object, name: str = "frame") -> np.ndarray:
    """A frame must be a uint8 HWC array with 3 channels; UsageError (a ValueError) otherwise."""
    if not isinstance(frame, np.ndarray):
        raise UsageError(f"{name} must be a numpy.ndarray [H, W, 3] uint8, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise UsageError(f"{name} must be uint8, got {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise UsageError(f"{name} must be [H, W, 3] (HWC, 3 channels), got shape {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise UsageError(f"{name} is empty: shape {frame.shape}")
    return frame


def to_rgb(frame: np.ndarray, color_order: str = "rgb") -> np.ndarray:
    """Return the frame in RGB channel order (a view for BGR input, no copy)."""
    if color_order not in COLOR_ORDERS:
        raise UsageError(f"color_order must be one of {list(COLOR_ORDERS)}, got {color_order!r}")
    return frame[..., ::-1] if color_order == "bgr" else frame


def frames_to_batch(frames: Sequence[np.ndarray] | np.ndarray, color_order: str = "rgb") -> np.ndarray:
    """HWC frames of one size (a list, or an [N, H, W, 3] array) -> uint8 [N, 3, H, W] RGB."""
    if isinstance(frames, np.ndarray) and frames.ndim == 4:
        frames = list(frames)
    if len(frames) == 0:
        raise UsageError("frames_to_batch: got no frames")
    frames = [check_frame(f, f"frames[{i}]") for i, f in enumerate(frames)]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise UsageError(f"frames_to_batch: frames must share one shape, got {sorted(shapes)}")
    batch = np.stack([to_rgb(f, color_order) for f in frames])  # [N, H, W, 3]
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


@dataclass(frozen=True)
class FrameMapping:
    """How a frame became a model input: input = frame * scale (per axis), padded bottom / right.

    frame_size and input_size are (H, W).
    """

    frame_size: tuple[int, int]
    input_size: tuple[int, int]
    scale_x: float = 1.0
    scale_y: float = 1.0

    def boxes_to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """float [D, 4] x1, y1, x2, y2 in input pixels -> frame pixels, clipped to the frame."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scale = np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y], dtype=np.float32)
        height, width = self.frame_size
        out = boxes / scale
        out[:, 0::2] = out[:, 0::2].clip(0, width)
        out[:, 1::2] = out[:, 1::2].clip(0, height)
        return out

    def boxes_to_input(self, boxes: np.ndarray) -> np.ndarray:
        """float [D, 4] in frame pixels -> input pixels (the forward map; for tests and labels)."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scale = np.array([self.scale_x, self.scale_y, self.scale_x, self.scale_y], dtype=np.float32)
        return boxes * scale


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a uint8 [H, W, C] image to size (H, W), pixel centres at +0.5."""
    out_h, out_w = size
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"resize: target size must be positive, got {size}")
    if image.shape[:2] == (out_h, out_w):
        return image.copy()
    if cv2 is not None:
        return cv2.resize(np.ascontiguousarray(image), (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    return _resize_pillow(image, size)


def _resize_pillow(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pillow fallback matching cv2.INTER_LINEAR.

    Image.resize would anti-alias when shrinking (a different filter); an affine transform samples
    bilinearly at the mapped pixel centres like OpenCV. A 1-pixel edge-replicated border stands in
    for OpenCV's clamping at the image border.
    """
    from PIL import Image

    height, width = image.shape[:2]
    out_h, out_w = size
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    # Pillow maps output pixel centre (x + 0.5) to input a * (x + 0.5) + c; +1 skips the border.
    affine = (width / out_w, 0.0, 1.0, 0.0, height / out_h, 1.0)
    out = Image.fromarray(padded).transform(
        (out_w, out_h), Image.Transform.AFFINE, data=affine, resample=Image.Resampling.BILINEAR
    )
    return np.asarray(out)


def pad_to(frame: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, FrameMapping]:
    """Zero-pad a frame bottom / right up to size (H, W); the frame must not be larger."""
    check_frame(frame)
    height, width = frame.shape[:2]
    out_h, out_w = size
    if height > out_h or width > out_w:
        raise ValueError(f"pad_to: frame {height}x{width} (HxW) is larger than the target {out_h}x{out_w}")
    out = np.zeros((out_h, out_w, frame.shape[2]), dtype=frame.dtype)
    out[:height, :width] = frame
    return out, FrameMapping(frame_size=(height, width), input_size=(out_h, out_w))


def letterbox(frame: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, FrameMapping]:
    """Resize keeping the aspect ratio so the frame fits size (H, W), then zero-pad bottom / right."""
    check_frame(frame)
    height, width = frame.shape[:2]
    out_h, out_w = size
    ratio = min(out_h / height, out_w / width)
    new_h = min(out_h, max(1, round(height * ratio)))
    new_w = min(out_w, max(1, round(width * ratio)))
    resized = resize(frame, (new_h, new_w))
    out, _ = pad_to(resized, size)
    # The scale actually applied per axis (rounding makes it differ slightly from `ratio`).
    return out, FrameMapping((height, width), (out_h, out_w), new_w / width, new_h / height)


def stretch(frame: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, FrameMapping]:
    """Resize to exactly size (H, W), not keeping the aspect ratio."""
    check_frame(frame)
    height, width = frame.shape[:2]
    out_h, out_w = size
    out = resize(frame, size)
    return out, FrameMapping((height, width), (out_h, out_w), out_w / width, out_h / height)
