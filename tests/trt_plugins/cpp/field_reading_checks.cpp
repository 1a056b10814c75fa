// Behaviour of the field reader shared by both plugins' createPlugin (build phase: ONNX attributes;
// runtime phase: the serialised fields) and of the pyramid-shape check of the RoIAlign plugin.
// Expected values are written out by hand. Prints one line per failed check; exit code = failures.
#include <cstdio>
#include <string>
#include <vector>

#include "batchedNms/batchedNmsFields.h"
#include "multiLevelRoIAlign/multiLevelRoIAlignFields.h"

using namespace sspnet;
using namespace sspnet::trt;

static int failures = 0;

static void check(bool ok, char const* what, std::string const& detail = "") {
  if (!ok) {
    ++failures;
    std::printf("FAILED: %s %s\n", what, detail.c_str());
  }
}

static bool contains(std::string const& text, std::string const& part) { return text.find(part) != std::string::npos; }

int main() {
  {  // values are copied into the struct; absent fields keep their defaults
    BatchedNmsFields nms;
    int32_t method = 2;
    float iou = 0.3F;
    std::string problem = readFields({{"method", FieldKind::kInt32, &method, 1},
                                      {"iou_threshold", FieldKind::kFloat32, &iou, 1}},
                                     bindFields(nms));
    check(problem.empty(), "valid NMS fields accepted", problem);
    check(nms.method == 2 && nms.iou_threshold == 0.3F, "NMS values copied");
    check(nms.max_output == 1000 && nms.sigma == 0.5F && nms.class_aware == 0, "absent NMS fields keep defaults");
    NmsParams params = toKernelParams(nms);
    check(params.method == NmsMethod::kGaussian && params.iou_threshold == 0.3F && params.max_output == 1000,
          "NMS kernel params follow the fields");
  }
  {  // an array field sets its element count
    MultiLevelRoIAlignFields roi;
    float scales[3] = {0.125F, 0.0625F, 0.03125F};
    std::string problem = readFields({{"spatial_scales", FieldKind::kFloat32, scales, 3}}, bindFields(roi));
    check(problem.empty(), "3 spatial scales accepted", problem);
    check(roi.num_levels == 3 && roi.spatial_scales[0] == 0.125F && roi.spatial_scales[2] == 0.03125F,
          "spatial scales copied and counted");
    check(roi.output_height == 7 && roi.aligned == 1 && roi.finest_scale == 56.0F, "absent RoIAlign fields keep defaults");
  }
  {  // wrong type, wrong length, unknown name, too many levels: one message naming the field
    BatchedNmsFields nms;
    float notAnInt = 1.0F;
    std::string problem = readFields({{"max_output", FieldKind::kFloat32, &notAnInt, 1}}, bindFields(nms));
    check(contains(problem, "'max_output'") && contains(problem, "int32"), "wrong type names field and type", problem);

    int32_t two[2] = {1, 2};
    problem = readFields({{"method", FieldKind::kInt32, two, 2}}, bindFields(nms));
    check(contains(problem, "'method'") && contains(problem, "1 value"), "scalar with 2 values rejected", problem);

    int32_t one = 1;
    problem = readFields({{"nms_method", FieldKind::kInt32, &one, 1}}, bindFields(nms));
    check(contains(problem, "unknown field 'nms_method'") && contains(problem, "iou_threshold"),
          "unknown field rejected, known fields listed", problem);

    MultiLevelRoIAlignFields roi;
    float nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    problem = readFields({{"spatial_scales", FieldKind::kFloat32, nine, 9}}, bindFields(roi));
    check(contains(problem, "'spatial_scales'") && contains(problem, "1 to 8"), "9 levels rejected", problem);
    check(roi.num_levels == 4, "rejected array leaves the count alone");
  }
  {  // range checks the kernel cannot do
    BatchedNmsFields nms;
    nms.method = 3;
    check(contains(checkFields(nms), "'method'"), "method 3 rejected");
    nms.method = 1;
    nms.class_aware = 2;
    check(contains(checkFields(nms), "'class_aware'"), "class_aware 2 rejected");
    nms.class_aware = 1;
    check(checkFields(nms).empty() && numInputs(nms) == 3, "class-aware NMS takes labels as a third input");

    MultiLevelRoIAlignFields roi;
    roi.aligned = 5;
    check(contains(checkFields(roi), "'aligned'"), "aligned 5 rejected");
    roi.aligned = 0;
    check(checkFields(roi).empty() && !toKernelParams(roi).aligned, "aligned 0 maps to false");
  }
  {  // pyramid from feature shapes
    MultiLevelRoIAlignFields roi;  // 4 levels: strides 4, 8, 16, 32
    LevelShape levels[4] = {{2, 256, 128, 160}, {2, 256, 64, 80}, {2, 256, 32, 40}, {2, 256, 16, 20}};
    FeaturePyramid pyramid;
    std::string problem = makePyramid(roi, levels, 4, pyramid);
    check(problem.empty(), "consistent pyramid accepted", problem);
    check(pyramid.num_levels == 4 && pyramid.batch == 2 && pyramid.channels == 256 && pyramid.height[3] == 16 &&
              pyramid.width[1] == 80 && pyramid.spatial_scale[2] == 0.0625F,
          "pyramid filled from shapes and scales");

    levels[2].channels = 128;
    problem = makePyramid(roi, levels, 4, pyramid);
    check(contains(problem, "level 2") && contains(problem, "C=128"), "channel mismatch names the level", problem);

    problem = makePyramid(roi, levels, 3, pyramid);
    check(contains(problem, "3 feature inputs") && contains(problem, "4 values"), "level count mismatch", problem);
  }
  std::printf("%d failures\n", failures);
  return failures;
}
