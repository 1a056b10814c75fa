// Multi-level RoIAlign on the CPU (fp32, fp64), OpenMP-parallel.
//
// The bilinear weights of RoIAlign are separable. A bin's value is
//     sum_{iy, ix} wy_iy(y) * wx_ix(x) * F[y][x] / count
//   = sum_y Wy(y) * sum_x Wx(x) * F[y][x],   Wy = sum_iy wy_iy / count,  Wx = sum_ix wx_ix,
// so per RoI we precompute, once for all channels, the few (row, weight) "taps" of every output
// row and the (column, weight) taps of every output column. Per channel we then
//   1. interpolate along x:  G[row][pw] = sum over the x taps of pw of  w * F[row][x]
//      for each distinct feature row any output row needs, and
//   2. combine along y:      out[ph][pw] = sum over the y taps of ph of  w * G[row][pw].
// Samples that share a pixel (small bins, adjacent bins) are loaded and multiplied once instead of
// four times per sample as in torchvision, and there is no per-level gather/scatter of RoIs, no
// zero-filled intermediate tensors, and all threads work (torchvision's CPU kernel is serial).
// Results equal torchvision's up to float rounding (the sums are associated differently).
//
// Parallel structure: the taps of a chunk of RoIs are built first (in parallel over RoIs); then
// the threads take channel blocks and sweep all RoIs of the chunk. In the forward pass a block may
// also be split by RoI ranges when there are few channels (outputs stay disjoint). In the backward
// pass (the transpose of the two steps) a channel block is the unit of work, so no two threads
// ever add into the same gradient element: no atomics, and the summation order does not depend
// on the thread count (deterministic gradients).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "multi_level_roi_align.h"
#include "multi_level_roi_align_device.h"

namespace sspnet {
namespace {

using roi_align_detail::axis_sample;
using roi_align_detail::AxisSample;
using roi_align_detail::roi_geometry;
using roi_align_detail::RoIGeometry;
using roi_align_detail::sample_coordinate;

// One feature row (or column) an output bin reads, with its summed bilinear weight.
template <typename T>
struct Tap {
  int32_t index;  // x taps: feature column; y taps: slot in RoITaps::rows
  T weight;
};

// Taps of one axis, the same number for every output bin (padded with zero weights) so that the
// per-channel loops run a fixed trip count per RoI: output bin p reads taps[p * per_bin + k].
template <typename T>
struct AxisTaps {
  std::vector<Tap<T>> taps;
  int per_bin = 0;

  void build(T start, T bin_size, int grid, int bins, int64_t size, T scale) {
    // Pass 1: the merged taps of each bin, variable count.
    merged_.clear();
    begin_.assign(1, 0);
    for (int p = 0; p < bins; ++p) {
      const size_t first = merged_.size();
      for (int i = 0; i < grid; ++i) {
        const AxisSample<T> s = axis_sample(sample_coordinate(start, p, bin_size, i, grid), size);
        if (!s.inside) continue;
        add(first, s.low, s.low_weight * scale);
        add(first, s.high, s.high_weight * scale);
      }
      begin_.push_back(static_cast<int32_t>(merged_.size()));
    }
    // Pass 2: pad every bin to the longest one.
    per_bin = 0;
    for (int p = 0; p < bins; ++p) per_bin = std::max(per_bin, begin_[p + 1] - begin_[p]);
    taps.assign(static_cast<size_t>(bins) * per_bin, Tap<T>{0, T(0)});
    for (int p = 0; p < bins; ++p) {
      std::copy(merged_.begin() + begin_[p], merged_.begin() + begin_[p + 1],
                taps.begin() + static_cast<size_t>(p) * per_bin);
    }
  }

 private:
  // The samples of a bin lie at increasing coordinates, so a pixel shared by two samples is one
  // of the last two taps: merge it there. (A missed merge, e.g. in a reversed RoI, only costs a
  // duplicate tap, never a wrong result.)
  void add(size_t first, int index, T weight) {
    if (weight == T(0)) return;  // exact pixel hits: skip the neighbour (also avoids 0 * inf)
    for (size_t t = merged_.size(); t > first && t + 2 > merged_.size(); --t) {
      if (merged_[t - 1].index == index) {
        merged_[t - 1].weight += weight;
        return;
      }
    }
    merged_.push_back(Tap<T>{index, weight});
  }

  std::vector<Tap<T>> merged_;
  std::vector<int32_t> begin_;
};

// Everything about one RoI that all channels share.
template <typename T>
struct RoITaps {
  bool valid = false;  // false: the output row is all zeros
  int level = 0;
  int64_t batch = 0;
  AxisTaps<T> x;              // per output column: feature columns
  AxisTaps<T> y;              // per output row: slots into `rows`; weights include 1 / count
  std::vector<int32_t> rows;  // distinct feature rows needed, ascending

  void build(const T* roi, const FeaturePyramid& pyramid, const RoIAlignParams& params) {
    const RoIGeometry<T> g =
        roi_geometry<T>(roi[0], roi[1], roi[2], roi[3], roi[4], pyramid, params);
    valid = g.valid;
    level = g.level;
    batch = g.batch;
    if (!valid) return;
    const int64_t height = pyramid.height[level], width = pyramid.width[level];
    x.build(g.start_w, g.bin_w, g.grid_w, params.output_width, width, T(1));
    y.build(g.start_h, g.bin_h, g.grid_h, params.output_height, height, T(1) / g.count);
    rows.clear();
    for (const Tap<T>& tap : y.taps) {
      if (tap.weight != T(0)) rows.push_back(tap.index);  // real taps; padding has weight 0
    }
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    for (Tap<T>& tap : y.taps) {  // padding taps end up at slot 0, a real row, with weight 0
      const auto slot = std::lower_bound(rows.begin(), rows.end(), tap.index) - rows.begin();
      tap.index = tap.weight == T(0) ? 0 : static_cast<int32_t>(slot);
    }
  }
};

int resolve_threads(int num_threads) {
#ifdef _OPENMP
  return num_threads > 0 ? num_threads : omp_get_max_threads();
#else
  (void)num_threads;
  return 1;
#endif
}

// g[pw] = sum of the x taps of output column pw applied to one feature row; K taps per column
// (a compile-time K unrolls the sums; K = 0 is the generic runtime-count version).
template <int K, typename T>
void interpolate_row(const Tap<T>* __restrict__ taps, int taps_per_column,
                     const T* __restrict__ row, int output_width, T* __restrict__ g) {
  const int k_count = K > 0 ? K : taps_per_column;
  for (int pw = 0; pw < output_width; ++pw) {
    const Tap<T>* tap = taps + pw * k_count;
    T sum = 0;
    for (int k = 0; k < k_count; ++k) {
      sum += tap[k].weight * row[tap[k].index];
    }
    g[pw] = sum;
  }
}

template <int K, typename T>
void interpolate_rows(const RoITaps<T>& r, const T* plane, int64_t width, int output_width,
                      T* rows_x) {
  for (size_t s = 0; s < r.rows.size(); ++s) {
    interpolate_row<K>(r.x.taps.data(), r.x.per_bin, plane + int64_t{r.rows[s]} * width,
                       output_width, rows_x + s * output_width);
  }
}

// out[oh][ow] of one channel: plane is that channel's [H, W] map; scratch: rows_x [rows][ow],
// sums [ow].
template <typename T>
void pool_channel(const RoITaps<T>& r, const T* plane, int64_t width, int output_height,
                  int output_width, T* __restrict__ rows_x, T* __restrict__ sums,
                  T* __restrict__ out) {
  switch (r.x.per_bin) {  // 2 or 3 for most RoIs
    case 1: interpolate_rows<1>(r, plane, width, output_width, rows_x); break;
    case 2: interpolate_rows<2>(r, plane, width, output_width, rows_x); break;
    case 3: interpolate_rows<3>(r, plane, width, output_width, rows_x); break;
    case 4: interpolate_rows<4>(r, plane, width, output_width, rows_x); break;
    default: interpolate_rows<0>(r, plane, width, output_width, rows_x); break;
  }
  // Sum in the scratch row `sums` and write each output row once: `out` is freshly allocated,
  // read-modify-write on it costs a cache miss per line.
  const Tap<T>* y_taps = r.y.taps.data();
  const int ky = r.y.per_bin;
  for (int ph = 0; ph < output_height; ++ph) {
    for (int pw = 0; pw < output_width; ++pw) sums[pw] = 0;
    for (int k = 0; k < ky; ++k) {
      const T w = y_taps[ph * ky + k].weight;
      const T* g = rows_x + int64_t{y_taps[ph * ky + k].index} * output_width;
      for (int pw = 0; pw < output_width; ++pw) sums[pw] += w * g[pw];
    }
    std::copy(sums, sums + output_width, out + int64_t{ph} * output_width);
  }
}

// The transpose of pool_channel: adds the gradient of out into plane.
template <typename T>
void unpool_channel(const RoITaps<T>& r, const T* grad, int64_t width, int output_height,
                    int output_width, T* rows_x, T* plane) {
  std::fill(rows_x, rows_x + r.rows.size() * output_width, T(0));
  const Tap<T>* y_taps = r.y.taps.data();
  const int ky = r.y.per_bin;
  for (int ph = 0; ph < output_height; ++ph) {
    const T* go = grad + int64_t{ph} * output_width;
    for (int k = 0; k < ky; ++k) {
      const Tap<T>& tap = y_taps[ph * ky + k];
      T* g = rows_x + int64_t{tap.index} * output_width;
      for (int pw = 0; pw < output_width; ++pw) g[pw] += tap.weight * go[pw];
    }
  }
  const Tap<T>* x_taps = r.x.taps.data();
  const int kx = r.x.per_bin;
  for (size_t s = 0; s < r.rows.size(); ++s) {
    T* row = plane + int64_t{r.rows[s]} * width;
    const T* g = rows_x + s * output_width;
    for (int pw = 0; pw < output_width; ++pw) {
      const Tap<T>* tap = x_taps + pw * kx;
      for (int k = 0; k < kx; ++k) {
        row[tap[k].index] += tap[k].weight * g[pw];
      }
    }
  }
}

// Channels processed together for all RoIs of a chunk: their planes (8 x 2 images x 4 levels of
// a 640x512 input are ~1.7 MB) stay in L2 and in the TLB while every RoI of the chunk reads them,
// instead of each RoI jumping H * W floats (a new page) from channel to channel.
constexpr int64_t kChannelBlock = 2;
// RoIs whose taps are computed up front and kept while the channel blocks sweep over them.
constexpr int64_t kRoIChunk = 2048;

// Channels per block: kChannelBlock, smaller when there are too few channels for the threads.
int64_t channel_block_size(int64_t channels, int threads) {
  return std::max<int64_t>(1, std::min<int64_t>(kChannelBlock, channels / (4 * int64_t{threads})));
}

template <typename T>
void forward(const FeaturePyramid& pyramid, const T* const* features, const T* rois,
             int64_t num_rois, const RoIAlignParams& params, T* output, int num_threads) {
  const int64_t channels = pyramid.channels;
  const int64_t bins = int64_t{params.output_height} * params.output_width;
  const int64_t block = channel_block_size(channels, num_threads);
  const int64_t channel_blocks = (channels + block - 1) / block;
  std::vector<RoITaps<T>> plans(static_cast<size_t>(std::min(num_rois, kRoIChunk)));

  for (int64_t chunk_begin = 0; chunk_begin < num_rois; chunk_begin += kRoIChunk) {
    const int64_t chunk = std::min(kRoIChunk, num_rois - chunk_begin);
    // Few channel blocks for many threads: split the RoIs too (outputs stay disjoint).
    const int64_t roi_parts =
        std::min(chunk, std::max<int64_t>(1, 4 * int64_t{num_threads} / channel_blocks));
    const int64_t items = channel_blocks * roi_parts;
#pragma omp parallel num_threads(num_threads)
    {
#pragma omp for schedule(dynamic, 16)
      for (int64_t i = 0; i < chunk; ++i) {
        plans[i].build(rois + (chunk_begin + i) * 5, pyramid, params);
      }
      std::vector<T> rows_x;
#pragma omp for schedule(dynamic, 1)
      for (int64_t item = 0; item < items; ++item) {
        const int64_t c_begin = (item / roi_parts) * block;
        const int64_t c_end = std::min(channels, c_begin + block);
        const int64_t part = item % roi_parts;
        for (int64_t i = chunk * part / roi_parts; i < chunk * (part + 1) / roi_parts; ++i) {
          const RoITaps<T>& plan = plans[i];
          T* out = output + (chunk_begin + i) * channels * bins;
          if (!plan.valid) {
            std::memset(out + c_begin * bins, 0, sizeof(T) * (c_end - c_begin) * bins);
            continue;
          }
          const int64_t plane_size = pyramid.height[plan.level] * pyramid.width[plan.level];
          const T* image = features[plan.level] + plan.batch * channels * plane_size;
          rows_x.resize(plan.rows.size() * params.output_width + params.output_width);
          T* sums = rows_x.data() + plan.rows.size() * params.output_width;
          for (int64_t c = c_begin; c < c_end; ++c) {
            pool_channel(plan, image + c * plane_size, pyramid.width[plan.level],
                         params.output_height, params.output_width, rows_x.data(), sums,
                         out + c * bins);
          }
        }
      }
    }
  }
}

template <typename T>
void backward(const FeaturePyramid& pyramid, const T* grad_output, const T* rois, int64_t num_rois,
              const RoIAlignParams& params, T* const* grad_features, int num_threads) {
  const int64_t channels = pyramid.channels;
  const int64_t bins = int64_t{params.output_height} * params.output_width;
  const int64_t block = channel_block_size(channels, num_threads);
  const int64_t channel_blocks = (channels + block - 1) / block;
  std::vector<RoITaps<T>> plans(static_cast<size_t>(std::min(num_rois, kRoIChunk)));

  for (int64_t chunk_begin = 0; chunk_begin < num_rois; chunk_begin += kRoIChunk) {
    const int64_t chunk = std::min(kRoIChunk, num_rois - chunk_begin);
#pragma omp parallel num_threads(num_threads)
    {
#pragma omp for schedule(dynamic, 16)
      for (int64_t i = 0; i < chunk; ++i) {
        plans[i].build(rois + (chunk_begin + i) * 5, pyramid, params);
      }
      std::vector<T> rows_x;
      // A channel block is one work item: only its thread writes those gradient planes.
#pragma omp for schedule(dynamic, 1)
      for (int64_t b = 0; b < channel_blocks; ++b) {
        const int64_t c_begin = b * block;
        const int64_t c_end = std::min(channels, c_begin + block);
        for (int64_t i = 0; i < chunk; ++i) {
          const RoITaps<T>& plan = plans[i];
          if (!plan.valid) continue;
          const int64_t plane_size = pyramid.height[plan.level] * pyramid.width[plan.level];
          T* image = grad_features[plan.level] + plan.batch * channels * plane_size;
          const T* grad = grad_output + (chunk_begin + i) * channels * bins;
          rows_x.resize(plan.rows.size() * params.output_width);
          for (int64_t c = c_begin; c < c_end; ++c) {
            unpool_channel(plan, grad + c * bins, pyramid.width[plan.level], params.output_height,
                           params.output_width, rows_x.data(), image + c * plane_size);
          }
        }
      }
    }
  }
}

Status check_common(const FeaturePyramid& pyramid, const RoIAlignParams& params, DataType dtype,
                    int64_t num_rois) {
  const Status status = validate(pyramid, params);
  if (status != Status::kOk) return status;
  if (num_rois < 0) return Status::kInvalidArgument;
  if (dtype != DataType::kFloat32 && dtype != DataType::kFloat64) return Status::kUnsupportedType;
  return Status::kOk;
}

}  // namespace

Status multi_level_roi_align_forward_cpu(const FeaturePyramid& pyramid, const void* const* features,
                                         const void* rois, int64_t num_rois,
                                         const RoIAlignParams& params, DataType dtype,
                                         void* output, int num_threads) {
  const Status status = check_common(pyramid, params, dtype, num_rois);
  if (status != Status::kOk || num_rois == 0) return status;
  const int threads = resolve_threads(num_threads);
  if (dtype == DataType::kFloat32) {
    forward(pyramid, reinterpret_cast<const float* const*>(features),
            static_cast<const float*>(rois), num_rois, params, static_cast<float*>(output),
            threads);
  } else {
    forward(pyramid, reinterpret_cast<const double* const*>(features),
            static_cast<const double*>(rois), num_rois, params, static_cast<double*>(output),
            threads);
  }
  return Status::kOk;
}

Status multi_level_roi_align_backward_cpu(const FeaturePyramid& pyramid, const void* grad_output,
                                          const void* rois, int64_t num_rois,
                                          const RoIAlignParams& params, DataType dtype,
                                          void* const* grad_features, int num_threads) {
  const Status status = check_common(pyramid, params, dtype, num_rois);
  if (status != Status::kOk || num_rois == 0) return status;
  const int threads = resolve_threads(num_threads);
  if (dtype == DataType::kFloat32) {
    backward(pyramid, static_cast<const float*>(grad_output), static_cast<const float*>(rois),
             num_rois, params, reinterpret_cast<float* const*>(grad_features), threads);
  } else {
    backward(pyramid, static_cast<const double*>(grad_output), static_cast<const double*>(rois),
             num_rois, params, reinterpret_cast<double* const*>(grad_features), threads);
  }
  return Status::kOk;
}

}  // namespace sspnet
