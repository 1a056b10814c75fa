"""preprocess: frame checks, HWC -> NCHW batches, resize (cv2 and Pillow paths), letterbox / stretch / pad
geometry and the inverse box mapping."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sspnet.runtime import preprocess
from sspnet.runtime.preprocess import (
    FrameMapping,
    frames_to_batch,
    letterbox,
    pad_to,
    resize,
    stretch,
)

from sspnet.errors import UsageError


def bilinear_reference(image, out_h, out_w):
    """Bilinear resize from the formula: output pixel centre (i + 0.5) samples input (i + 0.5) * in / out
    - 0.5, clamped to the image (OpenCV INTER_LINEAR's convention). float64 result."""
    height, width = image.shape[:2]
    ys = np.clip((np.arange(out_h) + 0.5) * height / out_h - 0.5, 0, height - 1)
    xs = np.clip((np.arange(out_w) + 0.5) * width / out_w - 0.5, 0, width - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, height - 1), np.minimum(x0 + 1, width - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    f = image.astype(np.float64)
    top = f[y0][:, x0] * (1 - wx) + f[y0][:, x1] * wx
    bottom = f[y1][:, x0] * (1 - wx) + f[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


sizes = st.integers(min_value=1, max_value=70)


@given(h=sizes, w=sizes, out_h=sizes, out_w=sizes, seed=st.integers(0, 2**16))
def test_resize_paths_match_the_bilinear_formula(h, w, out_h, out_w, seed):
    image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    reference = bilinear_reference(image, out_h, out_w)
    paths = {"pillow": preprocess._resize_pillow(image, (out_h, out_w))}
    if preprocess.cv2 is not None:
        paths["cv2"] = resize(image, (out_h, out_w))
    for name, out in paths.items():
        assert out.shape == (out_h, out_w, 3) and out.dtype == np.uint8, name
        # both libraries use fixed-point weights: within one grey level of the exact value
        assert np.abs(out.astype(np.float64) - reference).max() <= 1.0 + 1e-9, name


def test_resize_falls_back_to_pillow_without_cv2(monkeypatch):
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    monkeypatch.setattr(preprocess, "cv2", None)
    out = resize(image, (45, 20))
    assert np.abs(out.astype(np.float64) - bilinear_reference(image, 45, 20)).max() <= 1.0 + 1e-9


def test_resize_same_size_is_a_copy():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = resize(image, (2, 3))
    np.testing.assert_array_equal(out, image)
    assert out is not image


def test_frames_to_batch_rgb_and_bgr():
    frame = np.zeros((4, 5, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 10, 20, 30
    batch = frames_to_batch([frame, frame])
    assert batch.shape == (2, 3, 4, 5) and batch.dtype == np.uint8 and batch.flags.c_contiguous
    assert batch[0, :, 0, 0].tolist() == [10, 20, 30]
    bgr = frames_to_batch(np.stack([frame]), color_order="bgr")
    assert bgr[0, :, 0, 0].tolist() == [30, 20, 10]


@pytest.mark.parametrize(
    "frames, error, pattern",
    [
        ([], UsageError, "no frames"),
        ([np.zeros((4, 5, 3), np.float32)], UsageError, r"frames\[0\] must be uint8"),
        ([np.zeros((4, 5), np.uint8)], UsageError, r"\[H, W, 3\]"),
        ([np.zeros((4, 5, 4), np.uint8)], UsageError, r"\[H, W, 3\]"),
        ([np.zeros((0, 5, 3), np.uint8)], UsageError, "empty"),
        ([np.zeros((4, 5, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)], UsageError, "one shape"),
        (["frame"], UsageError, "numpy.ndarray"),
    ],
)
def test_frames_to_batch_errors(frames, error, pattern):
    with pytest.raises(error, match=pattern):
        frames_to_batch(frames)


def test_unknown_color_order():
    with pytest.raises(ValueError, match="color_order"):
        frames_to_batch([np.zeros((2, 2, 3), np.uint8)], color_order="yuv")


def test_pad_to_keeps_content_and_zero_pads_bottom_right():
    frame = np.full((3, 4, 3), 7, np.uint8)
    out, mapping = pad_to(frame, (5, 6))
    assert out.shape == (5, 6, 3)
    assert (out[:3, :4] == 7).all() and out[3:].sum() == 0 and out[:, 4:].sum() == 0
    boxes = np.array([[1, 1, 3, 2], [3, 2, 6, 5]], np.float32)
    # identity mapping, clipped to the 3x4 frame
    np.testing.assert_array_equal(mapping.boxes_to_frame(boxes), [[1, 1, 3, 2], [3, 2, 4, 3]])
    with pytest.raises(ValueError, match="larger than the target"):
        pad_to(frame, (2, 6))


frame_sides = st.integers(min_value=8, max_value=400)
input_sides = st.integers(min_value=8, max_value=160)


@given(fh=frame_sides, fw=frame_sides, ih=input_sides, iw=input_sides)
def test_letterbox_keeps_aspect_ratio_and_pads(fh, fw, ih, iw):
    frame = np.full((fh, fw, 3), 255, np.uint8)
    out, mapping = letterbox(frame, (ih, iw))
    assert out.shape == (ih, iw, 3)
    ratio = min(ih / fh, iw / fw)
    # rounded to whole pixels, at least one
    content_h, content_w = max(1, round(fh * ratio)), max(1, round(fw * ratio))
    # the resized frame sits top-left; everything else is zero padding
    assert (out[:content_h, :content_w] == 255).all()
    assert out[content_h:].sum() == 0 and out[:, content_w:].sum() == 0
    # one side fills the input exactly
    assert content_h == ih or content_w == iw
    assert mapping.scale_x == pytest.approx(content_w / fw)
    assert mapping.scale_y == pytest.approx(content_h / fh)


@st.composite
def frame_and_boxes(draw):
    fh, fw = draw(frame_sides), draw(frame_sides)
    ih, iw = draw(input_sides), draw(input_sides)
    n = draw(st.integers(0, 5))
    boxes = []
    for _ in range(n):
        x1 = draw(st.floats(0, fw - 1, allow_nan=False))
        y1 = draw(st.floats(0, fh - 1, allow_nan=False))
        x2 = draw(st.floats(x1, fw, allow_nan=False))
        y2 = draw(st.floats(y1, fh, allow_nan=False))
        boxes.append([x1, y1, x2, y2])
    return (fh, fw), (ih, iw), np.array(boxes, np.float32).reshape(-1, 4)


@given(frame_and_boxes(), st.sampled_from([letterbox, stretch]))
def test_box_round_trip_through_the_mapping(case, fit):
    (fh, fw), (ih, iw), boxes = case
    _, mapping = fit(np.zeros((fh, fw, 3), np.uint8), (ih, iw))
    in_input = mapping.boxes_to_input(boxes)
    # inside the resized content region of the input
    assert (in_input[:, 0::2] <= iw + 1e-3).all() and (in_input[:, 1::2] <= ih + 1e-3).all()
    back = mapping.boxes_to_frame(in_input)
    np.testing.assert_allclose(back, boxes, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize(
    "frame_size, input_size, rect",
    [
        ((160, 256), (96, 128), (40, 20, 100, 60)),  # halved; letterbox pads the bottom
        ((2160, 3840), (512, 640), (1000, 500, 1400, 900)),  # 4K frame into a 640x512 input
        ((50, 30), (96, 128), (5, 10, 25, 40)),  # upscaled; pads the right
    ],
)
@pytest.mark.parametrize("fit", [letterbox, stretch])
def test_box_found_in_the_resized_input_maps_back_within_one_pixel(frame_size, input_size, rect, fit):
    # paint a white rectangle, resize, find its extent in the input, map that back to the frame
    x1, y1, x2, y2 = rect
    frame = np.zeros((*frame_size, 3), np.uint8)
    frame[y1:y2, x1:x2] = 255
    out, mapping = fit(frame, input_size)
    ys, xs = np.nonzero(out[..., 0] >= 128)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    back = mapping.boxes_to_frame(found)[0]
    # one input pixel is 1 / scale frame pixels: the mapping is exact up to that quantisation
    tolerance = 1.0 / min(mapping.scale_x, mapping.scale_y) + 1e-3
    np.testing.assert_allclose(back, rect, atol=max(1.0, tolerance))


def test_boxes_to_frame_clips_to_the_frame():
    mapping = FrameMapping(frame_size=(100, 200), input_size=(50, 100), scale_x=0.5, scale_y=0.5)
    out = mapping.boxes_to_frame(np.array([[-4, -2, 60, 49], [90, 40, 120, 70]], np.float32))
    np.testing.assert_array_equal(out, [[0, 0, 120, 98], [180, 80, 200, 100]])
