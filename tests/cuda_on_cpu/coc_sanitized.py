"""Runs Python code against a sanitizer build in a child interpreter with the sanitizer's runtime
preloaded (a Python process cannot load an ASan/TSan library otherwise)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys

from coc_build import HERE, sanitizer_runtime

OPTIONS = {
    "asan": ("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0:halt_on_error=1"),
    "tsan": ("TSAN_OPTIONS", "halt_on_error=1:exitcode=66"),
}


def run_sanitized(flavour: str, argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    """`python argv...` with the `flavour` runtime preloaded; a report makes it exit non-zero."""
    runtime = sanitizer_runtime(flavour)
    if runtime is None:
        raise FileNotFoundError(f"no {flavour} runtime next to the compiler (g++ -print-file-name)")
    env = dict(os.environ, LD_PRELOAD=runtime, UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    name, value = OPTIONS[flavour]
    env[name] = value
    command = [sys.executable, *argv]
    if flavour == "tsan" and shutil.which("setarch"):
        # GCC 12's TSan refuses the address layouts of kernels with more mmap randomisation
        # ("unexpected memory mapping"); without randomisation it always starts.
        command = ["setarch", platform.machine(), "-R", *command]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def run_cases(flavour: str, library, only: str = "", timeout: float = 600) -> subprocess.CompletedProcess:
    """coc_compare.py over the shared kernel cases (those whose name contains `only`)."""
    return run_sanitized(flavour, [str(HERE / "coc_compare.py"), str(library), "--only", only], timeout)
