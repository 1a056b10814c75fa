// Multi-level RoIAlign: each RoI is pooled from ONE pyramid level chosen from its scale
// (mmdetection's SingleRoIExtractor rule), all levels in one pass / one CUDA launch.
//
// Level rule (mmdetection's SingleRoIExtractor):  s = sqrt((x2 - x1) * (y2 - y1))   (input pixels; negative area -> 0)
//                         level = clamp(floor(log2(s / finest_scale + 1e-6)), 0, num_levels - 1)
// With finest_scale 56 and strides 4/8/16/32: s < 112 -> level 0, [112, 224) -> 1, ...
// A NaN coordinate gives level 0 and an all-zero output row (documented, never a crash); so does
// any non-finite (+-inf) coordinate. roi_levels() in sspnet/ops/roi_align.py is the same rule in torch.
//
// Sampling follows torchvision.ops.roi_align exactly:
//   offset = aligned ? 0.5 : 0;  start = coord * spatial_scale - offset
//   roi size = end - start, clamped to >= 1 when !aligned (as torchvision does)
//   sampling_ratio > 0: that many samples per bin and axis; <= 0: ceil(roi_size / output_size),
//   capped at 128 (roi_align_detail::kMaxAdaptiveGrid; only absurd RoI sizes reach it)
//   bilinear samples outside [-1, H] x [-1, W] count as 0; the bin value is the mean of its samples.
//
// Memory layout: features[l] is a contiguous [N, C, H_l, W_l] tensor; rois is contiguous
// [R, 5] = (batch_index, x1, y1, x2, y2) in input pixels, same data type as the features;
// output is contiguous [R, C, output_height, output_width]. The batch index is truncated to an
// integer like torchvision does; indices outside [0, N) give zeros.
// The per-RoI arithmetic shared by both kernels is in multi_level_roi_align_device.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common.h"

#ifdef SSPNET_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace sspnet {

constexpr int kMaxPyramidLevels = 8;

struct FeaturePyramid {
  int32_t num_levels = 0;             // 1 .. kMaxPyramidLevels
  int64_t batch = 0;                  // N
  int64_t channels = 0;               // C
  int64_t height[kMaxPyramidLevels] = {};
  int64_t width[kMaxPyramidLevels] = {};
  float spatial_scale[kMaxPyramidLevels] = {};  // 1 / stride of each level
};

struct RoIAlignParams {
  int32_t output_height = 7;
  int32_t output_width = 7;
  int32_t sampling_ratio = 0;  // <= 0: adaptive
  bool aligned = true;         // half-pixel offset (torchvision aligned=True, mmcv default)
  float finest_scale = 56.0f;
};

// Checks num_levels, sizes, scales and params; the entry points below call it first.
Status validate(const FeaturePyramid& pyramid, const RoIAlignParams& params);

// ---- CPU (OpenMP over RoIs). DataType kFloat32 or kFloat64. ----
// num_threads <= 0: the OpenMP default.
Status multi_level_roi_align_forward_cpu(const FeaturePyramid& pyramid, const void* const* features,
                                         const void* rois, int64_t num_rois,
                                         const RoIAlignParams& params, DataType dtype,
                                         void* output, int num_threads);

// grad_features[l] must be zero-filled by the caller ([N, C, H_l, W_l] each); gradients are added.
Status multi_level_roi_align_backward_cpu(const FeaturePyramid& pyramid, const void* grad_output,
                                          const void* rois, int64_t num_rois,
                                          const RoIAlignParams& params, DataType dtype,
                                          void* const* grad_features, int num_threads);

#ifdef SSPNET_WITH_CUDA
// ---- CUDA: one launch for all levels; only `stream` is used, never the default stream. ----
// DataType kFloat32, kFloat16 or kFloat64. No workspace needed.
Status multi_level_roi_align_forward_cuda(const FeaturePyramid& pyramid, const void* const* features,
                                          const void* rois, int64_t num_rois,
                                          const RoIAlignParams& params, DataType dtype,
                                          void* output, cudaStream_t stream);

// The same with the RoIs in their own storage type: kFloat32 RoIs next to kFloat16 features
// (the TensorRT plugin's mixed I/O: fp16 RoI coordinates step by 0.5 px above 512 px). Other
// pairs: kUnsupportedType; roi_dtype == dtype is the function above.
Status multi_level_roi_align_forward_cuda(const FeaturePyramid& pyramid, const void* const* features,
                                          const void* rois, DataType roi_dtype, int64_t num_rois,
                                          const RoIAlignParams& params, DataType dtype,
                                          void* output, cudaStream_t stream);

// grad_features[l] must be zero-filled by the caller; uses atomicAdd.
Status multi_level_roi_align_backward_cuda(const FeaturePyramid& pyramid, const void* grad_output,
                                           const void* rois, int64_t num_rois,
                                           const RoIAlignParams& params, DataType dtype,
                                           void* const* grad_features, cudaStream_t stream);
#endif

}  // namespace sspnet
