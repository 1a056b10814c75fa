"""Drawing helpers (sspnet.inference.draw) against hand-computed pixels."""

import numpy as np
import pytest

from sspnet.inference.draw import (
    attention_panel,
    attention_to_frame,
    box_thickness,
    draw_detections,
    heatmap_overlay,
)
from sspnet.inference.results import coco_results


def test_attention_of_overlapping_tiles_is_pasted_with_maximum():
    # frame 96 x 228 covered by two 96 x 128 tiles at x = 0 and x = 100 (28 px overlap);
    # constant maps 0.2 and 0.7 at stride 32 (3 x 4 cells)
    grid = np.array([[0, 0, 128, 96], [100, 0, 228, 96]])
    maps = np.stack([np.full((1, 3, 4), 0.2, np.float32), np.full((1, 3, 4), 0.7, np.float32)])
    canvas = attention_to_frame(maps, grid, (96, 128), (96, 228))
    assert canvas.shape == (96, 228)
    np.testing.assert_allclose(canvas[:, :100], 0.2, rtol=1e-6)
    np.testing.assert_allclose(canvas[:, 100:], 0.7, rtol=1e-6)


def test_attention_of_a_padded_tile_is_cropped_to_the_frame():
    # a 50 x 70 frame in one 64 x 96 tile (zero padding bottom / right): the map's left-top part
    level = np.zeros((1, 1, 2, 3), np.float32)
    level[0, 0, 0, 0] = 1.0  # the top-left 32 x 32 cell (bilinear spreads it a little)
    canvas = attention_to_frame(level, np.array([[0, 0, 96, 64]]), (64, 96), (50, 70))
    assert canvas.shape == (50, 70)
    assert canvas[0, 0] == pytest.approx(1.0) and canvas[:, 60:].max() == pytest.approx(0.0)


def test_attention_count_mismatch():
    with pytest.raises(ValueError, match="2 maps for 1 tiles"):
        attention_to_frame(np.zeros((2, 1, 2, 2)), np.array([[0, 0, 64, 64]]), (64, 64), (64, 64))


def test_heatmap_overlay_of_zero_attention():
    image = np.full((4, 5, 3), 100, np.uint8)
    overlay = heatmap_overlay(image, np.zeros((4, 5), np.float32), alpha=0.5)
    # JET maps 0 to dark blue, BGR (128, 0, 0); blend 50 / 50
    np.testing.assert_array_equal(overlay[0, 0], (114, 50, 50))


@pytest.mark.parametrize("size", [(96, 128), (51, 77)])
def test_attention_panel_has_the_frame_size(size):
    image = np.zeros((*size, 3), np.uint8)
    panel = attention_panel(image, [np.zeros(size, np.float32)] * 4)
    assert panel.shape == (*size, 3)


def test_boxes_are_thin_and_enclose_the_object():
    image = np.zeros((40, 60, 3), np.uint8)
    drawn = draw_detections(image, [[10.2, 5.5, 20.0, 15.1]], [0.9], show_labels=False)
    green = np.argwhere((drawn == (0, 255, 0)).all(axis=-1))
    # corners rounded outwards: x 10..19, y 5..15 (ceil(15.1) - 1), a 1-pixel outline
    assert (green[:, 1].min(), green[:, 1].max(), green[:, 0].min(), green[:, 0].max()) == (10, 19, 5, 15)
    assert len(green) == 2 * 10 + 2 * 11 - 4
    assert image.max() == 0  # the input is not modified
    assert box_thickness((2160, 3840, 3)) == 2 and box_thickness((1080, 1920, 3)) == 1


def test_coco_results_convert_to_xywh():
    rows = coco_results(3, "a.jpg", [[1.0, 2.0, 4.5, 8.0]], [0.5], [0], ("person",))
    assert rows == [
        {
            "image_id": 3,
            "file_name": "a.jpg",
            "category_id": 1,
            "bbox": [1.0, 2.0, 3.5, 6.0],
            "score": 0.5,
            "category": "person",
        }
    ]
    with pytest.raises(ValueError, match="differ in length"):
        coco_results(1, "a.jpg", [[0, 0, 1, 1]], [0.5, 0.6], [0])
