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
// four times per sample as in torchvision; the taps of an output column are held in registers
// while they are applied to a block of channels; there is no per-level gather/scatter of RoIs, no
// zero-filled intermediate tensor, and all threads work (torchvision's CPU kernel is serial).
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
  std::vector<int32_t> rows;         // distinct feature rows needed, ascending
  std::vector<int64_t> row_offsets;  // rows[s] * W: where row s starts in a feature plane

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
    row_offsets.resize(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) row_offsets[i] = rows[i] * width;
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

// The per-channel work of one RoI, for a block of channels at once. Loop order: the taps of one
// output column (or row) are loaded into registers once and applied to every feature row and
// every channel of the block, so the inner loops do one feature load per multiply-add.
// K is the number of taps per output bin as a compile-time constant (unrolled, in registers);
// K = 0 is the generic version with the count read at run time.
//
// g: scratch [channels][rows][output_width] with g[c][s][pw] = x-interpolation of row s.

template <int K, typename T>
void interpolate_x(const RoITaps<T>& r, const T* image, int64_t plane_size, int64_t channels,
                   int output_width, T* __restrict__ g) {
  const int k_count = K > 0 ? K : r.x.per_bin;
  const int64_t rows = static_cast<int64_t>(r.rows.size());
  const int64_t* row_offsets = r.row_offsets.data();
  for (int pw = 0; pw < output_width; ++pw) {
    const Tap<T>* taps = r.x.taps.data() + pw * k_count;
    T weight[K > 0 ? K : 1];
    int32_t column[K > 0 ? K : 1];
    for (int k = 0; k < K; ++k) {
      weight[k] = taps[k].weight;
      column[k] = taps[k].index;
    }
    for (int64_t c = 0; c < channels; ++c) {
      const T* plane = image + c * plane_size;
      T* out = g + c * rows * output_width + pw;
      for (int64_t s = 0; s < rows; ++s) {
        const T* row = plane + row_offsets[s];
        T sum = 0;
        if (K > 0) {
          for (int k = 0; k < K; ++k) sum += weight[k] * row[column[k]];
        } else {
          for (int k = 0; k < k_count; ++k) sum += taps[k].weight * row[taps[k].index];
        }
        out[s * output_width] = sum;
      }
    }
  }
}

// out[c][ph][pw] = sum over the y taps of ph of  w * g[c][slot][pw]   (out: [channels][oh][ow]).
template <int K, typename T>
void combine_y(const RoITaps<T>& r, const T* __restrict__ g, int64_t channels, int output_height,
               int output_width, T* __restrict__ out) {
  const int k_count = K > 0 ? K : r.y.per_bin;
  const int64_t rows = static_cast<int64_t>(r.rows.size());
  const int64_t bins = int64_t{output_height} * output_width;
  for (int ph = 0; ph < output_height; ++ph) {
    const Tap<T>* taps = r.y.taps.data() + ph * k_count;
    T weight[K > 0 ? K : 1];
    int64_t row_start[K > 0 ? K : 1];
    for (int k = 0; k < K; ++k) {
      weight[k] = taps[k].weight;
      row_start[k] = int64_t{taps[k].index} * output_width;
    }
    for (int64_t c = 0; c < channels; ++c) {
      const T* gc = g + c * rows * output_width;
      T* o = out + c * bins + int64_t{ph} * output_width;
      for (int pw = 0; pw < output_width; ++pw) {
        T sum = 0;
        if (K > 0) {
          for (int k = 0; k < K; ++k) sum += weight[k] * gc[row_start[k] + pw];
        } else {
          for (int k = 0; k < k_count; ++k) {
            sum += taps[k].weight * gc[int64_t{taps[k].index} * output_width + pw];
          }
        }
        o[pw] = sum;  // written once: `out` is fresh memory, read-modify-write would miss
      }
    }
  }
}

// Backward of combine_y: g[c][slot][pw] = sum over (ph, taps of that slot) of w * grad[c][ph][pw]
template <typename T>
void scatter_y(const RoITaps<T>& r, const T* __restrict__ grad, int64_t channels,
               int output_height, int output_width, T* __restrict__ g) {
  const int k_count = r.y.per_bin;
  const int64_t rows = static_cast<int64_t>(r.rows.size());
  const int64_t bins = int64_t{output_height} * output_width;
  std::fill(g, g + channels * rows * output_width, T(0));
  for (int ph = 0; ph < output_height; ++ph) {
    const Tap<T>* taps = r.y.taps.data() + ph * k_count;
    for (int64_t c = 0; c < channels; ++c) {
      const T* go = grad + c * bins + int64_t{ph} * output_width;
      T* gc = g + c * rows * output_width;
      for (int k = 0; k < k_count; ++k) {
        const T w = taps[k].weight;
        T* target = gc + int64_t{taps[k].index} * output_width;
        for (int pw = 0; pw < output_width; ++pw) target[pw] += w * go[pw];
      }
    }
  }
}

// Backward of interpolate_x: adds w * g[c][s][pw] into the gradient planes.
template <int K, typename T>
void scatter_x(const RoITaps<T>& r, const T* __restrict__ g, int64_t plane_size, int64_t channels,
               int output_width, T* __restrict__ image) {
  const int k_count = K > 0 ? K : r.x.per_bin;
  const int64_t rows = static_cast<int64_t>(r.rows.size());
  const int64_t* row_offsets = r.row_offsets.data();
  for (int pw = 0; pw < output_width; ++pw) {
    const Tap<T>* taps = r.x.taps.data() + pw * k_count;
    T weight[K > 0 ? K : 1];
    int32_t column[K > 0 ? K : 1];
    for (int k = 0; k < K; ++k) {
      weight[k] = taps[k].weight;
      column[k] = taps[k].index;
    }
    for (int64_t c = 0; c < channels; ++c) {
      T* plane = image + c * plane_size;
      const T* gc = g + c * rows * output_width + pw;
      for (int64_t s = 0; s < rows; ++s) {
        T* row = plane + row_offsets[s];
        const T value = gc[s * output_width];
        if (K > 0) {
          for (int k = 0; k < K; ++k) row[column[k]] += weight[k] * value;
        } else {
          for (int k = 0; k < k_count; ++k) row[taps[k].index] += taps[k].weight * value;
        }
      }
    }
  }
}

// Pools channels [0, channels) of `image` (the RoI's level and image) into out [channels][oh][ow].
template <typename T>
void pool_block(const RoITaps<T>& r, const T* image, int64_t plane_size, int64_t channels,
                const RoIAlignParams& params, T* g, T* out) {
  const int ow = params.output_width, oh = params.output_height;
  switch (r.x.per_bin) {  // 2 or 3 for most RoIs
    case 1: interpolate_x<1>(r, image, plane_size, channels, ow, g); break;
    case 2: interpolate_x<2>(r, image, plane_size, channels, ow, g); break;
    case 3: interpolate_x<3>(r, image, plane_size, channels, ow, g); break;
    case 4: interpolate_x<4>(r, image, plane_size, channels, ow, g); break;
    default: interpolate_x<0>(r, image, plane_size, channels, ow, g); break;
  }
  switch (r.y.per_bin) {
    case 1: combine_y<1>(r, g, channels, oh, ow, out); break;
    case 2: combine_y<2>(r, g, channels, oh, ow, out); break;
    case 3: combine_y<3>(r, g, channels, oh, ow, out); break;
    case 4: combine_y<4>(r, g, channels, oh, ow, out); break;
    default: combine_y<0>(r, g, channels, oh, ow, out); break;
  }
}

// Adds the gradient of pool_block's output (grad [channels][oh][ow]) into `image`.
template <typename T>
void unpool_block(const RoITaps<T>& r, const T* grad, int64_t plane_size, int64_t channels,
                  const RoIAlignParams& params, T* g, T* image) {
  const int ow = params.output_width;
  scatter_y(r, grad, channels, params.output_height, ow, g);
  switch (r.x.per_bin) {
    case 1: scatter_x<1>(r, g, plane_size, channels, ow, image); break;
    case 2: scatter_x<2>(r, g, plane_size, channels, ow, image); break;
    case 3: scatter_x<3>(r, g, plane_size, channels, ow, image); break;
    case 4: scatter_x<4>(r, g, plane_size, channels, ow, image); break;
    default: scatter_x<0>(r, g, plane_size, channels, ow, image); break;
  }
}

// Channels processed together for all RoIs of a chunk: the taps loaded into registers serve the
// whole block, and the block's planes (8 x 2 images x 4 levels of a 640x512 input: ~1.7 MB) stay
// in L2 while every RoI of the chunk reads them. Measured on the benchmark workload: 8 beats
// 2, 16 and 32 by 5-15%.
constexpr int64_t kChannelBlock = 8;
// RoIs whose taps are computed up front and kept while the channel blocks sweep over them.
constexpr int64_t kRoIChunk = 2048;
// Below this many output values (R * C * bins) one thread does it all: starting and joining a
// thread team costs more than the work, and much more when other processes load the CPU.
constexpr int64_t kMinParallelOutputs = 16384;

int threads_for(int64_t num_rois, int64_t channels, int64_t bins, int num_threads) {
  return num_rois * channels * bins < kMinParallelOutputs ? 1 : num_threads;
}

// Channels per block: kChannelBlock, smaller when there are too few channels for the threads.
int64_t channel_block_size(int64_t channels, int threads) {
  return std::max<int64_t>(1, std::min<int64_t>(kChannelBlock, channels / (4 * int64_t{threads})));
}

template <typename T>
void forward(const FeaturePyramid& pyramid, const T* const* features, const T* rois,
             int64_t num_rois, const RoIAlignParams& params, T* output, int num_threads) {
  const int64_t channels = pyramid.channels;
  const int64_t bins = int64_t{params.output_height} * params.output_width;
  num_threads = threads_for(num_rois, channels, bins, num_threads);
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
      std::vector<T> scratch;  // pool_block's g
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
          const T* image = features[plan.level] + (plan.batch * channels + c_begin) * plane_size;
          scratch.resize((c_end - c_begin) * plan.rows.size() * params.output_width);
          pool_block(plan, image, plane_size, c_end - c_begin, params, scratch.data(),
                     out + c_begin * bins);
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
  num_threads = threads_for(num_rois, channels, bins, num_threads);
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
      std::vector<T> scratch;  // pool_block's g
      // A channel block is one work item: only its thread writes those gradient planes.
#pragma omp for schedule(dynamic, 1)
      for (int64_t b = 0; b < channel_blocks; ++b) {
        const int64_t c_begin = b * block;
        const int64_t c_end = std::min(channels, c_begin + block);
        for (int64_t i = 0; i < chunk; ++i) {
          const RoITaps<T>& plan = plans[i];
          if (!plan.valid) continue;
          const int64_t plane_size = pyramid.height[plan.level] * pyramid.width[plan.level];
          T* image = grad_features[plan.level] + (plan.batch * channels + c_begin) * plane_size;
          const T* grad = grad_output + ((chunk_begin + i) * channels + c_begin) * bins;
          scratch.resize((c_end - c_begin) * plan.rows.size() * params.output_width);
          unpool_block(plan, grad, plane_size, c_end - c_begin, params, scratch.data(), image);
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
