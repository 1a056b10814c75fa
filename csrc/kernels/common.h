// Shared types of the framework-free kernels. No torch, no TensorRT headers here:
// every binding (csrc/torch, csrc/tensorrt) talks to the kernels through these plain structs.
#pragma once

#include <cstdint>

namespace sspnet {

// Storage type of floating-point tensors. Arithmetic is always fp32 (fp64 for kFloat64).
// kFloat16 is CUDA only; kFloat64 exists so torch.autograd.gradcheck can run.
enum class DataType : int32_t { kFloat32 = 0, kFloat16 = 1, kFloat64 = 2 };

inline const char* data_type_name(DataType t) {
  switch (t) {
    case DataType::kFloat32: return "float32";
    case DataType::kFloat16: return "float16";
    case DataType::kFloat64: return "float64";
  }
  return "unknown";
}

// Kernels return a status instead of throwing so they can be called from TensorRT's enqueue
// (which must not throw) and from torch (which turns a bad status into an exception).
enum class Status : int32_t {
  kOk = 0,
  kInvalidArgument = 1,   // a parameter outside its documented range
  kUnsupportedType = 2,   // e.g. kFloat16 on the CPU path
  kWorkspaceTooSmall = 3,
  kCudaError = 4,
};

inline const char* status_message(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kInvalidArgument: return "invalid argument";
    case Status::kUnsupportedType: return "unsupported data type for this device";
    case Status::kWorkspaceTooSmall: return "workspace too small";
    case Status::kCudaError: return "CUDA error";
  }
  return "unknown status";
}

}  // namespace sspnet
