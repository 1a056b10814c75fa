"""The CPU execution layer itself: each CUDA semantic the kernels rely on, checked on small kernels
(layer_checks.cu) against closed-form results, and each bug class it must report."""

import ctypes
import struct

import numpy as np
import pytest
from coc_build import HERE, build_library, have_toolchain, sanitizer_runtime
from coc_kernels import SCHEDULES
from coc_sanitized import run_sanitized as run_in_child
from rewrite_cuda import RewriteError, rewrite

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs g++ and the CUDA toolkit headers")

CHECKS = HERE / "layer_checks.cu"
CUDA_ERROR_INVALID_CONFIGURATION = 9
CUDA_ERROR_LAUNCH_FAILURE = 719


def build_checks(flavour):
    return build_library(
        flavour,
        cuda_sources=(),
        extra_units=[("tests/cuda_on_cpu/layer_checks.cu", CHECKS.read_text())],
        kernel_api=False,
    )


@pytest.fixture(scope="module")
def lib():
    lib = ctypes.CDLL(str(build_checks("plain")))
    lib.coc_last_report.restype = ctypes.c_char_p
    lib.coc_set_schedule.argtypes = [ctypes.c_int, ctypes.c_uint64]
    return lib


def ptr(a):
    return ctypes.c_void_p(a.ctypes.data)


def line_of(text):
    return CHECKS.read_text().split("\n").index(next(l for l in CHECKS.read_text().split("\n") if text in l)) + 1


@pytest.fixture(params=list(SCHEDULES))
def schedule(lib, request):
    lib.coc_set_schedule(SCHEDULES[request.param], 7)
    yield request.param
    lib.coc_set_schedule(0, 0)


@pytest.mark.parametrize(
    "op,arg,width",
    [
        (0, 3, 32),
        (0, 37, 32),
        (0, 5, 8),
        (1, 2, 32),
        (1, 3, 16),
        (2, 1, 32),
        (2, 16, 32),
        (2, 3, 8),
        (3, 1, 32),
        (3, 16, 32),
        (3, 4, 16),
    ],
)
def test_shuffles_match_cuda_definition(lib, schedule, op, arg, width):
    out = np.full(64, -1, np.int32)
    assert lib.layer_shuffles(op, arg, width, ptr(out)) == 0
    lane = np.arange(64) % 32
    base = lane // width * width
    source = {
        0: base + arg % width,
        1: np.where(lane - arg >= base, lane - arg, lane),
        2: np.where(lane + arg < base + width, lane + arg, lane),
        3: np.where(((lane ^ arg) >= base) & ((lane ^ arg) < base + width), lane ^ arg, lane),
    }[op]
    expected = (np.arange(64) // 32 * 32 + source) * 10
    np.testing.assert_array_equal(out, expected)


def test_shuffle_moves_eight_byte_values(lib):
    out = np.zeros(32)
    assert lib.layer_shuffle_double(ptr(out)) == 0
    np.testing.assert_array_equal(out, np.minimum(np.arange(32) + 1, 31) + 0.25)


@pytest.mark.parametrize("k", [1, 2, 33, 64])
def test_votes(lib, schedule, k):
    out = np.zeros((64, 3), np.uint32)
    assert lib.layer_votes(k, ptr(out)) == 0
    for warp in range(2):
        p = (np.arange(32) + 32 * warp) % k == 0
        ballot = sum(1 << i for i in range(32) if p[i])
        assert (out[32 * warp : 32 * warp + 32] == [ballot, int(p.all()), int(p.any())]).all()


@pytest.mark.parametrize("threads,k", [(256, 0), (256, 100), (256, 256), (96, 50)])
def test_syncthreads_count_and_or(lib, schedule, threads, k):
    out = np.zeros(3, np.int32)
    assert lib.layer_barrier_reductions(threads, k, ptr(out)) == 0
    assert list(out) == [k, int(k == threads), int(k > 0)]


def test_exited_threads_count_as_arrived(lib, schedule):
    out = np.full(128, -1, np.int32)
    assert lib.layer_exited_threads_arrive(128, 40, ptr(out)) == 0, lib.coc_last_report()
    assert (out[:40] == 42).all() and (out[40:] == -1).all()


def test_atomics_sum_every_thread(lib, schedule):
    blocks, threads = 5, 96
    n = blocks * threads
    i, u, ull = np.zeros(1, np.int32), np.zeros(1, np.uint32), np.zeros(1, np.uint64)
    f, d, h, mx = np.zeros(1, np.float32), np.zeros(1), np.zeros(1, np.uint16), np.full(1, -1, np.int32)
    assert lib.layer_atomics(blocks, threads, ptr(i), ptr(u), ptr(ull), ptr(f), ptr(d), ptr(h), ptr(mx)) == 0
    assert (i[0], u[0], ull[0], f[0], d[0], mx[0]) == (n, 2 * n, 3 * n, 0.5 * n, 0.25 * n, n - 1)
    # fp16 sums of ones are exact up to 2048
    assert np.frombuffer(h.tobytes(), np.float16)[0] == n


def test_dynamic_shared_memory(lib, schedule):
    data = np.arange(3 * 64, dtype=np.int32)
    out = np.zeros_like(data)
    assert lib.layer_reverse_with_dynamic_shared(3, 64, ptr(data), ptr(out)) == 0
    np.testing.assert_array_equal(out, data.reshape(3, 64)[:, ::-1].ravel())


def test_static_shared_memory_is_poisoned_between_blocks(lib):
    out = np.zeros(4, np.int32)
    lib.coc_set_schedule(0, 0)
    assert lib.layer_read_unwritten_shared(4, ptr(out)) == 0
    # block 0 wrote slot 0 itself; blocks 1-3 never wrote it: they see 0xffffffff, not 100
    assert list(out) == [100, -1, -1, -1]


def test_grid_cap_makes_grid_stride_loops_iterate(lib):
    n = 1000
    out, blocks_seen = np.zeros(n, np.int32), np.zeros(1, np.int32)
    lib.coc_set_grid_cap(2)
    try:
        assert lib.layer_grid_stride(8, 64, n, ptr(out), ptr(blocks_seen)) == 0
    finally:
        lib.coc_set_grid_cap(0)
    assert blocks_seen[0] == 2 and (out == 1).all()


@pytest.mark.parametrize("grid,block", [((2, 3, 1), (4, 2, 3)), ((1, 1, 2), (32, 1, 1))])
def test_coordinates(lib, schedule, grid, block):
    blocks, threads = np.prod(grid), np.prod(block)
    out = np.full(blocks * threads, -1, np.int32)
    g, b = np.array(grid, np.uint32), np.array(block, np.uint32)
    assert lib.layer_coordinates(ptr(g), ptr(b), ptr(out)) == 0
    np.testing.assert_array_equal(out, (np.arange(blocks)[:, None] * 1000 + np.arange(threads)).ravel())


@pytest.mark.parametrize("block", [(2048, 1, 1), (0, 1, 1), (32, 32, 2), (1, 1, 65)])
def test_bad_launch_configuration(lib, block):
    out = np.zeros(4, np.int32)
    g, b = np.array([1, 1, 1], np.uint32), np.array(block, np.uint32)
    assert lib.layer_coordinates(ptr(g), ptr(b), ptr(out)) == CUDA_ERROR_INVALID_CONFIGURATION
    assert (out == 0).all()  # nothing ran


@pytest.mark.parametrize(
    "which,expected",
    [
        (0, ["__shfl_down_sync", "lane 5 named in the mask never arrives", "has exited"]),
        (1, ["__syncthreads in divergent code", "threads 0-15 wait at", "threads 16-31 wait at"]),
        (2, ["reads lane 16, which is not named in the mask"]),
    ],
)
def test_layer_reports_bugs_with_their_line(lib, schedule, which, expected):
    lines = {
        0: ["lane != 5"],
        1: ["if (threadIdx.x < 16) {", "__syncthreads();\n  out[threadIdx.x] = 1;"],
        2: ["0x0000ffffu"],
    }[which]
    text = CHECKS.read_text()
    numbers = []
    for snippet in lines:
        at = text.index(snippet)
        numbers.append(text.count("\n", 0, at) + 1 + (1 if snippet.startswith("if") else 0))
    out = np.zeros(32, np.int32)
    assert lib.layer_bad(which, ptr(out)) == CUDA_ERROR_LAUNCH_FAILURE
    report = lib.coc_last_report().decode()
    for phrase in expected:
        assert phrase in report, report
    for number in numbers:
        assert f"layer_checks.cu:{number}" in report, report
    # the layer recovers: the next launch runs normally
    assert lib.layer_shuffles(2, 1, 32, ptr(np.zeros(64, np.int32))) == 0


def cub_order(keys):
    """CUB's descending radix order: stable, by the twiddled bit pattern, -0 == +0."""
    bits = np.frombuffer(keys.astype(np.float32).tobytes(), np.uint32).astype(np.uint64)
    bits = np.where(bits == 0x80000000, 0, bits)
    twiddled = np.where(bits & 0x80000000, ~bits & 0xFFFFFFFF, bits | 0x80000000)
    return np.argsort(-twiddled.astype(np.int64), kind="stable")


def test_cub_stand_in_ordering(lib):
    nan_pos = struct.unpack("f", struct.pack("I", 0x7FC00001))[0]
    nan_neg = struct.unpack("f", struct.pack("I", 0xFFC00000))[0]
    keys = np.array([0.5, -0.0, 0.0, np.inf, nan_pos, -np.inf, 0.5, nan_neg, -1.0, 0.0, -0.0, 2.0], np.float32)
    keys = np.concatenate([keys, np.random.default_rng(0).integers(-3, 4, 200).astype(np.float32)])
    out_keys, out_values = np.zeros_like(keys), np.zeros(keys.size, np.int32)
    assert lib.layer_sort_pairs_descending(ptr(keys), ptr(out_keys), ptr(out_values), keys.size) == 0
    expected = cub_order(keys)
    np.testing.assert_array_equal(out_values, expected)
    assert out_values[0] == 4 and out_values[-1] == 7  # positive NaN first, negative NaN last
    zeros = [v for v in out_values if keys[v] == 0]
    assert zeros == sorted(zeros)  # +0 and -0 equal: input order kept


def test_rewrite_keeps_lines_and_refuses_what_it_cannot_rewrite():
    source = "void f() {\n  k<<<1,\n     2>>>(a,\n b);\n  __shared__ int s[4];\n}\n"
    out = rewrite(source, "x.cu")
    assert out.count("\n") == source.count("\n") + 1  # the #line directive only
    assert "cuda_on_cpu::launch" in out.split("\n")[2] and "shared_declared(&s" in out.split("\n")[5]
    with pytest.raises(RewriteError, match="line 2"):
        rewrite("void f() {\n  k<<<1, 2>>>;\n}\n", "x.cu")
    with pytest.raises(RewriteError, match="line 2"):
        rewrite("void f() {\n  __shared__ int a[2], b[2];\n}\n", "x.cu")
    with pytest.raises(RewriteError, match="2 to 4 values"):
        rewrite("void f() { k<<<1>>>(); }\n", "x.cu")
    assert (
        "<<<"
        not in rewrite("// k<<<1, 1>>>(x) in a comment\nvoid f() { k<<<1, 1>>>(); }\n", "x.cu")
        .split("\n", 1)[1]
        .split("\n")[1]
    )


SANITIZED_CALLS = """
import ctypes, sys
import numpy as np
lib = ctypes.CDLL(sys.argv[1])
out = np.zeros(256, np.int32)
p = ctypes.c_void_p(out.ctypes.data)
call = sys.argv[2]
if call == "clean":
    assert lib.layer_warp_exchange(1, p) == 0
    assert lib.layer_exited_threads_arrive(128, 40, p) == 0
    assert lib.layer_barrier_reductions(256, 100, p) == 0
    assert lib.layer_reverse_with_dynamic_shared(2, 64, p, ctypes.c_void_p(np.zeros(128, np.int32).ctypes.data)) == 0
elif call == "shuffle-exchange":
    lib.layer_warp_exchange(0, p)
elif call == "shared-overrun":
    lib.layer_bad(3, p)
elif call == "shared-overrun-pointer":
    lib.layer_bad(4, p)
print("done")
"""


def run_sanitized(flavour, call):
    if sanitizer_runtime(flavour) is None:
        pytest.skip(f"no {flavour} runtime installed with the compiler")
    return run_in_child(flavour, ["-c", SANITIZED_CALLS, str(build_checks(flavour)), call], timeout=300)


def test_tsan_sees_barriers_and_syncwarp_as_synchronisation():
    run = run_sanitized("tsan", "clean")
    assert run.returncode == 0 and "done" in run.stdout, run.stderr[-4000:]


def test_tsan_sees_no_synchronisation_in_a_shuffle():
    run = run_sanitized("tsan", "shuffle-exchange")
    text = CHECKS.read_text()
    write = text.count("\n", 0, text.index("slot[threadIdx.x] = threadIdx.x;")) + 1
    read = text.count("\n", 0, text.index("out[threadIdx.x] = slot[(threadIdx.x + 1) % 32];")) + 1
    assert run.returncode == 66 and "ThreadSanitizer: data race" in run.stderr, run.stderr[-4000:]
    assert f"layer_checks.cu:{write}" in run.stderr and f"layer_checks.cu:{read}" in run.stderr, run.stderr[-4000:]


def test_asan_catches_a_shared_array_overrun():
    run = run_sanitized("asan", "shared-overrun")
    text = CHECKS.read_text()
    overrun = text.count("\n", 0, text.index("values[threadIdx.x + 1]")) + 1
    assert run.returncode != 0, run.stderr[-4000:]
    assert "index 32 out of bounds" in run.stderr or "global-buffer-overflow" in run.stderr, run.stderr[-4000:]
    assert f"layer_checks.cu:{overrun}" in run.stderr, run.stderr[-4000:]


def test_asan_ubsan_catch_a_shared_overrun_through_a_pointer():
    run = run_sanitized("asan", "shared-overrun-pointer")
    text = CHECKS.read_text()
    overrun = text.count("\n", 0, text.index("static_cast<int>(p[threadIdx.x + 1])")) + 1
    # UBSan's object-size check comes first; ASan's redzone ("global variable 'values'") otherwise
    assert run.returncode != 0, run.stderr[-4000:]
    assert "insufficient space for an object" in run.stderr or "global variable 'values'" in run.stderr, run.stderr[
        -4000:
    ]
    assert f"layer_checks.cu:{overrun}" in run.stderr, run.stderr[-4000:]
