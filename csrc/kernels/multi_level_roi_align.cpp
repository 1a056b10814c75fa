// Parameter checks shared by the CPU and CUDA entry points of multi-level RoIAlign.
#include <math.h>

#include <cstdint>

#include "multi_level_roi_align.h"

namespace sspnet {

Status validate(const FeaturePyramid& pyramid, const RoIAlignParams& params) {
  if (pyramid.num_levels < 1 || pyramid.num_levels > kMaxPyramidLevels) {
    return Status::kInvalidArgument;
  }
  if (pyramid.batch < 0 || pyramid.channels < 0) return Status::kInvalidArgument;
  for (int l = 0; l < pyramid.num_levels; ++l) {
    // Positions inside one feature plane are int32 in both kernels.
    if (pyramid.height[l] < 1 || pyramid.width[l] < 1 ||
        pyramid.height[l] > INT32_MAX / pyramid.width[l]) {
      return Status::kInvalidArgument;
    }
    const float scale = pyramid.spatial_scale[l];
    if (!(scale > 0.0f) || !isfinite(scale)) return Status::kInvalidArgument;
  }
  if (params.output_height < 1 || params.output_width < 1) return Status::kInvalidArgument;
  if (!(params.finest_scale > 0.0f) || !isfinite(params.finest_scale)) {
    return Status::kInvalidArgument;
  }
  return Status::kOk;
}

}  // namespace sspnet
