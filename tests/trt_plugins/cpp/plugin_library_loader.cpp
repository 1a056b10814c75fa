// Loads the plugin glue library (csrc/tensorrt, linked without libnvinfer) the two ways TensorRT
// loads plugin libraries, against a fake plugin registry, and prints what got registered as JSON
// for tests/trt_plugins/test_plugin_library.py.
//
// The fake registry (fake_tensorrt.h) follows TensorRT's documented contract, not the library's
// code: registerCreator refuses a second creator with the same namespace, name and version
// (returns false), and deregisterCreator forgets a registered creator object. The driver itself
// plays TensorRT:
//   path 1 (plain dlopen): dlopen and look at the registry;
//   path 2 (IPluginRegistry::loadLibrary): dlsym setLoggerFinder and getCreators, call both, and
//          register every returned creator under its own namespace.
// It needs TensorRT's headers; getPluginRegistry / getLogger come from fake_nvinfer.cpp, compiled
// into the executable (linked with -rdynamic so the library binds to them).
//
//   usage: plugin_library_loader /path/to/libglue.so
#include <NvInferRuntime.h>
#include <dlfcn.h>

#include <cstdio>
#include <string>
#include <vector>

#include "fake_tensorrt.h"

using namespace nvinfer1;

namespace {

IPluginCreatorV3One& asV3One(IPluginCreatorInterface& creator) { return static_cast<IPluginCreatorV3One&>(creator); }

fake_tensorrt::FakeRegistry& gRegistry = fake_tensorrt::registry();

class LoggerFinder : public ILoggerFinder {
 public:
  fake_tensorrt::RecordingLogger logger;
  ILogger* findLogger() override { return &logger; }
};

// JSON string (the messages are ASCII; only quotes and backslashes need escaping).
std::string quoted(std::string const& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

std::string registryJson() {
  std::string out = "[";
  for (std::size_t i = 0; i < gRegistry.entries().size(); ++i) {
    out += (i ? ", " : "") + quoted(gRegistry.entries()[i].key());
  }
  return out + "]";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s LIBRARY\n", argv[0]);
    return 2;
  }
  // RTLD_LAZY: the glue library leaves the CUDA kernels unresolved; nothing here calls them.
  void* library = dlopen(argv[1], RTLD_LAZY | RTLD_LOCAL);
  if (library == nullptr) {
    std::fprintf(stderr, "dlopen failed: %s\n", dlerror());
    return 1;
  }
  std::vector<IPluginCreatorInterface const*> loadTime;
  for (auto const& entry : gRegistry.entries()) {
    loadTime.push_back(entry.creator);
  }
  std::string const afterDlopen = registryJson();

  using SetLoggerFinder = void (*)(ILoggerFinder*);
  using GetCreators = IPluginCreatorInterface* const* (*)(int32_t&);
  auto setLoggerFinder = reinterpret_cast<SetLoggerFinder>(dlsym(library, "setLoggerFinder"));
  auto getCreators = reinterpret_cast<GetCreators>(dlsym(library, "getCreators"));
  if (setLoggerFinder == nullptr || getCreators == nullptr) {
    std::printf("{\"after_dlopen\": %s, \"entry_points\": false}\n", afterDlopen.c_str());
    return 0;
  }
  static LoggerFinder finder;
  setLoggerFinder(&finder);
  int32_t count = -1;
  IPluginCreatorInterface* const* creators = getCreators(count);
  std::string const afterGetCreators = registryJson();

  std::string returned = "[";
  bool registered = true;
  for (int32_t i = 0; i < count; ++i) {
    IPluginCreatorV3One& creator = asV3One(*creators[i]);
    bool const sameObject = i < static_cast<int32_t>(loadTime.size()) && loadTime[i] == creators[i];
    returned += std::string(i ? ", " : "") + "{\"kind\": " + quoted(creators[i]->getInterfaceInfo().kind) +
                ", \"name\": " + quoted(creator.getPluginName()) + ", \"version\": " +
                quoted(creator.getPluginVersion()) + ", \"namespace\": " + quoted(creator.getPluginNamespace()) +
                ", \"same_object_as_load_time\": " + (sameObject ? "true" : "false") + "}";
    registered = gRegistry.registerCreator(*creators[i], creator.getPluginNamespace()) && registered;
  }
  returned += "]";
  std::string const afterTensorRT = registryJson();
  int32_t secondCount = -1;
  getCreators(secondCount);
  std::string const afterSecondCall = registryJson();

  // A field no plugin has: createPlugin fails and logs through the logger setLoggerFinder gave.
  int32_t value = 1;
  PluginField field("no_such_field", &value, PluginFieldType::kINT32, 1);
  PluginFieldCollection fields{1, &field};
  IPluginV3* plugin = asV3One(*creators[0]).createPlugin("layer0", &fields, TensorRTPhase::kBUILD);
  std::string logged = "[";
  std::vector<std::string> const errors = finder.logger.errors();
  for (std::size_t i = 0; i < errors.size(); ++i) {
    logged += (i ? ", " : "") + quoted(errors[i]);
  }
  logged += "]";

  std::printf(
      "{\"after_dlopen\": %s, \"entry_points\": true, \"after_get_creators\": %s, \"returned\": %s, "
      "\"tensorrt_registration_ok\": %s, \"after_tensorrt_registers\": %s, \"after_second_get_creators\": %s, "
      "\"bad_field_plugin_created\": %s, \"logged_errors\": %s}\n",
      afterDlopen.c_str(), afterGetCreators.c_str(), returned.c_str(), registered ? "true" : "false",
      afterTensorRT.c_str(), afterSecondCall.c_str(), plugin != nullptr ? "true" : "false", logged.c_str());
  return 0;
}
