// Batched NMS with a FIXED-SIZE output: hard, soft-linear and soft-gaussian; class-aware or not.
//
// Inputs (contiguous): boxes [N, M, 4] (x1, y1, x2, y2), scores [N, M], labels [N, M] int32 or
// nullptr (class-agnostic). Outputs (contiguous, written in full, padding included):
//   keep       [N, max_output] int32   index into M of each kept box, in selection order; -1 pads
//   out_scores [N, max_output] dtype   score of each kept box (decayed score for soft-NMS); 0 pads
//   num_valid  [N] int32               number of valid rows per image
//
// Semantics (identical on CPU and CUDA):
// - candidates: boxes whose score > score_threshold (strict; NaN scores are never candidates).
// - order: descending score; equal scores -> lower index first (stable), so CPU and CUDA agree.
// - IoU: no +1; area = max(x2-x1, 0) * max(y2-y1, 0); IoU = 0 when the union is <= 0.
//   Boxes with NaN coordinates have IoU 0 with everything: they neither suppress nor get suppressed.
// - hard:     a kept box removes every later candidate with IoU > iou_threshold.
// - linear:   a kept box multiplies each remaining score by (1 - IoU) where IoU > iou_threshold.
// - gaussian: a kept box multiplies each remaining score by exp(-IoU^2 / sigma).
//   Soft methods then drop boxes whose decayed score < min_score. Each step keeps the box with the
//   highest current score (ties -> lower index), so kept scores are non-increasing.
// - class-aware: boxes with different labels never suppress or decay each other.
// - at most max_output boxes are kept per image. M may be tens of thousands (no 4096 cap).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common.h"

#ifdef SSPNET_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace sspnet {

enum class NmsMethod : int32_t { kHard = 0, kLinear = 1, kGaussian = 2 };

struct NmsParams {
  NmsMethod method = NmsMethod::kHard;
  float iou_threshold = 0.5f;
  float sigma = 0.5f;            // gaussian only; must be > 0
  float score_threshold = 0.0f;  // strict: score > score_threshold
  float min_score = 0.0f;        // soft methods only
  int32_t max_output = 1000;     // >= 1
};

Status validate(const NmsParams& params);

// ---- CPU (OpenMP over images). DataType kFloat32 or kFloat64. ----
Status batched_nms_cpu(const void* boxes, const void* scores, const int32_t* labels, int64_t batch,
                       int64_t num_boxes, const NmsParams& params, DataType dtype, int32_t* keep,
                       void* out_scores, int32_t* num_valid, int num_threads);

#ifdef SSPNET_WITH_CUDA
// ---- CUDA. DataType kFloat32, kFloat16 or kFloat64. ----
// Scratch memory comes from the caller (TensorRT plugins get it from the builder): ask first.
size_t batched_nms_cuda_workspace_size(int64_t batch, int64_t num_boxes, const NmsParams& params,
                                       DataType dtype);

Status batched_nms_cuda(const void* boxes, const void* scores, const int32_t* labels, int64_t batch,
                        int64_t num_boxes, const NmsParams& params, DataType dtype, int32_t* keep,
                        void* out_scores, int32_t* num_valid, void* workspace,
                        size_t workspace_size, cudaStream_t stream);
#endif

}  // namespace sspnet
