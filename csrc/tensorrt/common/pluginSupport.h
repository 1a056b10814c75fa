// TensorRT-side helpers shared by the sspnet plugins: error logging, type mapping and PluginField
// conversion of the field tables (common/fieldBinding.h). Registration: common/pluginLibrary.cpp.
#pragma once

#include <NvInferRuntime.h>

#include <exception>
#include <string>
#include <type_traits>
#include <vector>

#include "common.h"  // csrc/kernels: sspnet::DataType, sspnet::Status
#include "common/fieldBinding.h"

static_assert(NV_TENSORRT_MAJOR >= 10, "the sspnet plugins are IPluginV3 plugins: they need TensorRT >= 10");

namespace sspnet::trt {

// Plugin methods are noexcept and report failure through return codes; this logs the reason as a
// kERROR message to TensorRT's logger (tensorrtLogger()), or to stderr when there is none yet.
void logError(char const* pluginName, std::string const& message) noexcept;

// Logs "<method> failed: <what>" for an exception that reached a plugin method.
void logException(char const* pluginName, char const* method, char const* what) noexcept;

// Runs the body of a plugin method. TensorRT's plugin methods are noexcept and report failure
// through their return value, so an exception (std::bad_alloc from a string or vector, ...) is
// logged and becomes `onError` instead of terminating the application.
template <typename Body>
std::invoke_result_t<Body&> guarded(char const* pluginName, char const* method, std::invoke_result_t<Body&> onError,
                                    Body&& body) noexcept {
  try {
    return body();
  } catch (std::exception const& e) {
    logException(pluginName, method, e.what());
  } catch (...) {
    logException(pluginName, method, "unknown exception");
  }
  return onError;
}

// enqueue's result for the kernel's status: 0, or the status code with the reason logged.
int32_t kernelResult(char const* pluginName, sspnet::Status status) noexcept;

// The logger of the TensorRT that uses the plugins: the one handed over through setLoggerFinder
// (library loaded by IPluginRegistry::loadLibrary), else libnvinfer's getLogger() (the logger the
// application's builder or runtime was created with; nullptr before one exists).
nvinfer1::ILogger* tensorrtLogger() noexcept;

// "[N, 5]"-style text of a shape for messages; "?" for a dynamic (-1) size.
std::string dimsText(nvinfer1::Dims const& dims);

// TensorRT kFLOAT / kHALF -> the kernels' storage type; false for any other type.
bool toKernelType(nvinfer1::DataType type, sspnet::DataType& out) noexcept;

// For IPluginCreatorV3One::getFieldNames(): names, types and lengths, no data.
std::vector<nvinfer1::PluginField> fieldSignatures(std::vector<FieldBinding> const& bindings);

// For IPluginV3OneRuntime::getFieldsToSerialize(): pointers to the bound (live) values.
std::vector<nvinfer1::PluginField> fieldValues(std::vector<FieldBinding> const& bindings);

// The fields of `fc` (none for nullptr) into `out`; "" or why the collection itself is malformed.
// An engine file is untrusted input, so a negative count, or a positive count without a field
// array, is refused instead of read.
std::string collectionFields(nvinfer1::PluginFieldCollection const* fc, std::vector<nvinfer1::PluginField>& out);

// For IPluginCreatorV3One::createPlugin(): copies `fc` into the bound members. "" or a message.
std::string readPluginFields(nvinfer1::PluginFieldCollection const* fc, std::vector<FieldBinding> const& bindings);

// The logger of the TensorRT that loaded this library as a plugin library (IPluginRegistry::
// loadLibrary hands it over through setLoggerFinder, common/pluginLibrary.cpp); nullptr after a
// plain dlopen. Call it from the thread of the plugin method that logs.
nvinfer1::ILogger* pluginLibraryLogger();

}  // namespace sspnet::trt
