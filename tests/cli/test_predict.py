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
from sspnet.runtime.backend import Backend, backend_for_path, load_backend
from sspnet.runtime.detector import Detector

from sspnet.cli import main
from sspnet.errors import InputError
from sspnet.inference.predict import PredictOptions, predict
from sspnet.inference.sources import FrameQueue, open_source

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
        {
            "image_id": image_id,
            "file_name": file_name,
            "category_id": 1,
            "category": "person",
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "score": s,
        }
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
    code = main(
        ["predict", str(image_folder), "--model", str(marker_onnx), "--out", str(out), "--conf", str(conf), "--quiet"]
    )
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
    assert (
        main(
            [
                "predict",
                str(image_folder / "frame_2.png"),
                "--model",
                str(marker_onnx),
                "--out",
                str(out),
                "--no-labels",
                "--conf",
                "0.1",
                "--quiet",
            ]
        )
        == 0
    )
    drawn = cv2.imread(str(out / "frame_2.png"))
    green = np.argwhere((drawn == (0, 255, 0)).all(axis=-1))
    # marker (5, 145): box (3, 143, 8, 148) -> outline pixels only, nothing else drawn
    assert green[:, 0].min() == 143 and green[:, 0].max() == 147
    assert green[:, 1].min() == 3 and green[:, 1].max() == 7
    assert len(green) == 16  # the perimeter of a 5 x 5 square


def test_glob_source_and_image_format(marker_onnx, image_folder, tmp_path):
    source = open_source(str(image_folder / "frame_[01].png"))
    assert source.total == 2
    detector = Detector(load_backend(marker_onnx), color_order="bgr")
    summary = predict(detector, source, PredictOptions(out=tmp_path / "g", image_format="jpg", progress=False))
    assert summary.frames == 2 and summary.dropped == 0
    assert summary.detections == len(MARKERS[0]) + len(MARKERS[1])
    assert sorted(p.name for p in (tmp_path / "g").glob("*.jpg")) == ["frame_0.jpg", "frame_1.jpg"]


def test_video_in_video_out(marker_onnx, tmp_path):
    frames = [[(20 + 40 * k, 30 + 10 * k, 200, 0), (200, 100, 120, 0)] for k in range(4)]
    video = write_video(tmp_path / "clip.avi", frames)

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
    detector = Detector(load_backend(marker_onnx), color_order="bgr")
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
    assert "takes no option 'record_attention' (torch only)" in capsys.readouterr().err
    assert main(["predict", str(image_folder), "--model", str(marker_onnx), "--imgsz", "64", "64"]) == 2
    assert "exported for input H, W = (96, 128)" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", str(empty), "--model", str(marker_onnx)]) == 2
    assert "holds no image files" in capsys.readouterr().err


def test_all_inputs_unreadable_is_an_error(marker_onnx, tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    assert main(["predict", str(folder), "--model", str(marker_onnx), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("warning: skipped") == 2 and "broken.png" in err and "empty.jpg" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("sspnet predict: no frame could be processed: all 2 input frame(s) could not be read")
    assert "broken.png" in last
    assert not out.exists() or not any(out.iterdir())  # nothing written
    # the API raises the same user error
    detector = Detector(load_backend(marker_onnx), color_order="bgr")
    with pytest.raises(InputError, match="no frame could be processed.*broken.png"):
        predict(detector, open_source(str(folder)), PredictOptions(progress=False, warn=lambda message: None))


def summary_table(stdout):
    """The `predict | value` rows of the summary table printed on stdout."""
    import re

    cells = (re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in stdout.splitlines())
    return {row[0]: row[1] for row in cells if len(row) == 2}


def jpeg_bytes(frame_rgb):
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(frame_rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    return data.tobytes()


def test_predict_goes_on_past_a_corrupt_and_a_truncated_jpeg(marker_onnx, image_folder, tmp_path, capfd):
    # sorted order: a_corrupt.jpg, frame_0.png, frame_1.png, frame_2.png, z_truncated.jpg
    (image_folder / "a_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    whole = jpeg_bytes(np.random.default_rng(0).integers(0, 256, (FRAME_H, FRAME_W, 3), dtype=np.uint8))
    (image_folder / "z_truncated.jpg").write_bytes(whole[: len(whole) * 2 // 3])
    out = tmp_path / "out"
    code = main(
        ["predict", str(image_folder), "--model", str(marker_onnx), "--out", str(out), "--conf", "0", "--quiet"]
    )
    captured = capfd.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    assert warnings[0].startswith("warning: skipped ") and "a_corrupt.jpg" in warnings[0]
    assert "z_truncated.jpg" in warnings[1] and "truncated JPEG" in warnings[1]
    rows = summary_table(captured.out)
    assert rows["frames"] == "4" and rows["skipped (unreadable)"] == "1"
    assert rows["damaged (processed, warned)"] == "1"

    # every good image is processed, with the detections the closed form predicts
    results = json.loads((out / "detections.json").read_text())
    good = [row for row in results if row["file_name"].startswith("frame_")]
    expected = []
    for k, markers in enumerate(MARKERS):
        expected += coco_expected(k + 2, f"frame_{k}.png", markers, 0.0)  # image ids count the corrupt file
    assert_results_match(good, expected)
    assert sorted(p.name for p in out.iterdir() if p.suffix in (".png", ".jpg")) == [
        "frame_0.png",
        "frame_1.png",
        "frame_2.png",
        "z_truncated.jpg",
    ]
    records = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in records] == ["frame_0.png", "frame_1.png", "frame_2.png", "z_truncated.jpg"]
    assert "warning" in records[3] and all("warning" not in r for r in records[:3])


def test_jpeg_truncation_check():
    from sspnet.data.images import jpeg_is_truncated

    def check(tmp, data):
        tmp.write_bytes(data)
        return jpeg_is_truncated(tmp)

    import tempfile
    from pathlib import Path

    whole = jpeg_bytes(np.zeros((40, 60, 3), np.uint8))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.jpg"
        assert check(path, whole) is False
        assert check(path, whole + b"\x00" * 100) is False  # padding after the end marker is fine
        assert check(path, whole[:-2]) is True
        assert check(path, whole[: len(whole) // 2]) is True
        assert check(path, b"\x89PNG\r\n\x1a\n" + b"x" * 50) is False  # not a JPEG: not our business


def file_hashes(folder):
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("out_of", [lambda folder: folder, lambda folder: folder / "pred"])
def test_out_in_the_source_folder_is_refused_before_any_work(marker_onnx, image_folder, capsys, out_of):
    before = file_hashes(image_folder)
    out = out_of(image_folder)
    code = main(["predict", str(image_folder), "--model", str(marker_onnx), "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2
    assert "backend:" not in captured.out  # refused before the model was loaded
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sspnet predict: refusing to write")
    assert str(out) in lines[0] and str(image_folder) in lines[0]
    assert file_hashes(image_folder) == before
    assert not (image_folder / "pred").exists()


def test_out_holding_an_input_image_is_refused(marker_onnx, image_folder, capsys):
    before = file_hashes(image_folder)
    for source in (str(image_folder / "frame_*.png"), str(image_folder / "frame_1.png")):
        assert main(["predict", source, "--model", str(marker_onnx), "--out", str(image_folder), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "refusing to write" in err and "frame_" in err and "Traceback" not in err
    assert file_hashes(image_folder) == before


def test_rerun_into_its_own_output_is_allowed(marker_onnx, image_folder, tmp_path):
    out = tmp_path / "out"
    for _ in range(2):
        assert main(["predict", str(image_folder), "--model", str(marker_onnx), "--out", str(out), "--quiet"]) == 0
    assert len((out / "detections.jsonl").read_text().splitlines()) == len(MARKERS)  # the rerun replaced it


def test_jsonl_has_one_line_per_processed_frame(marker_onnx, image_folder, tmp_path):
    out = tmp_path / "out"
    assert (
        main(["predict", str(image_folder), "--model", str(marker_onnx), "--out", str(out), "--conf", "0.3", "--quiet"])
        == 0
    )
    lines = (out / "detections.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["image_id"] for r in records] == [1, 2, 3]
    assert [r["file_name"] for r in records] == [f"frame_{k}.png" for k in range(3)]
    assert all((r["width"], r["height"]) == (FRAME_W, FRAME_H) for r in records)
    for k, (record, markers) in enumerate(zip(records, MARKERS)):
        assert_results_match(record["detections"], coco_expected(k + 1, f"frame_{k}.png", markers, 0.3))
    # detections.json is every record's detections, in order
    assert json.loads((out / "detections.json").read_text()) == [d for r in records for d in r["detections"]]


class FailingBackend(Backend):
    """Runs the marker model; on model call number `fail_at` raises `error` (a crash or Ctrl-C)."""

    def __init__(self, inner, fail_at, error):
        self.inner, self.fail_at, self.error, self.calls = inner, fail_at, error, 0
        self.name, self.path, self.metadata = "failing", inner.path, inner.metadata

    fixed_batch = property(lambda self: None)
    fixed_hw = property(lambda self: None)

    def _run(self, images):
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.error
        return self.inner._run(images)


def test_a_crash_loses_at_most_the_frame_in_flight(marker_onnx, image_folder, tmp_path):
    out = tmp_path / "out"
    backend = FailingBackend(load_backend(marker_onnx), fail_at=3, error=RuntimeError("device lost"))
    detector = Detector(backend, color_order="bgr", max_tiles_per_batch=None)  # one model call per frame
    with pytest.raises(RuntimeError, match="device lost"):
        predict(detector, open_source(str(image_folder)), PredictOptions(out=out, progress=False))
    records = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in records] == ["frame_0.png", "frame_1.png"]  # both complete lines
    assert not (out / "detections.json").exists()  # the final file is only written by a finished run
    assert not [p for p in out.iterdir() if "sspnet-tmp" in p.name]


def test_ctrl_c_finishes_the_outputs(marker_onnx, tmp_path):
    video = write_video(tmp_path / "clip.avi", [[(20 + 40 * k, 30, 200, 0)] for k in range(5)])
    out = tmp_path / "out"
    backend = FailingBackend(load_backend(marker_onnx), fail_at=4, error=KeyboardInterrupt())
    detector = Detector(backend, color_order="bgr", max_tiles_per_batch=None)
    summary = predict(detector, open_source(str(video)), PredictOptions(out=out, progress=False))
    assert summary.interrupted and summary.frames == 3
    assert [r["image_id"] for r in json.loads((out / "detections.json").read_text())] == [1, 2, 3]
    assert count_frames(out / "clip.avi") == 3  # the video was finished, not thrown away
    assert not [p for p in out.iterdir() if "sspnet-tmp" in p.name]


def write_video(path, frames_markers, fps=10.0):
    # lossless FFV1, so that the marker pixels survive encoding exactly
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (FRAME_W, FRAME_H))
    assert writer.isOpened()
    for markers in frames_markers:
        writer.write(np.ascontiguousarray(marker_frame(FRAME_H, FRAME_W, markers)[..., ::-1]))
    writer.release()
    return path


def count_frames(path):
    capture, count = cv2.VideoCapture(str(path)), 0
    while capture.read()[0]:
        count += 1
    return count


def mjpeg_video(path, count):
    """An MJPG .avi of `count` frames (each frame a JPEG inside the file) -> the JPEG offsets."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (FRAME_W, FRAME_H))
    for k in range(count):
        writer.write(np.ascontiguousarray(marker_frame(FRAME_H, FRAME_W, [(20 + 10 * k, 30, 250, 0)])[..., ::-1]))
    writer.release()
    data = path.read_bytes()
    return data, [i for i in range(len(data) - 2) if data[i : i + 3] == b"\xff\xd8\xff"]


def test_an_undecodable_video_frame_is_skipped(marker_onnx, tmp_path, capsys):
    path = tmp_path / "clip.avi"
    data, starts = mjpeg_video(path, 12)
    assert len(starts) == 12
    garbled = bytearray(data)
    garbled[starts[5] + 2 : starts[5] + 300] = b"\x5a" * 298  # frame 5's JPEG header destroyed
    path.write_bytes(bytes(garbled))
    out = tmp_path / "out"
    assert main(["predict", str(path), "--model", str(marker_onnx), "--out", str(out), "--no-media", "--quiet"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: skipped {path} frame 5: the frame could not be decoded"]
    records = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert [r["image_id"] for r in records] == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]
    assert summary_table(captured.out)["skipped (unreadable)"] == "1"


def test_a_truncated_video_is_reported_once(marker_onnx, tmp_path, capsys):
    path = tmp_path / "clip.avi"
    data, starts = mjpeg_video(path, 12)
    path.write_bytes(data[: starts[8] + 100])  # frames 8..11 are gone (the header still declares 12)
    out = tmp_path / "out"
    assert main(["predict", str(path), "--model", str(marker_onnx), "--out", str(out), "--no-media", "--quiet"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(path) in warnings[0] and "frames 8-11 of the 12" in warnings[0]
    assert len((out / "detections.jsonl").read_text().splitlines()) == 8
    assert summary_table(captured.out)["skipped (unreadable)"] == "4"


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
from sspnet.errors import InputError
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
        [
            sys.executable,
            "-c",
            NO_TORCH,
            "predict",
            str(image_folder),
            "--model",
            str(marker_onnx),
            "--out",
            str(out),
            "--quiet",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
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
