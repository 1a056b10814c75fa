"""The CUDA kernels on the CPU execution layer under AddressSanitizer + UndefinedBehaviorSanitizer
and under ThreadSanitizer (each CUDA thread a TSan fiber; only CUDA's happens-before edges): the
shared kernel cases must run clean and still match the CPU twins."""

import pytest
from coc_build import build_library, have_toolchain, sanitizer_runtime
from coc_sanitized import run_cases

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs g++ and the CUDA toolkit headers")


@pytest.mark.parametrize("flavour", ["asan", "tsan"])
def test_kernel_cases_run_clean_under_sanitizer(flavour):
    if sanitizer_runtime(flavour) is None:
        pytest.skip(f"no {flavour} runtime installed with the compiler")
    run = run_cases(flavour, build_library(flavour))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    for marker in ("ERROR: AddressSanitizer", "WARNING: ThreadSanitizer", "runtime error:", "FAIL"):
        assert marker not in output, output[-6000:]
    assert output.count("ok   ") >= 40, output[-3000:]  # every case ran
