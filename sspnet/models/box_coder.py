"""mmdetection's DeltaXYWHBBoxCoder: boxes <-> (dx, dy, dw, dh) deltas relative to reference boxes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from sspnet.models.box_ops import clip_boxes

# Largest |dw|, |dh| accepted by decode: exp(4.135) = 62.5 = 1000 / 16.
DEFAULT_WH_RATIO_CLIP = 16 / 1000


class DeltaXYWHCoder:
    """Encode / decode box deltas with per-coordinate means and stds.

    encode: dx = (gx - px) / pw, dy = (gy - py) / ph, dw = ln(gw / pw), dh = ln(gh / ph), then
    (d - mean) / std. decode inverts it after clamping dw, dh to +-|ln(wh_ratio_clip)|.
    Widths are x2 - x1 (no +1).
    """

    def __init__(
        self,
        means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
        stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
        wh_ratio_clip: float = DEFAULT_WH_RATIO_CLIP,
    ):
        if len(means) != 4 or len(stds) != 4:
            raise ValueError(f"means and stds need 4 values each, got {len(means)} and {len(stds)}")
        self.means = tuple(float(m) for m in means)
        self.stds = tuple(float(s) for s in stds)
        self.max_ratio = abs(math.log(wh_ratio_clip))

    def encode(self, boxes: Tensor, gt_boxes: Tensor) -> Tensor:
        """Reference boxes [..., 4] and targets [..., 4] -> normalised deltas [..., 4]."""
        boxes = boxes.float()
        gt_boxes = gt_boxes.float()
        pw = boxes[..., 2] - boxes[..., 0]
        ph = boxes[..., 3] - boxes[..., 1]
        px = (boxes[..., 0] + boxes[..., 2]) * 0.5
        py = (boxes[..., 1] + boxes[..., 3]) * 0.5
        gw = gt_boxes[..., 2] - gt_boxes[..., 0]
        gh = gt_boxes[..., 3] - gt_boxes[..., 1]
        gx = (gt_boxes[..., 0] + gt_boxes[..., 2]) * 0.5
        gy = (gt_boxes[..., 1] + gt_boxes[..., 3]) * 0.5
        deltas = torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], dim=-1)
        means = deltas.new_tensor(self.means)
        stds = deltas.new_tensor(self.stds)
        return (deltas - means) / stds

    def decode(self, boxes: Tensor, deltas: Tensor, image_size: tuple[int, int] | None = None) -> Tensor:
        """Reference boxes [..., 4] + deltas [..., 4] -> boxes [..., 4].

        image_size (H, W): clip x to [0, W] and y to [0, H]; None: no clipping.
        """
        means = deltas.new_tensor(self.means)
        stds = deltas.new_tensor(self.stds)
        deltas = deltas * stds + means
        dx, dy = deltas[..., 0], deltas[..., 1]
        dw = deltas[..., 2].clamp(min=-self.max_ratio, max=self.max_ratio)
        dh = deltas[..., 3].clamp(min=-self.max_ratio, max=self.max_ratio)
        pw = boxes[..., 2] - boxes[..., 0]
        ph = boxes[..., 3] - boxes[..., 1]
        px = (boxes[..., 0] + boxes[..., 2]) * 0.5
        py = (boxes[..., 1] + boxes[..., 3]) * 0.5
        gw = pw * dw.exp()
        gh = ph * dh.exp()
        gx = px + pw * dx
        gy = py + ph * dy
        decoded = torch.stack([gx - gw * 0.5, gy - gh * 0.5, gx + gw * 0.5, gy + gh * 0.5], dim=-1)
        if image_size is not None:
            decoded = clip_boxes(decoded, image_size[0], image_size[1])
        return decoded
