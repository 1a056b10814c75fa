// Box arithmetic shared by the CPU and CUDA batched NMS, so both round exactly the same way.
// Plain C++17 / CUDA; no framework headers. See batched_nms.h for the semantics.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define SSPNET_HOST_DEVICE __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define SSPNET_HOST_DEVICE inline __attribute__((always_inline))  // keeps CPU loops vectorisable
#else
#define SSPNET_HOST_DEVICE inline
#endif

namespace sspnet {
namespace nms_detail {

// a * b rounded on its own. On the GPU an ordinary product may be fused with a following add
// into one FMA (different rounding); __fmul_rn / __dmul_rn forbid that, so CPU and CUDA agree.
SSPNET_HOST_DEVICE float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

SSPNET_HOST_DEVICE double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

// max(x2 - x1, 0) * max(y2 - y1, 0). A NaN coordinate gives a NaN area on purpose: the union
// with any box is then NaN and box_iou returns 0 (NaN boxes never suppress nor get suppressed).
template <typename T>
SSPNET_HOST_DEVICE T box_area(T x1, T y1, T x2, T y2) {
  T width = x2 - x1;
  T height = y2 - y1;
  width = width < T(0) ? T(0) : width;  // written so that NaN stays NaN
  height = height < T(0) ? T(0) : height;
  return mul_rn(width, height);
}

// Intersection over union without the legacy +1; 0 when the union is not > 0 (or NaN).
// The same operations in the same order as torchvision's nms: inter / (area_a + area_b - inter).
template <typename T>
SSPNET_HOST_DEVICE T box_iou(T ax1, T ay1, T ax2, T ay2, T area_a, T bx1, T by1, T bx2, T by2,
                             T area_b) {
  const T left = ax1 > bx1 ? ax1 : bx1;
  const T top = ay1 > by1 ? ay1 : by1;
  const T right = ax2 < bx2 ? ax2 : bx2;
  const T bottom = ay2 < by2 ? ay2 : by2;
  T width = right - left;
  T height = bottom - top;
  width = width > T(0) ? width : T(0);
  height = height > T(0) ? height : T(0);
  const T inter = mul_rn(width, height);
  const T uni = (area_a + area_b) - inter;
  return uni > T(0) ? inter / uni : T(0);
}

// Soft-NMS weights (Bodla et al. 2017, as in mmcv): linear decays only above the threshold,
// gaussian decays every overlapping box.
template <typename T>
SSPNET_HOST_DEVICE T linear_weight(T iou, T iou_threshold) {
  return iou > iou_threshold ? T(1) - iou : T(1);
}

template <typename T>
SSPNET_HOST_DEVICE T gaussian_weight(T iou, T sigma) {
  using std::exp;
  return exp(-mul_rn(iou, iou) / sigma);
}

}  // namespace nms_detail
}  // namespace sspnet
