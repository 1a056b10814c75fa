"""Every CUDA kernel of csrc/kernels, run on the CPU execution layer, against its CPU twin: the
shared named cases (tests/kernel_cases.py, also run on a real GPU by tests/ops) and
hypothesis-generated ones, each under the forward, reverse and seeded-random schedules."""

import subprocess
import sys
from pathlib import Path

import kernel_cases
import numpy as np
import pytest
from coc_build import build_library, have_toolchain
from coc_compare import check_nms, check_roi
from coc_kernels import KernelLibrary
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs g++ and the CUDA toolkit headers")

NMS_CASES = {case["name"]: case for case in kernel_cases.nms_cases()}
ROI_CASES = {case["name"]: case for case in kernel_cases.roi_cases()}


@pytest.fixture(scope="module")
def lib():
    return KernelLibrary(build_library("plain"))


@pytest.mark.parametrize("name", NMS_CASES)
def test_nms_case(lib, name):
    check_nms(lib, NMS_CASES[name])


@pytest.mark.parametrize("name", ROI_CASES)
def test_roi_align_case(lib, name):
    check_roi(lib, ROI_CASES[name])


@st.composite
def nms_inputs(draw):
    method = draw(st.sampled_from(["hard", "linear", "gaussian"]))
    batch = draw(st.integers(1, 2))
    num = draw(st.integers(0, 130 if method == "hard" else 70))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    dtype = draw(st.sampled_from([np.float32, np.float64, np.float16]))
    boxes = kernel_cases.random_boxes(rng, batch, num, extent=draw(st.sampled_from([50.0, 200.0])))
    scores = rng.integers(0, 9, (batch, num)) / 8.0  # coarse: many ties
    labels = rng.integers(0, draw(st.integers(1, 4)), (batch, num)) if draw(st.booleans()) else None
    return kernel_cases.nms_case(
        f"hypothesis-{method}",
        boxes,
        scores,
        labels,
        method,
        iou_threshold=draw(st.sampled_from([0.0, 0.3, 0.5, 0.9])),
        sigma=draw(st.sampled_from([0.25, 0.5, 2.0])),
        score_threshold=draw(st.sampled_from([0.0, 0.3])),
        min_score=draw(st.sampled_from([0.0, 0.1])),
        max_output=draw(st.integers(1, 150 if method == "hard" else 16)),
        dtype=dtype,
    )


@settings(max_examples=25)
@given(case=nms_inputs())
def test_nms_matches_cpu_twin_property(lib, case):
    check_nms(lib, case)


@st.composite
def roi_inputs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.float16]))
    levels = draw(st.integers(1, 4))
    batch = draw(st.integers(1, 2))
    features = kernel_cases._pyramid(rng, batch, draw(st.integers(1, 3)), 128, levels, dtype)
    num = draw(st.integers(0, 12))
    corners = rng.uniform(-60, 200, (num, 4))
    if draw(st.booleans()):  # well-formed boxes; else any order (negative sizes)
        corners = np.concatenate(
            [np.minimum(corners[:, :2], corners[:, 2:]), np.maximum(corners[:, :2], corners[:, 2:])], 1
        )
    index = rng.uniform(-0.9, batch + 0.5, (num, 1))  # fractional and out-of-range batch indices
    rois = np.concatenate([index, corners], 1)
    edges = kernel_cases.level_edge_rois(batch)[: draw(st.integers(0, 5))]
    rois = np.concatenate([rois, np.array(edges, np.float64).reshape(-1, 5)], 0)
    mixed = dtype == np.float16 and draw(st.booleans())
    return kernel_cases.roi_case(
        "hypothesis",
        features,
        rois,
        output_size=(draw(st.integers(1, 4)), draw(st.integers(1, 4))),
        sampling_ratio=draw(st.sampled_from([0, 1, 2, 3])),
        aligned=draw(st.booleans()),
        roi_dtype=np.float32 if mixed else None,
        seed=1,
    )


@settings(max_examples=25)
@given(case=roi_inputs())
def test_roi_align_matches_cpu_twin_property(lib, case):
    check_roi(lib, case)


def test_layer_runs_after_torch_loaded_the_real_cuda_runtime():
    """torch brings libcudart into the process; the kernels must still call the layer's stand-ins
    (they crashed before the library was linked with -Bsymbolic)."""
    pytest.importorskip("torch")
    script = (
        "import sys, torch; sys.path[:0] = sys.argv[2:]\n"
        "from coc_kernels import KernelLibrary; from coc_compare import check_nms, check_roi; import kernel_cases\n"
        "lib = KernelLibrary(sys.argv[1])\n"
        "check_nms(lib, kernel_cases.nms_cases()[0]); check_roi(lib, kernel_cases.roi_cases()[0]); print('done')\n"
    )
    here = Path(__file__).resolve().parent
    run = subprocess.run(
        [sys.executable, "-c", script, str(build_library("plain")), str(here), str(here.parent)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and "done" in run.stdout, run.stderr[-3000:]
