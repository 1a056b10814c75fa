"""Tiling geometry and NumPy NMS (sspnet.runtime.tiling / nms).

References: the TinyBenchmark cutting rule written out by hand, torchvision.ops.batched_nms, and
closed-form hand cases.
"""

import math

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st
from sspnet.runtime.nms import batched_nms, nms
from sspnet.runtime.tiling import cut_tiles, merge_tile_detections, tile_grid

sizes = st.integers(min_value=1, max_value=3000)


@st.composite
def grid_case(draw):
    tile_h = draw(st.integers(8, 700))
    tile_w = draw(st.integers(8, 700))
    overlap = draw(st.integers(0, min(tile_h, tile_w) - 1))
    return draw(sizes), draw(sizes), tile_h, tile_w, overlap


def expected_pieces(length, tile, overlap):
    return 1 if length <= tile else max(1, math.ceil((length - overlap) / (tile - overlap)))


@given(grid_case())
def test_grid_covers_image_and_count_formula(case):
    image_h, image_w, tile_h, tile_w, overlap = case
    grid = tile_grid(image_h, image_w, tile_h, tile_w, overlap)
    assert grid.dtype == np.int64 and grid.shape[1] == 4
    assert len(grid) == expected_pieces(image_h, tile_h, overlap) * expected_pieces(image_w, tile_w, overlap)
    # every tile has the requested size
    assert ((grid[:, 2] - grid[:, 0]) == tile_w).all() and ((grid[:, 3] - grid[:, 1]) == tile_h).all()
    # coverage: paint a downscaled mask exactly (sweep per axis suffices: the grid is a product)
    xs = np.unique(grid[:, [0, 2]], axis=0)
    ys = np.unique(grid[:, [1, 3]], axis=0)
    for intervals, length in ((xs, image_w), (ys, image_h)):
        covered = np.zeros(length, dtype=bool)
        for start, end in intervals:
            covered[start : min(end, length)] = True
        assert covered.all()


@given(grid_case())
def test_tiles_inside_and_neighbour_overlap(case):
    image_h, image_w, tile_h, tile_w, overlap = case
    grid = tile_grid(image_h, image_w, tile_h, tile_w, overlap)
    assert (grid[:, :2] >= 0).all()
    if image_w >= tile_w:
        assert (grid[:, 2] <= image_w).all()
    else:
        assert (grid[:, 0] == 0).all()
    if image_h >= tile_h:
        assert (grid[:, 3] <= image_h).all()
    else:
        assert (grid[:, 1] == 0).all()
    for column, tile in ((0, tile_w), (1, tile_h)):
        starts = np.unique(grid[:, column])
        if len(starts) > 1:
            gaps = np.diff(starts)
            assert (gaps > 0).all()
            assert (tile - gaps >= overlap).all()  # neighbours overlap by at least `overlap`
            assert (gaps[:-1] == tile - overlap).all()  # all but the shifted last one: exactly


def test_grid_hand_case_1920x1080():
    # x: ceil((1920-30)/610) = 4 pieces at 0, 610, 1220, 1830 -> last shifted to 1920-640 = 1280
    # y: ceil((1080-30)/482) = 3 pieces at 0, 482, 964 -> last shifted to 1080-512 = 568
    grid = tile_grid(1080, 1920, 512, 640, 30)
    xs, ys = [0, 610, 1220, 1280], [0, 482, 568]
    expected = [[x, y, x + 640, y + 512] for y in ys for x in xs]
    np.testing.assert_array_equal(grid, np.array(expected))


def test_grid_small_image_and_exact_fit():
    np.testing.assert_array_equal(tile_grid(300, 200, 512, 640, 30), [[0, 0, 640, 512]])
    np.testing.assert_array_equal(tile_grid(512, 640, 512, 640, 30), [[0, 0, 640, 512]])
    # 1250 = 640 + 610: two tiles exactly, no shift
    np.testing.assert_array_equal(tile_grid(512, 1250, 512, 640, 30)[:, 0], [0, 610])


@pytest.mark.parametrize(
    "args, error",
    [
        ((100, 100, 64, 64, 64), ValueError),
        ((100, 100, 64, 64, -1), ValueError),
        ((0, 100, 64, 64, 0), ValueError),
        ((100, 100, 0, 64, 0), ValueError),
        ((100.0, 100, 64, 64, 0), TypeError),
    ],
)
def test_grid_rejects_bad_arguments(args, error):
    with pytest.raises(error):
        tile_grid(*args)


def test_cut_tiles_pads_and_copies():
    image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    grid = tile_grid(5, 7, 4, 4, 1)  # x starts 0, 3 ; y starts 0, 1
    tiles = cut_tiles(image, grid, 4, 4)
    assert tiles.shape == (len(grid), 4, 4, 3) and tiles.dtype == np.uint8
    for tile, (x1, y1, x2, y2) in zip(tiles, grid):
        np.testing.assert_array_equal(tile, image[y1:y2, x1:x2])
    small = cut_tiles(image, tile_grid(5, 7, 8, 10, 2), 8, 10)[0]
    np.testing.assert_array_equal(small[:5, :7], image)
    assert (small[5:] == 0).all() and (small[:, 7:] == 0).all()


def random_boxes(rng, n, extent=100.0):
    xy = rng.uniform(0, extent, size=(n, 2))
    wh = rng.uniform(1, extent / 3, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


@given(st.integers(0, 2**32 - 1), st.integers(0, 80), st.sampled_from([0.3, 0.5, 0.7]))
def test_nms_matches_torchvision(seed, n, threshold):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, n)
    scores = rng.random(n)
    labels = rng.integers(0, 3, size=n)
    expected = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).numpy()
    np.testing.assert_array_equal(nms(boxes, scores, threshold), expected)
    expected = torchvision.ops.batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels), threshold
    ).numpy()
    np.testing.assert_array_equal(batched_nms(boxes, scores, labels, threshold), expected)


def test_nms_plus_one_and_ties():
    # width 10 boxes shifted by 6: IoU 4/16 = 0.25 normally, (5*11)/(2*121 - 55) = 0.294 with +1
    boxes = np.array([[0, 0, 10, 10], [6, 0, 16, 10]], dtype=float)
    scores = np.array([0.9, 0.8])
    assert nms(boxes, scores, 0.27).tolist() == [0, 1]
    assert nms(boxes, scores, 0.27, plus_one=True).tolist() == [0]
    # touching boxes: no overlap normally, one shared pixel column with +1
    touching = np.array([[0, 0, 9, 9], [9, 0, 18, 9]], dtype=float)
    assert nms(touching, scores, 0.0).tolist() == [0, 1]
    assert nms(touching, scores, 0.0, plus_one=True).tolist() == [0]
    # equal scores: the lower index wins
    same = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=float)
    assert nms(same, np.array([0.5, 0.5, 0.5]), 0.5).tolist() == [0, 2]
    with pytest.raises(ValueError, match="boxes"):
        nms(np.zeros((3, 5)), np.zeros(3), 0.5)


def test_merge_box_split_across_tiles():
    # frame 1000 wide, tiles 600 wide with overlap 200 -> tiles at x 0 and 400
    grid = tile_grid(300, 1000, 300, 600, 200)
    np.testing.assert_array_equal(grid[:, 0], [0, 400])
    person = np.array([450.0, 100.0, 470.0, 140.0])  # inside the overlap: seen by both tiles
    tile_boxes = [person[None] - [0, 0, 0, 0], person[None] - [400, 0, 400, 0]]
    tile_boxes[1] = tile_boxes[1] + [0.5, 0, 0.5, 0]  # slightly different localisation
    boat = np.array([[100.0, 20.0, 160.0, 40.0]])  # seen by tile 0 only, other class
    boxes, scores, labels = merge_tile_detections(
        [np.concatenate([tile_boxes[0], boat]), tile_boxes[1]],
        [np.array([0.7, 0.6]), np.array([0.9])],
        [np.array([0, 1]), np.array([0])],
        grid,
        iou_threshold=0.5,
    )
    np.testing.assert_allclose(boxes, [person + [0.5, 0, 0.5, 0], boat[0]])
    np.testing.assert_allclose(scores, [0.9, 0.6])
    assert labels.tolist() == [0, 1]
    # max_detections keeps the best ones
    boxes, scores, _ = merge_tile_detections(
        [np.concatenate([tile_boxes[0], boat]), tile_boxes[1]],
        [np.array([0.7, 0.6]), np.array([0.9])],
        [np.array([0, 1]), np.array([0])],
        grid,
        max_detections=1,
    )
    assert scores.tolist() == pytest.approx([0.9])


def test_merge_rejects_mismatched_lengths():
    grid = tile_grid(100, 100, 50, 50, 0)
    with pytest.raises(ValueError, match="one entry per tile"):
        merge_tile_detections([np.zeros((0, 4))], [np.zeros(0)], [np.zeros(0)], grid)


def test_runtime_geometry_does_not_import_torch(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from sspnet.runtime.tiling import tile_grid, merge_tile_detections\n"
        "print(len(tile_grid(1080, 1920, 512, 640, 30)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "12"
