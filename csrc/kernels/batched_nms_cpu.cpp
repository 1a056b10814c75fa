// Batched NMS on the CPU: hard, soft-linear, soft-gaussian; class-aware or not. Semantics in
// batched_nms.h. One image per OpenMP thread.
//
// Hard and soft NMS are the same loop here: keep the box with the highest current score, then
// update the boxes it overlaps (hard: drop those with IoU > threshold; soft: decay). For hard NMS
// that is exactly the greedy walk in score order. Two things make it fast without changing a bit
// of the result:
//   - Only boxes that can overlap the kept box are visited. Boxes are sorted by x1; the kept box
//     [bx1, bx2] can only overlap boxes with x1 < bx2 and x2 > bx1, a contiguous "band" found by
//     two binary searches (the second on the running maximum of x2). Every other box has IoU
//     exactly 0, and IoU 0 changes nothing (hard: 0 > thr is false; linear: weight 1; gaussian:
//     exp(-0) = 1). Boxes with zero, NaN or infinite area have IoU 0 with everything: they sit in
//     their own "isolated" group and never enter the loop.
//   - The argmax uses per-block maxima (blocks of ~sqrt(n) boxes): a step rescans only the blocks
//     its band touched, then the short list of block maxima.
// Classes never interact, so each (label, isolated?) group runs alone; the per-group kept lists
// are then merged back into the one global selection order. The CUDA kernel computes every pair
// instead and gives the same result.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <queue>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "batched_nms.h"
#include "batched_nms_device.h"

// GCC keeps a division that only one branch uses inside that branch, and with the default
// -ftrapping-math it may not execute it speculatively, so the IoU loops would stay scalar.
// Ignoring FP traps changes no result (nothing here enables them); it only allows vectorising.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

namespace sspnet {

Status validate(const NmsParams& params) {
  const bool known_method = params.method == NmsMethod::kHard ||
                            params.method == NmsMethod::kLinear ||
                            params.method == NmsMethod::kGaussian;
  if (!known_method) return Status::kInvalidArgument;
  if (!(params.iou_threshold >= 0.0f && params.iou_threshold <= 1.0f)) {
    return Status::kInvalidArgument;
  }
  if (!(params.sigma > 0.0f) || std::isinf(params.sigma)) return Status::kInvalidArgument;
  if (std::isnan(params.score_threshold) || std::isnan(params.min_score)) {
    return Status::kInvalidArgument;
  }
  if (params.max_output < 1) return Status::kInvalidArgument;
  return Status::kOk;
}

namespace {

using nms_detail::box_area;
using nms_detail::box_iou;
using nms_detail::gaussian_weight;
using nms_detail::linear_weight;

template <typename T>
struct Kept {
  T score;
  int32_t index;
};

// Selection order: higher score first, equal scores -> lower box index first.
template <typename T>
bool comes_first(T score_a, int32_t index_a, T score_b, int32_t index_b) {
  return score_a > score_b || (score_a == score_b && index_a < index_b);
}

// A candidate while grouping: by label, then interacting boxes before isolated ones, then
// interacting boxes by x1 and isolated ones directly in selection order (key = -score).
template <typename T>
struct Candidate {
  int32_t label;
  int32_t isolated;
  T key;
  int32_t index;

  bool operator<(const Candidate& other) const {
    if (label != other.label) return label < other.label;
    if (isolated != other.isolated) return isolated < other.isolated;
    if (key != other.key) return key < other.key;
    return index < other.index;
  }
  bool same_group(const Candidate& other) const {
    return label == other.label && isolated == other.isolated;
  }
};

// Mean box extent relative to the occupied range, per axis: the expected width of a band.
struct AxisStats {
  double sum_w = 0, sum_h = 0;
  double min_x = INFINITY, max_x = -INFINITY, min_y = INFINITY, max_y = -INFINITY;

  template <typename T>
  void add(T x1, T y1, T x2, T y2) {
    sum_w += static_cast<double>(x2) - x1, sum_h += static_cast<double>(y2) - y1;
    min_x = std::min<double>(min_x, x1), max_x = std::max<double>(max_x, x2);
    min_y = std::min<double>(min_y, y1), max_y = std::max<double>(max_y, y2);
  }
  bool y_is_better() const {
    return sum_h * (max_x - min_x) < sum_w * (max_y - min_y);  // sum_h/span_y < sum_w/span_x
  }
};

// Candidates of one image as a structure of arrays, in group order. One per thread, reused.
template <typename T>
struct Scratch {
  std::vector<Candidate<T>> candidates;
  std::vector<T> x1, y1, x2, y2, area, score, x2_running_max;
  std::vector<int32_t> index;
  std::vector<T> block_score;        // per-block maximum of the current scores ...
  std::vector<int64_t> block_pos;    // ... and where it is
  std::vector<Kept<T>> kept;         // per-group results, back to back
  std::vector<int64_t> kept_start;   // offset into `kept` of each group's results, plus the end
  std::vector<int64_t> group_of;     // group of each entry of `kept` (for the merge)

  void resize(int64_t n) {
    x1.resize(n), y1.resize(n), x2.resize(n), y2.resize(n), area.resize(n), score.resize(n);
    x2_running_max.resize(n), index.resize(n);
  }
};

// Box with the best (score, index) in [begin, end); -inf score when all are gone.
template <typename T>
std::pair<T, int64_t> best_in(const T* score, const int32_t* index, int64_t begin, int64_t end) {
  T best = score[begin];
  int64_t pos = begin;
  for (int64_t j = begin + 1; j < end; ++j) {
    if (comes_first(score[j], index[j], best, index[pos])) best = score[j], pos = j;
  }
  return {best, pos};
}

// Boxes of one group as arrays (offset to the group's start).
template <typename T>
struct GroupView {
  const T* x1;
  const T* y1;
  const T* x2;
  const T* y2;
  const T* area;
  const int32_t* index;
  T* score;  // current scores; -inf marks a box that is gone (kept, suppressed, below min_score)
};

// The per-box updates after a box (b*) was kept; one function per method so that each loop is a
// plain vectorisable loop. -inf marks a box that is gone. Each returns the range of positions
// whose score changed ([first, last], empty when first > last) so that only those blocks of the
// argmax are rescanned.
template <typename T>
struct KeptBox {
  T x1, y1, x2, y2, area;
};

struct Changed {
  int32_t first, last;
};

template <typename T>
Changed suppress_band(const GroupView<T>& g, int32_t lo, int32_t hi, KeptBox<T> b,
                      T iou_threshold) {
  const T* __restrict__ x1 = g.x1;
  const T* __restrict__ y1 = g.y1;
  const T* __restrict__ x2 = g.x2;
  const T* __restrict__ y2 = g.y2;
  const T* __restrict__ area = g.area;
  T* __restrict__ score = g.score;
  const T gone = -std::numeric_limits<T>::infinity();
  int32_t first = hi, last = lo - 1;
#pragma omp simd reduction(min : first) reduction(max : last)
  for (int64_t j = lo; j < hi; ++j) {  // int64: with -fwrapv an int32 loop is not vectorised
    const T iou = box_iou(b.x1, b.y1, b.x2, b.y2, b.area, x1[j], y1[j], x2[j], y2[j], area[j]);
    const T current = score[j];
    const T next = iou > iou_threshold ? gone : current;
    score[j] = next;
    const bool changed = next != current;
    const int32_t position = static_cast<int32_t>(j);
    first = changed && position < first ? position : first;
    last = changed && position > last ? position : last;
  }
  return {first, last};
}

template <typename T>
Changed decay_band_linear(const GroupView<T>& g, int32_t lo, int32_t hi, KeptBox<T> b,
                          T iou_threshold, T min_score) {
  const T* __restrict__ x1 = g.x1;
  const T* __restrict__ y1 = g.y1;
  const T* __restrict__ x2 = g.x2;
  const T* __restrict__ y2 = g.y2;
  const T* __restrict__ area = g.area;
  T* __restrict__ score = g.score;
  const T gone = -std::numeric_limits<T>::infinity();
  int32_t first = hi, last = lo - 1;
#pragma omp simd reduction(min : first) reduction(max : last)
  for (int64_t j = lo; j < hi; ++j) {  // int64: with -fwrapv an int32 loop is not vectorised
    const T iou = box_iou(b.x1, b.y1, b.x2, b.y2, b.area, x1[j], y1[j], x2[j], y2[j], area[j]);
    const T current = score[j];
    const T decayed = current * linear_weight(iou, iou_threshold);
    const T next = decayed >= min_score ? decayed : gone;  // also NaN (inf * 0) -> gone
    score[j] = next;
    const bool changed = next != current;
    const int32_t position = static_cast<int32_t>(j);
    first = changed && position < first ? position : first;
    last = changed && position > last ? position : last;
  }
  return {first, last};
}

template <typename T>
Changed decay_band_gaussian(const GroupView<T>& g, int32_t lo, int32_t hi, KeptBox<T> b, T sigma,
                            T min_score) {
  const T gone = -std::numeric_limits<T>::infinity();
  int32_t first = hi, last = lo - 1;
  for (int32_t j = lo; j < hi; ++j) {
    if (g.score[j] == gone) continue;
    const T iou =
        box_iou(b.x1, b.y1, b.x2, b.y2, b.area, g.x1[j], g.y1[j], g.x2[j], g.y2[j], g.area[j]);
    if (!(iou > T(0))) continue;  // weight exp(-0) == 1: nothing changes (and exp is slow)
    const T decayed = g.score[j] * gaussian_weight(iou, sigma);
    g.score[j] = decayed >= min_score ? decayed : gone;
    first = std::min(first, j);
    last = j;
  }
  return {first, last};
}

template <typename T>
Changed update_band(const GroupView<T>& g, int32_t lo, int32_t hi, KeptBox<T> b,
                    const NmsParams& params) {
  const T iou_threshold = static_cast<T>(params.iou_threshold);
  const T min_score = static_cast<T>(params.min_score);
  switch (params.method) {
    case NmsMethod::kHard: return suppress_band(g, lo, hi, b, iou_threshold);
    case NmsMethod::kLinear: return decay_band_linear(g, lo, hi, b, iou_threshold, min_score);
    case NmsMethod::kGaussian:
      return decay_band_gaussian(g, lo, hi, b, static_cast<T>(params.sigma), min_score);
  }
  return {hi, lo - 1};
}

// NMS over one group of interacting boxes [begin, end), sorted by x1. Returns the number kept.
template <typename T>
int64_t nms_group(Scratch<T>& s, int64_t begin, int64_t end, const NmsParams& params,
                  int64_t max_output, Kept<T>* out) {
  const int64_t n = end - begin;
  const GroupView<T> g{s.x1.data() + begin, s.y1.data() + begin, s.x2.data() + begin,
                       s.y2.data() + begin, s.area.data() + begin, s.index.data() + begin,
                       s.score.data() + begin};
  const T *x1 = g.x1, *y1 = g.y1, *x2 = g.x2, *y2 = g.y2, *area = g.area;
  const int32_t* index = g.index;
  T* score = g.score;
  T* x2_max = s.x2_running_max.data() + begin;
  const T gone = -std::numeric_limits<T>::infinity();

  x2_max[0] = x2[0];
  for (int64_t j = 1; j < n; ++j) x2_max[j] = x2[j] > x2_max[j - 1] ? x2[j] : x2_max[j - 1];

  int64_t block = 16;
  while (block * block < n) block *= 2;
  const int64_t num_blocks = (n + block - 1) / block;
  s.block_score.resize(num_blocks);
  s.block_pos.resize(num_blocks);
  auto refresh_block = [&](int64_t b) {
    const auto best = best_in(score, index, b * block, std::min(n, (b + 1) * block));
    s.block_score[b] = best.first;
    s.block_pos[b] = best.second;
  };
  for (int64_t b = 0; b < num_blocks; ++b) refresh_block(b);

  int64_t kept = 0;
  while (kept < max_output) {
    int64_t best_block = 0;
    for (int64_t b = 1; b < num_blocks; ++b) {
      const int64_t p = s.block_pos[b], q = s.block_pos[best_block];
      if (comes_first(s.block_score[b], index[p], s.block_score[best_block], index[q])) {
        best_block = b;
      }
    }
    if (!(s.block_score[best_block] > gone)) break;  // nothing left
    const int64_t pick = s.block_pos[best_block];
    out[kept++] = {score[pick], index[pick]};
    if (kept == max_output) break;
    score[pick] = gone;

    const KeptBox<T> b{x1[pick], y1[pick], x2[pick], y2[pick], area[pick]};
    // Only boxes with x1 < b.x2 and x2 > b.x1 can overlap the kept box.
    const int32_t lo = static_cast<int32_t>(std::upper_bound(x2_max, x2_max + n, b.x1) - x2_max);
    const int32_t hi = static_cast<int32_t>(std::lower_bound(x1, x1 + n, b.x2) - x1);
    const Changed changed = update_band(g, lo, hi, b, params);
    refresh_block(pick / block);
    if (changed.first <= changed.last) {
      for (int64_t q = changed.first / block; q <= changed.last / block; ++q) refresh_block(q);
    }
  }
  return kept;
}

// Groups run independently; the global greedy picks, at every step, the best of the groups'
// next boxes. Replaying that pick over the finished per-group lists gives the same order.
template <typename T>
int64_t merge_groups(Scratch<T>& s, int64_t max_output, int32_t* keep, T* out_scores) {
  const int64_t groups = static_cast<int64_t>(s.kept_start.size()) - 1;
  if (groups == 1) {
    const int64_t count = s.kept_start[1];
    for (int64_t k = 0; k < count; ++k) keep[k] = s.kept[k].index, out_scores[k] = s.kept[k].score;
    return count;
  }
  auto worse = [&s](int64_t a, int64_t b) {  // heap entries: a group's next unread result
    return comes_first(s.kept[b].score, s.kept[b].index, s.kept[a].score, s.kept[a].index);
  };
  std::priority_queue<int64_t, std::vector<int64_t>, decltype(worse)> heads(worse);
  s.group_of.resize(static_cast<size_t>(s.kept_start[groups]));
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t k = s.kept_start[g]; k < s.kept_start[g + 1]; ++k) s.group_of[k] = g;
    if (s.kept_start[g] < s.kept_start[g + 1]) heads.push(s.kept_start[g]);
  }
  int64_t count = 0;
  while (!heads.empty() && count < max_output) {
    const int64_t k = heads.top();
    heads.pop();
    keep[count] = s.kept[k].index;
    out_scores[count] = s.kept[k].score;
    ++count;
    if (k + 1 < s.kept_start[s.group_of[k] + 1]) heads.push(k + 1);
  }
  return count;
}

template <typename T>
int32_t nms_one_image(const T* boxes, const T* scores, const int32_t* labels, int64_t num_boxes,
                      const NmsParams& params, Scratch<T>& s, int32_t* keep, T* out_scores) {
  const T score_threshold = static_cast<T>(params.score_threshold);
  const T min_score = static_cast<T>(params.min_score);
  const bool soft = params.method != NmsMethod::kHard;
  const int64_t max_output = params.max_output;

  // 1. candidates: score > score_threshold (NaN fails), and for soft-NMS >= min_score.
  std::vector<Candidate<T>>& candidates = s.candidates;
  candidates.clear();
  AxisStats stats;
  for (int64_t j = 0; j < num_boxes; ++j) {
    const T score = scores[j];
    if (!(score > score_threshold) || (soft && !(score >= min_score))) continue;
    const T* box = boxes + 4 * j;
    const T area = box_area(box[0], box[1], box[2], box[3]);
    const bool isolated = !(area > T(0) && area < std::numeric_limits<T>::infinity());
    if (!isolated) stats.add(box[0], box[1], box[2], box[3]);
    const int32_t label = labels == nullptr ? 0 : labels[j];
    candidates.push_back({label, isolated ? 1 : 0, isolated ? -score : box[0],
                          static_cast<int32_t>(j)});
  }
  // The band search runs along x; swap x and y when that gives narrower bands (IoU and areas
  // are symmetric in x and y, bit for bit, so the result does not change).
  const bool swap_xy = stats.y_is_better();
  if (swap_xy) {
    for (Candidate<T>& c : candidates) {
      if (!c.isolated) c.key = boxes[4 * static_cast<int64_t>(c.index) + 1];
    }
  }
  // 2. groups: same label, same isolated flag; each in its processing order.
  std::sort(candidates.begin(), candidates.end());
  const int64_t count = static_cast<int64_t>(candidates.size());
  s.resize(count);
  const int ax = swap_xy ? 1 : 0, ay = 1 - ax;
  for (int64_t k = 0; k < count; ++k) {
    const int32_t j = candidates[k].index;
    const T* box = boxes + 4 * static_cast<int64_t>(j);
    s.x1[k] = box[ax], s.y1[k] = box[ay], s.x2[k] = box[ax + 2], s.y2[k] = box[ay + 2];
    s.area[k] = box_area(s.x1[k], s.y1[k], s.x2[k], s.y2[k]);
    s.score[k] = scores[j];
    s.index[k] = j;
  }

  // 3. each group alone, at most max_output results each.
  s.kept_start.assign(1, 0);
  s.kept.resize(static_cast<size_t>(count));
  for (int64_t begin = 0, end = 0; begin < count; begin = end) {
    end = begin + 1;
    while (end < count && candidates[end].same_group(candidates[begin])) ++end;
    const int64_t limit = std::min(max_output, end - begin);
    Kept<T>* out = s.kept.data() + s.kept_start.back();
    if (candidates[begin].isolated) {  // never touched by any box: already in selection order
      for (int64_t k = 0; k < limit; ++k) out[k] = {s.score[begin + k], s.index[begin + k]};
      s.kept_start.push_back(s.kept_start.back() + limit);
    } else {
      s.kept_start.push_back(s.kept_start.back() + nms_group(s, begin, end, params, limit, out));
    }
  }

  // 4. back into one selection order; pad the rest.
  const int64_t valid = count == 0 ? 0 : merge_groups(s, max_output, keep, out_scores);
  for (int64_t k = valid; k < max_output; ++k) keep[k] = -1, out_scores[k] = T(0);
  return static_cast<int32_t>(valid);
}

template <typename T>
Status run_batch(const T* boxes, const T* scores, const int32_t* labels, int64_t batch,
                 int64_t num_boxes, const NmsParams& params, int32_t* keep, T* out_scores,
                 int32_t* num_valid, int num_threads) {
  bool out_of_memory = false;
#ifdef _OPENMP
  if (num_threads <= 0) num_threads = omp_get_max_threads();
  num_threads = static_cast<int>(std::min<int64_t>(num_threads, std::max<int64_t>(batch, 1)));
#pragma omp parallel num_threads(num_threads)
#endif
  {
    Scratch<T> scratch;  // one per thread, reused for its images
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
    for (int64_t b = 0; b < batch; ++b) {
      try {
        num_valid[b] = nms_one_image(
            boxes + b * num_boxes * 4, scores + b * num_boxes,
            labels == nullptr ? nullptr : labels + b * num_boxes, num_boxes, params, scratch,
            keep + b * params.max_output, out_scores + b * params.max_output);
      } catch (const std::bad_alloc&) {  // nothing may escape an OpenMP region
#ifdef _OPENMP
#pragma omp atomic write
#endif
        out_of_memory = true;
      }
    }
  }
  (void)num_threads;
  // No status says "out of host memory"; the scratch memory this call needs was not available.
  return out_of_memory ? Status::kWorkspaceTooSmall : Status::kOk;
}

}  // namespace

Status batched_nms_cpu(const void* boxes, const void* scores, const int32_t* labels, int64_t batch,
                       int64_t num_boxes, const NmsParams& params, DataType dtype, int32_t* keep,
                       void* out_scores, int32_t* num_valid, int num_threads) {
  const Status status = validate(params);
  if (status != Status::kOk) return status;
  if (batch < 0 || num_boxes < 0 || num_boxes > std::numeric_limits<int32_t>::max()) {
    return Status::kInvalidArgument;
  }
  if (batch == 0) return Status::kOk;
  if (keep == nullptr || out_scores == nullptr || num_valid == nullptr) {
    return Status::kInvalidArgument;
  }
  if (num_boxes > 0 && (boxes == nullptr || scores == nullptr)) return Status::kInvalidArgument;
  switch (dtype) {
    case DataType::kFloat32:
      return run_batch(static_cast<const float*>(boxes), static_cast<const float*>(scores), labels,
                       batch, num_boxes, params, keep, static_cast<float*>(out_scores), num_valid,
                       num_threads);
    case DataType::kFloat64:
      return run_batch(static_cast<const double*>(boxes), static_cast<const double*>(scores),
                       labels, batch, num_boxes, params, keep, static_cast<double*>(out_scores),
                       num_valid, num_threads);
    default:
      return Status::kUnsupportedType;
  }
}

}  // namespace sspnet
