"""torchvision's Faster R-CNN R50-FPN as a reference row: a well-known detector on the same input,
through the same Detector and timing code as every other row.

Random weights (weights=None, weights_backbone=None): nothing is downloaded, and the speed of a
network does not depend on its weights, apart from post-processing, which handles however many
boxes pass the score threshold (a trained model may keep more). The resize inside torchvision's
transform is disabled by setting min_size / max_size to the input's own sides, so it sees exactly
the pixels the sspnet rows see (padded to a multiple of 32, as sspnet pads).
"""

from __future__ import annotations

import torch

import sspnet
from sspnet.runtime.backend import ModelMetadata

NAME = "torchvision_fasterrcnn_resnet50_fpn"
MAX_DETECTIONS = 100  # torchvision's box_detections_per_img


class ContractAdapter(torch.nn.Module):
    """Wraps a torchvision detector so it follows the sspnet contract: uint8 [N, 3, H, W] in,
    fixed-size num_dets / boxes / scores / labels out (labels are torchvision's class ids)."""

    def __init__(self, detector: torch.nn.Module, max_detections: int = MAX_DETECTIONS):
        super().__init__()
        self.detector = detector
        self.max_detections = max_detections

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = images.shape[0]
        results = self.detector([image.float() / 255.0 for image in images])
        k = self.max_detections
        boxes = images.new_zeros((batch, k, 4), dtype=torch.float32)
        scores = images.new_zeros((batch, k), dtype=torch.float32)
        labels = images.new_zeros((batch, k), dtype=torch.int32)
        num_dets = images.new_zeros((batch, 1), dtype=torch.int32)
        for i, result in enumerate(results):
            n = min(len(result["scores"]), k)
            boxes[i, :n] = result["boxes"][:n]
            scores[i, :n] = result["scores"][:n]
            labels[i, :n] = result["labels"][:n].int()
            num_dets[i, 0] = n
        return {"num_dets": num_dets, "boxes": boxes, "scores": scores, "labels": labels}


def reference_backend(input_size: tuple[int, int], device: str | None = None, precision: str = "fp32"):
    """A TorchBackend running torchvision's fasterrcnn_resnet50_fpn (random weights, eval mode)."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    from sspnet.inference.torch_backend import TorchBackend

    height, width = input_size
    detector = fasterrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        min_size=min(height, width),
        max_size=max(height, width),
        box_detections_per_img=MAX_DETECTIONS,
    )
    metadata = ModelMetadata(
        sspnet_version=sspnet.__version__,
        preset=NAME,
        variant="faster_rcnn",
        classes=tuple(f"coco_{i}" for i in range(91)),
        input_size=(height, width),
        max_detections=MAX_DETECTIONS,
        score_threshold=0.05,
        nms={"method": "hard", "iou_threshold": 0.5},
        flavor="torch",
        batch=None,
    )
    return TorchBackend(
        ContractAdapter(detector),
        input_size=(height, width),
        device=device,
        precision=precision,
        metadata=metadata,
        path=f"<{NAME}>",
    )


__all__ = ["ContractAdapter", "reference_backend", "NAME"]
