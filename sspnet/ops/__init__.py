"""Compiled detection ops (torch.ops.sspnet.*) with their Python front ends."""

from sspnet.ops.nms import batched_nms
from sspnet.ops.roi_align import multi_level_roi_align, roi_levels

__all__ = ["batched_nms", "multi_level_roi_align", "roi_levels"]
