"""Frame sources for `sspnet predict`, and the bounded queue between decoding and inference.

    source = open_source("clips/flight.mp4")     # or an image, a folder, a glob, "0", "rtsp://..."
    for frame in FrameQueue(source, maxsize=4, drop_when_full=source.live):
        ...                                      # frame.index, frame.name, frame.image (BGR HWC uint8)

Images, folders and globs are read in sorted order with OpenCV; videos, cameras (an integer
index) and stream URLs through cv2.VideoCapture. Frames stay in OpenCV's BGR order.

FrameQueue decodes on a background thread. For files it blocks when full, so every frame is
processed. For live sources (cameras, URLs) a slow model must not let frames pile up in memory
or fall ever further behind: when the queue is full the OLDEST waiting frame is dropped (and
counted), so inference always works on recent frames and memory stays bounded by `maxsize`.
"""

from __future__ import annotations

import glob
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm", ".ts", ".flv")
STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


@dataclass
class Frame:
    """One decoded frame: `index` counts from 0 in source order; `name` is the image file name, or
    '<video stem>_<index>' for video / stream frames; `image` is BGR HWC uint8."""

    index: int
    name: str
    image: np.ndarray


class FrameSource:
    """An iterable of Frames with a few facts: kind ("images", "video", "camera", "stream"),
    total (frame count or None when unknown), fps (None when unknown), live (cameras / URLs)."""

    kind: str = "images"
    total: int | None = None
    fps: float | None = None
    live: bool = False
    description: str = ""

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device / file (the iterator also releases it when it ends)."""


class ImageFiles(FrameSource):
    """Still images, read one by one with cv2.imread."""

    kind = "images"

    def __init__(self, paths: list[Path], description: str):
        self.paths = list(paths)
        self.total = len(self.paths)
        self.description = description

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        for index, path in enumerate(self.paths):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"cannot read image {path} (not an image, or a format OpenCV cannot decode)")
            yield Frame(index, path.name, image)


class VideoCapture(FrameSource):
    """A video file, a camera (int index) or a stream URL through cv2.VideoCapture."""

    def __init__(self, target: str | int, kind: str, stem: str):
        import cv2

        self.kind = kind
        self.target = target
        self.live = kind in ("camera", "stream")
        self.stem = stem
        self.description = f"{kind} {target}"
        self.capture = cv2.VideoCapture(target)
        if not self.capture.isOpened():
            hint = {"camera": "is a camera attached at that index?",
                    "stream": "is the URL reachable, and does OpenCV's FFmpeg support its protocol?",
                    "video": "is it a video OpenCV's FFmpeg can decode?"}[kind]
            raise ValueError(f"cannot open {kind} {target!r} ({hint})")
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.total = count if count > 0 and not self.live else None
        fps = float(self.capture.get(cv2.CAP_PROP_FPS))
        self.fps = fps if 0 < fps < 1000 else None

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        try:
            while True:
                ok, image = self.capture.read()
                if not ok:
                    break
                yield Frame(index, f"{self.stem}_{index:06d}", image)
                index += 1
        finally:
            self.close()

    def close(self) -> None:
        self.capture.release()


def _is_glob(text: str) -> bool:
    return any(char in text for char in "*?[")


def open_source(spec: str | int) -> FrameSource:
    """A FrameSource for an image file, a folder of images, a glob pattern, a video file, a camera
    index ("0") or a stream URL (rtsp://, http://, ...). ValueError names what was not understood."""
    text = str(spec)
    if text.isdigit():
        return VideoCapture(int(text), "camera", f"camera{text}")
    if text.lower().startswith(STREAM_PREFIXES):
        return VideoCapture(text, "stream", "stream")
    if _is_glob(text):
        paths = sorted(Path(p) for p in glob.glob(text, recursive=True))
        images = [p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            raise ValueError(f"source: the pattern {text!r} matches no image files ({', '.join(IMAGE_SUFFIXES)})")
        return ImageFiles(images, f"{len(images)} images matching {text}")
    path = Path(text)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise ValueError(f"source: folder {text!r} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        return ImageFiles(images, f"{len(images)} images in {text}")
    if not path.exists():
        raise ValueError(
            f"source {text!r} is not an existing file or folder, a glob pattern, a camera index or a "
            f"stream URL ({', '.join(STREAM_PREFIXES)})"
        )
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return ImageFiles([path], f"image {text}")
    if suffix in VIDEO_SUFFIXES:
        return VideoCapture(str(path), "video", path.stem)
    raise ValueError(
        f"source {text!r}: unknown file type {suffix!r}; images {', '.join(IMAGE_SUFFIXES)}, "
        f"videos {', '.join(VIDEO_SUFFIXES)}"
    )


class FrameQueue:
    """Decode frames on a background thread into a queue of at most `maxsize` frames.

    drop_when_full=False: the decoder waits for room (every frame is processed: files).
    drop_when_full=True: the decoder never waits; a new frame arriving at a full queue evicts the
    oldest queued one, counted in `dropped` (live sources). `max_queued` is the largest queue
    length seen, never above `maxsize`. An exception in the decoder is re-raised in the consumer.
    Stop early with `close()` (iteration also closes the queue when the consumer breaks off).
    """

    def __init__(self, frames: Iterable, maxsize: int = 4, drop_when_full: bool = False):
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be a positive integer, got {maxsize!r}")
        self.frames = frames
        self.maxsize = maxsize
        self.drop_when_full = drop_when_full
        self.dropped = 0
        self.decoded = 0
        self.max_queued = 0
        self._queue: deque = deque()
        self._cond = threading.Condition()
        self._finished = False  # the decoder has no more frames
        self._stop = False  # the consumer asked the decoder to stop
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _decode(self) -> None:
        try:
            for frame in self.frames:
                with self._cond:
                    while not self.drop_when_full and len(self._queue) >= self.maxsize and not self._stop:
                        self._cond.wait()
                    if self._stop:
                        break
                    if len(self._queue) >= self.maxsize:  # live source, consumer behind: drop the oldest
                        self._queue.popleft()
                        self.dropped += 1
                    self._queue.append(frame)
                    self.decoded += 1
                    self.max_queued = max(self.max_queued, len(self._queue))
                    self._cond.notify_all()
        except BaseException as error:  # handed to the consumer thread
            self._error = error
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def __iter__(self):
        if self._thread is not None:
            raise RuntimeError("a FrameQueue can be iterated only once")
        self._thread = threading.Thread(target=self._decode, name="sspnet-decode", daemon=True)
        self._thread.start()
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._finished:
                        self._cond.wait()
                    if not self._queue:  # finished and drained
                        break
                    frame = self._queue.popleft()
                    self._cond.notify_all()
                yield frame
            if self._error is not None:
                raise self._error
        finally:
            self.close()

    def close(self, timeout: float = 5.0) -> None:
        """Ask the decoder to stop and wait for it (a camera read may take one frame period)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        close = getattr(self.frames, "close", None)
        if callable(close) and (self._thread is None or not self._thread.is_alive()):
            close()


__all__ = ["Frame", "FrameSource", "FrameQueue", "ImageFiles", "VideoCapture", "open_source",
           "IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "STREAM_PREFIXES"]
