"""sspnet.ops.multi_level_roi_align against torchvision.

References (nothing here is compared with sspnet's own code):
- the level of each RoI from torchvision's `LevelMapper` (k_min 2, canonical scale 4 * finest_scale,
  canonical level 4 -- mmdetection's finest_scale rule, checked on boundary sizes below),
- the pooling from `torchvision.ops.roi_align` run level by level, and
- `torchvision.ops.MultiScaleRoIAlign` end to end where its conventions coincide with ours.
"""

from __future__ import annotations

import math

import pytest
import torch
from devices import DEVICES
from hypothesis import assume, given
from hypothesis import strategies as st
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import roi_align as tv_roi_align
from torchvision.ops.poolers import LevelMapper

from sspnet.ops import multi_level_roi_align, roi_levels

STRIDES = [4, 8, 16, 32, 64]


# ---- references built from torchvision -----------------------------------------------------------


def torchvision_levels(rois: torch.Tensor, num_levels: int, finest_scale: float = 56.0):
    """mmdetection's level of each RoI via torchvision's LevelMapper.

    floor(4 + log2(s / (4 f)) + eps) - 2 = floor(log2(s / f) + eps): mmdetection's
    floor(log2(s / f + 1e-6)) up to where the epsilon sits. LevelMapper takes sqrt of a negative
    area (NaN); the documented rule maps negative areas to level 0, so those are set explicitly.
    """
    mapper = LevelMapper(k_min=2, k_max=2 + num_levels - 1, canonical_scale=4 * finest_scale, canonical_level=4)
    boxes = rois[:, 1:].double()
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    levels = mapper([boxes])
    return torch.where(area > 0, levels, torch.zeros_like(levels))


def reference_pool(features, rois, strides, output_size, sampling_ratio, aligned, levels=None):
    """Pool each RoI with torchvision.ops.roi_align on its LevelMapper level."""
    if levels is None:
        levels = torchvision_levels(rois, len(features))
    channels = features[0].shape[1]
    parts = torch.zeros((rois.shape[0], channels, *output_size), dtype=features[0].dtype, device=rois.device)
    for level, (feature, stride) in enumerate(zip(features, strides)):
        index = torch.nonzero(levels == level).flatten()
        if index.numel():
            pooled = tv_roi_align(feature, rois[index], output_size, 1.0 / stride, sampling_ratio, aligned)
            parts = parts.index_put((index.to(rois.device),), pooled)
    return parts


# ---- inputs -------------------------------------------------------------------------------------


def make_pyramid(
    num_levels, batch, channels, height, width, dtype=torch.float32, device="cpu", seed=0, requires_grad=False
):
    """Levels of an input of height x width pixels at strides 4, 8, 16, ... (finest first)."""
    generator = torch.Generator().manual_seed(seed)
    features = []
    for stride in STRIDES[:num_levels]:
        shape = (batch, channels, max(1, height // stride), max(1, width // stride))
        feature = torch.randn(shape, generator=generator, dtype=dtype).to(device)
        features.append(feature.requires_grad_(requires_grad))
    return features


def make_rois(count, batch, height, width, min_side=2.0, max_side=600.0, dtype=torch.float32, device="cpu", seed=0):
    """Random boxes: centres over the image and a margin around it, log-uniform sides."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.rand(count, 2, generator=generator, dtype=torch.float64) * 1.4 - 0.2
    centres = centres * torch.tensor([width, height], dtype=torch.float64)
    log_sides = torch.rand(count, 2, generator=generator, dtype=torch.float64)
    sides = torch.exp(math.log(min_side) + log_sides * (math.log(max_side) - math.log(min_side)))
    batch_index = torch.randint(0, batch, (count, 1), generator=generator).double()
    rois = torch.cat([batch_index, centres - sides / 2, centres + sides / 2], dim=1)
    return rois.to(dtype=dtype, device=device)


def assert_matches_torchvision(out, features, rois, strides, output_size, sampling_ratio, aligned, atol=1e-5):
    """out against reference_pool; RoIs torchvision cannot pool are checked to be zero instead.

    Aligned mode with adaptive sampling and a negative RoI size gives ceil(negative / bins)
    samples: torchvision means to return zeros there ("When the grid is empty, output zeros") but
    fails allocating a buffer of negative size. Ours returns the zeros.
    """
    compared = torch.ones(rois.shape[0], dtype=torch.bool, device=rois.device)
    if aligned and sampling_ratio <= 0:
        negative = (rois[:, 3] < rois[:, 1]) | (rois[:, 4] < rois[:, 2])
        assert (out[negative] == 0).all()
        compared = ~negative
    expected = reference_pool(features, rois[compared], strides, output_size, sampling_ratio, aligned)
    assert_close(out[compared], expected, atol)


def assert_close(actual, expected, atol):
    assert actual.shape == expected.shape
    error = (actual - expected).abs().max().item() if actual.numel() else 0.0
    assert error <= atol, f"max abs error {error} > {atol}"


# ---- the level rule ------------------------------------------------------------------------------


def square_rois(sides, dtype=torch.float64):
    sides = torch.as_tensor(sides, dtype=dtype)
    zeros = torch.zeros_like(sides)
    return torch.stack([zeros, zeros + 10, zeros + 20, sides + 10, sides + 20], dim=1)


def test_levelmapper_equals_the_finest_scale_rule_on_boundary_sizes():
    # Sizes at and around the level borders 112 / 224 / 448 of finest_scale 56 (mmdetection's level rule).
    sides = [1.0, 56.0, 111.9, 112.0, 112.1, 223.9, 224.0, 224.1, 447.9, 448.0, 448.1, 5000.0]
    expected = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]  # written from s<112, [112,224), ...
    for dtype in (torch.float32, torch.float64):
        rois = square_rois(sides, dtype)
        assert torchvision_levels(rois, 4).tolist() == expected
        assert roi_levels(rois, 4).tolist() == expected
    # Non-square boxes of the same area, relative steps of 1e-4 around each border.
    for border in (112.0, 224.0, 448.0):
        for factor, level_offset in ((1 - 1e-4, -1), (1.0, 0), (1 + 1e-4, 0)):
            s = border * factor
            rois = torch.tensor([[0.0, 0.0, 0.0, 2 * s, s / 2]], dtype=torch.float64)
            level = int(math.log2(border / 56.0)) + level_offset
            assert torchvision_levels(rois, 4).item() == level
            assert roi_levels(rois, 4).item() == level


@given(
    x=st.floats(-1e4, 1e4),
    y=st.floats(-1e4, 1e4),
    w=st.floats(0, 3e3),
    h=st.floats(0, 3e3),
    num_levels=st.integers(1, 8),
    finest_scale=st.sampled_from([14.0, 56.0, 100.0]),
)
def test_roi_levels_matches_levelmapper(x, y, w, h, num_levels, finest_scale):
    rois = torch.tensor([[0.0, x, y, x + w, y + h]], dtype=torch.float64)
    s = math.sqrt(w * h)
    if s > 0:
        # Keep away from the ~1e-6-wide windows where the two epsilons disagree.
        distance = abs(math.log2(s / finest_scale) - round(math.log2(s / finest_scale)))
        assume(distance > 1e-5)
    expected = torchvision_levels(rois, num_levels, finest_scale)
    assert roi_levels(rois, num_levels, finest_scale).tolist() == expected.tolist()


@pytest.mark.parametrize("device", DEVICES)
def test_kernel_selects_the_documented_level(device):
    # Level l is the constant l + 1, so a RoI well inside the image pools exactly to its level + 1.
    sides = [8.0, 111.0, 113.0, 200.0, 230.0, 440.0, 460.0, 900.0]
    rois = square_rois(sides, torch.float32).to(device)
    features = [torch.full((1, 2, 64, 64), float(l + 1), device=device) for l in range(4)]
    out = multi_level_roi_align(features, rois, STRIDES[:4], 3, sampling_ratio=2)
    expected_levels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])  # s < 112, [112, 224), ...
    expected = (expected_levels + 1.0).view(-1, 1, 1, 1).expand(-1, 2, 3, 3)
    assert_close(out.cpu(), expected, 1e-5)


def test_roi_levels_of_degenerate_boxes():
    rois = torch.tensor(
        [
            [0, 10, 10, 10, 400],  # zero area
            [0, 10, 10, 5, 400],  # negative width, negative area
            [0, 400, 400, 10, 10],  # both sides negative: s = 390 > 0, like mmdetection
            [0, math.nan, 0, 10, 10],
            [0, 0, 0, math.inf, 10],
        ],
        dtype=torch.float32,
    )
    assert roi_levels(rois, 4).tolist() == [0, 0, 2, 0, 3]


# ---- forward against torchvision -----------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("num_levels", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_forward_matches_torchvision_per_level(device, num_levels, aligned, sampling_ratio):
    features = make_pyramid(num_levels, 2, 3, 160, 192, device=device, seed=num_levels)
    rois = make_rois(150, 2, 160, 192, max_side=700.0, device=device, seed=num_levels)
    # one RoI per level of a 5-level pyramid for sure (s = 60, 150, 300, 600, 1200)
    rois = torch.cat([rois, square_rois([60.0, 150.0, 300.0, 600.0, 1200.0]).to(rois)])
    out = multi_level_roi_align(features, rois, STRIDES[:num_levels], 7, sampling_ratio, aligned)
    expected = reference_pool(features, rois, STRIDES[:num_levels], (7, 7), sampling_ratio, aligned)
    assert out.dtype == torch.float32
    assert_close(out, expected, 1e-5)
    # the RoIs really spread over the levels
    assert len(set(torchvision_levels(rois, num_levels).tolist())) == num_levels


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_forward_matches_multiscale_roialign(device, sampling_ratio):
    # MultiScaleRoIAlign: aligned=False, canonical 224 / level 4 (= finest_scale 56), scales
    # inferred from the image size: our configuration with aligned=False, strides 4..32.
    height, width = 128, 160
    features = make_pyramid(4, 2, 4, height, width, device=device, seed=3)
    rois = make_rois(120, 2, height, width, max_side=600.0, device=device, seed=3)
    rois = rois[torch.argsort(rois[:, 0], stable=True)]  # MultiScaleRoIAlign's output order
    pooler = MultiScaleRoIAlign(["p2", "p3", "p4", "p5"], (7, 7), sampling_ratio)
    expected = pooler(
        {f"p{l + 2}": f for l, f in enumerate(features)},
        [rois[rois[:, 0] == b, 1:] for b in range(2)],
        [(height, width)] * 2,
    )
    out = multi_level_roi_align(features, rois, STRIDES[:4], 7, sampling_ratio, aligned=False)
    assert_close(out, expected, 1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_forward_float64_and_rectangular_output(device):
    features = make_pyramid(3, 2, 2, 96, 128, dtype=torch.float64, device=device, seed=5)
    rois = make_rois(60, 2, 96, 128, max_side=300.0, dtype=torch.float64, device=device, seed=5)
    out = multi_level_roi_align(features, rois, STRIDES[:3], (5, 3), sampling_ratio=0)
    expected = reference_pool(features, rois, STRIDES[:3], (5, 3), 0, True)
    assert out.dtype == torch.float64 and out.shape == (60, 2, 5, 3)
    assert_close(out, expected, 1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_adversarial_boxes_match_torchvision(device, aligned, sampling_ratio):
    features = make_pyramid(4, 2, 3, 96, 128, device=device, seed=7)
    boxes = [
        [0, 40.0, 30.0, 40.01, 30.02],  # tiny
        [1, 50.0, 40.0, 50.9, 40.7],  # sub-pixel
        [0, -3000.0, -2000.0, 4000.0, 3000.0],  # huge, far beyond the image (coarsest level)
        [1, 0.0, 0.0, 128.0, 96.0],  # the whole image
        [0, 500.0, 400.0, 560.0, 470.0],  # entirely outside the image
        [1, -80.0, -60.0, -10.0, -5.0],  # entirely outside, negative side
        [0, 120.0, 10.0, 160.0, 90.0],  # straddles the right border
        [1, 30.0, 30.0, 30.0, 60.0],  # zero width
        [0, 30.0, 30.0, 30.0, 30.0],  # a point
        [1, 60.0, 40.0, 20.0, 80.0],  # negative width (negative area: level 0)
        [0, 90.0, 80.0, 20.0, 10.0],  # negative width and height
        [1, 0.7, 3.0, 7.3, 9.0],  # near the top-left corner
        [0, 127.5, 95.5, 128.0, 96.0],  # last pixel
        [0.6, 10.0, 10.0, 50.0, 50.0],  # fractional batch index: truncated to 0, like torchvision
    ]
    rois = torch.tensor(boxes, dtype=torch.float32, device=device)
    out = multi_level_roi_align(features, rois, STRIDES[:4], 7, sampling_ratio, aligned)
    assert torch.isfinite(out).all()
    assert_matches_torchvision(out, features, rois, STRIDES[:4], (7, 7), sampling_ratio, aligned)


@pytest.mark.parametrize("device", DEVICES)
def test_bad_batch_index_and_non_finite_coordinates_give_zero_rows(device):
    features = make_pyramid(4, 2, 3, 64, 64, device=device, seed=9)
    good = [0.0, 10.0, 10.0, 40.0, 30.0]
    rows = [
        good,
        [2.0, 10.0, 10.0, 40.0, 30.0],  # batch index == N
        [-1.0, 10.0, 10.0, 40.0, 30.0],
        [1e9, 10.0, 10.0, 40.0, 30.0],
        [math.nan, 10.0, 10.0, 40.0, 30.0],
        [0.0, math.nan, 10.0, 40.0, 30.0],
        [1.0, 10.0, 10.0, 40.0, math.nan],
        [1.0, 10.0, 10.0, math.inf, 30.0],
        [1.0, -math.inf, 10.0, 40.0, 30.0],
        [0.0, 1e30, 1e30, 3e30, 3e30],  # finite but absurd: capped sampling grid, zeros
        good,
    ]
    rois = torch.tensor(rows, device=device)
    out = multi_level_roi_align(features, rois, STRIDES[:4], 7)
    assert torch.isfinite(out).all()
    assert (out[1:-1] == 0).all()
    expected = reference_pool(features, rois[[0]], STRIDES[:4], (7, 7), 0, True)
    assert_close(out[[0, -1]], expected.expand(2, -1, -1, -1), 1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_adaptive_grid_is_capped_at_128(device):
    # One level at stride 1 and a 1001-pixel RoI: ceil(1001 / 7) = 143 samples per bin and axis in
    # torchvision, 128 here (the documented cap), i.e. torchvision with sampling_ratio=128.
    feature = torch.randn((1, 1, 64, 64), generator=torch.Generator().manual_seed(41))
    feature = feature.to(device)
    rois = torch.tensor([[0.0, -500.0, -400.0, 501.0, 601.0]], device=device)
    out = multi_level_roi_align([feature], rois, [1], 7, sampling_ratio=0)
    capped = tv_roi_align(feature, rois, 7, 1.0, sampling_ratio=128, aligned=True)
    uncapped = tv_roi_align(feature, rois, 7, 1.0, sampling_ratio=0, aligned=True)
    assert_close(out, capped, 1e-5)
    assert (out - uncapped).abs().max() > 1e-4  # the cap is really in effect here


@pytest.mark.parametrize("device", DEVICES)
def test_empty_rois(device):
    features = make_pyramid(4, 2, 3, 64, 64, device=device, requires_grad=True)
    rois = torch.zeros((0, 5), device=device)
    out = multi_level_roi_align(features, rois, STRIDES[:4], 7)
    assert out.shape == (0, 3, 7, 7)
    out.sum().backward()
    for feature in features:
        assert feature.grad.shape == feature.shape and (feature.grad == 0).all()


@pytest.mark.parametrize("device", DEVICES)
def test_non_contiguous_inputs(device):
    contiguous = make_pyramid(3, 2, 4, 96, 96, device=device, seed=11)
    # channels_last storage, and every other channel of an interleaved wider tensor
    channels_last = [f.to(memory_format=torch.channels_last) for f in contiguous]
    wide = [torch.stack([f, torch.zeros_like(f)], dim=2).flatten(1, 2)[:, ::2] for f in contiguous]
    rois = make_rois(40, 2, 96, 96, device=device, seed=11)
    strided_rois = torch.stack([rois, rois], dim=2)[..., 0]
    assert not strided_rois.is_contiguous() and not wide[0].is_contiguous()
    expected = reference_pool(contiguous, rois, STRIDES[:3], (7, 7), 2, True)
    for features in (channels_last, wide):
        out = multi_level_roi_align(features, strided_rois, STRIDES[:3], 7, sampling_ratio=2)
        assert_close(out, expected, 1e-5)


@given(
    num_levels=st.integers(1, 5),
    batch=st.integers(1, 2),
    channels=st.integers(1, 3),
    height=st.integers(8, 96),
    width=st.integers(8, 96),
    boxes=st.lists(
        st.tuples(
            st.integers(0, 1),
            st.floats(-60, 160),
            st.floats(-60, 160),
            st.floats(-20, 500),
            st.floats(-20, 500),
        ),
        min_size=0,
        max_size=12,
    ),
    aligned=st.booleans(),
    sampling_ratio=st.sampled_from([0, 1, 2, 3]),
    output_size=st.sampled_from([1, 2, 7, (3, 5)]),
)
def test_forward_property_random_pyramids(
    num_levels, batch, channels, height, width, boxes, aligned, sampling_ratio, output_size
):
    features = make_pyramid(num_levels, batch, channels, height, width, seed=height * width)
    rois = torch.tensor(
        [[min(b, batch - 1), x, y, x + w, y + h] for b, x, y, w, h in boxes], dtype=torch.float32
    ).reshape(-1, 5)
    size = output_size if isinstance(output_size, tuple) else (output_size, output_size)
    strides = STRIDES[:num_levels]
    out = multi_level_roi_align(features, rois, strides, output_size, sampling_ratio, aligned)
    assert_matches_torchvision(out, features, rois, strides, size, sampling_ratio, aligned)


# ---- backward ------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_backward_matches_torchvision(device, aligned, sampling_ratio):
    ours = make_pyramid(4, 2, 3, 128, 128, device=device, seed=13, requires_grad=True)
    theirs = [f.detach().clone().requires_grad_(True) for f in ours]
    rois = make_rois(100, 2, 128, 128, max_side=700.0, device=device, seed=13)
    rois = torch.cat([rois, rois[:10]])  # repeated RoIs accumulate into the same pixels
    weights = torch.randn((rois.shape[0], 3, 7, 7), generator=torch.Generator().manual_seed(1))
    weights = weights.to(device)

    pooled = multi_level_roi_align(ours, rois, STRIDES[:4], 7, sampling_ratio, aligned)
    (pooled * weights).sum().backward()
    expected = reference_pool(theirs, rois, STRIDES[:4], (7, 7), sampling_ratio, aligned)
    (expected * weights).sum().backward()
    for mine, reference in zip(ours, theirs):
        assert_close(mine.grad, reference.grad, 1e-4)


def test_backward_is_deterministic_across_thread_counts():
    rois = make_rois(200, 2, 128, 128, max_side=300.0, seed=17)
    rois = torch.cat([rois, rois])
    grads = []
    threads = torch.get_num_threads()
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            features = make_pyramid(4, 2, 5, 128, 128, seed=17, requires_grad=True)
            multi_level_roi_align(features, rois, STRIDES[:4], 7).pow(2).sum().backward()
            grads.append([f.grad for f in features])
    finally:
        torch.set_num_threads(threads)
    for other in grads[1:]:
        for a, b in zip(grads[0], other):
            assert torch.equal(a, b)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("aligned", [True, False])
def test_gradcheck_float64(device, aligned):
    features = make_pyramid(2, 2, 2, 32, 32, dtype=torch.float64, device=device, seed=19, requires_grad=True)
    rois = torch.tensor(
        [
            [0, 3.0, 4.0, 20.0, 18.0],
            [1, -4.0, 2.0, 9.5, 30.0],
            [0, 0.0, 0.0, 32.0, 32.0],  # large enough for level 1
            [1, 10.0, 10.0, 10.5, 11.0],
        ],
        dtype=torch.float64,
        device=device,
    )

    def pool(*levels):
        return multi_level_roi_align(list(levels), rois, [4, 8], (3, 2), 2, aligned, finest_scale=16.0)

    assert set(roi_levels(rois, 2, 16.0).tolist()) == {0, 1}
    # nondet_tol: CUDA adds gradients with atomics, so two backward passes may round differently
    assert torch.autograd.gradcheck(pool, tuple(features), nondet_tol=1e-10)


# ---- dtypes and devices --------------------------------------------------------------------------


def test_autocast_pools_in_float32():
    features = make_pyramid(2, 1, 3, 64, 64, seed=23)
    rois = make_rois(20, 1, 64, 64, max_side=200.0, seed=23)
    bf16 = [f.to(torch.bfloat16) for f in features]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = multi_level_roi_align(bf16, rois, STRIDES[:2], 7)
    assert out.dtype == torch.float32
    expected = reference_pool([f.float() for f in bf16], rois, STRIDES[:2], (7, 7), 0, True)
    assert_close(out, expected, 1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_float16_and_agreement_with_cpu():
    features = make_pyramid(4, 2, 8, 128, 160, seed=29)
    rois = make_rois(300, 2, 128, 160, max_side=600.0, seed=29)
    cpu = multi_level_roi_align(features, rois, STRIDES[:4], 7, 2)
    cuda = multi_level_roi_align([f.cuda() for f in features], rois.cuda(), STRIDES[:4], 7, 2)
    assert_close(cuda.cpu(), cpu, 1e-5)
    # float16 storage, float32 arithmetic: rounding of inputs and outputs only
    half = multi_level_roi_align([f.cuda().half() for f in features], rois.cuda().half(), STRIDES[:4], 7, 2)
    expected = reference_pool([f.half().float() for f in features], rois.half().float(), STRIDES[:4], (7, 7), 2, True)
    assert half.dtype == torch.float16
    assert_close(half.float().cpu(), expected, 1e-2)


# ---- input checks --------------------------------------------------------------------------------


def _valid_arguments():
    features = make_pyramid(2, 2, 3, 32, 32)
    rois = torch.tensor([[0.0, 1.0, 2.0, 10.0, 12.0]])
    return dict(features=features, rois=rois, strides=[4, 8], output_size=7)


def _replace(name, make):
    def change(arguments):
        arguments[name] = make(arguments)
        return arguments

    return change


BAD_INPUTS = [
    ("features is a tensor", _replace("features", lambda a: a["features"][0]), TypeError, "features must be a list"),
    ("no levels", _replace("features", lambda a: []), ValueError, "1 to 8 levels"),
    ("nine levels", _replace("features", lambda a: [a["features"][0]] * 9), ValueError, "1 to 8 levels, got 9"),
    (
        "3-D level",
        _replace("features", lambda a: [a["features"][0], a["features"][1][0]]),
        ValueError,
        "features[1] must be [N, C, H, W]",
    ),
    (
        "empty map",
        _replace("features", lambda a: [a["features"][0], torch.zeros(2, 3, 0, 4)]),
        ValueError,
        "features[1] must have H, W >= 1",
    ),
    (
        "channel mismatch",
        _replace("features", lambda a: [a["features"][0], torch.zeros(2, 4, 4, 4)]),
        ValueError,
        "features[1] has N, C = (2, 4), expected (2, 3)",
    ),
    (
        "batch mismatch",
        _replace("features", lambda a: [a["features"][0], torch.zeros(1, 3, 4, 4)]),
        ValueError,
        "features[1] has N, C = (1, 3)",
    ),
    (
        "dtype mismatch",
        _replace("features", lambda a: [a["features"][0], a["features"][1].double()]),
        TypeError,
        "features[1] is torch.float64, expected torch.float32",
    ),
    (
        "integer features",
        _replace("features", lambda a: [f.int() for f in a["features"]]),
        TypeError,
        "features must be float32, float64 or float16 (CUDA), got torch.int32",
    ),
    (
        "float16 on cpu",
        _replace("features", lambda a: [f.half() for f in a["features"]]),
        TypeError,
        "float16 features are supported on CUDA only",
    ),
    (
        "not a level",
        _replace("features", lambda a: [a["features"][0], "p3"]),
        TypeError,
        "features[1] must be a torch.Tensor",
    ),
    ("rois [R, 4]", _replace("rois", lambda a: a["rois"][:, 1:]), ValueError, "rois must be [R, 5]"),
    ("rois 1-D", _replace("rois", lambda a: a["rois"][0]), ValueError, "rois must be [R, 5]"),
    (
        "rois float64",
        _replace("rois", lambda a: a["rois"].double()),
        TypeError,
        "rois must have the features' dtype torch.float32, got torch.float64",
    ),
    ("rois integer", _replace("rois", lambda a: a["rois"].long()), TypeError, "rois must have"),
    ("rois a list", _replace("rois", lambda a: [[0, 1, 2, 3, 4]]), TypeError, "rois must be a torch.Tensor"),
    (
        "too few strides",
        _replace("strides", lambda a: [4]),
        ValueError,
        "strides must have one entry per feature level: expected 2, got 1",
    ),
    ("zero stride", _replace("strides", lambda a: [4, 0]), ValueError, "strides[1] must be"),
    ("stride string", _replace("strides", lambda a: "48"), TypeError, "strides must be a list"),
    ("output 0", _replace("output_size", lambda a: 0), ValueError, "output_size must be"),
    ("output 1-tuple", _replace("output_size", lambda a: (7,)), ValueError, "output_size must be"),
    ("sampling float", _replace("sampling_ratio", lambda a: 2.0), TypeError, "sampling_ratio must be an int"),
    ("aligned int", _replace("aligned", lambda a: 1), TypeError, "aligned must be a bool"),
    ("finest 0", _replace("finest_scale", lambda a: 0.0), ValueError, "finest_scale must be"),
    ("finest nan", _replace("finest_scale", lambda a: math.nan), ValueError, "finest_scale must be"),
]


@pytest.mark.parametrize("change, error, message", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_name_the_argument(change, error, message):
    with pytest.raises(error) as info:
        multi_level_roi_align(**change(_valid_arguments()))
    assert message in str(info.value)


def test_the_raw_op_checks_its_inputs_too():
    a = _valid_arguments()
    op = torch.ops.sspnet.multi_level_roi_align
    with pytest.raises(RuntimeError, match="rois must be \\[R, 5\\]"):
        op(a["features"], a["rois"][:, :4], [0.25, 0.125], 7, 7, 0, True, 56.0)
    with pytest.raises(RuntimeError, match="got 1 spatial_scales for 2 levels"):
        op(a["features"], a["rois"], [0.25], 7, 7, 0, True, 56.0)
    with pytest.raises(RuntimeError, match="features\\[1\\] must be \\[N, C, H, W\\]"):
        op([a["features"][0], a["features"][1][0]], a["rois"], [0.25, 0.125], 7, 7, 0, True, 56.0)


def test_roi_levels_checks_its_inputs():
    with pytest.raises(ValueError, match="rois must be a \\[R, 4\\] or \\[R, 5\\] tensor"):
        roi_levels(torch.zeros(3, 3), 4)
    with pytest.raises(ValueError, match="num_levels must be in \\[1, 8\\], got 9"):
        roi_levels(torch.zeros(3, 5), 9)


# ---- tracing: fake tensors, opcheck, torch.export ------------------------------------------------


def test_opcheck_forward_and_backward():
    features = make_pyramid(2, 2, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    rois = make_rois(6, 2, 32, 32, max_side=100.0, dtype=torch.float64)
    forward_args = (features, rois, [0.25, 0.125], 3, 3, 2, True, 56.0)
    torch.library.opcheck(torch.ops.sspnet.multi_level_roi_align.default, forward_args)
    grad = torch.randn(6, 3, 3, 3, dtype=torch.float64)
    backward_args = (grad, rois, [0.25, 0.125], 2, [8, 4], [8, 4], 2, True, 56.0)
    torch.library.opcheck(torch.ops.sspnet.multi_level_roi_align_backward.default, backward_args)


def test_fake_tensor_mode_gives_shapes_without_running_the_kernel():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        features = [torch.empty(2, 16, 40, 50), torch.empty(2, 16, 20, 25)]
        rois = torch.empty(123, 5)
        out = multi_level_roi_align(features, rois, [4, 8], (7, 5))
    assert out.shape == (123, 16, 7, 5) and out.dtype == torch.float32


class _TwoLevelExtractor(torch.nn.Module):
    def forward(self, p2, p3, rois):
        return multi_level_roi_align([p2, p3], rois, [4, 8], 7, sampling_ratio=2)


def test_torch_export_with_dynamic_roi_count():
    features = make_pyramid(2, 1, 4, 64, 64, seed=31)
    rois = make_rois(10, 1, 64, 64, max_side=200.0, seed=31)
    rois_dim = torch.export.Dim("num_rois", min=0, max=100000)
    exported = torch.export.export(_TwoLevelExtractor(), (*features, rois), dynamic_shapes=(None, None, {0: rois_dim}))
    assert any(node.target == torch.ops.sspnet.multi_level_roi_align.default for node in exported.graph.nodes)
    more_rois = make_rois(25, 1, 64, 64, max_side=200.0, seed=32)
    out = exported.module()(*features, more_rois)
    expected = reference_pool(features, more_rois, [4, 8], (7, 7), 2, True)
    assert_close(out, expected, 1e-5)


def test_torch_compile_fullgraph_forward_and_backward():
    # aot_eager: Dynamo + AOTAutograd through the fake kernels and the registered autograd,
    # without Inductor's C++ code generation (slow on 2 cores, and not what is tested here).
    ours = make_pyramid(2, 1, 3, 64, 64, seed=37, requires_grad=True)
    theirs = [f.detach().clone().requires_grad_(True) for f in ours]
    rois = make_rois(30, 1, 64, 64, max_side=200.0, seed=37)
    rois = torch.cat([rois, square_rois([150.0, 40.0]).to(rois)])  # both levels for sure

    def pool(p2, p3, boxes):
        return multi_level_roi_align([p2, p3], boxes, [4, 8], 7, sampling_ratio=2)

    compiled = torch.compile(pool, backend="aot_eager", fullgraph=True, dynamic=True)
    compiled(*ours, rois).pow(2).sum().backward()
    reference_pool(theirs, rois, [4, 8], (7, 7), 2, True).pow(2).sum().backward()
    for mine, reference in zip(ours, theirs):
        assert_close(mine.grad, reference.grad, 1e-4)
    out = compiled(*ours, rois[:7])  # another RoI count: no recompilation error
    assert_close(out, reference_pool(ours, rois[:7], [4, 8], (7, 7), 2, True), 1e-5)
