"""Runs coc_compare.py on a sanitizer build in a child interpreter with the sanitizer's runtime
preloaded (a Python process cannot load an ASan/TSan library otherwise)."""

from __future__ import annotations

import os
import subprocess
import sys

from coc_build import HERE, sanitizer_runtime

OPTIONS = {
    "asan": ("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0:halt_on_error=1"),
    "tsan": ("TSAN_OPTIONS", "halt_on_error=1:exitcode=66"),
}


def run_cases(flavour: str, library, only: str = "", timeout: float = 600) -> subprocess.CompletedProcess:
    runtime = sanitizer_runtime(flavour)
    if runtime is None:
        raise FileNotFoundError(f"no {flavour} runtime next to the compiler (g++ -print-file-name)")
    env = dict(os.environ)
    env["LD_PRELOAD"] = runtime
    name, value = OPTIONS[flavour]
    env[name] = value
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    command = [sys.executable, str(HERE / "coc_compare.py"), str(library), "--only", only]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
