"""Proof that the layer and the sanitizers catch the bugs they are for: each test plants one bug in
a copy of a real kernel (text substitution of csrc/kernels/*.cu, line count unchanged), runs a
shared kernel case on it and asserts the report names the kernel's source line(s)."""

import re

import kernel_cases
import pytest
from coc_build import KERNELS, build_library, have_toolchain, sanitizer_runtime
from coc_compare import check_nms
from coc_kernels import KernelLibrary
from coc_sanitized import run_cases

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs g++ and the CUDA toolkit headers")

NMS = "batched_nms_cuda.cu"
ROI = "multi_level_roi_align_cuda.cu"


def line(source, snippet, occurrence=0):
    """1-based line of the `occurrence`-th line containing `snippet` in csrc/kernels/`source`."""
    numbers = [i for i, text in enumerate((KERNELS / source).read_text().split("\n"), 1) if snippet in text]
    assert len(numbers) > occurrence, f"{snippet!r} not in {source}: the kernel changed, update the plant"
    return numbers[occurrence]


def case(name):
    return next(c for c in kernel_cases.nms_cases() if c["name"] == name)


def sanitizer_report(flavour, source, old, new, case_name):
    """stderr of the shared case `case_name` on a `flavour` build with `old` replaced by `new`
    in csrc/kernels/`source`; the run must have failed."""
    if sanitizer_runtime(flavour) is None:
        pytest.skip(f"no {flavour} runtime installed with the compiler")
    run = run_cases(flavour, build_library(flavour, {source: {old: new}}), only=case_name)
    assert run.returncode != 0, run.stdout[-2000:] + run.stderr[-4000:]
    return run.stderr


def test_missing_syncthreads_is_a_race_under_tsan():
    # overlap_mask: the barrier between loading the column boxes and reading them
    barrier = "  }\n  __syncthreads();\n  if (t >= rows) return;"
    report = sanitizer_report(
        "tsan", NMS, barrier, "  }\n  /* planted: no barrier */\n  if (t >= rows) return;", "hard-agnostic-float32"
    )
    assert "ThreadSanitizer: data race" in report, report[-4000:]
    # both sides of the race: a column-tile load and the read in the IoU loop
    loads = {line(NMS, "col_boxes[t] = sorted_boxes"), line(NMS, "col_labels[t] = class_aware")}
    assert any(f"batched_nms_cuda.cu:{n}" in report for n in loads), report[-4000:]
    assert f"batched_nms_cuda.cu:{line(NMS, 'if (col_labels[c] == label')}" in report, report[-4000:]


def test_shared_array_overread_is_caught_by_asan():
    loop = "for (int c = row_tile == col_tile ? t + 1 : 0; c < cols; ++c)"
    # full 64-box tiles: reads col_*[64]
    report = sanitizer_report("asan", NMS, loop, loop.replace("c < cols", "c <= cols"), "hard-600-boxes")
    # UBSan's bounds check sees the constant-size array first; ASan's redzone would otherwise
    assert re.search(r"runtime error: index 64 out of bounds for type '.*\[64\]'", report) or re.search(
        r"is located \d+ bytes after global variable 'col_(boxes|labels)'", report
    ), report[-4000:]
    assert f"batched_nms_cuda.cu:{line(NMS, 'if (col_labels[c] == label')}" in report, report[-4000:]


def test_grid_stride_off_by_one_is_caught_by_asan():
    # forward_kernel's loop; in this case total % 256 != 0, so a thread with index == total exists
    report = sanitizer_report("asan", ROI, "index < total;", "index <= total;", "float32-aligned-s0")
    assert "heap-buffer-overflow" in report, report[-4000:]
    assert f"multi_level_roi_align_cuda.cu:{line(ROI, 'geometry_of<R, A>(rois + r * 5')}" in report, report[-4000:]


def test_barrier_in_divergent_branch_is_reported():
    # greedy_reduce: a __syncthreads only thread 0 reaches
    branch = "    if (t == 0) {\n      uint64_t current"
    planted_barrier = branch.replace("{", "{ __syncthreads();")
    lib = KernelLibrary(build_library("plain", {NMS: {branch: planted_barrier}}))
    with pytest.raises(AssertionError, match="status 4"):
        check_nms(lib, case("hard-agnostic-float32"))
    report = lib.last_report()
    assert "__syncthreads in divergent code" in report, report
    planted = line(NMS, "if (t == 0) {")
    assert f"threads 0 wait at csrc/kernels/batched_nms_cuda.cu:{planted}" in report, report
    text = (KERNELS / NMS).read_text().split("\n")
    after = next(i for i in range(planted + 1, len(text) + 1) if "__syncthreads();" in text[i - 1])
    assert f"threads 1-255 wait at csrc/kernels/batched_nms_cuda.cu:{after}" in report, report


def test_absent_lane_in_shuffle_mask_is_reported():
    # block_argmax: lane 7 of every warp skips the first shuffle reduction
    first = "  for (int offset = 16; offset > 0; offset /= 2) {\n    const C v"
    lib = KernelLibrary(build_library("plain", {NMS: {first: "  if (threadIdx.x % 32 != 7) " + first.lstrip()}}))
    with pytest.raises(AssertionError, match="status 4"):
        check_nms(lib, case("linear-agnostic-float32"))
    report = lib.last_report()
    shuffle = line(NMS, "const C v = __shfl_down_sync")
    assert f"__shfl_down_sync at csrc/kernels/batched_nms_cuda.cu:{shuffle}" in report, report
    assert (
        "lane 7 named in the mask never arrives (it waits at __syncthreads at csrc/kernels/batched_nms_cuda.cu:"
        in report
    ), report


def test_plain_add_instead_of_atomic_is_a_race_under_tsan():
    # backward: neighbouring output bins of one RoI (same block) add into the same feature pixels
    atomic = "atomic_add(float* p, float v) { atomicAdd(p, v); }"
    report = sanitizer_report("tsan", ROI, atomic, "atomic_add(float* p, float v) { *p += v; }", "float32-aligned-s2")
    assert "ThreadSanitizer: data race" in report, report[-4000:]
    assert f"multi_level_roi_align_cuda.cu:{line(ROI, atomic)}" in report, report[-4000:]
