"""The bounded queue between decoding and inference (sspnet.inference.sources.FrameQueue) and its
use by predict on a live source: a slow model drops (and counts) frames instead of piling them up."""

import itertools
import threading
import time

import numpy as np
import pytest
from cli_markers import marker_frame
from sspnet.runtime.backend import Backend
from sspnet.runtime.detector import Detector

from sspnet.inference.predict import PredictOptions, predict
from sspnet.inference.sources import Frame, FrameQueue, FrameSource


def numbered(count, done: threading.Event | None = None):
    yield from range(count)
    if done is not None:
        done.set()


@pytest.mark.parametrize("maxsize", [1, 3])
def test_live_queue_keeps_the_newest_frames(maxsize):
    # The consumer takes one frame (f), then waits until the decoder has produced all 10: by then
    # the queue holds exactly the newest `maxsize` frames after f; every older waiting one was dropped.
    done = threading.Event()
    queue = FrameQueue(numbered(10, done), maxsize=maxsize, drop_when_full=True)
    consumed = []
    for k, item in enumerate(queue):
        consumed.append(item)
        if k == 0:
            assert done.wait(5)
    first = consumed[0]
    assert consumed[1:] == list(range(max(first + 1, 10 - maxsize), 10))
    assert len(consumed) + queue.dropped == 10
    assert queue.max_queued <= maxsize and queue.decoded == 10


def test_file_queue_blocks_instead_of_dropping():
    queue = FrameQueue(numbered(50), maxsize=2, drop_when_full=False)
    consumed = []
    for item in queue:
        consumed.append(item)
        time.sleep(0.001)  # slower than the decoder
    assert consumed == list(range(50))
    assert queue.dropped == 0 and queue.max_queued <= 2


def test_decoder_errors_reach_the_consumer():
    def broken():
        yield 0
        yield 1
        raise ValueError("cannot decode frame 2")

    consumed = []
    with pytest.raises(ValueError, match="cannot decode frame 2"):
        for item in FrameQueue(broken(), maxsize=4):
            consumed.append(item)
    assert consumed == [0, 1]


def test_breaking_off_stops_an_endless_source():
    queue = FrameQueue(itertools.count(), maxsize=2, drop_when_full=True)
    for item in queue:
        if item >= 3:
            break
    assert queue._thread is not None
    queue._thread.join(5)
    assert not queue._thread.is_alive()


def test_bad_maxsize():
    with pytest.raises(ValueError, match="maxsize must be a positive integer"):
        FrameQueue([], maxsize=0)


# ---- predict on a live source with a slow model ---------------------------------------------


class SlowBackend(Backend):
    """Wraps a backend and sleeps `delay` seconds per inference: a model slower than the camera."""

    def __init__(self, inner: Backend, delay: float):
        self.inner, self.delay = inner, delay
        self.name, self.path, self.metadata = "slow", inner.path, inner.metadata

    @property
    def fixed_batch(self):
        return self.inner.fixed_batch

    @property
    def fixed_hw(self):
        return self.inner.fixed_hw

    def _run(self, images):
        time.sleep(self.delay)
        return self.inner._run(images)


class FakeCamera(FrameSource):
    """A live source producing `count` frames as fast as it can (faster than the model); the
    frame index is painted into the frame as a marker's red value so detections identify frames."""

    kind, live, total, fps = "stream", True, None, 30.0
    description, stem = "fake camera", "camera"

    def __init__(self, count):
        self.count = count

    def __iter__(self):
        for index in range(self.count):
            frame = marker_frame(96, 128, [(40, 40, index + 1, 0)])[..., ::-1]  # BGR, red = index + 1
            yield Frame(index, f"camera_{index:06d}", np.ascontiguousarray(frame))
            time.sleep(0.0005)


def test_slow_model_on_live_source_drops_frames(marker_onnx):
    from sspnet.runtime.onnxruntime_backend import OnnxRuntimeBackend

    count = 60
    backend = SlowBackend(OnnxRuntimeBackend(marker_onnx), delay=0.02)
    detector = Detector(backend, color_order="bgr")
    summary = predict(detector, FakeCamera(count), PredictOptions(out=None, queue_size=2, progress=False))

    assert summary.dropped > 0
    assert summary.frames + summary.dropped == count  # every frame either processed or dropped
    processed = [row["image_id"] - 1 for row in summary.results]
    assert processed == sorted(set(processed)) and len(processed) == summary.frames
    assert processed[-1] == count - 1  # the newest frame is never the one dropped
    # each detection belongs to the frame it is reported for (the marker's red value encodes it)
    for row in summary.results:
        assert row["score"] == pytest.approx(row["image_id"] / 255.0, abs=1e-4)
