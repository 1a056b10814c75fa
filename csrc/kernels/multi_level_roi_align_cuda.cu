// Multi-level RoIAlign on CUDA: one launch covers every RoI and every pyramid level.
//
// One thread per output (or grad_output) element (r, c, ph, pw). Each thread derives its RoI's
// level and sampling geometry itself (a handful of flops, shared helpers in
// multi_level_roi_align_device.h), so there is no pre-pass, no workspace and no per-level launch.
// Level base pointers and sizes travel by value in the kernel arguments. Storage may be fp16,
// fp32 or fp64; arithmetic is fp32 (fp64 for fp64). The backward adds with atomicAdd.
//
// No torch headers: the host compiler flags of torch extensions (__CUDA_NO_HALF_CONVERSIONS__ ...)
// are respected by converting fp16 explicitly.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "multi_level_roi_align.h"
#include "multi_level_roi_align_device.h"

namespace sspnet {
namespace {

using roi_align_detail::axis_sample;
using roi_align_detail::AxisSample;
using roi_align_detail::roi_geometry;
using roi_align_detail::RoIGeometry;
using roi_align_detail::sample_coordinate;

// Arithmetic type of a storage type.
template <typename T> struct Accumulate { using type = float; };
template <> struct Accumulate<double> { using type = double; };

__device__ __forceinline__ float load(const float* p) { return __ldg(p); }
__device__ __forceinline__ double load(const double* p) { return __ldg(p); }
__device__ __forceinline__ float load(const __half* p) { return __half2float(__ldg(p)); }

__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(double* p, double v) { *p = v; }
__device__ __forceinline__ void store(__half* p, float v) { *p = __float2half_rn(v); }

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 700
#error "multi-level RoIAlign needs sm_70 or newer (native fp16 and fp64 atomicAdd)"
#endif

__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(__half* p, float v) { atomicAdd(p, __float2half_rn(v)); }

// Per-level base pointers, passed by value with the launch (no device-side pointer table).
template <typename T>
struct LevelPointers {
  T* data[kMaxPyramidLevels];
};

template <typename T, typename A>
__device__ __forceinline__ RoIGeometry<A> geometry_of(const T* roi, const FeaturePyramid& pyramid,
                                                     const RoIAlignParams& params) {
  return roi_geometry<A>(load(roi), load(roi + 1), load(roi + 2), load(roi + 3), load(roi + 4),
                         pyramid, params);
}

// R: the RoIs' storage type (T, or float next to fp16 features).
template <typename T, typename R = T>
__global__ void forward_kernel(FeaturePyramid pyramid, LevelPointers<const T> features,
                               const R* __restrict__ rois, int64_t total, RoIAlignParams params,
                               T* __restrict__ output) {
  using A = typename Accumulate<T>::type;
  const int oh = params.output_height, ow = params.output_width;
  for (int64_t index = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; index < total;
       index += int64_t{gridDim.x} * blockDim.x) {
    const int pw = static_cast<int>(index % ow);
    const int ph = static_cast<int>((index / ow) % oh);
    const int64_t c = (index / (int64_t{ow} * oh)) % pyramid.channels;
    const int64_t r = index / (int64_t{ow} * oh * pyramid.channels);
    const RoIGeometry<A> g = geometry_of<R, A>(rois + r * 5, pyramid, params);
    A sum = 0;
    if (g.valid) {
      const int64_t height = pyramid.height[g.level], width = pyramid.width[g.level];
      const T* plane = features.data[g.level] + (g.batch * pyramid.channels + c) * height * width;
      for (int iy = 0; iy < g.grid_h; ++iy) {
        const AxisSample<A> y =
            axis_sample(sample_coordinate(g.start_h, ph, g.bin_h, iy, g.grid_h), height);
        if (!y.inside) continue;
        const T* row_low = plane + int64_t{y.low} * width;
        const T* row_high = plane + int64_t{y.high} * width;
        for (int ix = 0; ix < g.grid_w; ++ix) {
          const AxisSample<A> x =
              axis_sample(sample_coordinate(g.start_w, pw, g.bin_w, ix, g.grid_w), width);
          if (!x.inside) continue;
          sum += y.low_weight * x.low_weight * load(row_low + x.low) +
                 y.low_weight * x.high_weight * load(row_low + x.high) +
                 y.high_weight * x.low_weight * load(row_high + x.low) +
                 y.high_weight * x.high_weight * load(row_high + x.high);
        }
      }
      sum /= g.count;
    }
    store(output + index, sum);
  }
}

template <typename T>
__global__ void backward_kernel(FeaturePyramid pyramid, const T* __restrict__ grad_output,
                                const T* __restrict__ rois, int64_t total, RoIAlignParams params,
                                LevelPointers<T> grad_features) {
  using A = typename Accumulate<T>::type;
  const int oh = params.output_height, ow = params.output_width;
  for (int64_t index = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; index < total;
       index += int64_t{gridDim.x} * blockDim.x) {
    const int pw = static_cast<int>(index % ow);
    const int ph = static_cast<int>((index / ow) % oh);
    const int64_t c = (index / (int64_t{ow} * oh)) % pyramid.channels;
    const int64_t r = index / (int64_t{ow} * oh * pyramid.channels);
    const RoIGeometry<A> g = geometry_of<T, A>(rois + r * 5, pyramid, params);
    if (!g.valid) continue;
    const A grad_mean = load(grad_output + index) / g.count;
    if (grad_mean == A(0)) continue;  // common for masked RoIs; saves the atomics
    const int64_t height = pyramid.height[g.level], width = pyramid.width[g.level];
    T* plane = grad_features.data[g.level] + (g.batch * pyramid.channels + c) * height * width;
    for (int iy = 0; iy < g.grid_h; ++iy) {
      const AxisSample<A> y =
          axis_sample(sample_coordinate(g.start_h, ph, g.bin_h, iy, g.grid_h), height);
      if (!y.inside) continue;
      T* row_low = plane + int64_t{y.low} * width;
      T* row_high = plane + int64_t{y.high} * width;
      for (int ix = 0; ix < g.grid_w; ++ix) {
        const AxisSample<A> x =
            axis_sample(sample_coordinate(g.start_w, pw, g.bin_w, ix, g.grid_w), width);
        if (!x.inside) continue;
        atomic_add(row_low + x.low, y.low_weight * x.low_weight * grad_mean);
        atomic_add(row_low + x.high, y.low_weight * x.high_weight * grad_mean);
        atomic_add(row_high + x.low, y.high_weight * x.low_weight * grad_mean);
        atomic_add(row_high + x.high, y.high_weight * x.high_weight * grad_mean);
      }
    }
  }
}

constexpr int kThreadsPerBlock = 256;
constexpr int64_t kMaxBlocks = 1 << 20;  // grid-stride loops cover the rest

int64_t blocks_for(int64_t total) {
  const int64_t blocks = (total + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return blocks < kMaxBlocks ? blocks : kMaxBlocks;
}

template <typename T, typename P>
LevelPointers<T> level_pointers(P features, int num_levels) {
  LevelPointers<T> pointers{};
  for (int l = 0; l < num_levels; ++l) pointers.data[l] = static_cast<T*>(features[l]);
  return pointers;
}

template <typename T, typename R = T>
Status launch_forward(const FeaturePyramid& pyramid, const void* const* features, const void* rois,
                      int64_t num_rois, const RoIAlignParams& params, void* output,
                      cudaStream_t stream) {
  const int64_t total =
      num_rois * pyramid.channels * params.output_height * params.output_width;
  if (total == 0) return Status::kOk;
  forward_kernel<T, R><<<static_cast<unsigned int>(blocks_for(total)), kThreadsPerBlock, 0, stream>>>(
      pyramid, level_pointers<const T>(features, pyramid.num_levels), static_cast<const R*>(rois),
      total, params, static_cast<T*>(output));
  return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
}

template <typename T>
Status launch_backward(const FeaturePyramid& pyramid, const void* grad_output, const void* rois,
                       int64_t num_rois, const RoIAlignParams& params, void* const* grad_features,
                       cudaStream_t stream) {
  const int64_t total =
      num_rois * pyramid.channels * params.output_height * params.output_width;
  if (total == 0) return Status::kOk;
  backward_kernel<T><<<static_cast<unsigned int>(blocks_for(total)), kThreadsPerBlock, 0, stream>>>(
      pyramid, static_cast<const T*>(grad_output), static_cast<const T*>(rois), total, params,
      level_pointers<T>(grad_features, pyramid.num_levels));
  return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
}

Status check_common(const FeaturePyramid& pyramid, const RoIAlignParams& params, int64_t num_rois) {
  const Status status = validate(pyramid, params);
  if (status != Status::kOk) return status;
  return num_rois < 0 ? Status::kInvalidArgument : Status::kOk;
}

}  // namespace

Status multi_level_roi_align_forward_cuda(const FeaturePyramid& pyramid,
                                          const void* const* features, const void* rois,
                                          int64_t num_rois, const RoIAlignParams& params,
                                          DataType dtype, void* output, cudaStream_t stream) {
  const Status status = check_common(pyramid, params, num_rois);
  if (status != Status::kOk) return status;
  switch (dtype) {
    case DataType::kFloat32:
      return launch_forward<float>(pyramid, features, rois, num_rois, params, output, stream);
    case DataType::kFloat16:
      return launch_forward<__half>(pyramid, features, rois, num_rois, params, output, stream);
    case DataType::kFloat64:
      return launch_forward<double>(pyramid, features, rois, num_rois, params, output, stream);
  }
  return Status::kUnsupportedType;
}

Status multi_level_roi_align_forward_cuda(const FeaturePyramid& pyramid,
                                          const void* const* features, const void* rois,
                                          DataType roi_dtype, int64_t num_rois,
                                          const RoIAlignParams& params, DataType dtype,
                                          void* output, cudaStream_t stream) {
  if (roi_dtype == dtype) {
    return multi_level_roi_align_forward_cuda(pyramid, features, rois, num_rois, params, dtype,
                                              output, stream);
  }
  const Status status = check_common(pyramid, params, num_rois);
  if (status != Status::kOk) return status;
  if (dtype == DataType::kFloat16 && roi_dtype == DataType::kFloat32) {
    return launch_forward<__half, float>(pyramid, features, rois, num_rois, params, output, stream);
  }
  return Status::kUnsupportedType;
}

Status multi_level_roi_align_backward_cuda(const FeaturePyramid& pyramid, const void* grad_output,
                                           const void* rois, int64_t num_rois,
                                           const RoIAlignParams& params, DataType dtype,
                                           void* const* grad_features, cudaStream_t stream) {
  const Status status = check_common(pyramid, params, num_rois);
  if (status != Status::kOk) return status;
  switch (dtype) {
    case DataType::kFloat32:
      return launch_backward<float>(pyramid, grad_output, rois, num_rois, params, grad_features,
                                    stream);
    case DataType::kFloat16:
      return launch_backward<__half>(pyramid, grad_output, rois, num_rois, params, grad_features,
                                     stream);
    case DataType::kFloat64:
      return launch_backward<double>(pyramid, grad_output, rois, num_rois, params, grad_features,
                                     stream);
  }
  return Status::kUnsupportedType;
}

}  // namespace sspnet
