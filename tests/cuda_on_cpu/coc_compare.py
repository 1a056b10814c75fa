"""Runs kernel cases on the CPU execution layer and compares them with the CPU twins.

Used in-process by the pytest tests (plain build) and as a subprocess for the sanitizer builds,
which need their runtime preloaded into the interpreter:

    LD_PRELOAD=$(g++ -print-file-name=libasan.so) python tests/cuda_on_cpu/coc_compare.py LIB [--quick]

Every case runs under the three schedules (forward, reverse, seeded random thread and block
order): a race that changes a result shows as a mismatch in one of them. RoIAlign also runs with
the grid capped at 3 blocks, so its grid-stride loops take more than one iteration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from coc_kernels import STATUS_OK, KernelLibrary  # noqa: E402

SCHEDULES = (("forward", 0), ("reverse", 0), ("random", 12345))
GRID_CAP = 3


def _compute_dtype(dtype):
    """The CPU twins have no fp16: they get the fp16 values in fp32 (the CUDA compute type)."""
    return np.float32 if np.dtype(dtype) == np.float16 else dtype


def _score_tolerance(dtype):
    return {np.dtype(np.float16): 1e-3, np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}[np.dtype(dtype)]


def check_nms(lib: KernelLibrary, case: dict, schedules=SCHEDULES) -> None:
    boxes, scores = case["boxes"], case["scores"]
    params = {k: case[k] for k in ("method", "iou_threshold", "sigma", "score_threshold", "min_score", "max_output")}
    cpu_type = _compute_dtype(boxes.dtype)
    keep_cpu, scores_cpu, valid_cpu, status = lib.nms(
        "cpu", boxes.astype(cpu_type), scores.astype(cpu_type), case["labels"], **params
    )
    assert status == STATUS_OK, f"{case['name']}: CPU twin status {status}"
    for schedule, seed in schedules:
        lib.set_schedule(schedule, seed)
        keep, out, valid, status = lib.nms("cuda", boxes, scores, case["labels"], **params)
        where = f"{case['name']} [{schedule}]"
        assert status == STATUS_OK, f"{where}: status {status}: {lib.last_report()}"
        np.testing.assert_array_equal(valid, valid_cpu, err_msg=f"{where}: num_valid")
        np.testing.assert_array_equal(keep, keep_cpu, err_msg=f"{where}: kept indices")
        # soft-NMS scores may differ in the last bits (device expf, FMA contraction on a GPU)
        tol = _score_tolerance(boxes.dtype)
        np.testing.assert_allclose(
            out.astype(np.float64),
            scores_cpu.astype(out.dtype).astype(np.float64),
            rtol=tol,
            atol=tol,
            err_msg=f"{where}: scores",
        )


def _roi_tolerance(dtype, reference, accumulated=False):
    """Absolute tolerance against the CPU twin. fp16 gradients are summed by fp16 atomicAdd (as on
    a GPU): each of the few additions per element rounds to fp16, hence the wider bound."""
    scale = max(1.0, float(np.abs(reference).max(initial=0.0)))
    half = 2e-2 if accumulated else 5e-3
    return {
        np.dtype(np.float16): half * scale,
        np.dtype(np.float32): 1e-5 * scale,
        np.dtype(np.float64): 1e-12 * scale,
    }[np.dtype(dtype)]


def check_roi(lib: KernelLibrary, case: dict, schedules=SCHEDULES, grid_cap: int = GRID_CAP) -> None:
    features, rois, dtype = case["features"], case["rois"], case["features"][0].dtype
    options = dict(sampling_ratio=case["sampling_ratio"], aligned=case["aligned"], finest_scale=case["finest_scale"])
    cpu_type = _compute_dtype(dtype)
    out_cpu, status = lib.roi_forward(
        "cpu",
        [f.astype(cpu_type) for f in features],
        case["scales"],
        rois.astype(cpu_type),
        output_size=case["output_size"],
        **options,
    )
    assert status == STATUS_OK, f"{case['name']}: CPU twin forward status {status}"
    backward = rois.dtype == dtype  # the CUDA backward has no mixed-precision form
    if backward:
        grads_cpu, status = lib.roi_backward(
            "cpu",
            [f.shape for f in features],
            case["scales"],
            case["grad_output"].astype(cpu_type),
            rois.astype(cpu_type),
            **options,
        )
        assert status == STATUS_OK, f"{case['name']}: CPU twin backward status {status}"
    runs = [(s, seed, 0) for s, seed in schedules] + [(schedules[0][0], schedules[0][1], grid_cap)]
    for schedule, seed, cap in runs:
        lib.set_schedule(schedule, seed)
        lib.set_grid_cap(cap)
        try:
            where = f"{case['name']} [{schedule}{f', grid cap {cap}' if cap else ''}]"
            out, status = lib.roi_forward(
                "cuda", features, case["scales"], rois, output_size=case["output_size"], **options
            )
            assert status == STATUS_OK, f"{where}: forward status {status}: {lib.last_report()}"
            np.testing.assert_allclose(
                out.astype(np.float64),
                out_cpu.astype(np.float64),
                rtol=0,
                atol=_roi_tolerance(dtype, out_cpu),
                err_msg=f"{where}: forward",
            )
            if not backward:
                continue
            grads, status = lib.roi_backward(
                "cuda", [f.shape for f in features], case["scales"], case["grad_output"], rois, **options
            )
            assert status == STATUS_OK, f"{where}: backward status {status}: {lib.last_report()}"
            for level, (g, ref) in enumerate(zip(grads, grads_cpu)):
                # atomicAdd order differs between schedules (and on a GPU): a tolerance, not equality
                np.testing.assert_allclose(
                    g.astype(np.float64),
                    ref.astype(np.float64),
                    rtol=0,
                    atol=_roi_tolerance(dtype, ref, accumulated=True),
                    err_msg=f"{where}: grad level {level}",
                )
        finally:
            lib.set_grid_cap(0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", type=Path)
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    args = parser.parse_args(argv)
    import kernel_cases

    lib = KernelLibrary(args.library)
    failures = 0
    for kind, cases, check in (
        ("nms", kernel_cases.nms_cases(), check_nms),
        ("roi", kernel_cases.roi_cases(), check_roi),
    ):
        for case in cases:
            if args.only not in case["name"]:
                continue
            try:
                check(lib, case)
                print(f"ok   {kind} {case['name']}", flush=True)
            except AssertionError as error:
                failures += 1
                print(f"FAIL {kind} {case['name']}: {error}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
