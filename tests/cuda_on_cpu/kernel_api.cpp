// C entry points of the test library (loaded with ctypes by tests/cuda_on_cpu/coc_kernels.py):
// each kernel of csrc/kernels on the CPU (its CPU twin) and emulated on the CUDA execution layer,
// (the layer's controls, coc_set_schedule etc., are in layer/runtime.cpp). The CUDA entry points do what a GPU caller does: copy every
// input into its own device allocation of exactly its size (so AddressSanitizer catches a
// one-element overrun), ask for the workspace and allocate exactly that, run, copy back.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "batched_nms.h"
#include "cuda_on_cpu.h"
#include "multi_level_roi_align.h"

using sspnet::DataType;
using sspnet::Status;

namespace {

size_t element_bytes(int dtype) {
  switch (static_cast<DataType>(dtype)) {
    case DataType::kFloat16: return 2;
    case DataType::kFloat64: return 8;
    default: return 4;
  }
}

// A device copy of a host buffer (nullptr stays nullptr).
void* to_device(const void* host, size_t bytes) {
  if (host == nullptr) return nullptr;
  void* device = nullptr;
  cudaMalloc(&device, bytes);
  cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice);
  return device;
}

void* device_zeros(size_t bytes) {
  void* device = nullptr;
  cudaMalloc(&device, bytes);
  cudaMemset(device, 0, bytes);
  return device;
}

void to_host(void* host, void* device, size_t bytes) {
  cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost);
  cudaFree(device);
}

sspnet::NmsParams nms_params(int method, float iou, float sigma, float score_threshold,
                             float min_score, int max_output) {
  sspnet::NmsParams p;
  p.method = static_cast<sspnet::NmsMethod>(method);
  p.iou_threshold = iou;
  p.sigma = sigma;
  p.score_threshold = score_threshold;
  p.min_score = min_score;
  p.max_output = max_output;
  return p;
}

sspnet::FeaturePyramid pyramid_of(int num_levels, int64_t batch, int64_t channels,
                                  const int64_t* heights, const int64_t* widths,
                                  const float* scales) {
  sspnet::FeaturePyramid pyramid;
  pyramid.num_levels = num_levels;
  pyramid.batch = batch;
  pyramid.channels = channels;
  for (int l = 0; l < num_levels && l < sspnet::kMaxPyramidLevels; ++l) {
    pyramid.height[l] = heights[l];
    pyramid.width[l] = widths[l];
    pyramid.spatial_scale[l] = scales[l];
  }
  return pyramid;
}

sspnet::RoIAlignParams roi_params(int output_height, int output_width, int sampling_ratio,
                                  int aligned, float finest_scale) {
  sspnet::RoIAlignParams p;
  p.output_height = output_height;
  p.output_width = output_width;
  p.sampling_ratio = sampling_ratio;
  p.aligned = aligned != 0;
  p.finest_scale = finest_scale;
  return p;
}

size_t level_bytes(const sspnet::FeaturePyramid& pyramid, int level, int dtype) {
  return static_cast<size_t>(pyramid.batch * pyramid.channels * pyramid.height[level] *
                             pyramid.width[level]) *
         element_bytes(dtype);
}

// A CUDA status of the kernels' own, or kCudaError (4) when the layer reported a launch error.
int finish(Status status) {
  const cudaError_t error = cudaGetLastError();
  if (status == Status::kOk && error != cudaSuccess) return static_cast<int>(Status::kCudaError);
  return static_cast<int>(status);
}

}  // namespace

extern "C" {

int coc_nms_cpu(const void* boxes, const void* scores, const int32_t* labels, int64_t batch,
                int64_t num_boxes, int method, float iou, float sigma, float score_threshold,
                float min_score, int max_output, int dtype, int32_t* keep, void* out_scores,
                int32_t* num_valid) {
  return static_cast<int>(sspnet::batched_nms_cpu(
      boxes, scores, labels, batch, num_boxes,
      nms_params(method, iou, sigma, score_threshold, min_score, max_output),
      static_cast<DataType>(dtype), keep, out_scores, num_valid, 1));
}

int coc_nms_cuda(const void* boxes, const void* scores, const int32_t* labels, int64_t batch,
                 int64_t num_boxes, int method, float iou, float sigma, float score_threshold,
                 float min_score, int max_output, int dtype, int32_t* keep, void* out_scores,
                 int32_t* num_valid) {
  const sspnet::NmsParams params =
      nms_params(method, iou, sigma, score_threshold, min_score, max_output);
  const DataType type = static_cast<DataType>(dtype);
  const size_t e = element_bytes(dtype);
  const size_t boxes_n = static_cast<size_t>(batch * num_boxes);
  const size_t out_n = static_cast<size_t>(batch * max_output);
  void* d_boxes = to_device(num_boxes > 0 ? boxes : nullptr, boxes_n * 4 * e);
  void* d_scores = to_device(num_boxes > 0 ? scores : nullptr, boxes_n * e);
  void* d_labels = to_device(num_boxes > 0 ? labels : nullptr, boxes_n * sizeof(int32_t));
  void* d_keep = device_zeros(out_n * sizeof(int32_t));
  void* d_out = device_zeros(out_n * e);
  void* d_valid = device_zeros(static_cast<size_t>(batch) * sizeof(int32_t));
  const size_t workspace_bytes = sspnet::batched_nms_cuda_workspace_size(batch, num_boxes, params, type);
  void* workspace = workspace_bytes > 0 ? device_zeros(workspace_bytes) : nullptr;
  const Status status = sspnet::batched_nms_cuda(
      d_boxes, d_scores, static_cast<const int32_t*>(d_labels), batch, num_boxes, params, type,
      static_cast<int32_t*>(d_keep), d_out, static_cast<int32_t*>(d_valid), workspace,
      workspace_bytes, nullptr);
  to_host(keep, d_keep, out_n * sizeof(int32_t));
  to_host(out_scores, d_out, out_n * e);
  to_host(num_valid, d_valid, static_cast<size_t>(batch) * sizeof(int32_t));
  cudaFree(d_boxes);
  cudaFree(d_scores);
  cudaFree(d_labels);
  cudaFree(workspace);
  return finish(status);
}

int coc_roi_forward_cpu(int num_levels, int64_t batch, int64_t channels, const int64_t* heights,
                        const int64_t* widths, const float* scales, const void* const* features,
                        const void* rois, int64_t num_rois, int output_height, int output_width,
                        int sampling_ratio, int aligned, float finest_scale, int dtype,
                        void* output) {
  return static_cast<int>(sspnet::multi_level_roi_align_forward_cpu(
      pyramid_of(num_levels, batch, channels, heights, widths, scales), features, rois, num_rois,
      roi_params(output_height, output_width, sampling_ratio, aligned, finest_scale),
      static_cast<DataType>(dtype), output, 1));
}

int coc_roi_backward_cpu(int num_levels, int64_t batch, int64_t channels, const int64_t* heights,
                         const int64_t* widths, const float* scales, const void* grad_output,
                         const void* rois, int64_t num_rois, int output_height, int output_width,
                         int sampling_ratio, int aligned, float finest_scale, int dtype,
                         void* const* grad_features) {
  return static_cast<int>(sspnet::multi_level_roi_align_backward_cpu(
      pyramid_of(num_levels, batch, channels, heights, widths, scales), grad_output, rois,
      num_rois, roi_params(output_height, output_width, sampling_ratio, aligned, finest_scale),
      static_cast<DataType>(dtype), grad_features, 1));
}

int coc_roi_forward_cuda(int num_levels, int64_t batch, int64_t channels, const int64_t* heights,
                         const int64_t* widths, const float* scales, const void* const* features,
                         const void* rois, int roi_dtype, int64_t num_rois, int output_height,
                         int output_width, int sampling_ratio, int aligned, float finest_scale,
                         int dtype, void* output) {
  const sspnet::FeaturePyramid pyramid =
      pyramid_of(num_levels, batch, channels, heights, widths, scales);
  const sspnet::RoIAlignParams params =
      roi_params(output_height, output_width, sampling_ratio, aligned, finest_scale);
  std::vector<void*> d_features(sspnet::kMaxPyramidLevels, nullptr);
  for (int l = 0; l < num_levels && l < sspnet::kMaxPyramidLevels; ++l) {
    d_features[l] = to_device(features[l], level_bytes(pyramid, l, dtype));
  }
  void* d_rois = to_device(rois, static_cast<size_t>(num_rois) * 5 * element_bytes(roi_dtype));
  const size_t out_bytes =
      static_cast<size_t>(num_rois * channels * output_height * output_width) * element_bytes(dtype);
  void* d_out = device_zeros(out_bytes);
  const Status status = sspnet::multi_level_roi_align_forward_cuda(
      pyramid, d_features.data(), d_rois, static_cast<DataType>(roi_dtype), num_rois, params,
      static_cast<DataType>(dtype), d_out, nullptr);
  to_host(output, d_out, out_bytes);
  for (void* p : d_features) cudaFree(p);
  cudaFree(d_rois);
  return finish(status);
}

int coc_roi_backward_cuda(int num_levels, int64_t batch, int64_t channels, const int64_t* heights,
                          const int64_t* widths, const float* scales, const void* grad_output,
                          const void* rois, int64_t num_rois, int output_height, int output_width,
                          int sampling_ratio, int aligned, float finest_scale, int dtype,
                          void* const* grad_features) {
  const sspnet::FeaturePyramid pyramid =
      pyramid_of(num_levels, batch, channels, heights, widths, scales);
  const sspnet::RoIAlignParams params =
      roi_params(output_height, output_width, sampling_ratio, aligned, finest_scale);
  const size_t grad_bytes =
      static_cast<size_t>(num_rois * channels * output_height * output_width) * element_bytes(dtype);
  void* d_grad = to_device(grad_output, grad_bytes);
  void* d_rois = to_device(rois, static_cast<size_t>(num_rois) * 5 * element_bytes(dtype));
  std::vector<void*> d_features(sspnet::kMaxPyramidLevels, nullptr);
  for (int l = 0; l < num_levels && l < sspnet::kMaxPyramidLevels; ++l) {
    d_features[l] = to_device(grad_features[l], level_bytes(pyramid, l, dtype));
  }
  const Status status = sspnet::multi_level_roi_align_backward_cuda(
      pyramid, d_grad, d_rois, num_rois, params, static_cast<DataType>(dtype), d_features.data(),
      nullptr);
  for (int l = 0; l < num_levels && l < sspnet::kMaxPyramidLevels; ++l) {
    to_host(grad_features[l], d_features[l], level_bytes(pyramid, l, dtype));
  }
  cudaFree(d_grad);
  cudaFree(d_rois);
  return finish(status);
}

}  // extern "C"
