#include "common/fieldBinding.h"

#include <cstring>
#include <sstream>

namespace sspnet::trt {

FieldBinding int32Field(char const* name, int32_t* value) {
  return FieldBinding{name, FieldKind::kInt32, value, 1, nullptr};
}

FieldBinding float32Field(char const* name, float* value) {
  return FieldBinding{name, FieldKind::kFloat32, value, 1, nullptr};
}

FieldBinding float32ArrayField(char const* name, float* values, int32_t capacity, int32_t* count) {
  return FieldBinding{name, FieldKind::kFloat32, values, capacity, count};
}

namespace {

FieldBinding const* findBinding(std::vector<FieldBinding> const& bindings, char const* name) {
  for (FieldBinding const& binding : bindings) {
    if (name != nullptr && std::strcmp(binding.name, name) == 0) {
      return &binding;
    }
  }
  return nullptr;
}

std::string knownNames(std::vector<FieldBinding> const& bindings) {
  std::string names;
  for (FieldBinding const& binding : bindings) {
    names += names.empty() ? "" : ", ";
    names += binding.name;
  }
  return names;
}

// "" when `value` fits `binding`, else why not.
std::string checkValue(FieldValue const& value, FieldBinding const& binding) {
  std::ostringstream message;
  if (value.kind != binding.kind) {
    message << "field '" << binding.name << "' must be " << fieldKindName(binding.kind) << ", got "
            << fieldKindName(value.kind);
  } else if (!binding.isArray() && value.length != 1) {
    message << "field '" << binding.name << "' must hold 1 value, got " << value.length;
  } else if (binding.isArray() && (value.length < 1 || value.length > binding.capacity)) {
    message << "field '" << binding.name << "' must hold 1 to " << binding.capacity << " values, got "
            << value.length;
  } else if (value.data == nullptr) {
    message << "field '" << binding.name << "' has no data";
  }
  return message.str();
}

}  // namespace

std::string readFields(std::vector<FieldValue> const& values, std::vector<FieldBinding> const& bindings) {
  for (FieldValue const& value : values) {
    FieldBinding const* binding = findBinding(bindings, value.name);
    if (binding == nullptr) {
      return std::string("unknown field '") + (value.name != nullptr ? value.name : "(null)") +
             "'; known fields: " + knownNames(bindings);
    }
    std::string const problem = checkValue(value, *binding);
    if (!problem.empty()) {
      return problem;
    }
    size_t const elementSize = binding->kind == FieldKind::kInt32 ? sizeof(int32_t) : sizeof(float);
    std::memcpy(binding->values, value.data, elementSize * static_cast<size_t>(value.length));
    if (binding->isArray()) {
      *binding->count = value.length;
    }
  }
  return "";
}

}  // namespace sspnet::trt
