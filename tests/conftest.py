"""Shared test settings: hypothesis profiles."""

import os

import pytest
from hypothesis import HealthCheck, settings

# CI machines have 2 slow cores: no per-example deadline, moderate example counts.
settings.register_profile("ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# Tools that .ci/run installs (or that the build machine has: g++, nvcc, the CUDA headers, the TensorRT
# headers in ../shared). In CI (CI=true) a test that would skip for lack of one fails instead, so the
# coverage cannot silently disappear from a run; a developer machine without them skips with the reason.
TOOLS_CI_HAS = (
    "g++",
    "clang++",
    "nvcc",
    "cmake",
    "ffmpeg",
    "CUDA headers",
    "CUDA toolkit",
    "runtime installed with the compiler",
    "-fsanitize=fuzzer",
    "C++ headers found",
    "TensorRT 10.3 headers",
    "aio-rtsp-toolkit",
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") != "true" or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if any(tool in reason for tool in TOOLS_CI_HAS):
        report.outcome = "failed"
        report.longrepr = f"CI provides this tool, so this test must run, not skip: {reason}"
