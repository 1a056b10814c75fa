"""`sspnet predict`: sources, annotated output, COCO JSON, video in/out, errors.

The model is the ONNX marker model (tests/runtime/runtime_models.py): every red pixel is a
detection with a closed-form 5x5 box, so the expected detections of any frame are known without
running the code under test. Frames are larger than the 96x128 model input, so they are tiled.
"""

import json

import cv2
import numpy as np
import pytest
from cli_markers import marker_frame, write_rgb
from runtime_models import expected_detections

from sspnet.cli import main
from sspnet.inference.backends import backend_for_path, open_backend
from sspnet.inference.predict import PredictOptions, predict
from sspnet.inference.sources import FrameQueue, open_source
from sspnet.runtime.detector import Detector

FRAME_H, FRAME_W = 150, 300  # 2 x 3 tiles of 96 x 128 with 30 px overlap
# (x, y, red, label) per image; markers in tile overlaps and near the frame edges included
MARKERS = [
    [(10, 20, 200, 0), (250, 140, 100, 0), (110, 60, 150, 0)],
    [(120, 70, 90, 0), (299, 0, 250, 0)],
    [(5, 145, 60, 0)],
]


def coco_expected(image_id, file_name, markers, conf):
    boxes, scores, _ = expected_detections(markers, FRAME_H, FRAME_W)
    keep = scores >= conf
    return [
        {"image_id": image_id, "file_name": file_name, "category_id": 1, "category": "person",
         "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s}
        for (x1, y1, x2, y2), s in zip(boxes[keep].tolist(), scores[keep].tolist())
    ]


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for k, markers in enumerate(MARKERS):
        write_rgb(folder / f"frame_{k}.png", marker_frame(FRAME_H, FRAME_W, markers))
    (folder / "notes.txt").write_text("not an image")
    return folder


def assert_results_match(results, expected):
    assert len(results) == len(expected)
    for got, want in zip(results, expected):
        assert got["image_id"] == want["image_id"] and got["file_name"] == want["file_name"]
        assert got["category_id"] == 1 and got["category"] == "person"
        np.testing.assert_allclose(got["bbox"], want["bbox"], atol=0.01)
        assert got["score"] == pytest.approx(want["score"], abs=1e-4)


@pytest.mark.parametrize("conf", [0.0, 0.3])
def test_folder_with_onnx_writes_coco_json_and_annotated_images(marker_onnx, image_folder, tmp_path, conf):
    out = tmp_path / "out"
    code = main(["predict", str(image_folder), "--model", str(marker_onnx), "--out", str(out),
                 "--conf", str(conf), "--quiet"])
    assert code == 0
    results = json.loads((out / "detections.json").read_text())
    expected = []
    for k, markers in enumerate(MARKERS):
        expected += coco_expected(k + 1, f"frame_{k}.png", markers, conf)
    assert_results_match(results, expected)

    # annotated copies: the box outline (corners rounded outwards, 1 px) is green, the marker pixel
    # inside the box and everything away from boxes are untouched
    drawn = cv2.imread(str(out / "frame_0.png"))
    original = cv2.imread(str(image_folder / "frame_0.png"))
    assert drawn.shape == original.shape
    x, y = 10, 20
    np.testing.assert_array_equal(drawn[y - 2, x - 2], (0, 255, 0))  # top-left corner of (8, 18, 13, 23)
    np.testing.assert_array_equal(drawn[y + 2, x + 2], (0, 255, 0))  # bottom-right (ceil(23) - 1)
    np.testing.assert_array_equal(drawn[y, x], original[y, x])
    np.testing.assert_array_equal(drawn[100:130, 150:200], original[100:130, 150:200])


def test_labels_off_draws_only_boxes(marker_onnx, image_folder, tmp_path):
    out = tmp_path / "out"
    assert main(["predict", str(image_folder / "frame_2.png"), "--model", str(marker_onnx), "--out", str(out),
                 "--no-labels", "--conf", "0.1", "--quiet"]) == 0
    drawn = cv2.imread(str(out / "frame_2.png"))
    green = np.argwhere((drawn == (0, 255, 0)).all(axis=-1))
    # marker (5, 145): box (3, 143, 8, 148) -> outline pixels only, nothing else drawn
    assert green[:, 0].min() == 143 and green[:, 0].max() == 147
    assert green[:, 1].min() == 3 and green[:, 1].max() == 7
    assert len(green) == 16  # the perimeter of a 5 x 5 square


def test_glob_source_and_image_format(marker_onnx, image_folder, tmp_path):
    source = open_source(str(image_folder / "frame_[01].png"))
    assert source.total == 2
    detector = Detector(open_backend(marker_onnx), color_order="bgr")
    summary = predict(detector, source, PredictOptions(out=tmp_path / "g", image_format="jpg", progress=False))
    assert summary.frames == 2 and summary.dropped == 0
    assert summary.detections == len(MARKERS[0]) + len(MARKERS[1])
    assert sorted(p.name for p in (tmp_path / "g").glob("*.jpg")) == ["frame_0.jpg", "frame_1.jpg"]


def test_video_in_video_out(marker_onnx, tmp_path):
    video = tmp_path / "clip.avi"
    # lossless FFV1, so that the marker pixels survive encoding exactly
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 10.0, (FRAME_W, FRAME_H))
    assert writer.isOpened()
    frames = [[(20 + 40 * k, 30 + 10 * k, 200, 0), (200, 100, 120, 0)] for k in range(4)]
    for markers in frames:
        writer.write(np.ascontiguousarray(marker_frame(FRAME_H, FRAME_W, markers)[..., ::-1]))
    writer.release()

    out = tmp_path / "out"
    assert main(["predict", str(video), "--model", str(marker_onnx), "--out", str(out), "--quiet"]) == 0
    results = json.loads((out / "detections.json").read_text())
    expected = []
    for k, markers in enumerate(frames):
        expected += coco_expected(k + 1, f"clip_{k:06d}", markers, 0.25)
    assert_results_match(results, expected)

    capture = cv2.VideoCapture(str(out / "clip.avi"))
    count, size = 0, None
    while True:
        ok, image = capture.read()
        if not ok:
            break
        count, size = count + 1, image.shape
    assert count == len(frames) and size == (FRAME_H, FRAME_W, 3)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)


def test_max_frames_stops_early(marker_onnx, image_folder, tmp_path):
    detector = Detector(open_backend(marker_onnx), color_order="bgr")
    summary = predict(detector, open_source(str(image_folder)), PredictOptions(out=None, max_frames=2, progress=False))
    assert summary.frames == 2


def test_backend_is_chosen_from_the_suffix():
    assert backend_for_path("a/best.safetensors") == "torch"
    assert backend_for_path("old.pth") == "torch"
    assert backend_for_path("m.ONNX") == "onnxruntime"
    assert backend_for_path("m_fp16.engine") == "tensorrt"
    with pytest.raises(ValueError, match="suffix '.bin'"):
        backend_for_path("m.bin")


def test_errors_name_the_problem(marker_onnx, image_folder, tmp_path, capsys):
    assert main(["predict", str(tmp_path / "missing"), "--model", str(marker_onnx)]) == 2
    assert "is not an existing file or folder" in capsys.readouterr().err
    assert main(["predict", str(image_folder), "--model", str(marker_onnx), "--backend", "torch"]) == 2
    assert "backend 'torch' cannot run 'marker.onnx'" in capsys.readouterr().err
    assert main(["predict", str(image_folder), "--model", str(marker_onnx), "--attention"]) == 2
    assert "attention maps need the torch backend" in capsys.readouterr().err
    assert main(["predict", str(image_folder), "--model", str(marker_onnx), "--imgsz", "64", "64"]) == 2
    assert "exported for input H, W = (96, 128)" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", str(empty), "--model", str(marker_onnx)]) == 2
    assert "holds no image files" in capsys.readouterr().err


def test_unreadable_image_is_named(marker_onnx, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not a png")
    detector = Detector(open_backend(marker_onnx), color_order="bgr")
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        predict(detector, open_source(str(folder)), PredictOptions(progress=False))


def test_frame_queue_is_used_for_files_without_drops(image_folder):
    queue = FrameQueue(open_source(str(image_folder)), maxsize=1, drop_when_full=False)
    names = [frame.name for frame in queue]
    assert names == ["frame_0.png", "frame_1.png", "frame_2.png"] and queue.dropped == 0


NO_TORCH = """
import sys

class BlockTorch:  # every torch import fails, as on a device without torch
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ImportError(f"blocked for this test: {name}")
        return None

sys.meta_path.insert(0, BlockTorch())
from sspnet.cli import main
code = main(sys.argv[1:])
loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "torchvision"))
assert not loaded, f"torch modules were imported: {loaded}"
print("NO_TORCH_OK", code)
"""


def test_predict_with_onnxruntime_needs_no_torch(marker_onnx, image_folder, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH, "predict", str(image_folder), "--model", str(marker_onnx),
         "--out", str(out), "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0 and "NO_TORCH_OK 0" in result.stdout, result.stdout + result.stderr
    assert len(json.loads((out / "detections.json").read_text())) == sum(len(m) for m in MARKERS) - 1  # conf 0.25


def test_camera_and_stream_sources_fail_clearly():
    # no camera at index 7 and nothing listening on port 1: both fail at open, naming the source
    with pytest.raises(ValueError, match="cannot open camera 7"):
        open_source("7")
    with pytest.raises(ValueError, match="cannot open stream 'rtsp://127.0.0.1:1/live'"):
        open_source("rtsp://127.0.0.1:1/live")


def test_a_video_source_reports_its_facts(tmp_path):
    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 12.0, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    source = open_source(str(video))
    assert (source.kind, source.total, source.live) == ("video", 3, False)
    assert source.fps == pytest.approx(12.0)
    assert [frame.name for frame in source] == ["v_000000", "v_000001", "v_000002"]
