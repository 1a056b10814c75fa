"""predict's three stages (sspnet.inference.predict): tiles are cut on the decoder thread, the model
runs on the calling thread, merging / the frame hook / writing on the writer thread, in frame order,
with the same detections as Detector.detect on each frame; an error in the writer stage reaches the
caller."""

import json
import threading

import numpy as np
import pytest
from cli_markers import TILE, marker_frame
from sspnet.runtime.backend import load_backend
from sspnet.runtime.detector import Detector

from sspnet.inference.predict import PredictOptions, predict
from sspnet.inference.sources import Frame, FrameSource

FRAMES = 12


class Frames(FrameSource):
    """Frames of twice the tile size (4 tiles each), one marker moving across them."""

    kind, description, stem = "video", "moving marker", "clip"

    def __init__(self):
        self.total = FRAMES
        self.images = [
            marker_frame(2 * TILE[0], 2 * TILE[1], [(10 + 17 * k, 20 + 11 * k, 100 + 10 * k, 0)])[..., ::-1].copy()
            for k in range(FRAMES)
        ]

    def __iter__(self):
        for k, image in enumerate(self.images):
            yield Frame(k, f"clip_{k:06d}", image)


class RecordingHook:
    """A frame hook that records the thread and order of its calls, and slows the writer stage."""

    def __init__(self):
        self.threads, self.order, self.finished = set(), [], False

    def plan(self, guard, folder):
        pass

    def on_frame(self, frame, found, rows):
        self.threads.add(threading.current_thread().name)
        self.order.append(frame.index)
        threading.Event().wait(0.005)  # a writer slower than nothing: frames queue up behind it
        return [{**row, "track_id": frame.index} for row in rows]

    def draw(self, image, frame):
        return image

    def finish(self, summary):
        self.finished = True


def test_stages_run_on_their_threads_in_order_with_the_detector_results(marker_onnx, tmp_path, monkeypatch):
    detector = Detector(load_backend(marker_onnx), color_order="bgr", score_threshold=0.1)
    source = Frames()
    prepared_on = set()
    original_prepare = detector.prepare

    def prepare(image):
        prepared_on.add(threading.current_thread().name)
        return original_prepare(image)

    monkeypatch.setattr(detector, "prepare", prepare)
    hook = RecordingHook()
    summary = predict(detector, source, PredictOptions(out=tmp_path / "out", progress=False, frame_hook=hook))
    assert prepared_on == {"sspnet-decode"}
    assert len(hook.threads) == 1 and next(iter(hook.threads)).startswith("sspnet-write")
    assert hook.order == list(range(FRAMES)) and hook.finished and summary.frames == FRAMES
    records = [json.loads(line) for line in (tmp_path / "out" / "detections.jsonl").read_text().splitlines()]
    assert [r["image_id"] for r in records] == list(range(1, FRAMES + 1))
    for record, image in zip(records, source.images):
        expected = Detector(detector.backend, color_order="bgr", score_threshold=0.1).detect(image)
        boxes = [row["bbox"] for row in record["detections"]]
        np.testing.assert_allclose(
            boxes, [[x1, y1, x2 - x1, y2 - y1] for x1, y1, x2, y2 in expected.boxes.tolist()], atol=1e-3
        )
        assert all(row["track_id"] == record["image_id"] - 1 for row in record["detections"])


def test_attention_style_runs_keep_the_writer_inline():
    # the writer stage runs on the calling thread when asked (attention overlays read the model's last call)
    from sspnet.inference.predict import _InOrderWorker

    seen = []
    worker = _InOrderWorker(depth=2, inline=True)
    worker.submit(lambda: seen.append(threading.current_thread().name))
    assert seen == [threading.current_thread().name]


def test_a_writer_error_reaches_the_caller_and_frames_before_it_are_kept(marker_onnx, tmp_path):
    class Failing(RecordingHook):
        def on_frame(self, frame, found, rows):
            if frame.index == 5:
                raise OSError(28, "No space left on device")
            return super().on_frame(frame, found, rows)

    detector = Detector(load_backend(marker_onnx), color_order="bgr")
    with pytest.raises(OSError, match="No space left"):
        predict(detector, Frames(), PredictOptions(out=tmp_path / "out", progress=False, frame_hook=Failing()))
    records = (tmp_path / "out" / "detections.jsonl").read_text().splitlines()
    assert [json.loads(line)["image_id"] for line in records] == [1, 2, 3, 4, 5]
