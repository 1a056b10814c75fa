"""Shared helpers for the predict / benchmark / demo tests (import: `from cli_markers import ...`).

Models: the runtime tests' hand-built ONNX "marker model" (tests/runtime/runtime_models.py: every
pixel with red > 0 is a detection with a closed-form box), and `TorchMarker`, the same rule written
in PyTorch, so the torch backend can be checked against the same closed form.
"""

import sys
from pathlib import Path

import numpy as np

RUNTIME_TESTS = Path(__file__).resolve().parent.parent / "runtime"
if str(RUNTIME_TESTS) not in sys.path:
    sys.path.insert(0, str(RUNTIME_TESTS))

from runtime_models import MARKER_RADIUS, build_marker_model, paint_markers  # noqa: E402, F401 (build_marker_model: for the cli tests)

TILE = (96, 128)  # (H, W) of the marker models here
K = 16


def marker_frame(height, width, markers):
    """An RGB frame, zero except for the painted markers (x, y, red value, label)."""
    return paint_markers(np.zeros((height, width, 3), np.uint8), markers)


def write_rgb(path, frame):
    import cv2

    assert cv2.imwrite(str(path), np.ascontiguousarray(frame[..., ::-1]))
    return path


class TorchMarker:
    """Factory for the marker rule as a torch.nn.Module (imported lazily: torch is heavy)."""

    @staticmethod
    def module(k=K):
        import torch

        class Marker(torch.nn.Module):
            """uint8 [N, 3, H, W] -> the K reddest pixels as boxes (x - R, y - R, x + R + 1, y + R + 1)."""

            def forward(self, images):
                n, _, height, width = images.shape
                red = images[:, 0].reshape(n, -1).float()
                green = images[:, 1].reshape(n, -1)
                values, index = red.topk(k, dim=1)
                x, y = (index % width).float(), torch.div(index, width, rounding_mode="floor").float()
                r = float(MARKER_RADIUS)
                boxes = torch.stack([x - r, y - r, x + r + 1, y + r + 1], dim=-1)
                return {
                    "num_dets": (red > 0).sum(dim=1, keepdim=True).clamp(max=k).int(),
                    "boxes": boxes,
                    "scores": values / 255.0,
                    "labels": green.gather(1, index).int(),
                }

        return Marker()

    @staticmethod
    def metadata(input_size=TILE, k=K):
        from sspnet.runtime.backend import ModelMetadata

        return ModelMetadata(
            sspnet_version="0.1.0",
            preset="torch_marker",
            variant="faster_rcnn",
            classes=("person",),
            input_size=tuple(input_size),
            max_detections=k,
            score_threshold=0.0,
            nms={"method": "hard", "iou_threshold": 0.5},
            flavor="torch",
            batch=None,
        )
