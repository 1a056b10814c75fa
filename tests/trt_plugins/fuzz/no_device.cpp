// The CUDA symbols the plugin sources reference, for the field fuzzer only: the fuzz target creates,
// clones and serialises plugins but never configures or enqueues them, so none of these may run.
// (The kernels themselves run on the CPU through tests/cuda_on_cpu; here they would only add build
// time and a CUDA runtime to a target that fuzzes field parsing.)
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>

#include "batched_nms.h"
#include "multi_level_roi_align.h"

namespace {

[[noreturn]] void unreachable(char const* what) {
  std::fprintf(stderr, "fuzz target called %s: it must not configure or enqueue plugins\n", what);
  std::abort();
}

}  // namespace

namespace sspnet {

size_t batched_nms_cuda_workspace_size(int64_t, int64_t, const NmsParams&, DataType) {
  unreachable("batched_nms_cuda_workspace_size");
}

Status batched_nms_cuda(const void*, const void*, const int32_t*, int64_t, int64_t, const NmsParams&, DataType,
                        int32_t*, void*, int32_t*, void*, size_t, cudaStream_t) {
  unreachable("batched_nms_cuda");
}

Status multi_level_roi_align_forward_cuda(const FeaturePyramid&, const void* const*, const void*, DataType, int64_t,
                                          const RoIAlignParams&, DataType, void*, cudaStream_t) {
  unreachable("multi_level_roi_align_forward_cuda");
}

}  // namespace sspnet

extern "C" cudaError_t cudaGetLastError() { unreachable("cudaGetLastError"); }
extern "C" char const* cudaGetErrorString(cudaError_t) { unreachable("cudaGetErrorString"); }
