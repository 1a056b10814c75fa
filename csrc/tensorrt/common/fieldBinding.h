// Plugin fields without TensorRT: each plugin binds its field names to the members of a plain
// parameter struct, and this one table drives all three uses of the fields:
//   creator getFieldNames()          names and types           (pluginSupport.h: fieldSignatures)
//   plugin getFieldsToSerialize()    pointers to live values   (pluginSupport.h: fieldValues)
//   creator createPlugin(fc, phase)  copy values into struct   (readFields below)
// No TensorRT header here, so this file and the per-plugin field structs compile (and are tested)
// on machines without TensorRT: tests/trt_plugins/cpp/plugin_fields_dump.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sspnet::trt {

// Every sspnet plugin is registered under this namespace (runtime/plugin_fields.json says the same).
constexpr char kPluginNamespace[] = "sspnet";

enum class FieldKind : int32_t { kInt32 = 0, kFloat32 = 1 };

inline char const* fieldKindName(FieldKind kind) { return kind == FieldKind::kInt32 ? "int32" : "float32"; }

// One field bound to where its value lives in a plugin's parameter struct.
struct FieldBinding {
  char const* name;
  FieldKind kind;
  void* values;      // first element
  int32_t capacity;  // 1 for a scalar field
  int32_t* count;    // elements in use for an array field; nullptr for a scalar field

  bool isArray() const { return count != nullptr; }
  int32_t length() const { return count != nullptr ? *count : 1; }
};

FieldBinding int32Field(char const* name, int32_t* value);
FieldBinding float32Field(char const* name, float* value);
FieldBinding float32ArrayField(char const* name, float* values, int32_t capacity, int32_t* count);

// A field value as handed over by TensorRT: name, element kind, data, number of elements.
struct FieldValue {
  char const* name;
  FieldKind kind;
  void const* data;
  int32_t length;
};

// Copies `values` into the bound members. Fields missing from `values` keep their current values
// (the defaults, for a freshly constructed struct). Returns "" on success, else one message naming
// the field and what was expected; on error the bound members may be partly written.
std::string readFields(std::vector<FieldValue> const& values, std::vector<FieldBinding> const& bindings);

}  // namespace sspnet::trt
