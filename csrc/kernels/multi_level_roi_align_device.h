// Per-RoI arithmetic shared by the CPU and CUDA multi-level RoIAlign kernels: the level rule,
// the sampling geometry and one axis of the bilinear interpolation. Every formula mirrors
// torchvision's roi_align (csrc/ops/cpu/roi_align_kernel.cpp) operation by operation, so both
// kernels agree with torchvision to rounding. Plain C++17 / CUDA, no framework headers.
#pragma once

#include <math.h>

#include <cstdint>

#include "multi_level_roi_align.h"

#if defined(__CUDACC__)
#define SSPNET_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define SSPNET_HOST_DEVICE inline
#endif

namespace sspnet {
namespace roi_align_detail {

// Upper bound of the adaptive sampling grid (samples per bin and axis). torchvision has none and
// overflows `int` for absurd finite coordinates (1e30). 128 samples x 7 bins = 896 feature pixels
// per axis: at stride 32 a 28672-pixel RoI, far beyond any input this toolkit processes, so real
// RoIs are never affected; absurd ones stay finite in time instead of hanging or overflowing.
constexpr int kMaxAdaptiveGrid = 128;

SSPNET_HOST_DEVICE float math_sqrt(float x) { return sqrtf(x); }
SSPNET_HOST_DEVICE double math_sqrt(double x) { return sqrt(x); }
SSPNET_HOST_DEVICE float math_log2(float x) { return log2f(x); }
SSPNET_HOST_DEVICE double math_log2(double x) { return log2(x); }
SSPNET_HOST_DEVICE float math_floor(float x) { return floorf(x); }
SSPNET_HOST_DEVICE double math_floor(double x) { return floor(x); }
SSPNET_HOST_DEVICE float math_ceil(float x) { return ceilf(x); }
SSPNET_HOST_DEVICE double math_ceil(double x) { return ceil(x); }

// x - x is 0 for finite x and NaN for +-inf and NaN (valid without -ffast-math, never used here).
template <typename T>
SSPNET_HOST_DEVICE bool is_finite(T x) {
  return x - x == T(0);
}

// The pyramid level of a RoI (mmdetection's SingleRoIExtractor.map_roi_levels):
// floor(log2(sqrt(area) / finest_scale + 1e-6)) clamped to [0, num_levels - 1]. A negative or
// NaN area counts as 0 (level 0). T is the arithmetic type: float for fp32/fp16, double for fp64.
template <typename T>
SSPNET_HOST_DEVICE int roi_level(T x1, T y1, T x2, T y2, T finest_scale, int num_levels) {
  T area = (x2 - x1) * (y2 - y1);
  if (!(area > T(0))) area = T(0);
  const T level = math_floor(math_log2(math_sqrt(area) / finest_scale + T(1e-6)));
  if (!(level > T(0))) return 0;  // also catches NaN
  if (level >= T(num_levels - 1)) return num_levels - 1;
  return static_cast<int>(level);
}

// Where and how densely one RoI is sampled, in the coordinates of its pyramid level.
template <typename T>
struct RoIGeometry {
  bool valid = false;  // false: bad batch index or non-finite coordinate -> all-zero output row
  int level = 0;
  int64_t batch = 0;
  T start_h = 0, start_w = 0;  // top-left corner in feature-map pixels
  T bin_h = 0, bin_w = 0;      // size of one output bin
  int grid_h = 0, grid_w = 0;  // samples per bin and axis; a bin with grid <= 0 is 0 (torchvision)
  T count = 1;                 // divisor of the average: max(grid_h * grid_w, 1)
};

// torchvision: ceil(roi_size / output_size) samples per bin for sampling_ratio <= 0.
template <typename T>
SSPNET_HOST_DEVICE int adaptive_grid(T bin_size) {
  const T grid = math_ceil(bin_size);
  if (!(grid > T(0))) return 0;  // empty/negative RoI (aligned mode): zeros, like torchvision
  if (grid > T(kMaxAdaptiveGrid)) return kMaxAdaptiveGrid;
  return static_cast<int>(grid);
}

// Geometry of the RoI (batch_index, x1, y1, x2, y2), given in input pixels.
template <typename T>
SSPNET_HOST_DEVICE RoIGeometry<T> roi_geometry(T batch_index, T x1, T y1, T x2, T y2,
                                               const FeaturePyramid& pyramid,
                                               const RoIAlignParams& params) {
  RoIGeometry<T> g;
  if (!(is_finite(x1) && is_finite(y1) && is_finite(x2) && is_finite(y2))) return g;
  // (-1, N): truncation toward zero maps it to 0 .. N-1, as torchvision's int cast does.
  if (!(batch_index > T(-1) && batch_index < T(pyramid.batch))) return g;
  g.valid = true;
  g.batch = static_cast<int64_t>(batch_index);
  g.level = roi_level(x1, y1, x2, y2, static_cast<T>(params.finest_scale), pyramid.num_levels);

  const T scale = static_cast<T>(pyramid.spatial_scale[g.level]);
  const T offset = params.aligned ? T(0.5) : T(0);
  g.start_w = x1 * scale - offset;
  g.start_h = y1 * scale - offset;
  T roi_w = x2 * scale - offset - g.start_w;
  T roi_h = y2 * scale - offset - g.start_h;
  if (!params.aligned) {  // legacy mode: force malformed RoIs to be at least 1x1
    roi_w = roi_w > T(1) ? roi_w : T(1);
    roi_h = roi_h > T(1) ? roi_h : T(1);
  }
  g.bin_h = roi_h / static_cast<T>(params.output_height);
  g.bin_w = roi_w / static_cast<T>(params.output_width);
  g.grid_h = params.sampling_ratio > 0 ? params.sampling_ratio : adaptive_grid(g.bin_h);
  g.grid_w = params.sampling_ratio > 0 ? params.sampling_ratio : adaptive_grid(g.bin_w);
  const int samples = g.grid_h * g.grid_w;
  g.count = static_cast<T>(samples > 1 ? samples : 1);
  return g;
}

// Coordinate of sample `i` of bin `bin` along one axis (torchvision's operation order).
template <typename T>
SSPNET_HOST_DEVICE T sample_coordinate(T start, int bin, T bin_size, int i, int grid) {
  return start + static_cast<T>(bin) * bin_size +
         static_cast<T>(i + .5f) * bin_size / static_cast<T>(grid);
}

// One axis of bilinear interpolation at `coord` on an axis of `size` pixels.
template <typename T>
struct AxisSample {
  bool inside = false;  // false: the sample lies outside [-1, size] and contributes 0
  int low = 0, high = 0;
  T low_weight = 0, high_weight = 0;
};

template <typename T>
SSPNET_HOST_DEVICE AxisSample<T> axis_sample(T coord, int64_t size) {
  AxisSample<T> s;
  if (coord < T(-1) || coord > static_cast<T>(size)) return s;
  s.inside = true;
  if (coord <= T(0)) coord = T(0);
  s.low = static_cast<int>(coord);
  if (s.low >= size - 1) {
    s.low = s.high = static_cast<int>(size - 1);
    coord = static_cast<T>(s.low);
  } else {
    s.high = s.low + 1;
  }
  const T frac = coord - static_cast<T>(s.low);
  s.high_weight = frac;
  s.low_weight = T(1) - frac;
  return s;
}

}  // namespace roi_align_detail
}  // namespace sspnet
