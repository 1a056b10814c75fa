#include "batchedNms/batchedNmsFields.h"

#include <sstream>

namespace sspnet::trt {

std::vector<FieldBinding> bindFields(BatchedNmsFields& fields) {
  return {
      int32Field("method", &fields.method),
      float32Field("iou_threshold", &fields.iou_threshold),
      float32Field("sigma", &fields.sigma),
      float32Field("score_threshold", &fields.score_threshold),
      float32Field("min_score", &fields.min_score),
      int32Field("max_output", &fields.max_output),
      int32Field("class_aware", &fields.class_aware),
  };
}

std::string checkFields(BatchedNmsFields const& fields) {
  if (fields.method < 0 || fields.method > 2) {
    return "field 'method' must be 0 (hard), 1 (soft-linear) or 2 (soft-gaussian), got " +
           std::to_string(fields.method);
  }
  if (fields.class_aware != 0 && fields.class_aware != 1) {
    return "field 'class_aware' must be 0 or 1, got " + std::to_string(fields.class_aware);
  }
  return "";
}

NmsParams toKernelParams(BatchedNmsFields const& fields) {
  NmsParams params;
  params.method = static_cast<NmsMethod>(fields.method);
  params.iou_threshold = fields.iou_threshold;
  params.sigma = fields.sigma;
  params.score_threshold = fields.score_threshold;
  params.min_score = fields.min_score;
  params.max_output = fields.max_output;
  return params;
}

std::string describeFields(BatchedNmsFields const& fields) {
  std::ostringstream text;
  text << "method=" << fields.method << " iou_threshold=" << fields.iou_threshold << " sigma=" << fields.sigma
       << " score_threshold=" << fields.score_threshold << " min_score=" << fields.min_score
       << " max_output=" << fields.max_output << " class_aware=" << fields.class_aware;
  return text.str();
}

}  // namespace sspnet::trt
