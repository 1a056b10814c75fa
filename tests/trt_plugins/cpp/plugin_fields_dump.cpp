// Prints, as JSON, what the plugin sources declare: name, version, namespace and every field with its
// type and default, read from the same field tables the TensorRT creators use (bindFields).
// tests/trt_plugins/test_plugin_fields.py compiles this without TensorRT and compares the output with
// runtime/plugin_fields.json.
#include <cstdio>
#include <vector>

#include "batchedNms/batchedNmsFields.h"
#include "multiLevelRoIAlign/multiLevelRoIAlignFields.h"

using namespace sspnet::trt;

static void printFields(std::vector<FieldBinding> const& bindings) {
  std::printf("{");
  for (size_t i = 0; i < bindings.size(); ++i) {
    FieldBinding const& b = bindings[i];
    std::printf("%s\"%s\": {\"type\": \"%s%s\", \"default\": ", i ? ", " : "", b.name, fieldKindName(b.kind),
                b.isArray() ? "[]" : "");
    if (b.isArray()) std::printf("[");
    for (int32_t k = 0; k < b.length(); ++k) {
      if (b.kind == FieldKind::kInt32) {
        std::printf("%s%d", k ? ", " : "", static_cast<int32_t const*>(b.values)[k]);
      } else {
        std::printf("%s%.9g", k ? ", " : "", static_cast<double>(static_cast<float const*>(b.values)[k]));
      }
    }
    if (b.isArray()) std::printf("]");
    std::printf("}");
  }
  std::printf("}");
}

int main() {
  MultiLevelRoIAlignFields roi;
  BatchedNmsFields nms;
  std::printf("{\"namespace\": \"%s\", \"plugins\": {", kPluginNamespace);
  std::printf("\"%s\": {\"version\": \"%s\", \"fields\": ", kMultiLevelRoIAlignName, kMultiLevelRoIAlignVersion);
  printFields(bindFields(roi));
  std::printf("}, \"%s\": {\"version\": \"%s\", \"fields\": ", kBatchedNmsName, kBatchedNmsVersion);
  printFields(bindFields(nms));
  std::printf("}}}\n");
  return 0;
}
