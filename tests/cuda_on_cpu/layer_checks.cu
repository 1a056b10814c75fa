// Small kernels that exercise one feature of the CPU execution layer each, with extern "C" hosts
// for tests/cuda_on_cpu/test_cuda_layer.py. Correct CUDA unless a name says "bad_".
#include <cub/device/device_radix_sort.cuh>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace {

// ---- warp shuffles: out[t] = the value each intrinsic returns to thread t
__global__ void shuffles(int op, int arg, int width, int* out) {
  const int t = threadIdx.x;
  int v = 0;
  if (op == 0) v = __shfl_sync(0xffffffffu, t * 10, arg, width);
  if (op == 1) v = __shfl_up_sync(0xffffffffu, t * 10, arg, width);
  if (op == 2) v = __shfl_down_sync(0xffffffffu, t * 10, arg, width);
  if (op == 3) v = __shfl_xor_sync(0xffffffffu, t * 10, arg, width);
  out[t] = v;
}

__global__ void shuffle_double(double* out) {
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, threadIdx.x + 0.25, 1);
}

// ---- votes on predicate t % k == 0
__global__ void votes(int k, unsigned* out) {
  const bool p = threadIdx.x % k == 0;
  const unsigned ballot = __ballot_sync(0xffffffffu, p);
  const int all = __all_sync(0xffffffffu, p);
  const int any = __any_sync(0xffffffffu, p);
  __syncwarp();
  out[threadIdx.x * 3 + 0] = ballot;
  out[threadIdx.x * 3 + 1] = all;
  out[threadIdx.x * 3 + 2] = any;
}

// ---- barriers: count / and / or over t < k
__global__ void barrier_reductions(int k, int* out) {
  const int t = threadIdx.x;
  const int count = __syncthreads_count(t < k);
  const int all = __syncthreads_and(t < k);
  const int any = __syncthreads_or(t < k);
  if (t == 0) out[0] = count, out[1] = all, out[2] = any;
}

// Threads t >= k return early; the rest still meet at the barrier (exited threads count as
// arrived since Volta) and read what thread 0 wrote before it.
__global__ void exited_threads_arrive(int k, int* out) {
  __shared__ int value;
  const int t = threadIdx.x;
  if (t >= k) return;
  if (t == 0) value = 42;
  __syncthreads();
  out[t] = value;
}

// ---- atomics: every thread of every block adds 1 (and t to a second counter)
__global__ void atomics(int* i, unsigned* u, unsigned long long* ull, float* f, double* d, __half* h,
                        int* mx) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(i, 1);
  atomicAdd(u, 2u);
  atomicAdd(ull, 3ull);
  atomicAdd(f, 0.5f);
  atomicAdd(d, 0.25);
  atomicAdd(h, __float2half_rn(1.0f));
  atomicMax(mx, t);
}

// ---- shared memory
__global__ void reverse_with_dynamic_shared(const int* in, int* out) {
  extern __shared__ int tile[];
  const int t = threadIdx.x;
  tile[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = tile[blockDim.x - 1 - t];
}

// Block b writes only slot b of a shared array, then every thread reads slot 0: blocks after the
// first see the layer's poison, not block 0's value.
__global__ void read_unwritten_shared(int* out) {
  __shared__ int slots[8];
  if (threadIdx.x == 0) slots[blockIdx.x] = 100 + blockIdx.x;
  __syncthreads();
  out[blockIdx.x] = slots[0];
}

// ---- grid-stride loop: counts how many iterations it took
__global__ void grid_stride(int n, int* out, int* blocks_seen) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] += 1;
  if (threadIdx.x == 0) atomicAdd(blocks_seen, 1);
}

__global__ void coordinates(int* out) {
  const int linear = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  const int block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const int threads = blockDim.x * blockDim.y * blockDim.z;
  out[block * threads + linear] = block * 1000 + linear;
}

// Each lane writes its slot, then reads its neighbour's after a warp operation: __syncwarp
// orders the accesses, a shuffle does not (a race under ThreadSanitizer).
__global__ void warp_exchange(int use_syncwarp, int* out) {
  __shared__ int slot[32];
  slot[threadIdx.x] = threadIdx.x;
  if (use_syncwarp) {
    __syncwarp();
  } else {
    (void)__shfl_sync(0xffffffffu, 0, 0);
  }
  out[threadIdx.x] = slot[(threadIdx.x + 1) % 32];
}

// ---- bugs the layer must report
__global__ void bad_absent_lane(int* out) {
  const int lane = threadIdx.x % 32;
  int v = lane;
  if (lane != 5) v = __shfl_down_sync(0xffffffffu, v, 1);  // lane 5 named but absent
  out[threadIdx.x] = v;
}

__global__ void bad_divergent_barrier(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  }
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void bad_read_outside_mask(int* out) {
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_down_sync(0x0000ffffu, 1, 1);  // lane 15 reads 16
}

__global__ void bad_shared_overrun(int* out) {
  __shared__ float values[32];
  values[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = static_cast<int>(values[threadIdx.x + 1]);  // thread 31 reads values[32]
}

// The same through a pointer, in a template: UBSan's bounds check cannot see it, ASan's redzone
// around the static must (template statics are instrumented here because the kernel has internal
// linkage: it is in an anonymous namespace, like every kernel of csrc/kernels).
template <typename T>
__global__ void bad_shared_overrun_through_pointer(int* out) {
  __shared__ T values[32];
  T* p = values;
  p[threadIdx.x] = T(1);
  __syncthreads();
  out[threadIdx.x] = static_cast<int>(p[threadIdx.x + 1]);  // thread 31 reads values[32]
}

}  // namespace

extern "C" {

int layer_shuffles(int op, int arg, int width, int* out) {
  shuffles<<<1, 64>>>(op, arg, width, out);
  return cudaGetLastError();
}
int layer_shuffle_double(double* out) {
  shuffle_double<<<1, 32>>>(out);
  return cudaGetLastError();
}
int layer_votes(int k, unsigned* out) {
  votes<<<1, 64>>>(k, out);
  return cudaGetLastError();
}
int layer_barrier_reductions(int threads, int k, int* out) {
  barrier_reductions<<<1, threads>>>(k, out);
  return cudaGetLastError();
}
int layer_exited_threads_arrive(int threads, int k, int* out) {
  exited_threads_arrive<<<1, threads>>>(k, out);
  return cudaGetLastError();
}
int layer_atomics(int blocks, int threads, int* i, unsigned* u, unsigned long long* ull, float* f, double* d,
                  uint16_t* h, int* mx) {
  atomics<<<blocks, threads>>>(i, u, ull, f, d, reinterpret_cast<__half*>(h), mx);
  return cudaGetLastError();
}
int layer_reverse_with_dynamic_shared(int blocks, int threads, const int* in, int* out) {
  reverse_with_dynamic_shared<<<blocks, threads, threads * sizeof(int)>>>(in, out);
  return cudaGetLastError();
}
int layer_read_unwritten_shared(int blocks, int* out) {
  read_unwritten_shared<<<blocks, 4>>>(out);
  return cudaGetLastError();
}
int layer_grid_stride(int blocks, int threads, int n, int* out, int* blocks_seen) {
  grid_stride<<<blocks, threads>>>(n, out, blocks_seen);
  return cudaGetLastError();
}
int layer_coordinates(const unsigned* grid, const unsigned* block, int* out) {
  coordinates<<<dim3(grid[0], grid[1], grid[2]), dim3(block[0], block[1], block[2])>>>(out);
  return cudaGetLastError();
}
int layer_warp_exchange(int use_syncwarp, int* out) {
  warp_exchange<<<1, 32>>>(use_syncwarp, out);
  return cudaGetLastError();
}
int layer_bad(int which, int* out) {
  if (which == 0) bad_absent_lane<<<1, 32>>>(out);
  if (which == 1) bad_divergent_barrier<<<1, 32>>>(out);
  if (which == 2) bad_read_outside_mask<<<1, 32>>>(out);
  if (which == 3) bad_shared_overrun<<<1, 32>>>(out);
  if (which == 4) bad_shared_overrun_through_pointer<double><<<1, 32>>>(out);
  return cudaGetLastError();
}
// the cub stand-in on float keys (values: positions), workspace of the size it asks for
int layer_sort_pairs_descending(const float* keys, float* keys_out, int* values_out, int n) {
  int* values = nullptr;
  cudaMalloc(reinterpret_cast<void**>(&values), n * sizeof(int));
  for (int i = 0; i < n; ++i) values[i] = i;
  size_t bytes = 0;
  cub::DeviceRadixSort::SortPairsDescending(nullptr, bytes, keys, keys_out, values, values_out, n);
  void* temp = nullptr;
  cudaMalloc(&temp, bytes);
  const cudaError_t error =
      cub::DeviceRadixSort::SortPairsDescending(temp, bytes, keys, keys_out, values, values_out, n);
  cudaFree(temp);
  cudaFree(values);
  return error;
}

}  // extern "C"
