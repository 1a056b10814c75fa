"""Tiny torch modules that call the sspnet ops directly, exported with sspnet.export, and runners
for the exported graphs (ONNX Runtime; onnx's ReferenceEvaluator for the TensorRT flavour).

Exports are cached per configuration so hypothesis examples reuse one graph.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from sspnet.export.onnx_export import export_module

STRIDES = (4, 8, 16, 32)
SPATIAL_SCALES = tuple(1.0 / s for s in STRIDES)
IMAGE_HW = (256, 320)  # the pixel space the RoIs live in
CHANNELS = 4
BATCH = 2


def ops_available() -> bool:
    try:
        import sspnet.ops  # noqa: F401
    except ImportError:
        return False
    return hasattr(torch.ops.sspnet, "multi_level_roi_align") and hasattr(torch.ops.sspnet, "batched_nms")


requires_ops = pytest.mark.skipif(not ops_available(), reason="sspnet's compiled ops (sspnet._C) are not built")


class RoIAlignModule(torch.nn.Module):
    def __init__(self, output_size: int, sampling_ratio: int, aligned: bool, finest_scale: float):
        super().__init__()
        self.args = (list(SPATIAL_SCALES), output_size, output_size, sampling_ratio, aligned, finest_scale)

    def forward(self, p2, p3, p4, p5, rois):
        return torch.ops.sspnet.multi_level_roi_align([p2, p3, p4, p5], rois, *self.args)


class NMSModule(torch.nn.Module):
    def __init__(self, iou_threshold, method, sigma, score_threshold, min_score, max_output, class_aware):
        super().__init__()
        self.args = (iou_threshold, method, sigma, score_threshold, min_score, max_output)
        self.class_aware = class_aware

    def forward(self, boxes, scores, labels):
        labels = labels if self.class_aware else None
        return torch.ops.sspnet.batched_nms(boxes, scores, labels, *self.args)


def pyramid(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    height, width = IMAGE_HW
    return [torch.rand(BATCH, CHANNELS, height // s, width // s, generator=generator) for s in STRIDES]


ROI_INPUTS = ["p2", "p3", "p4", "p5", "rois"]
NMS_INPUTS = ["boxes", "scores", "labels"]


@functools.cache
def roi_align_graph(flavor: str, output_size=7, sampling_ratio=0, aligned=True, finest_scale=56.0):
    """(module, ModelProto) with a dynamic number of RoIs."""
    module = RoIAlignModule(output_size, sampling_ratio, aligned, finest_scale).eval()
    rois = torch.tensor([[0, 10, 10, 50, 60], [1, 0, 0, 300, 250], [0, 5, 5, 200, 100]], dtype=torch.float32)
    model = export_module(
        module,
        (*pyramid(), rois),
        flavor=flavor,
        input_names=ROI_INPUTS,
        output_names=["pooled"],
        dynamic_shapes={"p2": None, "p3": None, "p4": None, "p5": None, "rois": {0: torch.export.Dim("R", min=1)}},
    )
    return module, model


@functools.cache
def nms_graph(
    flavor: str,
    iou_threshold=0.5,
    method=0,
    sigma=0.5,
    score_threshold=0.0,
    min_score=0.0,
    max_output=1000,
    class_aware=True,
):
    """(module, ModelProto) with dynamic N and M."""
    module = NMSModule(iou_threshold, method, sigma, score_threshold, min_score, max_output, class_aware).eval()
    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(2, 6, 2, generator=generator) * 50
    boxes = torch.cat([xy, xy + 10], dim=2)
    scores = torch.rand(2, 6, generator=generator)
    labels = torch.randint(0, 2, (2, 6), generator=generator)
    n, m = torch.export.Dim("N", min=1), torch.export.Dim("M", min=2)
    model = export_module(
        module,
        (boxes, scores, labels),
        flavor=flavor,
        input_names=NMS_INPUTS,
        output_names=["keep", "keep_scores", "num_valid"],
        dynamic_shapes={"boxes": {0: n, 1: m}, "scores": {0: n, 1: m}, "labels": {0: n, 1: m}},
    )
    return module, model


@functools.cache
def _ort_session(model_bytes: bytes):
    import onnxruntime

    return onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])


def run_ort(model, feeds: dict) -> list[np.ndarray]:
    session = _ort_session(model.SerializeToString())
    wanted = {i.name for i in session.get_inputs()}
    return session.run(None, {k: v for k, v in feeds.items() if k in wanted})


def run_reference(model, feeds: dict) -> list[np.ndarray]:
    from sspnet.export.reference_ops import reference_evaluator

    evaluator = reference_evaluator(model)
    wanted = set(evaluator.input_names)
    return evaluator.run(None, {k: v for k, v in feeds.items() if k in wanted})


def run_graph(flavor: str, model, feeds: dict) -> list[np.ndarray]:
    return run_ort(model, feeds) if flavor == "portable" else run_reference(model, feeds)
