"""Multi-level RoIAlign: pool each RoI from the one pyramid level that its size selects.

This is mmdetection's `SingleRoIExtractor` (the RoI extractor of SSPNet's Faster R-CNN head, see
docs/model.md) as one compiled op, `torch.ops.sspnet.multi_level_roi_align` (CPU and CUDA kernels in
csrc/kernels, binding in csrc/torch/roi_align_op.cpp). This module adds what the C++ side does
not: input checks with clear messages, autograd, and fake (meta) kernels so that models using
the op trace under torch.compile, torch.export and torch.onnx.export(dynamo=True).

Level rule (per RoI, sizes in input pixels)::

    s = sqrt((x2 - x1) * (y2 - y1))          # negative area counts as 0
    level = clamp(floor(log2(s / finest_scale + 1e-6)), 0, num_levels - 1)

With finest_scale 56 and strides 4/8/16/32: s < 112 -> level 0, [112, 224) -> 1,
[224, 448) -> 2, >= 448 -> 3. Sampling is torchvision.ops.roi_align's, on the chosen level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from sspnet.ops import extension

extension.load()  # defines torch.ops.sspnet.multi_level_roi_align{,_backward}

MAX_LEVELS = 8  # kMaxPyramidLevels in csrc/kernels/multi_level_roi_align.h
_FORWARD = "sspnet::multi_level_roi_align"
_BACKWARD = "sspnet::multi_level_roi_align_backward"
_SUPPORTED_DTYPES = (torch.float32, torch.float64, torch.float16)


def multi_level_roi_align(
    features: Sequence[Tensor],
    rois: Tensor,
    strides: Sequence[int],
    output_size: int | tuple[int, int],
    sampling_ratio: int = 0,
    aligned: bool = True,
    finest_scale: float = 56.0,
) -> Tensor:
    """Pool every RoI from the pyramid level its scale selects (mmdetection SingleRoIExtractor).

    Args:
        features: pyramid levels, finest first, 1 to 8 tensors ``[N, C, H_l, W_l]`` with the same
            N, C, dtype (float32 or float64; float16 on CUDA only) and device.
        rois: ``[R, 5]`` rows ``(batch_index, x1, y1, x2, y2)`` in input-image pixels, same dtype
            and device as the features. R may be 0.
        strides: the stride of each level in input pixels (e.g. ``[4, 8, 16, 32]``); the spatial
            scale of level l is ``1 / strides[l]``.
        output_size: ``int`` or ``(height, width)`` of the pooled map.
        sampling_ratio: bilinear samples per bin and axis; ``<= 0`` is adaptive,
            ``ceil(roi_size / output_size)`` per axis (torchvision's rule, capped at 128).
        aligned: half-pixel offset as in torchvision's ``roi_align(aligned=True)`` (mmcv's
            default and SSPNet's setting). ``False`` is the legacy mode of
            ``torchvision.ops.MultiScaleRoIAlign`` (RoIs smaller than 1 pixel are enlarged to 1).
        finest_scale: a RoI of scale s = sqrt(area) (input pixels) in
            ``[finest_scale * 2**l, finest_scale * 2**(l + 1))`` uses level l; smaller RoIs use
            level 0, larger ones the last level.

    Returns:
        ``[R, C, output_height, output_width]`` in the features' dtype. Rows of RoIs with a
        batch index outside ``[0, N)`` or a non-finite (NaN, inf) coordinate are all zeros.

    Under ``torch.autocast`` the features and RoIs are pooled in float32, as torchvision's
    roi_align does (float16 RoI coordinates would be off by up to a pixel).
    Differentiable with respect to the features (not the RoIs).
    """
    features = _check_features(features)
    if not isinstance(rois, Tensor):
        raise TypeError(f"rois must be a torch.Tensor, got {type(rois).__name__}")
    if torch.is_autocast_enabled(features[0].device.type):
        features = [f.float() for f in features]
        rois = rois.float()
    _check_feature_dtypes(features)
    _check_rois(rois, features[0])
    spatial_scales = _spatial_scales(strides, len(features))
    output_height, output_width = _output_size(output_size)
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int):
        raise TypeError(f"sampling_ratio must be an int, got {sampling_ratio!r}")
    if not isinstance(aligned, bool):
        raise TypeError(f"aligned must be a bool, got {aligned!r}")
    finest_scale = _positive_number(finest_scale, "finest_scale")
    return torch.ops.sspnet.multi_level_roi_align(
        list(features),
        rois,
        spatial_scales,
        output_height,
        output_width,
        sampling_ratio,
        aligned,
        finest_scale,
    )


def roi_levels(rois: Tensor, num_levels: int, finest_scale: float = 56.0) -> Tensor:
    """The pyramid level of each RoI, computed exactly as the kernels do, in plain torch ops.

    Args:
        rois: ``[R, 5]`` (batch_index, x1, y1, x2, y2) or ``[R, 4]`` (x1, y1, x2, y2), input pixels.
        num_levels: number of pyramid levels L.
        finest_scale: see :func:`multi_level_roi_align`.

    Returns:
        int64 ``[R]`` in ``[0, L - 1]``. Negative/NaN areas give level 0, like the kernels.
        float16/bfloat16 RoIs are evaluated in float32 (the kernels' arithmetic type).
    """
    if not isinstance(rois, Tensor) or rois.dim() != 2 or rois.shape[1] not in (4, 5):
        shape = tuple(rois.shape) if isinstance(rois, Tensor) else type(rois).__name__
        raise ValueError(f"rois must be a [R, 4] or [R, 5] tensor, got {shape}")
    if not 1 <= num_levels <= MAX_LEVELS:
        raise ValueError(f"num_levels must be in [1, {MAX_LEVELS}], got {num_levels}")
    finest_scale = _positive_number(finest_scale, "finest_scale")
    boxes = rois[:, -4:]
    if boxes.dtype in (torch.float16, torch.bfloat16):
        boxes = boxes.float()
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    area = torch.where(area > 0, area, torch.zeros_like(area))  # also maps NaN to 0
    level = torch.floor(torch.log2(torch.sqrt(area) / finest_scale + 1e-6))
    return level.clamp(0, num_levels - 1).to(torch.int64)


# ---- input checks ---------------------------------------------------------------------------


def _check_features(features) -> list[Tensor]:
    if isinstance(features, Tensor) or not isinstance(features, Sequence):
        raise TypeError(f"features must be a list or tuple of [N, C, H, W] tensors, got {type(features).__name__}")
    if not 1 <= len(features) <= MAX_LEVELS:
        raise ValueError(f"features must hold 1 to {MAX_LEVELS} levels, got {len(features)}")
    for level, feature in enumerate(features):
        if not isinstance(feature, Tensor):
            raise TypeError(f"features[{level}] must be a torch.Tensor, got {type(feature).__name__}")
        if feature.dim() != 4:
            raise ValueError(f"features[{level}] must be [N, C, H, W] (4-D), got shape {tuple(feature.shape)}")
        if feature.shape[2] < 1 or feature.shape[3] < 1:
            raise ValueError(f"features[{level}] must have H, W >= 1, got shape {tuple(feature.shape)}")
    first = features[0]
    for level, feature in enumerate(features[1:], start=1):
        if feature.shape[:2] != first.shape[:2]:
            raise ValueError(
                f"features[{level}] has N, C = {tuple(feature.shape[:2])}, expected "
                f"{tuple(first.shape[:2])} like features[0]"
            )
        if feature.device != first.device:
            raise ValueError(f"features[{level}] is on {feature.device}, expected {first.device} like features[0]")
    return list(features)


def _check_feature_dtypes(features: list[Tensor]) -> None:
    first = features[0]
    if first.dtype not in _SUPPORTED_DTYPES:
        raise TypeError(f"features must be float32, float64 or float16 (CUDA), got {first.dtype}")
    if first.dtype == torch.float16 and first.device.type != "cuda":
        raise TypeError(f"float16 features are supported on CUDA only, got them on {first.device}")
    for level, feature in enumerate(features[1:], start=1):
        if feature.dtype != first.dtype:
            raise TypeError(f"features[{level}] is {feature.dtype}, expected {first.dtype} like features[0]")


def _check_rois(rois: Tensor, first_feature: Tensor) -> None:
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"rois must be [R, 5] (batch_index, x1, y1, x2, y2), got shape {tuple(rois.shape)}")
    if rois.dtype != first_feature.dtype:
        raise TypeError(f"rois must have the features' dtype {first_feature.dtype}, got {rois.dtype}")
    if rois.device != first_feature.device:
        raise ValueError(f"rois must be on the features' device {first_feature.device}, got {rois.device}")


def _spatial_scales(strides, num_levels: int) -> list[float]:
    if isinstance(strides, (str, bytes)) or not isinstance(strides, Sequence):
        raise TypeError(f"strides must be a list of numbers, got {type(strides).__name__}")
    if len(strides) != num_levels:
        raise ValueError(f"strides must have one entry per feature level: expected {num_levels}, got {len(strides)}")
    return [1.0 / _positive_number(stride, f"strides[{i}]") for i, stride in enumerate(strides)]


def _output_size(output_size) -> tuple[int, int]:
    size = (output_size, output_size) if isinstance(output_size, int) else output_size
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)
    ):
        raise ValueError(f"output_size must be an int >= 1 or (height, width), got {output_size!r}")
    return int(size[0]), int(size[1])


def _positive_number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not 0 < value < math.inf:  # also false for NaN; plain comparisons trace under dynamo
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


# ---- fake kernels and autograd for the compiled op ------------------------------------------


@torch.library.register_fake(_FORWARD)
def _forward_fake(features, rois, spatial_scales, output_height, output_width, sampling_ratio, aligned, finest_scale):
    channels = features[0].shape[1]
    return features[0].new_empty((rois.shape[0], channels, output_height, output_width))


@torch.library.register_fake(_BACKWARD)
def _backward_fake(
    grad_output, rois, spatial_scales, batch_size, heights, widths, sampling_ratio, aligned, finest_scale
):
    channels = grad_output.shape[1]
    return [grad_output.new_empty((batch_size, channels, h, w)) for h, w in zip(heights, widths)]


def _setup_context(ctx, inputs, output):
    features, rois, spatial_scales, _, _, sampling_ratio, aligned, finest_scale = inputs
    ctx.save_for_backward(rois)
    ctx.batch_size = features[0].shape[0]
    ctx.heights = [f.shape[2] for f in features]
    ctx.widths = [f.shape[3] for f in features]
    ctx.spatial_scales = spatial_scales
    ctx.sampling_ratio = sampling_ratio
    ctx.aligned = aligned
    ctx.finest_scale = finest_scale


def _backward(ctx, grad_output):
    (rois,) = ctx.saved_tensors
    grad_features = torch.ops.sspnet.multi_level_roi_align_backward(
        grad_output,
        rois,
        ctx.spatial_scales,
        ctx.batch_size,
        ctx.heights,
        ctx.widths,
        ctx.sampling_ratio,
        ctx.aligned,
        ctx.finest_scale,
    )
    # One gradient per op input: the feature list, then none for rois and the attributes.
    return list(grad_features), None, None, None, None, None, None, None


torch.library.register_autograd(_FORWARD, _backward, setup_context=_setup_context)
