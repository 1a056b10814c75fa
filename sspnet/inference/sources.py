"""Frame sources for `sspnet predict`, and the bounded queue between decoding and inference.

    source = open_source("clips/flight.mp4")     # or an image, a folder, a glob, "0", "rtsp://..."
    for frame in FrameQueue(source, maxsize=4, drop_when_full=source.live):
        ...                                      # frame.index, frame.name, frame.image (BGR HWC uint8)

Images, folders and globs are read in sorted order with OpenCV; videos, cameras (an integer
index) and stream URLs through cv2.VideoCapture. Frames stay in OpenCV's BGR order.

A source never stops at a bad input: an image file that cannot be read or decoded, or a video
frame that cannot be decoded, comes as a Frame with `image=None` and `error` saying why (the
consumer warns and counts it). A truncated JPEG that still decodes comes with `warning` set.
A video file whose frames stop decoding before the count its header declares (a truncated file)
ends with ONE such Frame standing for all the missing frames (`lost`).

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

from sspnet.errors import InputError, UsageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm", ".ts", ".flv")
STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


MAX_UNDECODABLE_IN_A_ROW = 25  # video frames that fail in a row before the file counts as ended


@dataclass
class Frame:
    """One frame: `index` counts from 0 in source order; `name` is the image file name, or
    '<video stem>_<index>' for video / stream frames; `image` is BGR HWC uint8, or None when the
    input could not be read or decoded, `error` then saying why (`where` names the file or frame
    for a warning, `lost` how many source frames this stands for). `warning` is set for a frame
    that decoded but is damaged (a truncated JPEG)."""

    index: int
    name: str
    image: np.ndarray | None
    error: str | None = None
    warning: str | None = None
    where: str = ""
    lost: int = 1


class FrameSource:
    """An iterable of Frames with a few facts: kind ("images", "video", "camera", "stream"),
    total (frame count or None when unknown), fps (None when unknown), live (cameras / URLs)."""

    kind: str = "images"
    total: int | None = None
    fps: float | None = None
    live: bool = False
    description: str = ""
    inputs: tuple[Path, ...] = ()  # files / folders this source reads, which no output may replace

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device / file (the iterator also releases it when it ends)."""


class ImageFiles(FrameSource):
    """Still images, read one by one with cv2.imread; unreadable ones come as error Frames.
    `inputs` defaults to the image files (a folder source passes the folder)."""

    kind = "images"

    def __init__(self, paths: list[Path], description: str, inputs: list[Path] | None = None):
        self.paths = [Path(p) for p in paths]
        self.total = len(self.paths)
        self.description = description
        self.inputs = tuple(self.paths if inputs is None else inputs)

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            image, error, warning = read_image_file(path)
            yield Frame(index, path.name, image, error=error, warning=warning, where=str(path))


def read_image_file(path: Path) -> tuple[np.ndarray | None, str | None, str | None]:
    """(BGR image or None, why it could not be read, warning about a damaged but decoded image)."""
    import cv2

    from sspnet.data.images import jpeg_is_truncated

    try:
        truncated = jpeg_is_truncated(path)
    except OSError as error:
        return None, f"cannot read the file ({error.strerror or error})", None
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        why = "a truncated JPEG that cannot be decoded" if truncated else "not an image, or a format OpenCV cannot decode"
        return None, why, None
    if truncated:
        return image, None, ("truncated JPEG (no end-of-image marker): decoded with its missing rows grey, "
                             "detections there are lost")
    return image, None, None


class VideoCapture(FrameSource):
    """A video file, a camera (int index) or a stream URL through cv2.VideoCapture."""

    def __init__(self, target: str | int, kind: str, stem: str):
        import cv2

        self.kind = kind
        self.target = target
        self.live = kind in ("camera", "stream")
        self.stem = stem
        self.description = f"{kind} {target}"
        self.inputs = (Path(target),) if kind == "video" else ()
        self.capture = cv2.VideoCapture(target)
        if not self.capture.isOpened():
            hint = {"camera": "is a camera attached at that index?",
                    "stream": "is the URL reachable, and does OpenCV's FFmpeg support its protocol?",
                    "video": "is it a video OpenCV's FFmpeg can decode?"}[kind]
            raise InputError(f"cannot open {kind} {target!r} ({hint})")
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.total = count if count > 0 and not self.live else None
        fps = float(self.capture.get(cv2.CAP_PROP_FPS))
        self.fps = fps if 0 < fps < 1000 else None

    def __iter__(self) -> Iterator[Frame]:
        """Frames in order. A video file's frame that does not decode before the declared frame
        count is skipped (an error Frame) and reading goes on; MAX_UNDECODABLE_IN_A_ROW failures
        in a row end the file, reported as one error Frame for all frames still missing.
        A camera or stream ends at its first failed read."""
        index, failed = 0, []
        try:
            while True:
                ok, image = self.capture.read()
                if ok:
                    for bad in failed:
                        yield Frame(bad, self._name(bad), None, error="the frame could not be decoded",
                                    where=f"{self.target} frame {bad}")
                    failed = []
                    yield Frame(index, self._name(index), image)
                elif self.live or self.total is None or index >= self.total:
                    break
                else:
                    failed.append(index)
                    if len(failed) >= MAX_UNDECODABLE_IN_A_ROW:
                        break
                index += 1
            if failed:  # the file ended early: one report for every declared frame not decoded
                first, missing = failed[0], max(self.total - failed[0], len(failed))
                yield Frame(first, self._name(first), None, lost=missing,
                            error=f"frames {first}-{first + missing - 1} of the {self.total} its header declares "
                                  "could not be decoded (a truncated file?)",
                            where=str(self.target))
        finally:
            self.close()

    def _name(self, index: int) -> str:
        return f"{self.stem}_{index:06d}"

    def close(self) -> None:
        self.capture.release()


def _is_glob(text: str) -> bool:
    return any(char in text for char in "*?[")


def open_source(spec: str | int) -> FrameSource:
    """A FrameSource for an image file, a folder of images, a glob pattern, a video file, a camera
    index ("0") or a stream URL (rtsp://, http://, ...). UsageError names what was not understood,
    InputError a folder or pattern without images or a device / stream that does not open.

    `inputs` of the result is what an output must never replace: the folder of a folder source
    (nothing may be written inside it), the matched files of a glob, the image or video file."""
    text = str(spec)
    if text.isdigit():
        return VideoCapture(int(text), "camera", f"camera{text}")
    if text.lower().startswith(STREAM_PREFIXES):
        return VideoCapture(text, "stream", "stream")
    if _is_glob(text):
        paths = sorted(Path(p) for p in glob.glob(text, recursive=True))
        images = [p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            raise InputError(f"source: the pattern {text!r} matches no image files ({', '.join(IMAGE_SUFFIXES)})")
        return ImageFiles(images, f"{len(images)} images matching {text}")
    path = Path(text)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise InputError(f"source: folder {text!r} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        return ImageFiles(images, f"{len(images)} images in {text}", inputs=[path])
    if not path.exists():
        raise UsageError(
            f"source {text!r} is not an existing file or folder, a glob pattern, a camera index or a "
            f"stream URL ({', '.join(STREAM_PREFIXES)})"
        )
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return ImageFiles([path], f"image {text}")
    if suffix in VIDEO_SUFFIXES:
        return VideoCapture(str(path), "video", path.stem)
    raise UsageError(
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
