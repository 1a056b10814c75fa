"""CPU threading defaults that hold up on a busy computer. Standard library only (no torch, no numpy).

A drone's companion computer shares its cores with the flight stack, the camera pipeline and the
video encoder. Parallel CPU inference then slows down far more than its fair share when a worker
thread *spins* at a barrier while its sibling is descheduled: the spinner burns the very time
slice the sibling needs: with one busy neighbour on 2 cores, PyTorch eager with libgomp's default
spin runs tens of times slower than quiet. benchmarks/bench_neighbours.py measures every setting
below, quiet and loaded, in one run (numbers: benchmarks/results/neighbours*.json, docs page
results/neighbours.md).

The goal is at most 2.2x quiet under one neighbour (fair share alone costs 2x) while quiet
latency gets at most 10 % worse. What sspnet sets, and why:

ONNX Runtime: intra-op spinning off (`session.intra_op.allow_spinning = 0`, and the same for the
    inter-op pool). It meets both goals in the neighbour benchmark; all cores stay in use.
    Override: SSPNET_ORT_SPINNING=1 restores ONNX Runtime's spinning.

OpenMP (torch's intra-op pool, oneDNN, and sspnet's own CPU kernels: one libgomp per process):
    a *bounded* spin, GOMP_SPINCOUNT=4000. libgomp spins 300,000 times by default before it
    sleeps (7.8 ms on the AMD EPYC it was first measured on, at 26 ns per spin: longer than a
    scheduler time slice: hence the collapse), and not at all with OMP_WAIT_POLICY=PASSIVE, which costs +40 %
    quiet because every one of the ~450 ops of a forward then pays a futex wake-up (expensive in
    a VM). The gap between consecutive ops of an eager forward is 8 us at the median and 67 us at
    p90 (torch profiler, this model), so 4000 spins (~0.1 ms) still catch the next op without
    sleeping when the machine is quiet, and waste at most ~0.1 ms per parallel region when a
    sibling is descheduled. Thread counts stay at the runtimes' defaults (one per core): one
    thread is immune to neighbours but 75 % slower quiet.
    OpenMP reads these variables once, when the runtime is loaded (`import torch`): they must be
    in the environment before that. `apply_openmp_defaults()` is called by the `sspnet` command
    before any verb imports torch; a program that imports torch itself must call it first (or
    set the variables in its environment). A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT always
    wins; SSPNET_OPENMP_DEFAULTS=0 leaves OpenMP untouched.

    benchmarks/bench_neighbours.py measures every alternative above, quiet and loaded, in one run.

Thread count of torch CPU inference: adaptive (ThreadGovernor). No single OpenMP setting meets
both goals for PyTorch eager (the spin-count rows of benchmarks/results/neighbours*.json: a shorter
spin is slower quiet, a longer one slower next to a busy process). So the torch
backend watches what *other* processes take: every half second it reads the machine's busy CPU
time (/proc/stat) minus this process's own (/proc/self/stat), and runs the next calls on the cores
left over (all of them when the machine is quiet; one of two next to a busy neighbour, which runs
at its quiet one-thread speed instead of fighting at barriers). Our own threads' spinning is our
own time, so it cannot mislead the estimate. Training keeps a fixed thread count (it meets its
slow-down goal with the bounded spin alone: benchmarks/results/neighbours_training_study*.json):
a count that changes mid-run changes the order of floating-point reductions, and a seed or an
exact `--resume` promises the same weights on the same machine. Off with SSPNET_ADAPTIVE_THREADS=0,
or by fixing the thread count (`--threads`); Linux only (elsewhere the count stays fixed).

ONNX Runtime CPU inference adapts the same way, from the same estimate (onnxruntime_thread_governor):
a live session's intra-op thread count cannot change, so the backend keeps a one-thread session
beside the all-cores one and runs each call on the one the governor picks (runtime/onnxruntime_backend.py).
Spinning off alone did not reach the goal next to one busy process; the rows with and without the
adaptive count are measured by benchmarks/bench_neighbours.py (benchmarks/results/neighbours.json).

`configure_onnxruntime_session` also applies the one non-threading session setting sspnet needs:
ONNX Runtime's QDQS8ToU8Transformer is disabled. On x86 it rewrites int8 Q/DQ pairs to uint8, and
together with its QDQ fusions it then drops the ReLU after a convolution of a *symmetric* int8 Q/DQ
model (the TensorRT form `sspnet quantize` writes; the same family of bugs as onnxruntime issues
#9425 / #11660): on a small trained detector the worst score error was 0.51 with it and 0.012
without it (tests/export/test_quantize.py). Float and uint8 (asymmetric) models are unaffected.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, MutableMapping

# libgomp's busy-wait length before a waiting thread sleeps (see the module docstring).
GOMP_SPINCOUNT = 4000
OPENMP_DEFAULTS = {"GOMP_SPINCOUNT": str(GOMP_SPINCOUNT)}
# A user setting any of these has chosen a wait policy: sspnet then sets nothing.
OPENMP_USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")

ENV_OPENMP_DEFAULTS = "SSPNET_OPENMP_DEFAULTS"  # "0": do not touch OpenMP's variables
ENV_ORT_SPINNING = "SSPNET_ORT_SPINNING"  # "1": ONNX Runtime's own default (spinning)
ENV_ADAPTIVE_THREADS = "SSPNET_ADAPTIVE_THREADS"  # "0": CPU inference keeps a fixed thread count
# "N": ONNX Runtime splits each parallel loop into blocks of dynamic size (its session option
# session.dynamic_block_base), so a thread left behind by the scheduler hands its work to the others
# (an alternative measured by benchmarks/bench_neighbours.py; off by default)
ENV_ORT_DYNAMIC_BLOCK_BASE = "SSPNET_ORT_DYNAMIC_BLOCK_BASE"

ORT_SPINNING_KEYS = ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning")
ORT_DISABLED_OPTIMIZERS = ("QDQS8ToU8Transformer",)  # see the module docstring

_FALSE = ("0", "false", "no", "off")
_TRUE = ("1", "true", "yes", "on")


def _flag(environ: MutableMapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return default


def openmp_runtime_loaded() -> bool:
    """True when an OpenMP runtime is already mapped into this process (too late to configure it)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return any(name in line for line in maps for name in ("libgomp", "libiomp", "libomp"))
    except OSError:  # not Linux: judge by torch, the usual carrier of OpenMP here
        return "torch" in sys.modules


def apply_openmp_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Put sspnet's OpenMP defaults into `environ` (default os.environ) unless the user chose a
    wait policy or set SSPNET_OPENMP_DEFAULTS=0. Returns the variables it set ({} if none).

    Call before torch is imported: OpenMP reads them once, when it is loaded."""
    environ = os.environ if environ is None else environ
    if not _flag(environ, ENV_OPENMP_DEFAULTS, True):
        return {}
    if any(name in environ for name in OPENMP_USER_VARIABLES):
        return {}
    for name, value in OPENMP_DEFAULTS.items():
        environ[name] = value
    return dict(OPENMP_DEFAULTS)


def onnxruntime_spinning(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether ONNX Runtime sessions spin: False (sspnet's default) unless SSPNET_ORT_SPINNING=1."""
    return _flag(os.environ if environ is None else environ, ENV_ORT_SPINNING, False)


def configure_onnxruntime_session(options, spinning: bool | None = None) -> None:
    """Apply sspnet's defaults to an onnxruntime.SessionOptions: spinning off unless `spinning`
    (default: SSPNET_ORT_SPINNING) says otherwise, ORT_DISABLED_OPTIMIZERS disabled, and dynamic
    block sizes when SSPNET_ORT_DYNAMIC_BLOCK_BASE names a positive base."""
    spin = onnxruntime_spinning() if spinning is None else bool(spinning)
    for key in ORT_SPINNING_KEYS:
        options.add_session_config_entry(key, "1" if spin else "0")
    options.add_session_config_entry("optimization.disable_specified_optimizers", ",".join(ORT_DISABLED_OPTIMIZERS))
    base = os.environ.get(ENV_ORT_DYNAMIC_BLOCK_BASE, "").strip()
    if base.isdigit() and int(base) > 0:
        options.add_session_config_entry("session.dynamic_block_base", base)


def describe(environ: MutableMapping[str, str] | None = None) -> dict:
    """The threading settings in effect for new work in this process (for benchmark records)."""
    environ = os.environ if environ is None else environ
    return {
        "openmp": {name: environ.get(name) for name in ("OMP_NUM_THREADS", *OPENMP_USER_VARIABLES)},
        "onnxruntime_spinning": onnxruntime_spinning(environ),
        "onnxruntime_dynamic_block_base": environ.get(ENV_ORT_DYNAMIC_BLOCK_BASE),
        "adaptive_threads": adaptive_threads_enabled(environ),
        "cpu_count": os.cpu_count(),
    }


# ---- adaptive thread count (torch and ONNX Runtime CPU inference) ----------------------------------------


class OtherLoad:
    """How many cores other processes keep busy: the change of the machine's busy CPU time
    (/proc/stat: user + nice + system + irq + softirq + steal) minus this process's own (all its
    threads: utime + stime of /proc/self/stat), over the wall time between two samples."""

    def __init__(
        self,
        stat_path: str = "/proc/stat",
        self_stat_path: str = "/proc/self/stat",
        clock: Callable[[], float] = time.monotonic,
        ticks_per_second: int | None = None,
    ):
        self.stat_path, self.self_stat_path, self.clock = stat_path, self_stat_path, clock
        self.ticks_per_second = ticks_per_second or _ticks_per_second()
        self._last: tuple[float, int, int] | None = None

    def available(self) -> bool:
        return self._read() is not None

    def _read(self) -> tuple[float, int, int] | None:
        """(time, machine busy ticks, own ticks), or None where /proc cannot be read."""
        try:
            with open(self.stat_path, encoding="ascii") as stat:
                fields = stat.readline().split()
            with open(self.self_stat_path, encoding="ascii", errors="replace") as own:
                after_name = own.read().rsplit(")", 1)[1].split()  # the name may hold spaces
        except (OSError, IndexError):
            return None
        if not fields or fields[0] != "cpu" or len(fields) < 9 or len(after_name) < 13:
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
        own = int(after_name[11]) + int(after_name[12])  # utime, stime: fields 14 and 15 of the file
        return self.clock(), user + nice + system + irq + softirq + steal, own

    def sample(self) -> float | None:
        """Cores used by other processes since the previous sample (None on the first one, or when
        /proc cannot be read, or no time has passed)."""
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now[0] <= last[0]:
            return None
        busy, own = now[1] - last[1], now[2] - last[2]
        return max(0.0, (busy - own) / self.ticks_per_second / (now[0] - last[0]))


def _ticks_per_second() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class ThreadGovernor:
    """Picks the intra-op thread count of the next inference call: the cores other processes leave
    free, between 1 and `max_threads` (see the module docstring).

    before_call() re-estimates at most every `interval_s` seconds and calls set_threads(n) when
    the count changes. A core counts as taken when others use more than `take_at` of it (0.6: a
    busy neighbour on one core, not a brief daemon) and as free again below `free_at` (0.4), so
    the count does not flap on a half-busy core."""

    def __init__(
        self,
        max_threads: int,
        set_threads: Callable[[int], None],
        load: OtherLoad | None = None,
        cores: int | None = None,
        interval_s: float = 0.5,
        take_at: float = 0.6,
        free_at: float = 0.4,
    ):
        self.max_threads = max(1, int(max_threads))
        self.set_threads = set_threads
        self.load = load or OtherLoad()
        self.cores = cores or usable_cores()
        self.interval_s, self.take_at, self.free_at = interval_s, take_at, free_at
        self.threads = self.max_threads
        self.taken = 0  # cores counted as taken by others
        self._next = 0.0
        self.load.sample()  # the first sample only sets the reference

    def before_call(self) -> int:
        now = self.load.clock()
        if now >= self._next:
            self._next = now + self.interval_s
            others = self.load.sample()
            if others is not None:
                self._update(others)
        return self.threads

    def _update(self, others: float) -> None:
        taken = self.taken
        while taken < self.cores - 1 and others >= taken + self.take_at:
            taken += 1
        while taken > 0 and others < taken - 1 + self.free_at:
            taken -= 1
        self.taken = taken
        threads = max(1, min(self.max_threads, self.cores - taken))
        if threads != self.threads:
            self.threads = threads
            self.set_threads(threads)


def torch_thread_governor(torch, device_type: str, adaptive: bool | None = None) -> ThreadGovernor | None:
    """A ThreadGovernor over torch's intra-op thread count for work on `device_type`, or None where
    it does not apply: adaptive False (None: SSPNET_ADAPTIVE_THREADS, default on), not a CPU, a
    single thread to begin with (e.g. torchrun's OMP_NUM_THREADS=1), or no /proc (not Linux).
    `torch` is passed in so that this module stays torch-free."""
    if adaptive is None:
        adaptive = adaptive_threads_enabled()
    if not adaptive or device_type != "cpu" or torch.get_num_threads() < 2:
        return None
    load = OtherLoad()
    if not load.available():
        return None
    return ThreadGovernor(torch.get_num_threads(), torch.set_num_threads, load=load)


def physical_cores(sys_cpu: str = "/sys/devices/system/cpu") -> int:
    """Physical cores among the CPUs this process may run on (ONNX Runtime's default intra-op thread
    count is one per physical core): distinct (package, core) pairs in sysfs; usable_cores() where
    sysfs cannot say."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return usable_cores()
    cores = set()
    for cpu in cpus:
        topology = f"{sys_cpu}/cpu{cpu}/topology"
        try:
            with (
                open(f"{topology}/physical_package_id", encoding="ascii") as package,
                open(f"{topology}/core_id", encoding="ascii") as core,
            ):
                cores.add((package.read().strip(), core.read().strip()))
        except OSError:
            return usable_cores()
    return max(1, len(cores))


def onnxruntime_thread_governor(
    active_providers,
    fixed_threads: int | None,
    adaptive: bool | None = None,
    load: OtherLoad | None = None,
    cores: int | None = None,
    max_threads: int | None = None,
) -> ThreadGovernor | None:
    """A ThreadGovernor for an ONNX Runtime session running on `active_providers`, or None where it
    does not apply: adaptive False (None: SSPNET_ADAPTIVE_THREADS, default on), a fixed thread count
    (`fixed_threads` > 0), a GPU provider first in line, a single usable core, or no /proc (not Linux).
    The governor only picks a count (set_threads is a no-op): the backend keeps one session per
    count, since ONNX Runtime cannot change a live session's intra-op thread count. It counts others'
    load on `cores` (default: usable logical cores) and picks at most `max_threads` (default: the
    physical cores, ONNX Runtime's own default count)."""
    if adaptive is None:
        adaptive = adaptive_threads_enabled()
    if not adaptive or fixed_threads or not active_providers or active_providers[0] != "CPUExecutionProvider":
        return None
    cores = cores or usable_cores()
    load = load or OtherLoad()
    if cores < 2 or not load.available():
        return None
    # at most ONNX Runtime's own default (one thread per physical core): on a machine with SMT the
    # governor counts logical cores for the load, but never asks for more threads than that
    most = min(cores, max_threads or physical_cores())
    return ThreadGovernor(most, lambda threads: None, load=load, cores=cores)


def adaptive_threads_enabled(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether CPU inference (torch, ONNX Runtime) adapts its thread count (default yes;
    SSPNET_ADAPTIVE_THREADS=0: no)."""
    return _flag(os.environ if environ is None else environ, ENV_ADAPTIVE_THREADS, True)


__all__ = [
    "ENV_ADAPTIVE_THREADS",
    "ENV_OPENMP_DEFAULTS",
    "ENV_ORT_DYNAMIC_BLOCK_BASE",
    "ENV_ORT_SPINNING",
    "GOMP_SPINCOUNT",
    "OPENMP_DEFAULTS",
    "OtherLoad",
    "ThreadGovernor",
    "adaptive_threads_enabled",
    "apply_openmp_defaults",
    "configure_onnxruntime_session",
    "describe",
    "onnxruntime_spinning",
    "onnxruntime_thread_governor",
    "openmp_runtime_loaded",
    "physical_cores",
    "torch_thread_governor",
    "usable_cores",
]
