// The stub libnvinfer (see fake_tensorrt.h): the two functions the sspnet plugin library imports
// from TensorRT, on top of the fake registry and logger.
#include "fake_tensorrt.h"

#include <cstring>

namespace fake_tensorrt {

namespace {

nvinfer1::IPluginCreatorV3One& asV3One(nvinfer1::IPluginCreatorInterface& creator) {
  return static_cast<nvinfer1::IPluginCreatorV3One&>(creator);
}

bool same(char const* a, char const* b) { return std::strcmp(a != nullptr ? a : "", b != nullptr ? b : "") == 0; }

nvinfer1::ILogger* gGlobalLogger = nullptr;

}  // namespace

bool FakeRegistry::registerCreator(nvinfer1::IPluginCreatorInterface& creator,
                                   nvinfer1::AsciiChar const* const pluginNamespace) noexcept {
  nvinfer1::IPluginCreatorV3One& v3 = asV3One(creator);
  Entry entry{&creator, pluginNamespace != nullptr ? pluginNamespace : "", v3.getPluginName(), v3.getPluginVersion()};
  for (Entry const& existing : mEntries) {
    if (existing.key() == entry.key()) {
      return false;
    }
  }
  mEntries.push_back(entry);
  return true;
}

bool FakeRegistry::deregisterCreator(nvinfer1::IPluginCreatorInterface const& creator) noexcept {
  for (auto it = mEntries.begin(); it != mEntries.end(); ++it) {
    if (it->creator == &creator) {
      mEntries.erase(it);
      return true;
    }
  }
  return false;
}

nvinfer1::IPluginCreatorInterface* FakeRegistry::getCreator(nvinfer1::AsciiChar const* pluginName,
                                                            nvinfer1::AsciiChar const* pluginVersion,
                                                            nvinfer1::AsciiChar const* pluginNamespace) noexcept {
  for (Entry const& entry : mEntries) {
    if (same(entry.name.c_str(), pluginName) && same(entry.version.c_str(), pluginVersion) &&
        same(entry.pluginNamespace.c_str(), pluginNamespace)) {
      return entry.creator;
    }
  }
  return nullptr;
}

nvinfer1::IPluginCreatorInterface* const* FakeRegistry::getAllCreators(int32_t* const numCreators) const noexcept {
  mCreatorList.clear();
  for (Entry const& entry : mEntries) {
    mCreatorList.push_back(entry.creator);
  }
  *numCreators = static_cast<int32_t>(mCreatorList.size());
  return mCreatorList.data();
}

void RecordingLogger::log(Severity severity, nvinfer1::AsciiChar const* message) noexcept {
  messages.push_back({severity, message != nullptr ? message : ""});
}

std::vector<std::string> RecordingLogger::errors() const {
  std::vector<std::string> out;
  for (Message const& message : messages) {
    if (message.severity <= Severity::kERROR) {
      out.push_back(message.text);
    }
  }
  return out;
}

std::vector<std::string> RecordingLogger::since(std::size_t first) const {
  std::vector<std::string> out;
  for (std::size_t i = first; i < messages.size(); ++i) {
    out.push_back(messages[i].text);
  }
  return out;
}

FakeRegistry& registry() {
  static FakeRegistry instance;
  return instance;
}

void setGlobalLogger(nvinfer1::ILogger* logger) { gGlobalLogger = logger; }

}  // namespace fake_tensorrt

extern "C" nvinfer1::IPluginRegistry* getPluginRegistry() noexcept { return &fake_tensorrt::registry(); }

extern "C" nvinfer1::ILogger* getLogger() noexcept { return fake_tensorrt::gGlobalLogger; }
