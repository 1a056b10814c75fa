"""Anchor generator of the Faster R-CNN variant (mmdetection 2.19 AnchorGenerator)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


class AnchorGenerator:
    """Anchors for a feature pyramid.

    Per level with stride s: base size s; for ratio r (= h / w) and scale k,
    w = s * k / sqrt(r), h = s * k * sqrt(r). The anchor centre of cell (x, y) is
    (x * s, y * s): centre offset 0, i.e. the cell's top-left corner. Order per location is
    ratio-major (a = ratio_index * len(scales) + scale_index); the flattened order of a level is
    (y * W + x) * A + a, matching a head output permuted NCHW -> NHWC.
    """

    def __init__(self, strides: Sequence[int], scales: Sequence[float], ratios: Sequence[float]):
        if not strides or not scales or not ratios:
            raise ValueError("strides, scales and ratios must all be non-empty")
        if any(r <= 0 for r in ratios) or any(k <= 0 for k in scales):
            raise ValueError(f"scales and ratios must be > 0, got scales={scales} ratios={ratios}")
        self.strides = tuple(int(s) for s in strides)
        self.scales = tuple(float(k) for k in scales)
        self.ratios = tuple(float(r) for r in ratios)

    @property
    def num_anchors(self) -> int:
        """Anchors per feature-map location (A)."""
        return len(self.scales) * len(self.ratios)

    def base_anchors(self, stride: int) -> Tensor:
        """[A, 4] anchors centred on (0, 0) for one level, ratio-major."""
        rows = []
        for ratio in self.ratios:
            h_ratio = math.sqrt(ratio)
            for scale in self.scales:
                w = stride * scale / h_ratio
                h = stride * scale * h_ratio
                rows.append([-0.5 * w, -0.5 * h, 0.5 * w, 0.5 * h])
        return torch.tensor(rows, dtype=torch.float32)

    def grid_anchors(self, feature_sizes: Sequence[tuple[int, int]], device=None) -> list[Tensor]:
        """Per level, [H_l * W_l * A, 4] anchors in input pixels, for feature maps of (H_l, W_l)."""
        if len(feature_sizes) != len(self.strides):
            raise ValueError(f"got {len(feature_sizes)} feature maps for {len(self.strides)} anchor strides")
        anchors = []
        for (height, width), stride in zip(feature_sizes, self.strides):
            base = self.base_anchors(stride).to(device)
            shift_x = torch.arange(width, device=device, dtype=torch.float32) * stride
            shift_y = torch.arange(height, device=device, dtype=torch.float32) * stride
            yy, xx = torch.meshgrid(shift_y, shift_x, indexing="ij")
            shifts = torch.stack([xx, yy, xx, yy], dim=-1).reshape(-1, 1, 4)
            anchors.append((shifts + base[None]).reshape(-1, 4))
        return anchors
