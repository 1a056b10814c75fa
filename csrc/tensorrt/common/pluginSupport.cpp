#include "common/pluginSupport.h"

#include <iostream>

namespace sspnet::trt {

nvinfer1::ILogger* tensorrtLogger() noexcept {
  if (nvinfer1::ILogger* logger = pluginLibraryLogger()) {
    return logger;  // loaded by TensorRT's plugin-library loader, which handed its logger over
  }
  return getLogger();  // plain dlopen: the logger TensorRT's builder / runtime was created with
}

void logError(char const* pluginName, std::string const& message) noexcept {
  try {
    std::string const text = std::string("[sspnet TensorRT plugin ") + pluginName + "] " + message;
    if (nvinfer1::ILogger* logger = tensorrtLogger()) {
      logger->log(nvinfer1::ILogger::Severity::kERROR, text.c_str());
    } else {
      std::cerr << text << std::endl;  // no TensorRT logger exists yet (no builder or runtime)
    }
  } catch (...) {
    // Nothing sensible left to do: the caller still returns its error code.
  }
}

void logException(char const* pluginName, char const* method, char const* what) noexcept {
  try {
    logError(pluginName, std::string(method) + " failed: " + what);
  } catch (...) {
    // Building the message failed too (out of memory): the caller still returns its error code.
  }
}

int32_t kernelResult(char const* pluginName, sspnet::Status status) noexcept {
  if (status == sspnet::Status::kOk) {
    return 0;
  }
  logException(pluginName, "kernel", status_message(status));
  return static_cast<int32_t>(status);
}

std::string dimsText(nvinfer1::Dims const& dims) {
  std::string text = "[";
  for (int32_t i = 0; i < dims.nbDims; ++i) {
    text += (i > 0 ? ", " : "") + (dims.d[i] < 0 ? std::string("?") : std::to_string(dims.d[i]));
  }
  return text + "]";
}

bool toKernelType(nvinfer1::DataType type, sspnet::DataType& out) noexcept {
  switch (type) {
    case nvinfer1::DataType::kFLOAT: out = sspnet::DataType::kFloat32; return true;
    case nvinfer1::DataType::kHALF: out = sspnet::DataType::kFloat16; return true;
    default: return false;
  }
}

namespace {

nvinfer1::PluginFieldType toPluginFieldType(FieldKind kind) {
  return kind == FieldKind::kInt32 ? nvinfer1::PluginFieldType::kINT32 : nvinfer1::PluginFieldType::kFLOAT32;
}

}  // namespace

std::vector<nvinfer1::PluginField> fieldSignatures(std::vector<FieldBinding> const& bindings) {
  std::vector<nvinfer1::PluginField> fields;
  for (FieldBinding const& binding : bindings) {
    fields.emplace_back(binding.name, nullptr, toPluginFieldType(binding.kind), binding.capacity);
  }
  return fields;
}

std::vector<nvinfer1::PluginField> fieldValues(std::vector<FieldBinding> const& bindings) {
  std::vector<nvinfer1::PluginField> fields;
  for (FieldBinding const& binding : bindings) {
    fields.emplace_back(binding.name, binding.values, toPluginFieldType(binding.kind), binding.length());
  }
  return fields;
}

std::string collectionFields(nvinfer1::PluginFieldCollection const* fc, std::vector<nvinfer1::PluginField>& out) {
  out.clear();
  if (fc == nullptr) {
    return "";
  }
  if (fc->nbFields < 0 || (fc->nbFields > 0 && fc->fields == nullptr)) {
    return "malformed field collection: " + std::to_string(fc->nbFields) + " fields" +
           (fc->fields == nullptr ? " and no field array" : "");
  }
  out.assign(fc->fields, fc->fields + fc->nbFields);
  return "";
}

std::string readPluginFields(nvinfer1::PluginFieldCollection const* fc, std::vector<FieldBinding> const& bindings) {
  std::vector<nvinfer1::PluginField> fields;
  std::string const problem = collectionFields(fc, fields);
  if (!problem.empty()) {
    return problem;
  }
  std::vector<FieldValue> values;
  for (nvinfer1::PluginField const& field : fields) {
    FieldKind kind;
    if (field.type == nvinfer1::PluginFieldType::kINT32) {
      kind = FieldKind::kInt32;
    } else if (field.type == nvinfer1::PluginFieldType::kFLOAT32) {
      kind = FieldKind::kFloat32;
    } else {
      return std::string("field '") + (field.name != nullptr ? field.name : "(null)") + "' has PluginFieldType " +
             std::to_string(static_cast<int32_t>(field.type)) +
             "; only int32 (kINT32) and float32 (kFLOAT32) fields exist";
    }
    values.push_back(FieldValue{field.name, kind, field.data, field.length});
  }
  return readFields(values, bindings);
}

}  // namespace sspnet::trt
