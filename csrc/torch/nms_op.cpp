// torch.ops.sspnet.batched_nms: the torch binding of csrc/kernels/batched_nms.h.
// Python wrapper, argument checks with friendly messages and the fake (meta) kernel live in
// sspnet/ops/nms.py; the checks here are the last line of defence for direct op calls.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>
#include <optional>
#include <tuple>

#include "batched_nms.h"

#ifdef SSPNET_WITH_CUDA
// c10's stream header instead of ATen/cuda/CUDAContext.h: same current stream (at::cuda's
// getCurrentCUDAStream is this one), without pulling in cuBLAS / cuSPARSE headers.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace {

using Outputs = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

void check_inputs(const at::Tensor& boxes, const at::Tensor& scores,
                  const std::optional<at::Tensor>& labels, int64_t method, int64_t max_output) {
  TORCH_CHECK(boxes.dim() == 3 && boxes.size(2) == 4,
              "batched_nms: boxes must have shape [N, M, 4], got ", boxes.sizes());
  TORCH_CHECK(scores.dim() == 2 && scores.size(0) == boxes.size(0) &&
                  scores.size(1) == boxes.size(1),
              "batched_nms: scores must have shape [N, M] = ", boxes.sizes().slice(0, 2),
              ", got ", scores.sizes());
  TORCH_CHECK(at::isFloatingType(boxes.scalar_type()) &&
                  boxes.scalar_type() == scores.scalar_type(),
              "batched_nms: boxes and scores must share one floating dtype, got ",
              boxes.scalar_type(), " and ", scores.scalar_type());
  TORCH_CHECK(scores.device() == boxes.device(), "batched_nms: scores are on ", scores.device(),
              " but boxes on ", boxes.device());
  if (labels.has_value()) {
    TORCH_CHECK(labels->sizes() == scores.sizes(), "batched_nms: labels must have shape ",
                scores.sizes(), ", got ", labels->sizes());
    TORCH_CHECK(at::isIntegralType(labels->scalar_type(), /*includeBool=*/false),
                "batched_nms: labels must be an integer tensor, got ", labels->scalar_type());
    TORCH_CHECK(labels->device() == boxes.device(), "batched_nms: labels are on ",
                labels->device(), " but boxes on ", boxes.device());
  }
  TORCH_CHECK(method >= 0 && method <= 2, "batched_nms: method must be 0 (hard), 1 (linear) or ",
              "2 (gaussian), got ", method);
  TORCH_CHECK(max_output >= 1 && max_output <= std::numeric_limits<int32_t>::max(),
              "batched_nms: max_output must be in [1, 2^31 - 1], got ", max_output);
  TORCH_CHECK(boxes.size(1) <= std::numeric_limits<int32_t>::max(),
              "batched_nms: at most 2^31 - 1 boxes per image, got ", boxes.size(1));
}

sspnet::NmsParams make_params(double iou_threshold, int64_t method, double sigma,
                              double score_threshold, double min_score, int64_t max_output) {
  sspnet::NmsParams params;
  params.method = static_cast<sspnet::NmsMethod>(method);
  params.iou_threshold = static_cast<float>(iou_threshold);
  params.sigma = static_cast<float>(sigma);
  params.score_threshold = static_cast<float>(score_threshold);
  params.min_score = static_cast<float>(min_score);
  params.max_output = static_cast<int32_t>(max_output);
  return params;
}

void check_status(sspnet::Status status, const sspnet::NmsParams& params) {
  TORCH_CHECK(status == sspnet::Status::kOk, "batched_nms kernel failed: ",
              sspnet::status_message(status), " (method=", static_cast<int>(params.method),
              ", iou_threshold=", params.iou_threshold, ", sigma=", params.sigma,
              ", score_threshold=", params.score_threshold, ", min_score=", params.min_score,
              ", max_output=", params.max_output, ")");
}

sspnet::DataType kernel_dtype(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return sspnet::DataType::kFloat32;
    case at::kHalf: return sspnet::DataType::kFloat16;
    case at::kDouble: return sspnet::DataType::kFloat64;
    default: TORCH_CHECK(false, "batched_nms: no kernel for dtype ", type);
  }
}

std::optional<at::Tensor> labels_int32(const std::optional<at::Tensor>& labels) {
  if (!labels.has_value()) return std::nullopt;
  return labels->to(at::kInt).contiguous();
}

Outputs batched_nms_cpu(const at::Tensor& boxes, const at::Tensor& scores,
                        const std::optional<at::Tensor>& labels, double iou_threshold,
                        int64_t method, double sigma, double score_threshold, double min_score,
                        int64_t max_output) {
  check_inputs(boxes, scores, labels, method, max_output);
  const sspnet::NmsParams params =
      make_params(iou_threshold, method, sigma, score_threshold, min_score, max_output);
  // The CPU kernel computes in fp32 or fp64; half / bfloat16 go through fp32.
  const at::ScalarType compute =
      boxes.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor boxes_c = boxes.to(compute).contiguous();
  const at::Tensor scores_c = scores.to(compute).contiguous();
  const std::optional<at::Tensor> labels_c = labels_int32(labels);
  const int64_t batch = boxes.size(0);
  at::Tensor keep = at::empty({batch, max_output}, boxes.options().dtype(at::kInt));
  at::Tensor out_scores = at::empty({batch, max_output}, boxes_c.options());
  at::Tensor num_valid = at::empty({batch}, boxes.options().dtype(at::kInt));
  const sspnet::Status status = sspnet::batched_nms_cpu(
      boxes_c.data_ptr(), scores_c.data_ptr(),
      labels_c.has_value() ? labels_c->data_ptr<int32_t>() : nullptr, batch, boxes.size(1),
      params, kernel_dtype(compute), keep.data_ptr<int32_t>(), out_scores.data_ptr(),
      num_valid.data_ptr<int32_t>(), at::get_num_threads());
  check_status(status, params);
  return {keep.to(at::kLong), out_scores.to(scores.scalar_type()), num_valid.to(at::kLong)};
}

#ifdef SSPNET_WITH_CUDA
Outputs batched_nms_cuda(const at::Tensor& boxes, const at::Tensor& scores,
                         const std::optional<at::Tensor>& labels, double iou_threshold,
                         int64_t method, double sigma, double score_threshold, double min_score,
                         int64_t max_output) {
  check_inputs(boxes, scores, labels, method, max_output);
  const c10::cuda::CUDAGuard device_guard(boxes.device());
  const sspnet::NmsParams params =
      make_params(iou_threshold, method, sigma, score_threshold, min_score, max_output);
  // fp16 runs natively; bfloat16 goes through fp32.
  const at::ScalarType storage =
      boxes.scalar_type() == at::kBFloat16 ? at::kFloat : boxes.scalar_type();
  const at::Tensor boxes_c = boxes.to(storage).contiguous();
  const at::Tensor scores_c = scores.to(storage).contiguous();
  const std::optional<at::Tensor> labels_c = labels_int32(labels);
  const int64_t batch = boxes.size(0);
  const int64_t num_boxes = boxes.size(1);
  const sspnet::DataType dtype = kernel_dtype(storage);
  at::Tensor keep = at::empty({batch, max_output}, boxes.options().dtype(at::kInt));
  at::Tensor out_scores = at::empty({batch, max_output}, boxes_c.options());
  at::Tensor num_valid = at::empty({batch}, boxes.options().dtype(at::kInt));
  const size_t workspace_bytes =
      sspnet::batched_nms_cuda_workspace_size(batch, num_boxes, params, dtype);
  at::Tensor workspace = at::empty({static_cast<int64_t>(workspace_bytes)},
                                   boxes.options().dtype(at::kByte));
  const sspnet::Status status = sspnet::batched_nms_cuda(
      boxes_c.data_ptr(), scores_c.data_ptr(),
      labels_c.has_value() ? labels_c->data_ptr<int32_t>() : nullptr, batch, num_boxes, params,
      dtype, keep.data_ptr<int32_t>(), out_scores.data_ptr(), num_valid.data_ptr<int32_t>(),
      workspace_bytes > 0 ? workspace.data_ptr() : nullptr, workspace_bytes,
      c10::cuda::getCurrentCUDAStream().stream());
  check_status(status, params);
  return {keep.to(at::kLong), out_scores.to(scores.scalar_type()), num_valid.to(at::kLong)};
}
#endif

}  // namespace

TORCH_LIBRARY_FRAGMENT(sspnet, m) {
  // The fake (meta) kernel is registered in Python; tell torch where to find it.
  m.set_python_module("sspnet.ops.nms");
  m.def(
      "batched_nms(Tensor boxes, Tensor scores, Tensor? labels, float iou_threshold, int method, "
      "float sigma, float score_threshold, float min_score, int max_output) "
      "-> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(sspnet, CPU, m) { m.impl("batched_nms", &batched_nms_cpu); }

#ifdef SSPNET_WITH_CUDA
TORCH_LIBRARY_IMPL(sspnet, CUDA, m) { m.impl("batched_nms", &batched_nms_cuda); }
#endif
