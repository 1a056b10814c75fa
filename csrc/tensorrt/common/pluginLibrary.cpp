// How TensorRT gets the library's two plugin creators. There is exactly one instance of each
// creator, and whichever way the library is loaded, each is registered exactly once:
//
// 1. Plain dlopen: ctypes.CDLL (what sspnet.runtime does), trtexec --staticPlugins, linking
//    against the library, any host that only dlopens it. Nobody calls into the library, so a
//    static object registers both creators with getPluginRegistry() under kPluginNamespace
//    while the library loads. They stay registered for the life of the process.
//
// 2. TensorRT's plugin-library loader: IPluginRegistry::loadLibrary (Python: load_library),
//    trtexec --dynamicPlugins, and a library serialized into an engine with setPluginsToSerialize.
//    TensorRT dlopens the library (so the registration of 1 runs first), calls setLoggerFinder()
//    and getCreators() below, and registers the creators getCreators() returns under their own
//    namespace. It refuses the whole library if a creator with the same name, version and
//    namespace is already registered, so getCreators() first withdraws what 1 registered and then
//    hands the same two objects to TensorRT, which owns their registration from then on
//    (deregisterLibrary removes them).
//
// The same file loaded both ways in one process is still registered once: a second dlopen of a
// loaded file runs no initialiser, and getCreators() takes a load-time registration over. Two
// copies of the library (two files, or an engine carrying a serialized copy while another copy is
// loaded) register the same names twice, which TensorRT refuses: load one copy.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "batchedNms/batchedNmsPlugin.h"
#include "common/pluginSupport.h"
#include "multiLevelRoIAlign/multiLevelRoIAlignPlugin.h"

namespace sspnet::trt {
namespace {

MultiLevelRoIAlignPluginCreator gMultiLevelRoIAlignCreator;
BatchedNmsPluginCreator gBatchedNmsCreator;
std::array<nvinfer1::IPluginCreatorV3One*, 2> const gCreators{&gMultiLevelRoIAlignCreator, &gBatchedNmsCreator};
// The same two objects as the array getCreators() returns (TensorRT's element type is the base interface).
std::array<nvinfer1::IPluginCreatorInterface*, 2> const gCreatorList{&gMultiLevelRoIAlignCreator, &gBatchedNmsCreator};

std::atomic<nvinfer1::ILoggerFinder*> gLoggerFinder{nullptr};

// Path 1 (see the top of the file): registration while the library loads.
class LoadTimeRegistration {
 public:
  LoadTimeRegistration() {
    for (std::size_t i = 0; i < gCreators.size(); ++i) {
      mRegistered[i] = getPluginRegistry()->registerCreator(*gCreators[i], kPluginNamespace);
      if (!mRegistered[i]) {
        logError(gCreators[i]->getPluginName(),
                 "registration failed: a creator of this name, version and namespace is already registered "
                 "(is a second copy of libsspnet_trt_plugins.so loaded?)");
      }
    }
  }

  // Path 2: undo only what this copy of the library registered, once.
  void withdraw() {
    std::call_once(mWithdrawn, [this] {
      for (std::size_t i = 0; i < gCreators.size(); ++i) {
        if (mRegistered[i] && !getPluginRegistry()->deregisterCreator(*gCreators[i])) {
          logError(gCreators[i]->getPluginName(),
                   "could not withdraw the load-time registration; TensorRT will refuse the library");
        }
      }
    });
  }

 private:
  std::array<bool, 2> mRegistered{};
  std::once_flag mWithdrawn;
};

LoadTimeRegistration gLoadTimeRegistration;

}  // namespace

nvinfer1::ILogger* pluginLibraryLogger() {
  nvinfer1::ILoggerFinder* finder = gLoggerFinder.load();
  return finder != nullptr ? finder->findLogger() : nullptr;
}

}  // namespace sspnet::trt

// The two entry points of a TensorRT 10 plugin library (path 2). C linkage and default visibility:
// TensorRT looks them up by these exact names with dlsym.

extern "C" __attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept {
  sspnet::trt::gLoggerFinder.store(finder);
}

extern "C" __attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface* const* getCreators(
    int32_t& nbCreators) noexcept {
  try {
    sspnet::trt::gLoadTimeRegistration.withdraw();
  } catch (...) {
    // std::call_once may throw std::system_error; TensorRT's duplicate check then names the creators.
  }
  nbCreators = static_cast<int32_t>(sspnet::trt::gCreatorList.size());
  return sspnet::trt::gCreatorList.data();
}
