#include "multiLevelRoIAlign/multiLevelRoIAlignFields.h"

#include <sstream>

namespace sspnet::trt {

std::vector<FieldBinding> bindFields(MultiLevelRoIAlignFields& fields) {
  return {
      int32Field("output_height", &fields.output_height),
      int32Field("output_width", &fields.output_width),
      int32Field("sampling_ratio", &fields.sampling_ratio),
      int32Field("aligned", &fields.aligned),
      float32Field("finest_scale", &fields.finest_scale),
      float32ArrayField("spatial_scales", fields.spatial_scales, kMaxPyramidLevels, &fields.num_levels),
  };
}

std::string checkFields(MultiLevelRoIAlignFields const& fields) {
  if (fields.aligned != 0 && fields.aligned != 1) {
    return "field 'aligned' must be 0 or 1, got " + std::to_string(fields.aligned);
  }
  if (fields.num_levels < 1 || fields.num_levels > kMaxPyramidLevels) {
    return "field 'spatial_scales' must hold 1 to " + std::to_string(kMaxPyramidLevels) + " values, got " +
           std::to_string(fields.num_levels);
  }
  return "";
}

FeaturePyramid unitPyramid(MultiLevelRoIAlignFields const& fields) {
  FeaturePyramid pyramid;
  pyramid.num_levels = fields.num_levels;
  for (int32_t l = 0; l < fields.num_levels && l < kMaxPyramidLevels; ++l) {
    pyramid.height[l] = 1;
    pyramid.width[l] = 1;
    pyramid.spatial_scale[l] = fields.spatial_scales[l];
  }
  return pyramid;
}

RoIAlignParams toKernelParams(MultiLevelRoIAlignFields const& fields) {
  RoIAlignParams params;
  params.output_height = fields.output_height;
  params.output_width = fields.output_width;
  params.sampling_ratio = fields.sampling_ratio;
  params.aligned = fields.aligned != 0;
  params.finest_scale = fields.finest_scale;
  return params;
}

std::string makePyramid(MultiLevelRoIAlignFields const& fields, LevelShape const* levels, int32_t numLevels,
                        FeaturePyramid& pyramid) {
  if (numLevels != fields.num_levels) {
    return "got " + std::to_string(numLevels) + " feature inputs but spatial_scales has " +
           std::to_string(fields.num_levels) + " values (one per level)";
  }
  pyramid = FeaturePyramid{};
  pyramid.num_levels = numLevels;
  pyramid.batch = levels[0].batch;
  pyramid.channels = levels[0].channels;
  for (int32_t l = 0; l < numLevels; ++l) {
    if (levels[l].batch != pyramid.batch || levels[l].channels != pyramid.channels) {
      std::ostringstream message;
      message << "feature level " << l << " has shape [N=" << levels[l].batch << ", C=" << levels[l].channels
              << "] but level 0 has [N=" << pyramid.batch << ", C=" << pyramid.channels
              << "]; all levels need the same batch and channel count";
      return message.str();
    }
    pyramid.height[l] = levels[l].height;
    pyramid.width[l] = levels[l].width;
    pyramid.spatial_scale[l] = fields.spatial_scales[l];
  }
  return "";
}

std::string describeFields(MultiLevelRoIAlignFields const& fields) {
  std::ostringstream text;
  text << "output_height=" << fields.output_height << " output_width=" << fields.output_width
       << " sampling_ratio=" << fields.sampling_ratio << " aligned=" << fields.aligned
       << " finest_scale=" << fields.finest_scale << " spatial_scales=[";
  for (int32_t l = 0; l < fields.num_levels && l < kMaxPyramidLevels; ++l) {
    text << (l > 0 ? ", " : "") << fields.spatial_scales[l];
  }
  text << "]";
  return text.str();
}

}  // namespace sspnet::trt
