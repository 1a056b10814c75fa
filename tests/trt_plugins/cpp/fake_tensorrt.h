// A stand-in for the parts of libnvinfer that the sspnet plugin library and the test drivers use,
// written against TensorRT's public headers (any version 10.x / 11.x):
//
//   FakeRegistry     IPluginRegistry as TensorRT documents it: registerCreator refuses a second
//                    creator with the same namespace, name and version; deregisterCreator forgets a
//                    registered creator object; getCreator finds one by name, version, namespace.
//   RecordingLogger  an ILogger that keeps what was logged.
//
// fake_nvinfer.cpp defines the library's exported functions (getPluginRegistry, getLogger) on top
// of these; it is built as a stub libnvinfer.so for the CMake build and the harness, or compiled
// straight into a test driver.
#pragma once

#include <NvInferRuntime.h>

#include <cstddef>
#include <string>
#include <vector>

namespace fake_tensorrt {

class FakeRegistry : public nvinfer1::IPluginRegistry {
 public:
  struct Entry {
    nvinfer1::IPluginCreatorInterface* creator;
    std::string pluginNamespace;
    std::string name;
    std::string version;
    std::string key() const { return pluginNamespace + "::" + name + "/" + version; }
  };

  // IPluginCreatorV3One creators only (the only kind the sspnet library has).
  bool registerCreator(nvinfer1::IPluginCreatorInterface& creator,
                       nvinfer1::AsciiChar const* const pluginNamespace) noexcept override;
  bool deregisterCreator(nvinfer1::IPluginCreatorInterface const& creator) noexcept override;
  nvinfer1::IPluginCreatorInterface* getCreator(nvinfer1::AsciiChar const* pluginName,
                                                nvinfer1::AsciiChar const* pluginVersion,
                                                nvinfer1::AsciiChar const* pluginNamespace) noexcept override;
  nvinfer1::IPluginCreatorInterface* const* getAllCreators(int32_t* const numCreators) const noexcept override;

  std::vector<Entry> const& entries() const { return mEntries; }

  // The rest of the interface, unused by the library. Declared without `override` where a method
  // exists in some TensorRT versions only (IPluginCreator (V1) methods are gone in 11.x;
  // getAllCreatorsRecursive is new in 10.x releases after 10.3), so one class fits every version.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  bool registerCreator(nvinfer1::IPluginCreator&, nvinfer1::AsciiChar const* const) noexcept { return false; }
  nvinfer1::IPluginCreator* const* getPluginCreatorList(int32_t* const count) const noexcept {
    *count = 0;
    return nullptr;
  }
  nvinfer1::IPluginCreator* getPluginCreator(nvinfer1::AsciiChar const* const, nvinfer1::AsciiChar const* const,
                                             nvinfer1::AsciiChar const* const) noexcept {
    return nullptr;
  }
  bool deregisterCreator(nvinfer1::IPluginCreator const&) noexcept { return false; }
#pragma GCC diagnostic pop
  nvinfer1::IPluginCreatorInterface* const* getAllCreatorsRecursive(int32_t* const count) noexcept {
    return getAllCreators(count);
  }
  void setErrorRecorder(nvinfer1::IErrorRecorder* const) noexcept override {}
  nvinfer1::IErrorRecorder* getErrorRecorder() const noexcept override { return nullptr; }
  bool isParentSearchEnabled() const override { return false; }
  void setParentSearchEnabled(bool const) override {}
  PluginLibraryHandle loadLibrary(nvinfer1::AsciiChar const*) noexcept override { return nullptr; }
  void deregisterLibrary(PluginLibraryHandle) noexcept override {}
  nvinfer1::IPluginResource* acquirePluginResource(nvinfer1::AsciiChar const*,
                                                   nvinfer1::IPluginResource*) noexcept override {
    return nullptr;
  }
  int32_t releasePluginResource(nvinfer1::AsciiChar const*) noexcept override { return 0; }

 private:
  std::vector<Entry> mEntries;
  mutable std::vector<nvinfer1::IPluginCreatorInterface*> mCreatorList;
};

class RecordingLogger : public nvinfer1::ILogger {
 public:
  struct Message {
    Severity severity;
    std::string text;
  };
  std::vector<Message> messages;

  void log(Severity severity, nvinfer1::AsciiChar const* message) noexcept override;
  // Messages of severity kERROR or worse.
  std::vector<std::string> errors() const;
  // Messages logged from index `first` on, of any severity.
  std::vector<std::string> since(std::size_t first) const;
};

// The registry behind getPluginRegistry().
FakeRegistry& registry();
// What getLogger() returns (nullptr until set, as before TensorRT created a builder or runtime).
void setGlobalLogger(nvinfer1::ILogger* logger);

}  // namespace fake_tensorrt
