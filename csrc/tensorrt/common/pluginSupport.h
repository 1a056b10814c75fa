// TensorRT-side helpers shared by the sspnet plugins: error logging, type mapping, PluginField
// conversion of the field tables (common/fieldBinding.h) and static registration.
#pragma once

#include <NvInferRuntime.h>

#include <string>
#include <vector>

#include "common.h"  // csrc/kernels: sspnet::DataType, sspnet::Status
#include "common/fieldBinding.h"

static_assert(NV_TENSORRT_MAJOR >= 10, "the sspnet plugins are IPluginV3 plugins: they need TensorRT >= 10");

namespace sspnet::trt {

// Plugin methods are noexcept and report failure through return codes; this prints the reason.
void logError(char const* pluginName, std::string const& message) noexcept;

// TensorRT kFLOAT / kHALF -> the kernels' storage type; false for any other type.
bool toKernelType(nvinfer1::DataType type, sspnet::DataType& out) noexcept;

// For IPluginCreatorV3One::getFieldNames(): names, types and lengths, no data.
std::vector<nvinfer1::PluginField> fieldSignatures(std::vector<FieldBinding> const& bindings);

// For IPluginV3OneRuntime::getFieldsToSerialize(): pointers to the bound (live) values.
std::vector<nvinfer1::PluginField> fieldValues(std::vector<FieldBinding> const& bindings);

// For IPluginCreatorV3One::createPlugin(): copies `fc` into the bound members. "" or a message.
std::string readPluginFields(nvinfer1::PluginFieldCollection const* fc, std::vector<FieldBinding> const& bindings);

// Registers one creator instance under kPluginNamespace when the library is loaded (dlopen,
// ctypes.CDLL, trtexec --staticPlugins). TensorRT's REGISTER_TENSORRT_PLUGIN does the same but always
// passes the empty namespace; ours passes the namespace the creators report, so both agree.
template <typename Creator>
class PluginRegistrar {
 public:
  PluginRegistrar() {
    if (!getPluginRegistry()->registerCreator(mCreator, kPluginNamespace)) {
      logError(mCreator.getPluginName(), "registration failed (is the library loaded twice?)");
    }
  }

 private:
  Creator mCreator{};
};

}  // namespace sspnet::trt

#define SSPNET_REGISTER_TENSORRT_PLUGIN(Creator) \
  static ::sspnet::trt::PluginRegistrar<Creator> sspnetPluginRegistrar##Creator {}
