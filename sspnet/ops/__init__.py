"""Compiled detection ops (torch.ops.sspnet.*) with their Python front ends."""

from sspnet.ops.roi_align import multi_level_roi_align, roi_levels

__all__ = ["multi_level_roi_align", "roi_levels"]
