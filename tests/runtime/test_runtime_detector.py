"""Detector on the marker model: export-size, larger (tiled) and smaller (padded) frames, letterbox,
fixed-batch chunking, BGR input, timings and bad frames. Expected detections are closed form
(runtime_models.expected_detections), never the detector's own output."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_models import MARKER_RADIUS, expected_detections, paint_markers
from sspnet.runtime import Detections, Detector, load_backend
from sspnet.runtime.backend import Backend
from sspnet.runtime.detector import DEFAULT_MAX_TILES_PER_BATCH

from sspnet.errors import UsageError

R = MARKER_RADIUS
EXPORT_H, EXPORT_W = 96, 128


def assert_detections(found: Detections, markers, frame_h, frame_w):
    boxes, scores, labels = expected_detections(markers, frame_h, frame_w)
    assert len(found) == len(markers)
    assert found.boxes.dtype == np.float32 and found.boxes.shape == (len(markers), 4)
    assert found.scores.dtype == np.float32 and found.labels.dtype == np.int64
    # compare as sets of rows ordered by score (markers have distinct values)
    np.testing.assert_array_equal(found.boxes, boxes)
    np.testing.assert_allclose(found.scores, scores, rtol=1e-6)
    np.testing.assert_array_equal(found.labels, labels)


def frame_with(markers, height, width):
    return paint_markers(np.zeros((height, width, 3), np.uint8), markers)


@pytest.fixture
def backend(marker_model):
    return load_backend(marker_model(input_size=(EXPORT_H, EXPORT_W), k=16))


def test_export_size_frame_goes_straight_through(backend):
    markers = [(20, 10, 200, 0), (100, 50, 120, 1), (0, 0, 90, 0)]
    detector = Detector(backend)
    found = detector.detect(frame_with(markers, EXPORT_H, EXPORT_W))
    assert_detections(found, markers, EXPORT_H, EXPORT_W)  # (0, 0) box clipped at the frame edge
    assert detector.timings["inputs"] == 1


def test_padding_rows_are_ignored(backend):
    # num_dets = 1 while the other 15 rows hold boxes around zero pixels
    found = Detector(backend).detect(frame_with([(60, 40, 77, 0)], EXPORT_H, EXPORT_W))
    assert len(found) == 1


def test_empty_frame_gives_no_detections(backend):
    found = Detector(backend).detect(np.zeros((300, 500, 3), np.uint8))
    assert len(found) == 0
    assert found.boxes.shape == (0, 4)


def test_smaller_frame_is_padded_and_boxes_clipped(backend):
    markers = [(10, 10, 150, 0), (59, 39, 250, 1)]  # the second sits on the frame's corner
    detector = Detector(backend)
    found = detector.detect(frame_with(markers, 40, 60))
    assert_detections(found, markers, 40, 60)
    assert found.boxes[0].tolist() == [59 - R, 39 - R, 60, 40]
    assert detector.timings["inputs"] == 1


def test_frame_smaller_on_one_axis_larger_on_the_other(backend):
    markers = [(10, 10, 150, 0), (300, 30, 200, 0)]
    found = Detector(backend, tile_overlap=16).detect(frame_with(markers, 50, 400))
    assert_detections(found, markers, 50, 400)


def test_4k_frame_is_tiled_and_overlap_duplicates_merge(marker_model):
    backend = load_backend(marker_model(input_size=(512, 640), k=32))
    # TinyPerson pieces: 640x512 with 30 px overlap -> x starts 0, 610, ..., 3660, 3200 (shifted)
    # y starts 0, 482, 964, 1446, 1648 (the last shifted back inside: 2160 - 512)
    markers = [
        (620, 100, 250, 0),  # x in tiles starting at 0 and 610: seen twice
        (1225, 490, 240, 1),  # x in [1220, 1280) and y in [482, 512): seen by four tiles
        (3839, 2159, 230, 2),  # the frame's last pixel, in the shifted last tile
        (5, 5, 220, 3),
        (2000, 1700, 210, 4),  # y in [1648, 1958): also in the tile starting at 1446
    ]
    detector = Detector(backend, tile_overlap=30)
    found = detector.detect(frame_with(markers, 2160, 3840))
    assert detector.timings["inputs"] == 7 * 5  # ceil((3840-30)/610) x ceil((2160-30)/482)
    assert_detections(found, markers, 2160, 3840)


@settings(max_examples=10)
@given(
    cells=st.lists(st.tuples(st.integers(0, 29), st.integers(0, 19)), min_size=1, max_size=12, unique=True),
    seed=st.integers(0, 2**16),
)
def test_tiled_frame_finds_each_marker_once(marker_model_module, cells, seed):
    # markers on a 10 px lattice (no two boxes overlap) anywhere in a 300x200 frame, 96x128 tiles
    rng = np.random.default_rng(seed)
    values = rng.choice(np.arange(1, 256), size=len(cells), replace=False)
    markers = [
        (
            10 * cx + int(rng.integers(0, 5)),
            10 * cy + int(rng.integers(0, 5)),
            int(v),
            int(rng.integers(0, 3)),
        )
        for (cx, cy), v in zip(cells, values)
    ]
    detector = Detector(marker_model_module, tile_overlap=24)
    assert_detections(detector.detect(frame_with(markers, 200, 300)), markers, 200, 300)


@pytest.fixture(scope="module")
def marker_model_module(tmp_path_factory):
    from runtime_models import build_marker_model

    path = build_marker_model(tmp_path_factory.mktemp("m") / "m.onnx", input_size=(EXPORT_H, EXPORT_W), k=16)
    return load_backend(path)


def test_merge_keeps_duplicates_when_disabled(backend):
    # merge_iou = 1.0 suppresses nothing (IoU must exceed it): the overlap marker then shows twice,
    # which proves the default merge is what removes it
    markers = [(100, 20, 200, 0)]  # tiles of width 128, overlap 30: starts 0 and 98 (x = 100 in both)
    frame = frame_with(markers, EXPORT_H, 226)
    assert len(Detector(backend, tile_overlap=30).detect(frame)) == 1
    assert len(Detector(backend, tile_overlap=30, merge_iou=1.0).detect(frame)) == 2


def test_fixed_batch_model_gives_the_same_detections(marker_model):
    backend = load_backend(marker_model(input_size=(EXPORT_H, EXPORT_W), k=16, batch=4))
    markers = [(15, 15, 100, 0), (250, 150, 180, 1), (480, 20, 60, 2)]
    detector = Detector(backend, tile_overlap=20)
    found = detector.detect(frame_with(markers, 200, 500))
    assert detector.timings["inputs"] % 4 != 0  # the last chunk really was padded
    assert_detections(found, markers, 200, 500)


def test_bgr_frames(backend):
    markers = [(30, 30, 140, 2)]
    rgb = frame_with(markers, EXPORT_H, EXPORT_W)
    found = Detector(backend, color_order="bgr").detect(np.ascontiguousarray(rgb[..., ::-1]))
    assert_detections(found, markers, EXPORT_H, EXPORT_W)


def test_letterbox_maps_boxes_back_to_frame(backend):
    # frame 160x256 -> halved to 80x128 then padded to 96x128; a 2x2 block at even coordinates
    # becomes one pixel of the same value at half the coordinates
    frame = np.zeros((160, 256, 3), np.uint8)
    frame[60:62, 100:102, 0] = 200
    frame[60:62, 100:102, 1] = 1
    found = Detector(backend, fit="letterbox").detect(frame)
    assert len(found) == 1
    x, y = 50, 30  # marker pixel in the input
    expected = np.array([x - R, y - R, x + R + 1, y + R + 1], np.float32) * 2
    np.testing.assert_allclose(found.boxes[0], expected)
    assert found.labels.tolist() == [1]
    np.testing.assert_allclose(found.scores, [200 / 255], rtol=1e-6)


def test_stretch_maps_boxes_back_to_frame(backend):
    # 192x512 -> 96x128: x scale 1/4, y scale 1/2; a 4x2 block at (400, 40) becomes pixel (100, 20)
    frame = np.zeros((192, 512, 3), np.uint8)
    frame[40:42, 400:404, 0] = 255
    found = Detector(backend, fit="stretch").detect(frame)
    assert len(found) == 1
    np.testing.assert_allclose(found.boxes[0], [(100 - R) * 4, (20 - R) * 2, (101 + R) * 4, (21 + R) * 2])


def test_detect_batch_of_mixed_sizes(backend):
    cases = [
        ([(20, 10, 200, 0)], EXPORT_H, EXPORT_W),
        ([(5, 5, 100, 1), (250, 180, 90, 0)], 200, 300),
        ([(3, 3, 50, 2)], 20, 30),
    ]
    detector = Detector(backend, tile_overlap=24)
    results = detector.detect_batch([frame_with(m, h, w) for m, h, w in cases])
    assert len(results) == 3
    for found, (markers, h, w) in zip(results, cases):
        assert_detections(found, markers, h, w)
    timings = detector.timings
    assert timings["frames"] == 3
    for key in ("preprocess_ms", "inference_ms", "postprocess_ms"):
        assert timings[key] >= 0.0


def test_score_threshold_and_max_detections(backend):
    markers = [(10, 10, 250, 0), (40, 10, 200, 0), (70, 10, 100, 0), (100, 10, 30, 0)]
    frame = frame_with(markers, EXPORT_H, EXPORT_W)
    kept = Detector(backend, score_threshold=150 / 255).detect(frame)
    assert_detections(kept, markers[:2], EXPORT_H, EXPORT_W)
    top = Detector(backend, max_detections=3).detect(frame)
    assert_detections(top, markers[:3], EXPORT_H, EXPORT_W)


@pytest.mark.parametrize(
    "frame, error, pattern",
    [
        (np.zeros((96, 128, 3), np.float32), UsageError, "uint8"),
        (np.zeros((96, 128), np.uint8), UsageError, r"\[H, W, 3\]"),
        (np.zeros((96, 128, 4), np.uint8), UsageError, r"\[H, W, 3\]"),
        (np.zeros((3, 96, 128), np.uint8), UsageError, r"\[H, W, 3\]"),
        (np.zeros((0, 128, 3), np.uint8), UsageError, "empty"),
    ],
)
def test_bad_frames(backend, frame, error, pattern):
    with pytest.raises(error, match=pattern):
        Detector(backend).detect(frame)


def test_bad_detect_batch_arguments(backend):
    detector = Detector(backend)
    with pytest.raises(UsageError, match="no frames"):
        detector.detect_batch([])
    with pytest.raises(UsageError, match="list of frames"):
        detector.detect_batch(np.zeros((96, 128, 3), np.uint8))


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"fit": "crop"}, "fit must be one of"),
        ({"tile_overlap": 96}, r"tile_overlap must be an int in \[0, 96\)"),
        ({"tile_overlap": -1}, "tile_overlap"),
        ({"merge_iou": 1.5}, "merge_iou"),
        ({"max_detections": 0}, "max_detections"),
        ({"color_order": "yuv"}, "color_order"),
    ],
)
def test_bad_detector_options(backend, kwargs, pattern):
    with pytest.raises(UsageError, match=pattern):
        Detector(backend, **kwargs)


# ---- bounded memory: tiles reach the model in batches of at most max_tiles_per_batch ----------
class RecordingBackend(Backend):
    """Runs an inner backend and records the batch size of every model call."""

    def __init__(self, inner: Backend):
        self.inner, self.batch_sizes = inner, []
        self.name, self.path, self.metadata = "recording", inner.path, inner.metadata

    @property
    def fixed_batch(self):
        return self.inner.fixed_batch

    @property
    def fixed_hw(self):
        return self.inner.fixed_hw

    def _run(self, images):
        self.batch_sizes.append(len(images))
        return self.inner._run(images)


def lattice_markers(height, width, count, seed):
    """`count` markers with distinct values on a 10 px lattice (no two boxes overlap)."""
    rng = np.random.default_rng(seed)
    cells = rng.choice((height // 10) * (width // 10), size=count, replace=False)
    values = rng.choice(np.arange(1, 256), size=count, replace=False)
    return [
        (10 * int(c % (width // 10)) + 3, 10 * int(c // (width // 10)) + 3, int(v), int(v % 3))
        for c, v in zip(cells, values)
    ]


@pytest.mark.parametrize("limit", [1, 3, 8])
def test_chunked_tiles_give_the_same_detections_as_one_batch(marker_model_module, limit):
    markers = lattice_markers(400, 700, 60, seed=limit)
    frame = frame_with(markers, 400, 700)
    whole = Detector(marker_model_module, max_tiles_per_batch=None).detect(frame)
    chunked_detector = Detector(marker_model_module, max_tiles_per_batch=limit)
    chunked = chunked_detector.detect(frame)
    tiles = chunked_detector.timings["inputs"]
    assert tiles == 6 * 7 and chunked_detector.timings["batches"] == -(-tiles // limit)
    np.testing.assert_array_equal(chunked.boxes, whole.boxes)
    np.testing.assert_array_equal(chunked.scores, whole.scores)
    np.testing.assert_array_equal(chunked.labels, whole.labels)
    assert_detections(chunked, markers, 400, 700)  # and both are right


def test_peak_batch_size_is_bounded(marker_model_module):
    backend = RecordingBackend(marker_model_module)
    detector = Detector(backend, max_tiles_per_batch=5)
    markers = lattice_markers(400, 700, 30, seed=1)
    assert_detections(detector.detect(frame_with(markers, 400, 700)), markers, 400, 700)
    assert max(backend.batch_sizes) == 5 and sum(backend.batch_sizes) == 42  # 6 x 7 tiles
    # several frames: batches may hold tiles of two frames, never more than the limit
    backend.batch_sizes.clear()
    frames = [frame_with(markers, 400, 700), np.zeros((96, 128, 3), np.uint8), np.zeros((200, 300, 3), np.uint8)]
    found = detector.detect_batch(frames)
    assert_detections(found[0], markers, 400, 700)
    assert max(backend.batch_sizes) <= 5 and sum(backend.batch_sizes) == detector.timings["inputs"]
    # the default bound applies without any setting
    backend.batch_sizes.clear()
    Detector(backend).detect(frame_with(markers, 400, 700))
    assert max(backend.batch_sizes) == DEFAULT_MAX_TILES_PER_BATCH


def test_unbounded_sends_all_tiles_at_once(marker_model_module):
    backend = RecordingBackend(marker_model_module)
    Detector(backend, max_tiles_per_batch=None).detect(np.zeros((400, 700, 3), np.uint8))
    assert backend.batch_sizes == [42]


@pytest.mark.parametrize("limit, batch_limit", [(3, 4), (6, 4), (9, 8), (12, 12)])
def test_fixed_batch_model_gets_whole_batches(marker_model, limit, batch_limit):
    # a model exported with batch 4: the limit is rounded down to a multiple of 4 (at least 4), so
    # only the frame's last batch is padded; 200 x 500 frame, 96 x 128 tiles, overlap 20 -> 15 tiles
    backend = RecordingBackend(load_backend(marker_model(input_size=(EXPORT_H, EXPORT_W), k=16, batch=4)))
    detector = Detector(backend, tile_overlap=20, max_tiles_per_batch=limit)
    assert detector.batch_limit == batch_limit
    markers = [(15, 15, 100, 0), (250, 150, 180, 1), (480, 20, 60, 2)]
    assert_detections(detector.detect(frame_with(markers, 200, 500)), markers, 200, 500)
    assert detector.timings["batches"] == -(-15 // batch_limit)
    assert backend.batch_sizes == [4, 4, 4, 4]  # 15 tiles + 1 padding row, whatever the grouping


# ---- options are checked up front, as user errors ------------------------------------------
@pytest.mark.parametrize("value", [2.0, -0.1, float("nan"), float("inf"), "0.5", True])
def test_score_threshold_outside_unit_interval_is_a_usage_error(backend, value):
    with pytest.raises(UsageError, match="score_threshold"):
        Detector(backend, score_threshold=value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"merge_iou": float("nan")},
        {"max_tiles_per_batch": 0},
        {"max_tiles_per_batch": -2},
        {"max_tiles_per_batch": 2.5},
        {"max_detections": 1.5},
        {"tile_overlap": True},
    ],
)
def test_other_bad_options_are_usage_errors(backend, kwargs):
    with pytest.raises(UsageError, match=next(iter(kwargs))):
        Detector(backend, **kwargs)


def test_detector_opens_a_model_path(marker_model):
    path = marker_model(input_size=(EXPORT_H, EXPORT_W), k=16)
    markers = [(20, 10, 200, 0)]
    for model_file in (path, str(path)):
        assert_detections(
            Detector(model_file).detect(frame_with(markers, EXPORT_H, EXPORT_W)), markers, EXPORT_H, EXPORT_W
        )
    with pytest.raises(UsageError, match="Backend .*load_backend.* or a model file path.*got int"):
        Detector(42)


def test_detect_errors_speak_of_the_frame(backend):
    with pytest.raises(ValueError) as error:
        Detector(backend).detect(np.zeros((96, 128), np.uint8))
    assert str(error.value).startswith("frame must be [H, W, 3]") and "frames[" not in str(error.value)
    with pytest.raises(ValueError, match=r"^frames\[1\] must be uint8|^frames\[1\]"):
        Detector(backend).detect_batch([np.zeros((96, 128, 3), np.uint8), np.zeros((96, 128), np.uint8)])


def test_tiles_are_cut_only_when_the_model_asks_for_them(marker_model_module, monkeypatch):
    # memory stays bounded only if the frame's tiles are not all cut up front
    import sspnet.runtime.detector as detector_module

    cut = []
    real_cut_tiles = detector_module.cut_tiles
    monkeypatch.setattr(
        detector_module,
        "cut_tiles",
        lambda image, grid, h, w: cut.append(len(grid)) or real_cut_tiles(image, grid, h, w),
    )
    backend = RecordingBackend(marker_model_module)
    seen_at_call = []
    real_run = backend._run
    backend._run = lambda images: seen_at_call.append(sum(cut)) or real_run(images)
    Detector(backend, max_tiles_per_batch=4).detect(np.zeros((400, 700, 3), np.uint8))
    assert seen_at_call == [min(4 * (k + 1), 42) for k in range(11)]  # 42 tiles, cut 4 at a time
