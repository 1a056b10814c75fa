// The scheduler of the CPU execution layer: runs a grid block after block, each CUDA thread of a
// block a fiber, and stands in for the few cudart calls the kernels and their callers make.
//
// Fibers: a fiber's first start enters its stack through makecontext/setcontext; every later
// switch is a _setjmp/_longjmp pair (no system call, unlike swapcontext, which saves the signal
// mask each time). One OS thread runs everything: a kernel thread runs until it waits (barrier,
// warp collective) or exits, then the scheduler picks the next runnable one in the order of the
// schedule (forward, reverse, seeded random). Barriers and warp collectives are checked here:
// divergent __syncthreads, a lane named in a shuffle mask that never arrives, a shuffle reading
// a lane outside the mask are reported with their source lines, never hung on.
//
// Sanitizers: under AddressSanitizer every switch is announced (__sanitizer_*_switch_fiber);
// under ThreadSanitizer (CUDA_ON_CPU_TSAN, this file itself is not instrumented) every CUDA
// thread is its own TSan fiber, switched without implied synchronisation, and the only
// happens-before edges are CUDA's own: launch -> threads, one barrier generation -> the next,
// threads -> host (and, because blocks share the emulated __shared__ storage, one block -> the
// next: races between blocks are therefore not reported).
#include "cuda_on_cpu.h"

#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define CUDA_ON_CPU_ASAN 1
#endif

#if defined(CUDA_ON_CPU_TSAN)
// GCC 12's <sanitizer/tsan_interface.h> lacks some of these: declared here (libtsan has them all).
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
}
#endif

namespace cuda_on_cpu {

uint3 current_thread_idx;
uint3 current_block_idx;
dim3 current_block_dim;
dim3 current_grid_dim;

namespace {

constexpr size_t kStackBytes = size_t{256} << 10;
constexpr size_t kGuardBytes = 4096;  // PROT_NONE below each stack: an overflow faults
constexpr int kMaxThreadsPerBlock = 1024;
constexpr size_t kMaxDynamicShared = 48 * 1024;

enum class State { kRunnable, kBarrier, kWarp, kExited };

struct Fiber {
  jmp_buf context;
  ucontext_t first_start;
  char* stack = nullptr;
  bool started = false;
  void* asan_fake_stack = nullptr;
  void* tsan_fiber = nullptr;
  // the CUDA thread it runs now
  uint3 thread{};
  int linear = 0;
  State state = State::kRunnable;
  const char* file = "";
  int line = 0;
  // barrier
  int barrier_kind = 0;  // -1 __syncthreads, else the reduce op
  int predicate = 0;
  int reduced = 0;
  // warp collective
  WarpOp op = kSyncWarp;
  unsigned mask = 0;
  uint64_t value = 0;
  int arg = 0;
  int width = 32;
  uint64_t result = 0;
};

struct Grid {
  ThreadBody body = nullptr;
  void* closure = nullptr;
  int threads = 0;  // per block
  const char* file = "";
  int line = 0;
};

std::vector<Fiber*> pool;
Fiber* running = nullptr;
jmp_buf scheduler_context;
Grid grid;
bool failed = false;
std::string report;
cudaError_t last_error = cudaSuccess;
Schedule schedule = Schedule::kForward;
std::mt19937_64 rng(0);
unsigned grid_cap = 0;
int barrier_generation = 0;
int warp_generation[kMaxThreadsPerBlock / 32] = {};
std::vector<std::pair<void*, size_t>> shared_arrays;
void* dynamic_shared_memory = nullptr;
size_t dynamic_shared_bytes = 0;
constexpr unsigned char kPoison = 0xff;  // NaN as float / double / half, -1 as an integer

// ---------------------------------------------------------------- sanitizer announcements
#if defined(CUDA_ON_CPU_ASAN)
void* scheduler_fake_stack = nullptr;
const void* scheduler_stack_bottom = nullptr;
size_t scheduler_stack_size = 0;
#endif
#if defined(CUDA_ON_CPU_TSAN)
void* scheduler_tsan_fiber = nullptr;
char launch_sync, exit_sync, barrier_sync[2];  // addresses that carry CUDA's happens-before edges
char warp_sync[kMaxThreadsPerBlock / 32][2];      // __syncwarp orders memory among its lanes
constexpr unsigned kTsanNoSync = 1;            // __tsan_switch_to_fiber_no_sync
#endif

inline void tsan_release(void* address) {
#if defined(CUDA_ON_CPU_TSAN)
  __tsan_release(address);
#else
  (void)address;
#endif
}
inline void tsan_acquire(void* address) {
#if defined(CUDA_ON_CPU_TSAN)
  __tsan_acquire(address);
#else
  (void)address;
#endif
}
void* launch_edge() {
#if defined(CUDA_ON_CPU_TSAN)
  return &launch_sync;
#else
  return nullptr;
#endif
}
void* exit_edge() {
#if defined(CUDA_ON_CPU_TSAN)
  return &exit_sync;
#else
  return nullptr;
#endif
}
void* warp_edge(int warp, int generation) {
#if defined(CUDA_ON_CPU_TSAN)
  return &warp_sync[warp][generation & 1];
#else
  (void)warp;
  (void)generation;
  return nullptr;
#endif
}
void* barrier_edge(int generation) {
#if defined(CUDA_ON_CPU_TSAN)
  // two addresses, alternating: a thread that leaves generation g late must not acquire what a
  // faster thread released on its way into generation g + 1
  return &barrier_sync[generation & 1];
#else
  (void)generation;
  return nullptr;
#endif
}

// ---------------------------------------------------------------- switching
void yield_to_scheduler() {
  Fiber* self = running;
  if (_setjmp(self->context) == 0) {
#if defined(CUDA_ON_CPU_ASAN)
    __sanitizer_start_switch_fiber(&self->asan_fake_stack, scheduler_stack_bottom,
                                   scheduler_stack_size);
#endif
#if defined(CUDA_ON_CPU_TSAN)
    __tsan_switch_to_fiber(scheduler_tsan_fiber, kTsanNoSync);
#endif
    _longjmp(scheduler_context, 1);
  }
#if defined(CUDA_ON_CPU_ASAN)
  __sanitizer_finish_switch_fiber(self->asan_fake_stack, &scheduler_stack_bottom,
                                  &scheduler_stack_size);
#endif
}

// First frame of every fiber; runs one CUDA thread after another, never returns.
void trampoline() {
#if defined(CUDA_ON_CPU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &scheduler_stack_bottom, &scheduler_stack_size);
#endif
  for (;;) {
    tsan_acquire(launch_edge());
    grid.body(grid.closure);
    tsan_release(exit_edge());
    running->state = State::kExited;
    yield_to_scheduler();
  }
}

void resume(Fiber* fiber) {
  running = fiber;
  current_thread_idx = fiber->thread;
  if (_setjmp(scheduler_context) == 0) {
#if defined(CUDA_ON_CPU_ASAN)
    __sanitizer_start_switch_fiber(&scheduler_fake_stack, fiber->stack, kStackBytes);
#endif
#if defined(CUDA_ON_CPU_TSAN)
    __tsan_switch_to_fiber(fiber->tsan_fiber, kTsanNoSync);
#endif
    if (!fiber->started) {
      fiber->started = true;
      setcontext(&fiber->first_start);
    }
    _longjmp(fiber->context, 1);
  }
#if defined(CUDA_ON_CPU_ASAN)
  __sanitizer_finish_switch_fiber(scheduler_fake_stack, nullptr, nullptr);
#endif
  running = nullptr;
}

void prepare_fiber(Fiber* fiber) {
  if (fiber->stack == nullptr) {
    void* memory = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) {
      std::fprintf(stderr, "cuda_on_cpu: cannot map a fiber stack\n");
      std::abort();
    }
    mprotect(memory, kGuardBytes, PROT_NONE);
    fiber->stack = static_cast<char*>(memory) + kGuardBytes;
  }
  if (!fiber->started) {
    getcontext(&fiber->first_start);
    fiber->first_start.uc_stack.ss_sp = fiber->stack;
    fiber->first_start.uc_stack.ss_size = kStackBytes;
    fiber->first_start.uc_link = nullptr;
    makecontext(&fiber->first_start, trampoline, 0);
#if defined(CUDA_ON_CPU_TSAN)
    if (fiber->tsan_fiber == nullptr) fiber->tsan_fiber = __tsan_create_fiber(0);
#endif
  }
}

// After a reported error the fibers are abandoned mid-kernel: start them afresh next time.
void abandon_fibers() {
  for (Fiber* fiber : pool) {
    if (!fiber->started) continue;
    fiber->started = false;
#if defined(CUDA_ON_CPU_ASAN)
    __asan_unpoison_memory_region(fiber->stack, kStackBytes);
#endif
#if defined(CUDA_ON_CPU_TSAN)
    __tsan_destroy_fiber(fiber->tsan_fiber);
    fiber->tsan_fiber = nullptr;
#endif
  }
}

// ---------------------------------------------------------------- reporting
std::string where(const char* file, int line) { return std::string(file) + ":" + std::to_string(line); }

std::string block_name() {
  return "block (" + std::to_string(current_block_idx.x) + "," + std::to_string(current_block_idx.y) +
         "," + std::to_string(current_block_idx.z) + ")";
}

void fail(const std::string& message) {
  if (failed) return;
  failed = true;
  report = message + " [" + block_name() + " of the launch at " + where(grid.file, grid.line) + "]";
  std::fprintf(stderr, "cuda_on_cpu: error: %s\n", report.c_str());
}

// "0-31, 64" style list of thread indices
std::string thread_list(const std::vector<int>& threads) {
  std::string out;
  for (size_t i = 0; i < threads.size();) {
    size_t j = i;
    while (j + 1 < threads.size() && threads[j + 1] == threads[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += std::to_string(threads[i]);
    if (j > i) out += "-" + std::to_string(threads[j]);
    i = j + 1;
  }
  return out;
}

const char* op_name(WarpOp op) {
  switch (op) {
    case kShflIdx: return "__shfl_sync";
    case kShflUp: return "__shfl_up_sync";
    case kShflDown: return "__shfl_down_sync";
    case kShflXor: return "__shfl_xor_sync";
    case kVoteAll: return "__all_sync";
    case kVoteAny: return "__any_sync";
    case kBallot: return "__ballot_sync";
    case kSyncWarp: return "__syncwarp";
  }
  return "warp operation";
}

std::string state_of(const Fiber* fiber) {
  switch (fiber->state) {
    case State::kRunnable: return "is still running";
    case State::kExited: return "has exited";
    case State::kBarrier: return "waits at __syncthreads at " + where(fiber->file, fiber->line);
    case State::kWarp:
      return std::string("waits at ") + op_name(fiber->op) + " at " + where(fiber->file, fiber->line);
  }
  return "";
}

// ---------------------------------------------------------------- warp collectives
Fiber* lane_fiber(int warp, int lane) {
  const int linear = warp * 32 + lane;
  return linear < grid.threads ? pool[linear] : nullptr;
}

std::string describe_call(const Fiber* waiting) {
  char mask[16];
  std::snprintf(mask, sizeof mask, "%08x", waiting->mask);
  return std::string(op_name(waiting->op)) + " at " + where(waiting->file, waiting->line) +
         " (thread " + std::to_string(waiting->linear) + ", mask 0x" + mask + ")";
}

// Completes the collective the lanes of `warp` wait at once every lane their masks name is there.
// Called after a lane of the warp arrived at a collective or exited.
void check_warp(int warp) {
  for (int lane = 0; lane < 32 && !failed; ++lane) {
    Fiber* waiting = lane_fiber(warp, lane);
    if (waiting == nullptr || waiting->state != State::kWarp) continue;
    if (!((waiting->mask >> lane) & 1u)) {
      fail(describe_call(waiting) + ": the calling lane " + std::to_string(lane) +
           " is not in its own mask");
      return;
    }
    bool ready = true;
    for (int other = 0; other < 32 && ready; ++other) {
      if (!((waiting->mask >> other) & 1u)) continue;
      Fiber* peer = lane_fiber(warp, other);
      if (peer == nullptr) {
        fail(describe_call(waiting) + ": lane " + std::to_string(other) +
             " named in the mask does not exist (" + std::to_string(grid.threads) +
             " threads per block)");
        return;
      }
      if (peer->state == State::kRunnable) {
        ready = false;  // not there yet; checked again when it arrives or exits
      } else if (!(peer->state == State::kWarp && peer->op == waiting->op &&
                   peer->file == waiting->file && peer->line == waiting->line &&
                   peer->mask == waiting->mask)) {
        fail(describe_call(waiting) + ": lane " + std::to_string(other) +
             " named in the mask never arrives (it " + state_of(peer) + ")");
        return;
      }
    }
    if (!ready) continue;
    // every named lane is here: exchange
    const unsigned mask = waiting->mask;
    uint64_t ballot = 0;
    bool all = true, any = false;
    for (int other = 0; other < 32; ++other) {
      if (!((mask >> other) & 1u)) continue;
      const bool p = lane_fiber(warp, other)->value != 0;
      ballot |= p ? (uint64_t{1} << other) : 0;
      all = all && p;
      any = any || p;
    }
    for (int me = 0; me < 32; ++me) {
      if (!((mask >> me) & 1u)) continue;
      Fiber* fiber = lane_fiber(warp, me);
      const int width = fiber->width;
      const int base = me / width * width;
      int source = me;
      switch (fiber->op) {
        case kShflIdx: source = base + (fiber->arg & (width - 1)); break;
        case kShflUp: source = me - fiber->arg >= base ? me - fiber->arg : me; break;
        case kShflDown: source = me + fiber->arg < base + width ? me + fiber->arg : me; break;
        case kShflXor: {
          const int x = me ^ fiber->arg;
          source = x >= base && x < base + width ? x : me;
          break;
        }
        default: break;
      }
      if (!((mask >> source) & 1u)) {
        fail(std::string(op_name(fiber->op)) + " at " + where(fiber->file, fiber->line) +
             ": lane " + std::to_string(me) + " reads lane " + std::to_string(source) +
             ", which is not named in the mask (undefined value)");
        return;
      }
      switch (fiber->op) {
        case kVoteAll: fiber->result = all; break;
        case kVoteAny: fiber->result = any; break;
        case kBallot: fiber->result = ballot; break;
        case kSyncWarp: fiber->result = 0; break;
        default: fiber->result = lane_fiber(warp, source)->value; break;
      }
    }
    for (int me = 0; me < 32; ++me) {
      if ((mask >> me) & 1u) lane_fiber(warp, me)->state = State::kRunnable;
    }
    if (waiting->op == kSyncWarp) ++warp_generation[warp];
  }
}

// ---------------------------------------------------------------- barriers
// Called when nothing can run: every thread left waits at a barrier (or the block deadlocked).
bool release_barrier() {
  const Fiber* first = nullptr;
  bool divergent = false;
  for (int t = 0; t < grid.threads; ++t) {
    Fiber* fiber = pool[t];
    if (fiber->state == State::kExited) continue;
    if (fiber->state != State::kBarrier) {
      fail("deadlock: thread " + std::to_string(t) + " " + state_of(fiber) +
           " and nothing else can run");
      return false;
    }
    if (first == nullptr) first = fiber;
    divergent = divergent || fiber->file != first->file || fiber->line != first->line;
  }
  if (divergent) {
    std::vector<std::pair<std::string, std::vector<int>>> groups;
    for (int t = 0; t < grid.threads; ++t) {
      if (pool[t]->state != State::kBarrier) continue;
      const std::string at = where(pool[t]->file, pool[t]->line);
      auto group = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == at; });
      if (group == groups.end()) groups.push_back({at, {t}});
      else group->second.push_back(t);
    }
    std::string message = "__syncthreads in divergent code:";
    for (const auto& g : groups) message += " threads " + thread_list(g.second) + " wait at " + g.first + ";";
    fail(message);
    return false;
  }
  int count = 0, all = 1, any = 0;
  for (int t = 0; t < grid.threads; ++t) {
    if (pool[t]->state != State::kBarrier) continue;
    count += pool[t]->predicate;
    all &= pool[t]->predicate;
    any |= pool[t]->predicate;
  }
  for (int t = 0; t < grid.threads; ++t) {
    Fiber* fiber = pool[t];
    if (fiber->state != State::kBarrier) continue;
    fiber->reduced = fiber->barrier_kind == 0 ? count : fiber->barrier_kind == 1 ? all : any;
    fiber->state = State::kRunnable;
  }
  ++barrier_generation;
  return true;
}

// ---------------------------------------------------------------- blocks
// The poison is the layer's doing, not the kernel's: ThreadSanitizer must not see it as a write.
void poison(void* address, size_t bytes) {
#if defined(CUDA_ON_CPU_TSAN)
  __tsan_ignore_thread_begin();
#endif
  std::memset(address, kPoison, bytes);
#if defined(CUDA_ON_CPU_TSAN)
  __tsan_ignore_thread_end();
#endif
}

void poison_shared() {
  for (const auto& array : shared_arrays) poison(array.first, array.second);
  if (dynamic_shared_memory != nullptr) poison(dynamic_shared_memory, dynamic_shared_bytes);
}

// The order threads get the CPU in one round (a fresh permutation each round when random).
const std::vector<int>& ordered(int n) {
  static std::vector<int> order;
  static Schedule made_for = Schedule::kForward;
  if (static_cast<int>(order.size()) != n || schedule != made_for || schedule == Schedule::kRandom) {
    made_for = schedule;
    order.resize(n);
    for (int i = 0; i < n; ++i) order[i] = schedule == Schedule::kReverse ? n - 1 - i : i;
    if (schedule == Schedule::kRandom) std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

bool run_block(const dim3& block_dim) {
  poison_shared();
  std::fill(std::begin(warp_generation), std::end(warp_generation), 0);
  for (int t = 0; t < grid.threads; ++t) {
    Fiber* fiber = pool[t];
    prepare_fiber(fiber);
    fiber->linear = t;
    fiber->thread = make_uint3(t % block_dim.x, t / block_dim.x % block_dim.y,
                               t / (block_dim.x * block_dim.y));
    fiber->state = State::kRunnable;
  }
  tsan_release(launch_edge());
  for (;;) {
    bool progressed = false;
    for (int t : ordered(grid.threads)) {
      Fiber* fiber = pool[t];
      if (fiber->state != State::kRunnable) continue;
      progressed = true;
      resume(fiber);
      if (fiber->state == State::kWarp || fiber->state == State::kExited) check_warp(t / 32);
      if (failed) return false;
    }
    bool all_exited = true;
    for (int t = 0; t < grid.threads; ++t) all_exited = all_exited && pool[t]->state == State::kExited;
    if (all_exited) break;
    if (!progressed && !release_barrier()) return false;
  }
  tsan_acquire(exit_edge());
  return true;
}

}  // namespace

// ---------------------------------------------------------------- device-side entry points
void syncthreads(const char* file, int line) { syncthreads_reduce(0, -1, file, line); }

int syncthreads_reduce(int predicate, int op, const char* file, int line) {
  Fiber* self = running;
  self->state = State::kBarrier;
  self->barrier_kind = op;
  self->predicate = predicate;
  self->file = file;
  self->line = line;
  const int generation = barrier_generation;
  tsan_release(barrier_edge(generation));
  yield_to_scheduler();
  tsan_acquire(barrier_edge(generation));
  return running->reduced;
}

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int arg, int width,
                         const char* file, int line) {
  Fiber* self = running;
  if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
    std::fprintf(stderr, "cuda_on_cpu: error: %s:%d: width %d is not a power of 2 up to 32\n",
                 file, line, width);
    std::abort();
  }
  self->state = State::kWarp;
  self->op = op;
  self->mask = mask;
  self->value = value;
  self->arg = arg;
  self->width = width;
  self->file = file;
  self->line = line;
  // Only __syncwarp orders memory; shuffles and votes exchange registers and add no
  // happens-before edge (warp-synchronous shared-memory code needs __syncwarp since Volta).
  const int warp = self->linear / 32;
  const int generation = warp_generation[warp];
  if (op == kSyncWarp) tsan_release(warp_edge(warp, generation));
  yield_to_scheduler();
  if (op == kSyncWarp) tsan_acquire(warp_edge(warp, generation));
  return running->result;
}

unsigned active_mask() {
  const int warp = running->linear / 32;
  unsigned mask = 0;
  for (int lane = 0; lane < 32; ++lane) {
    Fiber* fiber = lane_fiber(warp, lane);
    if (fiber != nullptr && fiber->state != State::kExited) mask |= 1u << lane;
  }
  return mask;
}

void shared_declared(void* address, size_t bytes) {
  for (const auto& array : shared_arrays) {
    if (array.first == address) return;
  }
  // first sight: nobody has written it yet (every use follows the declaration)
  shared_arrays.push_back({address, bytes});
  poison(address, bytes);
}

void* dynamic_shared() { return dynamic_shared_memory; }

// ---------------------------------------------------------------- host side
void set_schedule(Schedule s, uint64_t seed) {
  schedule = s;
  rng.seed(seed);
}
void set_grid_cap(unsigned blocks) { grid_cap = blocks; }
const char* last_report() { return report.c_str(); }
void clear_report() { report.clear(); }

void run_grid(const LaunchConfig& config, ThreadBody body, void* closure, const char* file,
              int line) {
  const dim3 b = config.block;
  dim3 g = config.grid;
  const uint64_t threads = uint64_t{b.x} * b.y * b.z;
  if (threads == 0 || threads > kMaxThreadsPerBlock || b.x > 1024 || b.y > 1024 || b.z > 64 ||
      g.x == 0 || g.y == 0 || g.z == 0 || g.x > 2147483647u || g.y > 65535 || g.z > 65535) {
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
  if (config.shared_bytes > kMaxDynamicShared) {
    last_error = cudaErrorInvalidValue;
    return;
  }
  if (grid_cap > 0 && g.x > grid_cap) g.x = grid_cap;
  grid = {body, closure, static_cast<int>(threads), file, line};
  failed = false;
  while (pool.size() < threads) pool.push_back(new Fiber());
#if defined(CUDA_ON_CPU_TSAN)
  scheduler_tsan_fiber = __tsan_get_current_fiber();
#endif
  dynamic_shared_bytes = config.shared_bytes;
  dynamic_shared_memory = std::malloc(config.shared_bytes);  // exact size: overruns are caught
  current_block_dim = b;
  current_grid_dim = g;
  std::vector<uint3> blocks;
  for (unsigned z = 0; z < g.z; ++z)
    for (unsigned y = 0; y < g.y; ++y)
      for (unsigned x = 0; x < g.x; ++x) blocks.push_back(make_uint3(x, y, z));
  if (schedule == Schedule::kReverse) std::reverse(blocks.begin(), blocks.end());
  if (schedule == Schedule::kRandom) std::shuffle(blocks.begin(), blocks.end(), rng);
  for (const uint3& block : blocks) {
    current_block_idx = block;
    if (!run_block(b)) {
      abandon_fibers();
      last_error = cudaErrorLaunchFailure;
      break;
    }
  }
  std::free(dynamic_shared_memory);
  dynamic_shared_memory = nullptr;
  dynamic_shared_bytes = 0;
}

}  // namespace cuda_on_cpu

// ---------------------------------------------------------------- C controls (for ctypes)
extern "C" {
void coc_set_schedule(int schedule, uint64_t seed) {
  cuda_on_cpu::set_schedule(static_cast<cuda_on_cpu::Schedule>(schedule), seed);
}
void coc_set_grid_cap(unsigned blocks) { cuda_on_cpu::set_grid_cap(blocks); }
const char* coc_last_report() { return cuda_on_cpu::last_report(); }
void coc_clear_report() { cuda_on_cpu::clear_report(); }
}

// ---------------------------------------------------------------- cudart stand-ins
// Device memory is host memory; every allocation is its own malloc of the exact size.
extern "C" {

cudaError_t cudaGetLastError(void) {
  const cudaError_t error = cuda_on_cpu::last_error;
  cuda_on_cpu::last_error = cudaSuccess;
  return error;
}
cudaError_t cudaPeekAtLastError(void) { return cuda_on_cpu::last_error; }
const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    default: return "cudaError (other)";
  }
}
const char* cudaGetErrorString(cudaError_t error) { return cudaGetErrorName(error); }

cudaError_t cudaMalloc(void** pointer, size_t bytes) {
  *pointer = std::malloc(bytes == 0 ? 1 : bytes);
  return *pointer != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* pointer) {
  std::free(pointer);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes > 0) std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void* pointer, int value, size_t bytes) {
  if (bytes > 0) std::memset(pointer, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* pointer, int value, size_t bytes, cudaStream_t) {
  return cudaMemset(pointer, value, bytes);
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }

}  // extern "C"
