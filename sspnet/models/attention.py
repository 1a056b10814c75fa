"""Attention supervision of SSPNet (the original "Heatmap" module, docs/model.md), in torch.

Per training step: `targets = supervision.targets(attention_maps, gt_boxes)`, then
`supervision.losses(attention_maps, targets)` -> {"loss_reg": ..., "loss_seg": ...}.
Everything runs on the attention maps' device, vectorised over images and boxes; no parameters.

Two generations of the original code are available:
- "v1" (Faster R-CNN, the older FoveaBox): rectangles filled with +1 (object belongs to this level)
  or -1 (object of another scale), lambda = 0.01.
- "v2" (the newer FoveaBox, "tinymap"): only this level's objects, painted with a centerness value,
  lambda = 1e-4.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

ATTENTION_VERSIONS = ("v1", "v2")
DEFAULT_LAMBDA = {"v1": 0.01, "v2": 1e-4}


def pad_boxes(gt_boxes: Sequence[Tensor], device) -> tuple[Tensor, Tensor]:
    """List of [G_i, 4] -> (boxes [N, G, 4] float32, valid [N, G] bool) with G = max G_i (>= 1)."""
    num = max([len(b) for b in gt_boxes] + [1])
    boxes = torch.zeros(len(gt_boxes), num, 4, device=device)
    valid = torch.zeros(len(gt_boxes), num, dtype=torch.bool, device=device)
    for i, b in enumerate(gt_boxes):
        boxes[i, : len(b)] = b.to(device=device, dtype=torch.float32).reshape(-1, 4)
        valid[i, : len(b)] = True
    return boxes, valid


def box_pixel_rects(boxes: Tensor, height: int, width: int) -> Tensor:
    """Float boxes [..., 4] -> integer pixel rectangles (l, t, r, b) [..., 4] as the original drew them.

    l = int(x1), t = int(y1), r = clip(ceil(x2), 0, W - 1), b = clip(ceil(y2), 0, H - 1); the
    rectangle covers rows t..b-1 and columns l..r-1, so the last row / column is never painted.
    (Negative x1 / y1 are clamped to 0 here; the original would have used Python's wrap-around slicing.)
    """
    left = torch.trunc(boxes[..., 0]).clamp(min=0)
    top = torch.trunc(boxes[..., 1]).clamp(min=0)
    right = torch.ceil(boxes[..., 2]).clamp(min=0, max=width - 1)
    bottom = torch.ceil(boxes[..., 3]).clamp(min=0, max=height - 1)
    return torch.stack([left, top, right, bottom], dim=-1).long()


def level_membership(sizes: Tensor, num_levels: int = 4, min_size: int = 2, max_size: int = 5) -> Tensor:
    """Box sizes s = sqrt(w h) [...] -> [..., num_levels] bool: does the box belong to level l?

    Level l takes 2^(min_size + l) < s < 2^(max_size + l) (strict). The first level also takes
    everything below its window and the last everything above its lower bound (so s == 4 exactly
    is NOT a level-0 object, and the last level has no upper bound). NaN sizes belong nowhere.
    """
    levels = []
    for level in range(num_levels):
        low, high = 2.0 ** (min_size + level), 2.0 ** (max_size + level)
        member = (sizes > low) & (sizes < high)
        if level == 0:
            member = member | (sizes < low)
        if level == num_levels - 1:
            member = member | (sizes > low)
        levels.append(member)
    return torch.stack(levels, dim=-1)


def last_covering_box(rects: Tensor, eligible: Tensor, height: int, width: int) -> Tensor:
    """Index of the last eligible rectangle covering each pixel, -1 where none does.

    rects [N, G, 4] (l, t, r, b) integer pixel rectangles, eligible [N, G] bool -> [N, H, W] int64.
    "Last" = highest box index, i.e. later boxes overwrite earlier ones as in the original painter.
    Boxes are processed in chunks so memory stays ~N * chunk * H * W int32 values.
    """
    num_images, num_boxes = eligible.shape
    device = rects.device
    ys = torch.arange(height, device=device)
    xs = torch.arange(width, device=device)
    in_rows = (ys >= rects[..., 1, None]) & (ys < rects[..., 3, None]) & eligible[..., None]  # [N, G, H]
    in_cols = (xs >= rects[..., 0, None]) & (xs < rects[..., 2, None])  # [N, G, W]
    box_numbers = torch.arange(1, num_boxes + 1, device=device, dtype=torch.int32)
    winner = torch.zeros(num_images, height, width, dtype=torch.int32, device=device)
    chunk = max(1, (1 << 23) // max(1, num_images * height * width))
    for start in range(0, num_boxes, chunk):
        stop = min(start + chunk, num_boxes)
        covers = in_rows[:, start:stop, :, None] & in_cols[:, start:stop, None, :]  # [N, C, H, W]
        numbered = torch.where(covers, box_numbers[start:stop, None, None], 0)
        winner = torch.maximum(winner, numbered.amax(dim=1))
    return winner.long() - 1


def gather_per_pixel(values: Tensor, index: Tensor) -> Tensor:
    """values [N, G], index [N, H, W] (>= 0) -> values[n, index[n, y, x]] as [N, H, W]."""
    n, h, w = index.shape
    return values.gather(1, index.reshape(n, h * w)).reshape(n, h, w)


def centerness_canvas(rects: Tensor, winner: Tensor) -> Tensor:
    """v2 painting: per pixel, the centerness of its winning rectangle; 0 where winner is -1.

    For column c in [l, r-1]: L = c + 1 - l, R = r - (c + 1) (rows alike);
    value = sqrt(min(L, R) / max(L, R) * min(T, B) / max(T, B)) -- 0 on the last row / column.
    """
    n, h, w = winner.shape
    index = winner.clamp(min=0)
    left, top, right, bottom = (gather_per_pixel(rects[..., k].float(), index) for k in range(4))
    xs = torch.arange(w, device=winner.device, dtype=torch.float32).view(1, 1, w)
    ys = torch.arange(h, device=winner.device, dtype=torch.float32).view(1, h, 1)
    dist_left, dist_right = xs + 1 - left, right - (xs + 1)
    dist_top, dist_bottom = ys + 1 - top, bottom - (ys + 1)
    ratio_x = torch.minimum(dist_left, dist_right) / torch.maximum(dist_left, dist_right).clamp(min=1)
    ratio_y = torch.minimum(dist_top, dist_bottom) / torch.maximum(dist_top, dist_bottom).clamp(min=1)
    value = torch.sqrt((ratio_x * ratio_y).clamp(min=0))
    return torch.where(winner >= 0, value, torch.zeros_like(value))


def downsample_bilinear(canvas: Tensor, size: tuple[int, int]) -> Tensor:
    """[N, H, W] -> [N, 1, h, w] bilinear, half-pixel centres, no anti-aliasing (= cv2 INTER_LINEAR)."""
    return F.interpolate(canvas[:, None], size=size, mode="bilinear", align_corners=False, antialias=False)


class AttentionSupervision:
    """Targets and losses for the neck's attention maps (v1 / v2: docs/model.md). Holds constants only.

    version: "v1" or "v2" (see module docstring); lamda: multiplier of the BCE term (default by
    version); neg_weight: weight of "object of another scale" pixels (v1); hard_negative_ratio:
    background pixels kept per positive pixel; no_positive_fraction: share of a map kept as
    background when it has no positives.
    """

    def __init__(
        self,
        version: str = "v1",
        lamda: float | None = None,
        neg_weight: float = 3.0,
        hard_negative_ratio: int = 3,
        no_positive_fraction: float = 0.05,
        min_size: int = 2,
        max_size: int = 5,
        nb_downsample: int = 2,
    ):
        if version not in ATTENTION_VERSIONS:
            raise ValueError(f"attention version must be one of {ATTENTION_VERSIONS}, got {version!r}")
        self.version = version
        self.lamda = DEFAULT_LAMBDA[version] if lamda is None else float(lamda)
        self.neg_weight = float(neg_weight)
        self.hard_negative_ratio = int(hard_negative_ratio)
        self.no_positive_fraction = float(no_positive_fraction)
        self.min_size = int(min_size)
        self.max_size = int(max_size)
        self.nb_downsample = int(nb_downsample)

    # ---- targets ---------------------------------------------------------------------------
    def targets(self, attention: Sequence[Tensor], gt_boxes: Sequence[Tensor]) -> list[Tensor]:
        """attention (A0..A3) [N, 1, h_l, w_l], gt_boxes: N tensors [G_i, 4] (xyxy, input pixels).

        Returns per level a float32 target map [N, 1, h_l, w_l]: > 0 object of this level (soft after
        resizing), < 0 object of another scale (v1 only), 0 background.
        """
        if len(gt_boxes) != attention[0].shape[0]:
            raise ValueError(f"got {len(gt_boxes)} box lists for a batch of {attention[0].shape[0]} attention maps")
        device = attention[0].device
        scale = 2**self.nb_downsample
        height, width = attention[0].shape[-2] * scale, attention[0].shape[-1] * scale
        boxes, valid = pad_boxes(gt_boxes, device)
        rects = box_pixel_rects(boxes, height, width)
        extent = (rects[..., 2:] - rects[..., :2]).float()
        sizes = torch.sqrt(extent[..., 0] * extent[..., 1])  # NaN for inverted rectangles, as in NumPy
        member = level_membership(sizes, len(attention), self.min_size, self.max_size)  # [N, G, L]

        if self.version == "v1":
            winner = last_covering_box(rects, valid, height, width)  # same rectangles at every level
        targets = []
        for level, att in enumerate(attention):
            if self.version == "v1":
                value = torch.where(member[..., level], 1.0, -1.0)  # [N, G]
                canvas = gather_per_pixel(value, winner.clamp(min=0))
                canvas = torch.where(winner >= 0, canvas, torch.zeros_like(canvas))
            else:
                level_winner = last_covering_box(rects, valid & member[..., level], height, width)
                canvas = centerness_canvas(rects, level_winner)
            targets.append(downsample_bilinear(canvas, tuple(att.shape[-2:])))
        return targets

    # ---- pixel selection -------------------------------------------------------------------
    def pixel_weights(self, pred: Tensor, gt: Tensor) -> Tensor:
        """pred, gt [N, P] (one level, flattened) -> loss weights [N, P] (0 = not selected).

        With positives: the 3 * n_pos (at most n_bg) highest-scoring background pixels, all
        positives and all negatives. Without: the top 5 % of background pixels and all negatives.
        Negatives weigh neg_weight, the rest 1. Quirk kept from the original: when the 5 % rounds to
        0 pixels the threshold falls to the smallest background score, selecting all background.
        """
        positive, negative, background = gt > 0, gt < 0, gt == 0
        num_pos = positive.sum(dim=1)
        num_bg = background.sum(dim=1)
        k_with_pos = torch.minimum(self.hard_negative_ratio * num_pos, num_bg)
        k_without_pos = torch.full_like(num_pos, int(self.no_positive_fraction * gt.shape[1]))
        k = torch.where(num_pos > 0, k_with_pos, torch.minimum(k_without_pos, num_bg))
        bg_scores = torch.where(background, pred, torch.full_like(pred, -float("inf")))
        ranked = bg_scores.sort(dim=1, descending=True).values
        kth = torch.where(k > 0, k - 1, num_bg - 1).clamp(min=0)
        threshold = ranked.gather(1, kth[:, None])
        threshold = torch.where(num_bg[:, None] > 0, threshold, torch.full_like(threshold, float("inf")))
        selected = (pred >= threshold) | positive | negative
        weights = selected.to(pred.dtype)
        return torch.where(negative, torch.full_like(weights, self.neg_weight), weights)

    # ---- losses ----------------------------------------------------------------------------
    def losses(self, attention: Sequence[Tensor], targets: Sequence[Tensor]) -> dict[str, Tensor]:
        """-> {"loss_reg": sum over levels of the weighted BCE, "loss_seg": sum over levels of the mean Dice}."""
        loss_reg = attention[0].new_zeros(())
        loss_seg = attention[0].new_zeros(())
        for att, target in zip(attention, targets):
            pred = att.reshape(att.shape[0], -1)
            gt = target.reshape(target.shape[0], -1).to(pred.dtype)
            weights = self.pixel_weights(pred.detach(), gt)
            loss_reg = loss_reg + self.lamda * weighted_bce(pred, gt.clamp(min=0), weights)
            loss_seg = loss_seg + dice_loss(pred, gt).mean()
        return {"loss_reg": loss_reg, "loss_seg": loss_seg}


def weighted_bce(pred: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """sum(W * BCE(m * pred, m * target)) / sum(m), m = 1[W > 0]; BCE on probabilities (log clamped at -100).

    pred, target, weights [N, P]; the sums run over the whole batch. An empty selection gives 0.
    """
    mask = (weights > 0).to(pred.dtype)
    bce = F.binary_cross_entropy(pred * mask, target * mask, reduction="none")
    return (weights * bce).sum() / mask.sum().clamp(min=1)


def dice_loss(pred: Tensor, gt: Tensor) -> Tensor:
    """Dice loss on the positive pixels only, per image: pred, gt [N, P] -> [N].

    M = 1[gt > 0]; p = pred * M; t = M; loss = 1 - 2 (sum p t + 1) / (sum p^2 + 1 + sum t^2 + 1).
    """
    mask = (gt > 0).to(pred.dtype)
    p = pred * mask
    a = (p * mask).sum(dim=1) + 1
    b = (p * p).sum(dim=1) + 1
    c = (mask * mask).sum(dim=1) + 1
    return 1 - 2 * a / (b + c)
