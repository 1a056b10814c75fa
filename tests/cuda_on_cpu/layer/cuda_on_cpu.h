// CPU execution layer for CUDA kernels: force-included (g++ -include) into a .cu file compiled as
// C++ (-x c++) after tests/cuda_on_cpu/rewrite_cuda.py turned its launches into layer calls.
//
// Every CUDA thread of a block is a fiber; a deterministic scheduler runs one block at a time
// (runtime.cpp). This header is the device side the kernels see: the built-in coordinates,
// barriers, warp shuffles and votes, atomics and the few cudart calls the kernels make. The real
// cuda_runtime.h and host-side cuda_fp16.h from the toolkit come first: their templates use
// names such as gridDim as parameters, so the macros below must not exist while they are parsed.
#pragma once

#include <cuda_runtime.h>
#include <cuda_fp16.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#ifdef __CUDA_ARCH__
#error "cuda_on_cpu.h is for host compilers only (the kernels run as C++ on the CPU)"
#endif

namespace cuda_on_cpu {

// ---------------------------------------------------------------- thread coordinates
// Set by the scheduler before it resumes a CUDA thread; the kernels read them through the macros.
extern uint3 current_thread_idx;
extern uint3 current_block_idx;
extern dim3 current_block_dim;
extern dim3 current_grid_dim;

// ---------------------------------------------------------------- schedules and hooks
enum class Schedule : int { kForward = 0, kReverse = 1, kRandom = 2 };
void set_schedule(Schedule schedule, uint64_t seed);
// Test hook: launches get at most this many blocks in x (0: no cap). Only for kernels whose every
// launch is a grid-stride loop: it makes the second iteration of such loops run on small inputs.
void set_grid_cap(unsigned blocks);
// The last error the layer reported (barrier divergence, absent shuffle lane...), "" if none.
const char* last_report();
void clear_report();

// ---------------------------------------------------------------- barriers and warp collectives
void syncthreads(const char* file, int line);
int syncthreads_reduce(int predicate, int op, const char* file, int line);  // op 0 count, 1 and, 2 or
enum WarpOp : int {
  kShflIdx = 0, kShflUp, kShflDown, kShflXor, kVoteAll, kVoteAny, kBallot, kSyncWarp
};
// One lane's part of a warp collective: blocks until every lane named in `mask` arrived.
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int arg, int width,
                         const char* file, int line);
unsigned active_mask();

template <typename T>
T shuffle(WarpOp op, unsigned mask, T value, int arg, int width, const char* file, int line) {
  static_assert(sizeof(T) <= sizeof(uint64_t) && std::is_trivially_copyable<T>::value,
                "warp shuffles move at most 8 bytes of a trivially copyable type");
  uint64_t bits = 0;
  std::memcpy(&bits, static_cast<const void*>(&value), sizeof(T));
  bits = warp_collective(op, mask, bits, arg, width, file, line);
  T result;
  std::memcpy(static_cast<void*>(&result), &bits, sizeof(T));
  return result;
}

// ---------------------------------------------------------------- shared memory
// Static __shared__ arrays are function-local statics (one copy per kernel instantiation, reused
// block after block); the rewrite script registers each one so the layer can poison it between
// blocks: a read before the block's first write sees garbage (0xff bytes: NaN, -1), never the
// previous block's values.
void shared_declared(void* address, size_t bytes);
void* dynamic_shared();

// ---------------------------------------------------------------- launches
struct LaunchConfig {
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;
};
inline LaunchConfig config(dim3 grid, dim3 block, size_t shared_bytes = 0,
                           cudaStream_t stream = nullptr) {
  return {grid, block, shared_bytes, stream};
}

using ThreadBody = void (*)(void* closure);
// Runs the whole grid before returning (launches are synchronous; the stream is ignored).
void run_grid(const LaunchConfig& config, ThreadBody body, void* closure, const char* file,
              int line);

// `kernel` calls the kernel with the arguments (the rewrite script makes it a lambda, so template
// kernels deduce their arguments as under nvcc). The arguments are copied once at launch, as CUDA
// copies them; each thread gets its own copy (kernels may modify by-value parameters).
template <typename Kernel, typename... Args>
void launch(const char* file, int line, const LaunchConfig& cfg, Kernel kernel, Args&&... args) {
  struct Closure {
    Kernel kernel;
    std::tuple<std::decay_t<Args>...> args;
  } closure{kernel, std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)};
  run_grid(
      cfg, [](void* raw) {
        auto* c = static_cast<Closure*>(raw);
        std::apply(c->kernel, c->args);
      },
      &closure, file, line);
}

// ---------------------------------------------------------------- atomics (relaxed, like CUDA's)
template <typename T>
T atomic_fetch_add(T* address, T value) {
  return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
}
template <typename T, typename Bits>
T atomic_update(T* address, T (*update)(T, T), T value) {
  static_assert(sizeof(T) == sizeof(Bits), "bit container size");
  Bits* raw = reinterpret_cast<Bits*>(address);
  Bits expected = __atomic_load_n(raw, __ATOMIC_RELAXED);
  for (;;) {
    T old;
    std::memcpy(static_cast<void*>(&old), &expected, sizeof(T));
    const T next = update(old, value);
    Bits desired;
    std::memcpy(&desired, static_cast<const void*>(&next), sizeof(T));
    if (__atomic_compare_exchange_n(raw, &expected, desired, false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED)) {
      return old;
    }
  }
}

}  // namespace cuda_on_cpu

// ================================================================ what the kernels see
#undef threadIdx
#undef blockIdx
#undef blockDim
#undef gridDim
#undef warpSize
#define threadIdx (static_cast<const uint3&>(::cuda_on_cpu::current_thread_idx))
#define blockIdx (static_cast<const uint3&>(::cuda_on_cpu::current_block_idx))
#define blockDim (static_cast<const dim3&>(::cuda_on_cpu::current_block_dim))
#define gridDim (static_cast<const dim3&>(::cuda_on_cpu::current_grid_dim))
#define warpSize 32

#undef __shared__
#define __shared__ static
#undef __launch_bounds__
#define __launch_bounds__(...)

#define __syncthreads() ::cuda_on_cpu::syncthreads(__FILE__, __LINE__)
#define __syncthreads_count(p) ::cuda_on_cpu::syncthreads_reduce((p) ? 1 : 0, 0, __FILE__, __LINE__)
#define __syncthreads_and(p) ::cuda_on_cpu::syncthreads_reduce((p) ? 1 : 0, 1, __FILE__, __LINE__)
#define __syncthreads_or(p) ::cuda_on_cpu::syncthreads_reduce((p) ? 1 : 0, 2, __FILE__, __LINE__)
#define __syncwarp(...) \
  ((void)::cuda_on_cpu::warp_collective(::cuda_on_cpu::kSyncWarp, \
                                         ::cuda_on_cpu::syncwarp_mask(__VA_ARGS__), 0, 0, 32, \
                                         __FILE__, __LINE__))
namespace cuda_on_cpu {
inline unsigned syncwarp_mask(unsigned mask = 0xffffffffu) { return mask; }
template <typename T>
T shfl_width(WarpOp op, unsigned mask, T value, int arg, const char* file, int line,
             int width = 32) {
  return shuffle(op, mask, value, arg, width, file, line);
}
}  // namespace cuda_on_cpu
#define __shfl_up_sync(mask, value, delta, ...) \
  ::cuda_on_cpu::shfl_width(::cuda_on_cpu::kShflUp, mask, value, delta, __FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_down_sync(mask, value, delta, ...) \
  ::cuda_on_cpu::shfl_width(::cuda_on_cpu::kShflDown, mask, value, delta, __FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_xor_sync(mask, value, lane_mask, ...) \
  ::cuda_on_cpu::shfl_width(::cuda_on_cpu::kShflXor, mask, value, lane_mask, __FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_sync(mask, value, src_lane, ...) \
  ::cuda_on_cpu::shfl_width(::cuda_on_cpu::kShflIdx, mask, value, src_lane, __FILE__, __LINE__, ##__VA_ARGS__)
#define __all_sync(mask, p) \
  (::cuda_on_cpu::warp_collective(::cuda_on_cpu::kVoteAll, mask, (p) ? 1 : 0, 0, 32, __FILE__, __LINE__) != 0)
#define __any_sync(mask, p) \
  (::cuda_on_cpu::warp_collective(::cuda_on_cpu::kVoteAny, mask, (p) ? 1 : 0, 0, 32, __FILE__, __LINE__) != 0)
#define __ballot_sync(mask, p) \
  static_cast<unsigned>(::cuda_on_cpu::warp_collective(::cuda_on_cpu::kBallot, mask, (p) ? 1 : 0, 0, 32, __FILE__, __LINE__))
#define __activemask() ::cuda_on_cpu::active_mask()

// Memory fences order nothing here: the CPU runs one CUDA thread at a time (weak ordering is
// outside what this layer can show).
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}

template <typename T>
inline T __ldg(const T* p) { return *p; }

// ---- atomics: int, unsigned, unsigned long long, float, double, __half
inline int atomicAdd(int* a, int v) { return cuda_on_cpu::atomic_fetch_add(a, v); }
inline unsigned atomicAdd(unsigned* a, unsigned v) { return cuda_on_cpu::atomic_fetch_add(a, v); }
inline unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) {
  return cuda_on_cpu::atomic_fetch_add(a, v);
}
inline float atomicAdd(float* a, float v) {
  return cuda_on_cpu::atomic_update<float, uint32_t>(a, [](float x, float y) { return x + y; }, v);
}
inline double atomicAdd(double* a, double v) {
  return cuda_on_cpu::atomic_update<double, uint64_t>(a, [](double x, double y) { return x + y; }, v);
}
inline __half atomicAdd(__half* a, __half v) {
  // the sum is rounded to fp16 once, as the hardware's fp16 atomicAdd does
  return cuda_on_cpu::atomic_update<__half, uint16_t>(
      a, [](__half x, __half y) { return __float2half_rn(__half2float(x) + __half2float(y)); }, v);
}
inline int atomicSub(int* a, int v) { return __atomic_fetch_sub(a, v, __ATOMIC_RELAXED); }
inline unsigned atomicSub(unsigned* a, unsigned v) { return __atomic_fetch_sub(a, v, __ATOMIC_RELAXED); }
inline int atomicExch(int* a, int v) { return __atomic_exchange_n(a, v, __ATOMIC_RELAXED); }
inline unsigned atomicExch(unsigned* a, unsigned v) { return __atomic_exchange_n(a, v, __ATOMIC_RELAXED); }
inline float atomicExch(float* a, float v) {
  return cuda_on_cpu::atomic_update<float, uint32_t>(a, [](float, float y) { return y; }, v);
}
template <typename T>
inline T atomic_cas_impl(T* a, T compare, T value) {
  __atomic_compare_exchange_n(a, &compare, value, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;  // the old value either way
}
inline int atomicCAS(int* a, int c, int v) { return atomic_cas_impl(a, c, v); }
inline unsigned atomicCAS(unsigned* a, unsigned c, unsigned v) { return atomic_cas_impl(a, c, v); }
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long c, unsigned long long v) {
  return atomic_cas_impl(a, c, v);
}
inline int atomicMax(int* a, int v) {
  return cuda_on_cpu::atomic_update<int, int>(a, [](int x, int y) { return x > y ? x : y; }, v);
}
inline unsigned atomicMax(unsigned* a, unsigned v) {
  return cuda_on_cpu::atomic_update<unsigned, unsigned>(a, [](unsigned x, unsigned y) { return x > y ? x : y; }, v);
}
inline int atomicMin(int* a, int v) {
  return cuda_on_cpu::atomic_update<int, int>(a, [](int x, int y) { return x < y ? x : y; }, v);
}
inline unsigned atomicMin(unsigned* a, unsigned v) {
  return cuda_on_cpu::atomic_update<unsigned, unsigned>(a, [](unsigned x, unsigned y) { return x < y ? x : y; }, v);
}
inline int atomicOr(int* a, int v) { return __atomic_fetch_or(a, v, __ATOMIC_RELAXED); }
inline unsigned atomicOr(unsigned* a, unsigned v) { return __atomic_fetch_or(a, v, __ATOMIC_RELAXED); }
inline unsigned long long atomicOr(unsigned long long* a, unsigned long long v) {
  return __atomic_fetch_or(a, v, __ATOMIC_RELAXED);
}
inline int atomicAnd(int* a, int v) { return __atomic_fetch_and(a, v, __ATOMIC_RELAXED); }
inline unsigned atomicAnd(unsigned* a, unsigned v) { return __atomic_fetch_and(a, v, __ATOMIC_RELAXED); }
inline int atomicXor(int* a, int v) { return __atomic_fetch_xor(a, v, __ATOMIC_RELAXED); }
inline unsigned atomicXor(unsigned* a, unsigned v) { return __atomic_fetch_xor(a, v, __ATOMIC_RELAXED); }
