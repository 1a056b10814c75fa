// Batched NMS on the GPU: hard, soft-linear, soft-gaussian; class-aware or not. Semantics in
// batched_nms.h; the box arithmetic is shared with the CPU kernel (batched_nms_device.h), so both
// give the same kept boxes and, for hard NMS, bit-identical scores.
//
// Everything is enqueued on the caller's stream with the caller's workspace: no allocation, no
// synchronisation, no host read-back (TensorRT's enqueue allows none of them).
//
// Hard NMS, one image after another (the workspace holds one image):
//   1. mark_candidates: key = score if score > score_threshold else -inf; count the candidates,
//   2. CUB radix sort (stable, descending) of (key, box index): score order, ties by lower index,
//   3. gather_sorted: candidate boxes in score order (compute type) with areas and labels,
//   4. overlap_mask: bit c of word (i, w) says "box i suppresses box 64 w + c" (IoU > threshold,
//      same label, later in the order); only the upper triangle of 64x64 tiles is computed/stored,
//   5. greedy_reduce: one block walks the sorted boxes 64 at a time, ORing the rows of kept
//      boxes into a "removed" bitmap, and stops after max_output kept boxes.
// Soft-NMS: one block per image keeps the current scores in the workspace; each step is one
// parallel pass that decays the scores (and finds the next maximum on the way) plus a block
// argmax reduction (ties -> lower index).
#include <cub/device/device_radix_sort.cuh>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <limits>

#include "batched_nms.h"
#include "batched_nms_device.h"

namespace sspnet {
namespace {

using nms_detail::box_area;
using nms_detail::box_iou;
using nms_detail::gaussian_weight;
using nms_detail::linear_weight;

constexpr int kTile = 64;             // boxes per mask word
constexpr int kPrepareThreads = 256;
constexpr int kReduceThreads = 256;
constexpr int kSoftThreads = 512;
constexpr size_t kAlignment = 256;    // every workspace buffer starts on this boundary
constexpr int64_t kMaxGridY = 65535;

// ---------------------------------------------------------------- storage <-> compute types

// Compute type: fp32 for fp32 / fp16 storage, fp64 for fp64 storage.
template <typename S>
struct ComputeOf {
  using type = float;
};
template <>
struct ComputeOf<double> {
  using type = double;
};

__device__ __forceinline__ float to_compute(float v) { return v; }
__device__ __forceinline__ float to_compute(__half v) { return __half2float(v); }
__device__ __forceinline__ double to_compute(double v) { return v; }

template <typename S>
__device__ __forceinline__ S from_compute(typename ComputeOf<S>::type v) {
  return static_cast<S>(v);
}
template <>
__device__ __forceinline__ __half from_compute<__half>(float v) {
  return __float2half_rn(v);
}

template <typename C>
__device__ __forceinline__ C negative_infinity() {
  return -std::numeric_limits<C>::infinity();
}

template <typename C>
struct Box {
  C x1, y1, x2, y2, area;
};

template <typename S>
__device__ __forceinline__ Box<typename ComputeOf<S>::type> load_box(const S* boxes, int64_t i) {
  using C = typename ComputeOf<S>::type;
  const C x1 = to_compute(boxes[4 * i + 0]), y1 = to_compute(boxes[4 * i + 1]);
  const C x2 = to_compute(boxes[4 * i + 2]), y2 = to_compute(boxes[4 * i + 3]);
  return {x1, y1, x2, y2, box_area(x1, y1, x2, y2)};
}

template <typename C>
__device__ __forceinline__ C iou_of(const Box<C>& a, const Box<C>& b) {
  return box_iou(a.x1, a.y1, a.x2, a.y2, a.area, b.x1, b.y1, b.x2, b.y2, b.area);
}

// ---------------------------------------------------------------- workspace layout

size_t align_up(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

int64_t mask_tiles(int64_t num_boxes) { return (num_boxes + kTile - 1) / kTile; }

// Words before row-tile `tile` in the upper-triangular mask: each of its 64 rows stores the
// words of column tiles tile .. tiles-1.
__host__ __device__ __forceinline__ int64_t mask_tile_offset(int64_t tile, int64_t tiles) {
  return kTile * (tile * tiles - tile * (tile - 1) / 2);
}

// Byte offsets of every buffer; the same function sizes the workspace and carves it up.
struct Layout {
  // hard NMS (one image at a time)
  size_t keys_in = 0, keys_out = 0, order_in = 0, order_out = 0, sort_temp = 0, count = 0;
  size_t sorted_boxes = 0, sorted_labels = 0, mask = 0, removed = 0;
  size_t sort_temp_bytes = 0;
  // soft-NMS (all images at once)
  size_t current_scores = 0;
  size_t total = 0;
};

template <typename C>
cudaError_t make_layout(int64_t batch, int64_t num_boxes, const NmsParams& params, Layout* out) {
  Layout layout;
  size_t offset = 0;
  auto take = [&offset](size_t bytes) {
    const size_t at = offset;
    offset += align_up(bytes);
    return at;
  };
  const size_t m = static_cast<size_t>(num_boxes);
  if (num_boxes == 0 || batch == 0) {
    *out = layout;
    return cudaSuccess;
  }
  if (params.method == NmsMethod::kHard) {
    size_t sort_bytes = 0;
    const cudaError_t error = cub::DeviceRadixSort::SortPairsDescending(
        nullptr, sort_bytes, static_cast<const C*>(nullptr), static_cast<C*>(nullptr),
        static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
        static_cast<int>(num_boxes));
    if (error != cudaSuccess) return error;
    const int64_t tiles = mask_tiles(num_boxes);
    layout.keys_in = take(m * sizeof(C));
    layout.keys_out = take(m * sizeof(C));
    layout.order_in = take(m * sizeof(int32_t));
    layout.order_out = take(m * sizeof(int32_t));
    layout.sort_temp_bytes = sort_bytes;
    layout.sort_temp = take(sort_bytes);
    layout.count = take(sizeof(int32_t));
    layout.sorted_boxes = take(m * sizeof(Box<C>));
    layout.sorted_labels = take(m * sizeof(int32_t));
    layout.mask = take(static_cast<size_t>(mask_tile_offset(tiles, tiles)) * sizeof(uint64_t));
    layout.removed = take(static_cast<size_t>(tiles) * sizeof(uint64_t));
  } else {
    layout.current_scores = take(static_cast<size_t>(batch) * m * sizeof(C));
  }
  layout.total = offset;
  *out = layout;
  return cudaSuccess;
}

template <typename C>
size_t workspace_bytes(int64_t batch, int64_t num_boxes, const NmsParams& params) {
  Layout layout;
  if (make_layout<C>(batch, num_boxes, params, &layout) != cudaSuccess) return 0;
  return layout.total;
}

// ---------------------------------------------------------------- hard NMS kernels

// 1. sort keys: the score of a candidate (-0 turned into +0, which the CPU also treats as equal),
//    -inf for the rest; counts candidates.
template <typename S>
__global__ void mark_candidates(const S* __restrict__ scores, int64_t num_boxes,
                                float score_threshold,
                                typename ComputeOf<S>::type* __restrict__ keys,
                                int32_t* __restrict__ order, int32_t* __restrict__ count) {
  using C = typename ComputeOf<S>::type;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  bool candidate = false;
  if (j < num_boxes) {
    const C score = to_compute(scores[j]);
    candidate = score > static_cast<C>(score_threshold);  // NaN: false
    keys[j] = candidate ? score + C(0) : negative_infinity<C>();
    order[j] = static_cast<int32_t>(j);
  }
  const int block_count = __syncthreads_count(candidate);
  if (threadIdx.x == 0 && block_count > 0) atomicAdd(count, block_count);
}

// 3. candidate boxes in score order.
template <typename S>
__global__ void gather_sorted(const S* __restrict__ boxes, const int32_t* __restrict__ labels,
                              const int32_t* __restrict__ order, const int32_t* __restrict__ count,
                              Box<typename ComputeOf<S>::type>* __restrict__ sorted_boxes,
                              int32_t* __restrict__ sorted_labels) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= *count) return;
  const int32_t i = order[r];
  sorted_boxes[r] = load_box(boxes, i);
  if (labels != nullptr) sorted_labels[r] = labels[i];
}

// 4. one 64x64 tile of the suppression mask per block (upper triangle only).
template <typename C>
__global__ void overlap_mask(const Box<C>* __restrict__ sorted_boxes,
                             const int32_t* __restrict__ sorted_labels, bool class_aware,
                             const int32_t* __restrict__ count, int64_t tiles, float iou_threshold,
                             uint64_t* __restrict__ mask) {
  const int64_t row_tile = blockIdx.y, col_tile = blockIdx.x;
  const int64_t k = *count;
  const int64_t row_start = row_tile * kTile, col_start = col_tile * kTile;
  if (col_tile < row_tile || row_start >= k || col_start >= k) return;  // uniform per block
  const int rows = static_cast<int>(k - row_start < kTile ? k - row_start : kTile);
  const int cols = static_cast<int>(k - col_start < kTile ? k - col_start : kTile);

  __shared__ Box<C> col_boxes[kTile];
  __shared__ int32_t col_labels[kTile];
  const int t = threadIdx.x;
  if (t < cols) {
    col_boxes[t] = sorted_boxes[col_start + t];
    col_labels[t] = class_aware ? sorted_labels[col_start + t] : 0;
  }
  __syncthreads();
  if (t >= rows) return;
  const Box<C> box = sorted_boxes[row_start + t];
  const int32_t label = class_aware ? sorted_labels[row_start + t] : 0;
  const C threshold = static_cast<C>(iou_threshold);
  uint64_t bits = 0;
  for (int c = row_tile == col_tile ? t + 1 : 0; c < cols; ++c) {
    if (col_labels[c] == label && iou_of(box, col_boxes[c]) > threshold) bits |= 1ull << c;
  }
  mask[mask_tile_offset(row_tile, tiles) + t * (tiles - row_tile) + (col_tile - row_tile)] = bits;
}

// 5. the greedy walk, one block. Rows of one 64-box tile are decided by thread 0 (they depend on
//    each other only through the tile's diagonal word); all threads then OR the kept rows into
//    the later words of `removed`.
template <typename S>
__global__ void __launch_bounds__(kReduceThreads)
    greedy_reduce(const uint64_t* __restrict__ mask, int64_t tiles,
                  const int32_t* __restrict__ count, const int32_t* __restrict__ order,
                  const S* __restrict__ scores, int32_t max_output, uint64_t* __restrict__ removed,
                  int32_t* __restrict__ keep, S* __restrict__ out_scores,
                  int32_t* __restrict__ num_valid) {
  __shared__ uint64_t diagonal[kTile];
  __shared__ int32_t kept_rows[kTile];
  __shared__ int32_t kept_in_tile;
  __shared__ int32_t total;
  const int t = threadIdx.x;
  const int64_t k = *count;
  const int64_t used_tiles = (k + kTile - 1) / kTile;
  for (int64_t w = t; w < used_tiles; w += blockDim.x) removed[w] = 0;
  if (t == 0) total = 0;
  __syncthreads();

  for (int64_t tile = 0; tile < used_tiles; ++tile) {
    const int64_t row_base = mask_tile_offset(tile, tiles);
    const int64_t row_words = tiles - tile;
    if (t < kTile) {
      const int64_t r = tile * kTile + t;
      diagonal[t] = r < k ? mask[row_base + t * row_words] : 0;
    }
    __syncthreads();
    if (t == 0) {
      uint64_t current = removed[tile];
      int32_t n = 0;
      int32_t kept_total = total;
      for (int b = 0; b < kTile && kept_total < max_output; ++b) {
        const int64_t r = tile * kTile + b;
        if (r >= k) break;
        if ((current >> b) & 1ull) continue;
        current |= diagonal[b];
        kept_rows[n++] = b;
        const int32_t i = order[r];
        keep[kept_total] = i;
        out_scores[kept_total] = scores[i];
        ++kept_total;
      }
      kept_in_tile = n;
      total = kept_total;
    }
    __syncthreads();
    if (total >= max_output) break;  // uniform: every thread reads the same shared value
    const int32_t n = kept_in_tile;
    for (int64_t w = tile + 1 + t; w < used_tiles; w += blockDim.x) {
      uint64_t acc = removed[w];
      for (int32_t q = 0; q < n; ++q) acc |= mask[row_base + kept_rows[q] * row_words + (w - tile)];
      removed[w] = acc;
    }
    __syncthreads();
  }
  const int32_t valid = total;
  for (int64_t p = valid + t; p < max_output; p += blockDim.x) {
    keep[p] = -1;
    out_scores[p] = from_compute<S>(0);
  }
  if (t == 0) *num_valid = valid;
}

// Outputs of images without any box: all padding.
template <typename S>
__global__ void fill_empty(int64_t batch, int32_t max_output, int32_t* __restrict__ keep,
                           S* __restrict__ out_scores, int32_t* __restrict__ num_valid) {
  const int64_t total = batch * max_output;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < total;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    keep[p] = -1;
    out_scores[p] = from_compute<S>(0);
    if (p < batch) num_valid[p] = 0;
  }
}

// ---------------------------------------------------------------- soft-NMS kernel

// Block-wide argmax of (value, index): larger value first, equal values -> lower index. Every
// thread returns the result.
template <typename C>
__device__ void block_argmax(C& value, int32_t& index) {
  __shared__ C warp_values[32];
  __shared__ int32_t warp_indices[32];
  __shared__ C best_value;
  __shared__ int32_t best_index;
  auto better = [](C v, int32_t i, C bv, int32_t bi) { return v > bv || (v == bv && i < bi); };
  for (int offset = 16; offset > 0; offset /= 2) {
    const C v = __shfl_down_sync(0xffffffffu, value, offset);
    const int32_t i = __shfl_down_sync(0xffffffffu, index, offset);
    if (better(v, i, value, index)) value = v, index = i;
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_values[warp] = value, warp_indices[warp] = index;
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x / 32;
    value = lane < warps ? warp_values[lane] : negative_infinity<C>();
    index = lane < warps ? warp_indices[lane] : INT_MAX;
    for (int offset = 16; offset > 0; offset /= 2) {
      const C v = __shfl_down_sync(0xffffffffu, value, offset);
      const int32_t i = __shfl_down_sync(0xffffffffu, index, offset);
      if (better(v, i, value, index)) value = v, index = i;
    }
    if (lane == 0) best_value = value, best_index = index;
  }
  __syncthreads();
  value = best_value;
  index = best_index;
}

template <typename S>
__global__ void __launch_bounds__(kSoftThreads)
    soft_nms_kernel(const S* __restrict__ all_boxes, const S* __restrict__ all_scores,
                    const int32_t* __restrict__ all_labels, int64_t num_boxes, NmsParams params,
                    typename ComputeOf<S>::type* __restrict__ all_current,
                    int32_t* __restrict__ all_keep, S* __restrict__ all_out_scores,
                    int32_t* __restrict__ num_valid) {
  using C = typename ComputeOf<S>::type;
  const int64_t image = blockIdx.x;
  const S* boxes = all_boxes + image * num_boxes * 4;
  const S* scores = all_scores + image * num_boxes;
  const int32_t* labels = all_labels == nullptr ? nullptr : all_labels + image * num_boxes;
  C* current = all_current + image * num_boxes;
  int32_t* keep = all_keep + image * params.max_output;
  S* out_scores = all_out_scores + image * params.max_output;
  const C gone = negative_infinity<C>();
  const C score_threshold = static_cast<C>(params.score_threshold);
  const C min_score = static_cast<C>(params.min_score);
  const C iou_threshold = static_cast<C>(params.iou_threshold);
  const C sigma = static_cast<C>(params.sigma);
  const bool linear = params.method == NmsMethod::kLinear;

  // Candidates: score > score_threshold and >= min_score; the rest is gone from the start.
  C best = gone;
  int32_t best_index = INT_MAX;
  for (int64_t j = threadIdx.x; j < num_boxes; j += blockDim.x) {
    const C score = to_compute(scores[j]);
    const C value = score > score_threshold && score >= min_score ? score : gone;
    current[j] = value;
    if (value > best) best = value, best_index = static_cast<int32_t>(j);
  }
  block_argmax(best, best_index);

  int32_t kept = 0;
  while (kept < params.max_output && best > gone) {
    if (threadIdx.x == 0) {
      keep[kept] = best_index;
      out_scores[kept] = from_compute<S>(best);
    }
    ++kept;
    if (kept == params.max_output) break;
    const int32_t pick = best_index;
    const Box<C> picked = load_box(boxes, pick);
    const int32_t picked_label = labels == nullptr ? 0 : labels[pick];
    best = gone;
    best_index = INT_MAX;
    for (int64_t j = threadIdx.x; j < num_boxes; j += blockDim.x) {
      C value = current[j];
      if (j == pick) {
        value = gone;
        current[j] = gone;
      } else if (value > gone && (labels == nullptr || labels[j] == picked_label)) {
        const C iou = iou_of(picked, load_box(boxes, j));
        C decayed = value;
        if (linear) {
          decayed = value * linear_weight(iou, iou_threshold);
        } else if (iou > C(0)) {  // exp(-0) == 1: the CPU skips it too
          decayed = value * gaussian_weight(iou, sigma);
        }
        value = decayed >= min_score ? decayed : gone;  // NaN (inf * 0) -> gone
        current[j] = value;
      }
      if (value > best) best = value, best_index = static_cast<int32_t>(j);
    }
    block_argmax(best, best_index);
  }
  for (int64_t p = kept + threadIdx.x; p < params.max_output; p += blockDim.x) {
    keep[p] = -1;
    out_scores[p] = from_compute<S>(0);
  }
  if (threadIdx.x == 0) num_valid[image] = kept;
}

// ---------------------------------------------------------------- drivers

template <typename T>
T* at_offset(void* workspace, size_t offset) {
  return reinterpret_cast<T*>(static_cast<char*>(workspace) + offset);
}

template <typename S>
Status run_hard(const S* boxes, const S* scores, const int32_t* labels, int64_t batch,
                int64_t num_boxes, const NmsParams& params, int32_t* keep, S* out_scores,
                int32_t* num_valid, void* workspace, const Layout& layout, cudaStream_t stream) {
  using C = typename ComputeOf<S>::type;
  C* keys_in = at_offset<C>(workspace, layout.keys_in);
  C* keys_out = at_offset<C>(workspace, layout.keys_out);
  int32_t* order_in = at_offset<int32_t>(workspace, layout.order_in);
  int32_t* order_out = at_offset<int32_t>(workspace, layout.order_out);
  void* sort_temp = at_offset<char>(workspace, layout.sort_temp);
  int32_t* count = at_offset<int32_t>(workspace, layout.count);
  Box<C>* sorted_boxes = at_offset<Box<C>>(workspace, layout.sorted_boxes);
  int32_t* sorted_labels = at_offset<int32_t>(workspace, layout.sorted_labels);
  uint64_t* mask = at_offset<uint64_t>(workspace, layout.mask);
  uint64_t* removed = at_offset<uint64_t>(workspace, layout.removed);

  const int64_t tiles = mask_tiles(num_boxes);
  const unsigned box_blocks =
      static_cast<unsigned>((num_boxes + kPrepareThreads - 1) / kPrepareThreads);
  const dim3 mask_grid(static_cast<unsigned>(tiles), static_cast<unsigned>(tiles));
  for (int64_t b = 0; b < batch; ++b) {
    const S* image_boxes = boxes + b * num_boxes * 4;
    const S* image_scores = scores + b * num_boxes;
    const int32_t* image_labels = labels == nullptr ? nullptr : labels + b * num_boxes;
    if (cudaMemsetAsync(count, 0, sizeof(int32_t), stream) != cudaSuccess) {
      return Status::kCudaError;
    }
    mark_candidates<<<box_blocks, kPrepareThreads, 0, stream>>>(
        image_scores, num_boxes, params.score_threshold, keys_in, order_in, count);
    size_t sort_bytes = layout.sort_temp_bytes;
    if (cub::DeviceRadixSort::SortPairsDescending(sort_temp, sort_bytes, keys_in, keys_out,
                                                  order_in, order_out,
                                                  static_cast<int>(num_boxes), 0,
                                                  static_cast<int>(sizeof(C) * 8),
                                                  stream) != cudaSuccess) {
      return Status::kCudaError;
    }
    gather_sorted<<<box_blocks, kPrepareThreads, 0, stream>>>(image_boxes, image_labels, order_out,
                                                               count, sorted_boxes, sorted_labels);
    overlap_mask<C><<<mask_grid, kTile, 0, stream>>>(sorted_boxes, sorted_labels,
                                                     image_labels != nullptr, count, tiles,
                                                     params.iou_threshold, mask);
    greedy_reduce<S><<<1, kReduceThreads, 0, stream>>>(
        mask, tiles, count, order_out, image_scores, params.max_output, removed,
        keep + b * params.max_output, out_scores + b * params.max_output, num_valid + b);
    if (cudaGetLastError() != cudaSuccess) return Status::kCudaError;
  }
  return Status::kOk;
}

template <typename S>
Status run(const void* boxes_v, const void* scores_v, const int32_t* labels, int64_t batch,
           int64_t num_boxes, const NmsParams& params, int32_t* keep, void* out_scores_v,
           int32_t* num_valid, void* workspace, size_t workspace_size, cudaStream_t stream) {
  using C = typename ComputeOf<S>::type;
  const S* boxes = static_cast<const S*>(boxes_v);
  const S* scores = static_cast<const S*>(scores_v);
  S* out_scores = static_cast<S*>(out_scores_v);
  if (num_boxes == 0) {
    const int64_t total = batch * params.max_output;
    const unsigned blocks =
        static_cast<unsigned>(std::min<int64_t>((total + 255) / 256, 4096));
    fill_empty<S><<<blocks, 256, 0, stream>>>(batch, params.max_output, keep, out_scores,
                                              num_valid);
    return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
  }
  Layout layout;
  if (make_layout<C>(batch, num_boxes, params, &layout) != cudaSuccess) return Status::kCudaError;
  if (workspace_size < layout.total || workspace == nullptr) return Status::kWorkspaceTooSmall;
  if (params.method == NmsMethod::kHard) {
    return run_hard(boxes, scores, labels, batch, num_boxes, params, keep, out_scores, num_valid,
                    workspace, layout, stream);
  }
  soft_nms_kernel<S><<<static_cast<unsigned>(batch), kSoftThreads, 0, stream>>>(
      boxes, scores, labels, num_boxes, params, at_offset<C>(workspace, layout.current_scores),
      keep, out_scores, num_valid);
  return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError;
}

}  // namespace

size_t batched_nms_cuda_workspace_size(int64_t batch, int64_t num_boxes, const NmsParams& params,
                                       DataType dtype) {
  if (batch <= 0 || num_boxes <= 0) return 0;
  return dtype == DataType::kFloat64 ? workspace_bytes<double>(batch, num_boxes, params)
                                     : workspace_bytes<float>(batch, num_boxes, params);
}

Status batched_nms_cuda(const void* boxes, const void* scores, const int32_t* labels, int64_t batch,
                        int64_t num_boxes, const NmsParams& params, DataType dtype, int32_t* keep,
                        void* out_scores, int32_t* num_valid, void* workspace,
                        size_t workspace_size, cudaStream_t stream) {
  const Status status = validate(params);
  if (status != Status::kOk) return status;
  if (batch < 0 || num_boxes < 0 || num_boxes > std::numeric_limits<int32_t>::max()) {
    return Status::kInvalidArgument;
  }
  if (params.method == NmsMethod::kHard && mask_tiles(num_boxes) > kMaxGridY) {
    return Status::kInvalidArgument;  // more than ~4.2 million boxes per image
  }
  if (params.method != NmsMethod::kHard && batch > std::numeric_limits<int32_t>::max()) {
    return Status::kInvalidArgument;
  }
  if (batch == 0) return Status::kOk;
  if (keep == nullptr || out_scores == nullptr || num_valid == nullptr) {
    return Status::kInvalidArgument;
  }
  if (num_boxes > 0 && (boxes == nullptr || scores == nullptr)) return Status::kInvalidArgument;
  switch (dtype) {
    case DataType::kFloat32:
      return run<float>(boxes, scores, labels, batch, num_boxes, params, keep, out_scores,
                        num_valid, workspace, workspace_size, stream);
    case DataType::kFloat16:
      return run<__half>(boxes, scores, labels, batch, num_boxes, params, keep, out_scores,
                         num_valid, workspace, workspace_size, stream);
    case DataType::kFloat64:
      return run<double>(boxes, scores, labels, batch, num_boxes, params, keep, out_scores,
                         num_valid, workspace, workspace_size, stream);
  }
  return Status::kUnsupportedType;
}

}  // namespace sspnet
