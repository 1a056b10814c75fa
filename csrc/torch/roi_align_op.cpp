// torch.ops.sspnet.multi_level_roi_align and its backward: thin bindings of the framework-free
// kernels in csrc/kernels/multi_level_roi_align*.{h,cpp,cu}. Autograd, fake (meta) kernels and
// input checks with friendly messages live in Python: sspnet/ops/roi_align.py.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <string>
#include <vector>

#include "multi_level_roi_align.h"

#ifdef SSPNET_WITH_CUDA
// c10's stream header rather than ATen/cuda/CUDAContext.h: the latter pulls in cuSPARSE/cuBLAS
// headers that a plain CUDA toolkit install may lack; the stream is the same object.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace {

constexpr const char* kForwardName = "sspnet::multi_level_roi_align";
constexpr const char* kBackwardName = "sspnet::multi_level_roi_align_backward";

sspnet::DataType to_data_type(at::ScalarType type, const char* op) {
  switch (type) {
    case at::kFloat: return sspnet::DataType::kFloat32;
    case at::kHalf: return sspnet::DataType::kFloat16;
    case at::kDouble: return sspnet::DataType::kFloat64;
    default:
      TORCH_CHECK_TYPE(false, op, ": expected float32, float16 (CUDA) or float64 tensors, got ",
                       type);
  }
}

void check_status(sspnet::Status status, const char* op) {
  TORCH_CHECK(status == sspnet::Status::kOk, op, ": kernel failed: ",
              sspnet::status_message(status));
}

void check_rois(const at::Tensor& rois, const at::Tensor& reference, const char* op) {
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, op,
              ": rois must be [R, 5] (batch_index, x1, y1, x2, y2), got shape ", rois.sizes());
  TORCH_CHECK_TYPE(rois.scalar_type() == reference.scalar_type(), op, ": rois dtype ",
                   rois.scalar_type(), " differs from the feature dtype ",
                   reference.scalar_type());
  TORCH_CHECK(rois.device() == reference.device(), op, ": rois are on ", rois.device(),
              ", features on ", reference.device());
}

sspnet::RoIAlignParams make_params(int64_t output_height, int64_t output_width,
                                   int64_t sampling_ratio, bool aligned, double finest_scale) {
  sspnet::RoIAlignParams params;
  params.output_height = static_cast<int32_t>(output_height);
  params.output_width = static_cast<int32_t>(output_width);
  params.sampling_ratio = static_cast<int32_t>(sampling_ratio);
  params.aligned = aligned;
  params.finest_scale = static_cast<float>(finest_scale);
  return params;
}

// Everything one kernel call needs, checked and made contiguous.
struct ForwardInputs {
  std::vector<at::Tensor> features;
  std::vector<const void*> feature_data;
  at::Tensor rois;
  sspnet::FeaturePyramid pyramid;
  sspnet::RoIAlignParams params;
  sspnet::DataType dtype = sspnet::DataType::kFloat32;
};

sspnet::FeaturePyramid make_pyramid(int64_t batch, int64_t channels, at::IntArrayRef heights,
                                    at::IntArrayRef widths, at::ArrayRef<double> spatial_scales,
                                    const char* op) {
  const int64_t levels = static_cast<int64_t>(heights.size());
  TORCH_CHECK(levels >= 1 && levels <= sspnet::kMaxPyramidLevels, op, ": expected 1 to ",
              sspnet::kMaxPyramidLevels, " pyramid levels, got ", levels);
  TORCH_CHECK(static_cast<int64_t>(spatial_scales.size()) == levels, op, ": got ",
              spatial_scales.size(), " spatial_scales for ", levels, " levels");
  sspnet::FeaturePyramid pyramid;
  pyramid.num_levels = static_cast<int32_t>(levels);
  pyramid.batch = batch;
  pyramid.channels = channels;
  for (int64_t l = 0; l < levels; ++l) {
    pyramid.height[l] = heights[l];
    pyramid.width[l] = widths[l];
    pyramid.spatial_scale[l] = static_cast<float>(spatial_scales[l]);
    TORCH_CHECK(spatial_scales[l] > 0.0, op, ": spatial_scales[", l, "] must be > 0, got ",
                spatial_scales[l]);
    TORCH_CHECK(heights[l] >= 1 && widths[l] >= 1, op, ": level ", l,
                " must have height and width >= 1, got ", heights[l], "x", widths[l]);
  }
  return pyramid;
}

ForwardInputs prepare_forward(at::TensorList features, const at::Tensor& rois,
                              at::ArrayRef<double> spatial_scales, int64_t output_height,
                              int64_t output_width, int64_t sampling_ratio, bool aligned,
                              double finest_scale) {
  const char* op = kForwardName;
  TORCH_CHECK(!features.empty(), op, ": features is empty");
  const at::Tensor& first = features[0];
  std::vector<int64_t> heights, widths;
  for (size_t l = 0; l < features.size(); ++l) {
    const at::Tensor& f = features[l];
    TORCH_CHECK(f.dim() == 4, op, ": features[", l, "] must be [N, C, H, W], got shape ",
                f.sizes());
    TORCH_CHECK(f.size(0) == first.size(0) && f.size(1) == first.size(1), op, ": features[", l,
                "] has N, C = ", f.size(0), ", ", f.size(1), " but features[0] has ", first.size(0),
                ", ", first.size(1));
    TORCH_CHECK_TYPE(f.scalar_type() == first.scalar_type(), op, ": features[", l, "] is ",
                     f.scalar_type(), ", features[0] is ", first.scalar_type());
    TORCH_CHECK(f.device() == first.device(), op, ": features[", l, "] is on ", f.device(),
                ", features[0] on ", first.device());
    heights.push_back(f.size(2));
    widths.push_back(f.size(3));
  }
  check_rois(rois, first, op);
  TORCH_CHECK(output_height >= 1 && output_width >= 1, op,
              ": output size must be >= 1, got ", output_height, "x", output_width);
  TORCH_CHECK(finest_scale > 0.0, op, ": finest_scale must be > 0, got ", finest_scale);

  ForwardInputs in;
  in.dtype = to_data_type(first.scalar_type(), op);
  in.pyramid =
      make_pyramid(first.size(0), first.size(1), heights, widths, spatial_scales, op);
  in.params = make_params(output_height, output_width, sampling_ratio, aligned, finest_scale);
  for (const at::Tensor& f : features) {
    in.features.push_back(f.contiguous());
    in.feature_data.push_back(in.features.back().data_ptr());
  }
  in.rois = rois.contiguous();
  return in;
}

at::Tensor forward_cpu(at::TensorList features, const at::Tensor& rois,
                       at::ArrayRef<double> spatial_scales, int64_t output_height,
                       int64_t output_width, int64_t sampling_ratio, bool aligned,
                       double finest_scale) {
  ForwardInputs in = prepare_forward(features, rois, spatial_scales, output_height, output_width,
                                     sampling_ratio, aligned, finest_scale);
  at::Tensor output = at::empty({in.rois.size(0), in.pyramid.channels, output_height, output_width},
                                in.features[0].options());
  check_status(sspnet::multi_level_roi_align_forward_cpu(
                   in.pyramid, in.feature_data.data(), in.rois.data_ptr(), in.rois.size(0),
                   in.params, in.dtype, output.data_ptr(), at::get_num_threads()),
               kForwardName);
  return output;
}

// Everything the backward kernel needs; grad_features come back zero-filled.
struct BackwardInputs {
  at::Tensor grad_output;
  at::Tensor rois;
  std::vector<at::Tensor> grad_features;
  std::vector<void*> grad_data;
  sspnet::FeaturePyramid pyramid;
  sspnet::RoIAlignParams params;
  sspnet::DataType dtype = sspnet::DataType::kFloat32;
};

BackwardInputs prepare_backward(const at::Tensor& grad_output, const at::Tensor& rois,
                                at::ArrayRef<double> spatial_scales, int64_t batch_size,
                                at::IntArrayRef heights, at::IntArrayRef widths,
                                int64_t sampling_ratio, bool aligned, double finest_scale) {
  const char* op = kBackwardName;
  TORCH_CHECK(grad_output.dim() == 4, op, ": grad_output must be [R, C, oh, ow], got shape ",
              grad_output.sizes());
  check_rois(rois, grad_output, op);
  TORCH_CHECK(rois.size(0) == grad_output.size(0), op, ": grad_output has ", grad_output.size(0),
              " rows but rois has ", rois.size(0));
  TORCH_CHECK(heights.size() == widths.size(), op, ": got ", heights.size(), " heights and ",
              widths.size(), " widths");
  TORCH_CHECK(batch_size >= 0, op, ": batch_size must be >= 0, got ", batch_size);
  TORCH_CHECK(finest_scale > 0.0, op, ": finest_scale must be > 0, got ", finest_scale);

  BackwardInputs in;
  in.dtype = to_data_type(grad_output.scalar_type(), op);
  in.pyramid =
      make_pyramid(batch_size, grad_output.size(1), heights, widths, spatial_scales, op);
  in.params = make_params(grad_output.size(2), grad_output.size(3), sampling_ratio, aligned,
                          finest_scale);
  in.grad_output = grad_output.contiguous();
  in.rois = rois.contiguous();
  for (size_t l = 0; l < heights.size(); ++l) {
    in.grad_features.push_back(at::zeros({batch_size, grad_output.size(1), heights[l], widths[l]},
                                         grad_output.options()));
    in.grad_data.push_back(in.grad_features.back().data_ptr());
  }
  return in;
}

std::vector<at::Tensor> backward_cpu(const at::Tensor& grad_output, const at::Tensor& rois,
                                     at::ArrayRef<double> spatial_scales, int64_t batch_size,
                                     at::IntArrayRef heights, at::IntArrayRef widths,
                                     int64_t sampling_ratio, bool aligned, double finest_scale) {
  BackwardInputs in = prepare_backward(grad_output, rois, spatial_scales, batch_size, heights,
                                       widths, sampling_ratio, aligned, finest_scale);
  check_status(sspnet::multi_level_roi_align_backward_cpu(
                   in.pyramid, in.grad_output.data_ptr(), in.rois.data_ptr(), in.rois.size(0),
                   in.params, in.dtype, in.grad_data.data(), at::get_num_threads()),
               kBackwardName);
  return in.grad_features;
}

#ifdef SSPNET_WITH_CUDA
at::Tensor forward_cuda(at::TensorList features, const at::Tensor& rois,
                        at::ArrayRef<double> spatial_scales, int64_t output_height,
                        int64_t output_width, int64_t sampling_ratio, bool aligned,
                        double finest_scale) {
  ForwardInputs in = prepare_forward(features, rois, spatial_scales, output_height, output_width,
                                     sampling_ratio, aligned, finest_scale);
  const c10::cuda::CUDAGuard device_guard(in.rois.device());
  at::Tensor output = at::empty({in.rois.size(0), in.pyramid.channels, output_height, output_width},
                                in.features[0].options());
  check_status(sspnet::multi_level_roi_align_forward_cuda(
                   in.pyramid, in.feature_data.data(), in.rois.data_ptr(), in.rois.size(0),
                   in.params, in.dtype, output.data_ptr(), c10::cuda::getCurrentCUDAStream()),
               kForwardName);
  return output;
}

std::vector<at::Tensor> backward_cuda(const at::Tensor& grad_output, const at::Tensor& rois,
                                      at::ArrayRef<double> spatial_scales, int64_t batch_size,
                                      at::IntArrayRef heights, at::IntArrayRef widths,
                                      int64_t sampling_ratio, bool aligned, double finest_scale) {
  const c10::cuda::CUDAGuard device_guard(grad_output.device());
  BackwardInputs in = prepare_backward(grad_output, rois, spatial_scales, batch_size, heights,
                                       widths, sampling_ratio, aligned, finest_scale);
  check_status(sspnet::multi_level_roi_align_backward_cuda(
                   in.pyramid, in.grad_output.data_ptr(), in.rois.data_ptr(), in.rois.size(0),
                   in.params, in.dtype, in.grad_data.data(), c10::cuda::getCurrentCUDAStream()),
               kBackwardName);
  return in.grad_features;
}
#endif

}  // namespace

TORCH_LIBRARY_FRAGMENT(sspnet, m) {
  // Fake kernels and autograd are registered by this Python module.
  m.set_python_module("sspnet.ops.roi_align");
  m.def(
      "multi_level_roi_align(Tensor[] features, Tensor rois, float[] spatial_scales, "
      "int output_height, int output_width, int sampling_ratio, bool aligned, "
      "float finest_scale) -> Tensor");
  // heights/widths: each level's H and W; C and the output size come from grad_output.
  m.def(
      "multi_level_roi_align_backward(Tensor grad_output, Tensor rois, float[] spatial_scales, "
      "SymInt batch_size, SymInt[] heights, SymInt[] widths, int sampling_ratio, bool aligned, "
      "float finest_scale) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(sspnet, CPU, m) {
  m.impl("multi_level_roi_align", &forward_cpu);
  m.impl("multi_level_roi_align_backward", &backward_cpu);
}

#ifdef SSPNET_WITH_CUDA
TORCH_LIBRARY_IMPL(sspnet, CUDA, m) {
  m.impl("multi_level_roi_align", &forward_cuda);
  m.impl("multi_level_roi_align_backward", &backward_cuda);
}
#endif
