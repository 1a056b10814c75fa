// The Python module `sspnet._C`. Importing it registers the torch ops (torch.ops.sspnet.*), which
// each op file declares with TORCH_LIBRARY_FRAGMENT; this file only exposes build facts.
#include <torch/extension.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef SSPNET_CUDA_ARCHS
#define SSPNET_CUDA_ARCHS ""
#endif

namespace {

bool built_with_cuda() {
#ifdef SSPNET_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int openmp_max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "sspnet compiled kernels (multi-level RoIAlign, batched NMS)";
  m.def("built_with_cuda", &built_with_cuda, "True when the CUDA kernels were compiled in");
  m.def("cuda_archs", []() { return std::string(SSPNET_CUDA_ARCHS); },
        "TORCH_CUDA_ARCH_LIST the CUDA kernels were compiled for ('' for a CPU-only build)");
  m.def("openmp_max_threads", &openmp_max_threads, "threads the CPU kernels use by default");
}
