"""The shared kernel cases (tests/kernel_cases.py) on a real GPU: the CUDA ops against the CPU ops,
with the same inputs and tolerances the CPU execution layer uses (tests/cuda_on_cpu). Skipped
without a CUDA device; scripts/gpu_check.sh runs it with the rest of tests/ops."""

import kernel_cases
import numpy as np
import pytest
import torch
from devices import CUDA_AVAILABLE

from sspnet.ops import batched_nms, multi_level_roi_align

pytestmark = pytest.mark.skipif(not CUDA_AVAILABLE, reason="no CUDA device on this machine")

NMS_CASES = {case["name"]: case for case in kernel_cases.nms_cases()}
# the fp16-features / fp32-RoIs pair exists only in the TensorRT plugin's C++ entry point
ROI_CASES = {case["name"]: case for case in kernel_cases.roi_cases() if case["rois"].dtype == case["features"][0].dtype}
TOLERANCE = {torch.float16: 1e-3, torch.float32: 1e-6, torch.float64: 1e-12}


@pytest.mark.parametrize("name", NMS_CASES)
def test_nms_case_cuda_matches_cpu(name):
    case = NMS_CASES[name]
    boxes, scores = torch.from_numpy(case["boxes"]), torch.from_numpy(case["scores"])
    labels = None if case["labels"] is None else torch.from_numpy(case["labels"])
    options = {k: case[k] for k in ("method", "iou_threshold", "sigma", "score_threshold", "min_score", "max_output")}
    cpu_dtype = torch.float32 if boxes.dtype == torch.float16 else boxes.dtype
    keep_cpu, scores_cpu, valid_cpu = batched_nms(boxes.to(cpu_dtype), scores.to(cpu_dtype), labels, **options)
    keep, out, valid = batched_nms(boxes.cuda(), scores.cuda(), None if labels is None else labels.cuda(), **options)
    assert torch.equal(valid.cpu(), valid_cpu) and torch.equal(keep.cpu(), keep_cpu)
    tol = TOLERANCE[boxes.dtype]
    torch.testing.assert_close(out.cpu().double(), scores_cpu.to(out.dtype).double(), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ROI_CASES)
def test_roi_align_case_cuda_matches_cpu(name):
    case = ROI_CASES[name]
    features = [torch.from_numpy(f) for f in case["features"]]
    rois = torch.from_numpy(case["rois"])
    strides = [round(1 / s) for s in case["scales"]]
    options = dict(
        output_size=case["output_size"],
        sampling_ratio=case["sampling_ratio"],
        aligned=case["aligned"],
        finest_scale=case["finest_scale"],
    )
    cpu_dtype = torch.float32 if rois.dtype == torch.float16 else rois.dtype
    cpu_features = [f.to(cpu_dtype).requires_grad_() for f in features]
    out_cpu = multi_level_roi_align(cpu_features, rois.to(cpu_dtype), strides, **options)
    out_cpu.backward(torch.from_numpy(case["grad_output"]).to(cpu_dtype))
    cuda_features = [f.cuda().requires_grad_() for f in features]
    out = multi_level_roi_align(cuda_features, rois.cuda(), strides, **options)
    out.backward(torch.from_numpy(case["grad_output"]).cuda())
    scale = max(1.0, out_cpu.abs().max().item())
    tol = {torch.float16: 5e-3, torch.float32: 1e-5, torch.float64: 1e-12}[rois.dtype] * scale
    torch.testing.assert_close(out.detach().cpu().double(), out_cpu.detach().double(), rtol=0, atol=tol)
    for g, ref in zip(cuda_features, cpu_features):
        gscale = max(1.0, ref.grad.abs().max().item())
        gtol = {torch.float16: 2e-2, torch.float32: 1e-5, torch.float64: 1e-12}[rois.dtype] * gscale
        torch.testing.assert_close(g.grad.cpu().double(), ref.grad.double(), rtol=0, atol=gtol)


def test_cases_exist():
    # the module is not silently empty when kernel_cases changes
    assert len(NMS_CASES) >= 20 and len(ROI_CASES) >= 12
    assert np.dtype(np.float16) in {c["boxes"].dtype for c in NMS_CASES.values()}
