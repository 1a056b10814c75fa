"""CPU threading defaults that hold up on a busy computer. Standard library only (no torch, no numpy).

A drone's companion computer shares its cores with the flight stack, the camera pipeline and the
video encoder. Parallel CPU inference then slows down far more than its fair share when a worker
thread *spins* at a barrier while its sibling is descheduled: the spinner burns the very time
slice the sibling needs. Measured on a 2-core machine with one busy neighbour process (issue 12,
FoveaBox R18 small at 256 x 256, batch 1, p50):

    PyTorch eager, 2 threads, libgomp's default spin      134 ms quiet  -> 2662 ms loaded (19.9x)
    PyTorch eager, 2 threads, OMP_WAIT_POLICY=PASSIVE     187 ms        ->  236 ms        (1.3x)
    PyTorch eager, 1 thread                               235 ms        ->  238 ms        (1.0x)
    ONNX Runtime, 2 threads, spinning (its default)        74 ms        ->  247 ms        (3.3x)
    ONNX Runtime, 2 threads, no spinning                   81 ms        ->  181 ms        (2.2x)

The goal is at most 2.2x quiet under one neighbour (fair share alone costs 2x) while quiet
latency gets at most 10 % worse. What sspnet sets, and why:

ONNX Runtime: intra-op spinning off (`session.intra_op.allow_spinning = 0`, and the same for the
    inter-op pool). The table shows it meets both goals (+9 % quiet, 2.2x loaded); all cores stay
    in use. Override: SSPNET_ORT_SPINNING=1 restores ONNX Runtime's spinning.

OpenMP (torch's intra-op pool, oneDNN, and sspnet's own CPU kernels: one libgomp per process):
    a *bounded* spin, GOMP_SPINCOUNT=4000. libgomp spins 300,000 times by default before it
    sleeps (7.8 ms on this machine's AMD EPYC at 26 ns per spin, longer than a scheduler time
    slice: hence the 19.9x), and not at all with OMP_WAIT_POLICY=PASSIVE, which costs +40 %
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
from collections.abc import MutableMapping

# libgomp's busy-wait length before a waiting thread sleeps (see the module docstring).
GOMP_SPINCOUNT = 4000
OPENMP_DEFAULTS = {"GOMP_SPINCOUNT": str(GOMP_SPINCOUNT)}
# A user setting any of these has chosen a wait policy: sspnet then sets nothing.
OPENMP_USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")

ENV_OPENMP_DEFAULTS = "SSPNET_OPENMP_DEFAULTS"  # "0": do not touch OpenMP's variables
ENV_ORT_SPINNING = "SSPNET_ORT_SPINNING"  # "1": ONNX Runtime's own default (spinning)

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
    (default: SSPNET_ORT_SPINNING) says otherwise, and ORT_DISABLED_OPTIMIZERS disabled."""
    spin = onnxruntime_spinning() if spinning is None else bool(spinning)
    for key in ORT_SPINNING_KEYS:
        options.add_session_config_entry(key, "1" if spin else "0")
    options.add_session_config_entry("optimization.disable_specified_optimizers", ",".join(ORT_DISABLED_OPTIMIZERS))


def describe(environ: MutableMapping[str, str] | None = None) -> dict:
    """The threading settings in effect for new work in this process (for benchmark records)."""
    environ = os.environ if environ is None else environ
    return {
        "openmp": {name: environ.get(name) for name in ("OMP_NUM_THREADS", *OPENMP_USER_VARIABLES)},
        "onnxruntime_spinning": onnxruntime_spinning(environ),
        "cpu_count": os.cpu_count(),
    }


__all__ = [
    "ENV_OPENMP_DEFAULTS",
    "ENV_ORT_SPINNING",
    "GOMP_SPINCOUNT",
    "OPENMP_DEFAULTS",
    "apply_openmp_defaults",
    "configure_onnxruntime_session",
    "describe",
    "onnxruntime_spinning",
    "openmp_runtime_loaded",
]
