// SSPNetBatchedNMS: name, version, fields with their defaults, and the conversion to the kernel's
// NmsParams. No TensorRT header (see common/fieldBinding.h).
// runtime/plugin_fields.json describes the same plugin; tests/trt_plugins checks that they agree.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "batched_nms.h"
#include "common/fieldBinding.h"

namespace sspnet::trt {

constexpr char kBatchedNmsName[] = "SSPNetBatchedNMS";
constexpr char kBatchedNmsVersion[] = "1";

struct BatchedNmsFields {
  int32_t method = 0;  // 0 hard, 1 soft-linear, 2 soft-gaussian
  float iou_threshold = 0.5F;
  float sigma = 0.5F;
  float score_threshold = 0.0F;
  float min_score = 0.0F;
  int32_t max_output = 1000;
  int32_t class_aware = 0;  // 1: a third input `labels` [N, M] int32
};

// The one field table (names as in runtime/plugin_fields.json).
std::vector<FieldBinding> bindFields(BatchedNmsFields& fields);

// What the kernel's validate(NmsParams) cannot see: the method code and class_aware are not plain
// numbers there. "" or a message.
std::string checkFields(BatchedNmsFields const& fields);

NmsParams toKernelParams(BatchedNmsFields const& fields);

// boxes, scores, and labels when class-aware.
inline int32_t numInputs(BatchedNmsFields const& fields) { return fields.class_aware != 0 ? 3 : 2; }

// "name=value ..." of every field, for error messages.
std::string describeFields(BatchedNmsFields const& fields);

}  // namespace sspnet::trt
