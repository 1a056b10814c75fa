// SSPNetMultiLevelRoIAlign: name, version, fields with their defaults, and the conversion to the
// kernel's parameter structs. No TensorRT header (see common/fieldBinding.h).
// runtime/plugin_fields.json describes the same plugin; tests/trt_plugins checks that they agree.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/fieldBinding.h"
#include "multi_level_roi_align.h"

namespace sspnet::trt {

constexpr char kMultiLevelRoIAlignName[] = "SSPNetMultiLevelRoIAlign";
constexpr char kMultiLevelRoIAlignVersion[] = "1";

struct MultiLevelRoIAlignFields {
  int32_t output_height = 7;
  int32_t output_width = 7;
  int32_t sampling_ratio = 0;  // <= 0: adaptive
  int32_t aligned = 1;         // 0 or 1 (half-pixel offset)
  float finest_scale = 56.0F;
  float spatial_scales[kMaxPyramidLevels] = {0.25F, 0.125F, 0.0625F, 0.03125F};
  int32_t num_levels = 4;  // not a field: how many spatial_scales are in use = number of feature inputs
};

// The one field table (names as in runtime/plugin_fields.json).
std::vector<FieldBinding> bindFields(MultiLevelRoIAlignFields& fields);

// What the kernel's validate() cannot see: `aligned` is a bool there. "" or a message.
std::string checkFields(MultiLevelRoIAlignFields const& fields);

RoIAlignParams toKernelParams(MultiLevelRoIAlignFields const& fields);

// A pyramid of 1x1 levels with the fields' spatial_scales: validate(unitPyramid(f), toKernelParams(f))
// checks the kernel's rules that need no feature shapes (output size >= 1, finest_scale and every
// scale finite and > 0).
FeaturePyramid unitPyramid(MultiLevelRoIAlignFields const& fields);

// Shape of one feature input [N, C, H, W].
struct LevelShape {
  int64_t batch;
  int64_t channels;
  int64_t height;
  int64_t width;
};

// Fills `pyramid` from the feature input shapes (finest level first). Returns "" or a message naming
// the level whose batch / channel count disagrees with level 0, or a level-count mismatch.
std::string makePyramid(MultiLevelRoIAlignFields const& fields, LevelShape const* levels, int32_t numLevels,
                        FeaturePyramid& pyramid);

// "name=value ..." of every field, for error messages.
std::string describeFields(MultiLevelRoIAlignFields const& fields);

}  // namespace sspnet::trt
