"""Frame sources for `sspnet predict`, and the bounded queue between decoding and inference.

    source = open_source("clips/flight.mp4")     # or an image, a folder, a glob, "0", "rtsp://...",
                                                 # or a GStreamer pipeline "... ! appsink"
    for frame in FrameQueue(source, maxsize=4, drop_when_full=source.live):
        ...                                      # frame.index, frame.name, frame.image (BGR HWC uint8)

Images, folders and globs are read in sorted order with OpenCV; videos, cameras (an integer
index) and stream URLs through cv2.VideoCapture (FFmpeg backend), GStreamer pipeline strings
through OpenCV's GStreamer backend when this OpenCV was built with it (`opencv_backends()`; refused
with one line otherwise). Frames stay in OpenCV's BGR order. `vid_stride=N` keeps every Nth frame
of a video or stream (frame numbers keep counting source frames).

Links that drop (stream URLs, GStreamer pipelines): a failed read is not the end of a live stream.
The source reopens it with exponential backoff (ReconnectPolicy) and reports the outage as two
link Frames (`link="down"` when it drops, `link="back"` when frames flow again, with `lost` the
frames estimated lost in the gap from the stream's frame rate); frame indices jump by that many,
so they stay a time axis. A stream that is still down after `give_up_after_s` ends the source with
a `link="gave-up"` Frame. Cameras and files keep their old ending (first failed read / end of file).

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
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sspnet.errors import InputError, MissingDependencyError, UsageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm", ".ts", ".flv")
STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
GSTREAMER_LINK = "!"  # a source holding "!" (GStreamer's link between elements) is a pipeline string


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
    link: str | None = None  # "down" / "back" / "gave-up": an event of a live link, not a frame
    prepared: object = None  # what FrameQueue's `prepare` made of the image (e.g. its model tiles)


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a stream URL or GStreamer pipeline that stops delivering frames is reopened.

    The first retry waits `first_wait_s`, each next one twice as long, at most `max_wait_s`; once the
    stream has been down `give_up_after_s` seconds (counted from its last frame) the source ends.
    `read_timeout_s`: a read that delivers nothing for this long counts as a drop (FFmpeg backend;
    a link that hangs without closing would otherwise block forever); `open_timeout_s` bounds each
    reopen. give_up_after_s=0 turns reconnecting off (the stream ends at its first failed read)."""

    first_wait_s: float = 0.5
    max_wait_s: float = 5.0
    give_up_after_s: float = 30.0
    read_timeout_s: float = 5.0
    open_timeout_s: float = 5.0

    def __post_init__(self):
        for name in ("first_wait_s", "max_wait_s", "give_up_after_s", "read_timeout_s", "open_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise UsageError(f"reconnect: {name} must be a finite number of seconds >= 0", got=value)
        if self.read_timeout_s <= 0 or self.open_timeout_s <= 0:
            raise UsageError(
                "reconnect: read_timeout_s and open_timeout_s must be > 0",
                got=(self.read_timeout_s, self.open_timeout_s),
            )

    def waits(self):
        """The waits before each reconnect attempt: first_wait_s, doubling, capped at max_wait_s."""
        wait = self.first_wait_s
        while True:
            yield wait
            wait = min(max(wait * 2, 0.05), self.max_wait_s)


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

    def stop(self) -> None:
        """Ask a running iterator to end soon (from another thread): a reconnect wait is cut short."""


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
        why = (
            "a truncated JPEG that cannot be decoded" if truncated else "not an image, or a format OpenCV cannot decode"
        )
        return None, why, None
    if truncated:
        return (
            image,
            None,
            ("truncated JPEG (no end-of-image marker): decoded with its missing rows grey, detections there are lost"),
        )
    return image, None, None


def opencv_backends() -> dict[str, bool]:
    """Which video I/O backends this OpenCV was built with: {"FFMPEG": bool, "GStreamer": bool}
    (from cv2.getBuildInformation(); an OpenCV from pip has FFmpeg, JetPack's has GStreamer)."""
    import cv2

    found = dict.fromkeys(("FFMPEG", "GStreamer"), False)
    for line in cv2.getBuildInformation().splitlines():
        name, _, value = line.strip().partition(":")
        if name.strip() in found:
            found[name.strip()] = value.strip().upper().startswith("YES")
    return found


def _quiet_video_logs(cv2) -> None:
    """Silence FFmpeg's and OpenCV's own lines about failed (re)connects ("Connection refused", "can't
    be used to capture by name"): the source reports each outage itself, in one warning. A user's own
    OPENCV_FFMPEG_LOGLEVEL wins (FFmpeg reads it when OpenCV first opens a video)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


class VideoCapture(FrameSource):
    """A video file, a camera (int index), a stream URL or a GStreamer pipeline through cv2.VideoCapture.

    vid_stride: keep every Nth frame (the others are grabbed, not converted). reconnect: the policy
    of a stream or pipeline whose link drops (see the module docstring); files and cameras ignore it.
    """

    def __init__(
        self, target: str | int, kind: str, stem: str, vid_stride: int = 1, reconnect: ReconnectPolicy | None = None
    ):
        import cv2

        self.kind = kind
        self.target = target
        self.live = kind in ("camera", "stream", "gstreamer")
        self.stem = stem
        self.vid_stride = vid_stride
        self.reconnect = reconnect if reconnect is not None else ReconnectPolicy()
        self.description = f"{kind} {target}" + (f", 1 frame in {vid_stride}" if vid_stride > 1 else "")
        self.inputs = (Path(target),) if kind == "video" else ()
        self._stop = threading.Event()
        self.capture = self._open()
        if not self.capture.isOpened():
            hint = {
                "camera": "is a camera attached at that index?",
                "stream": "is the URL reachable, and does OpenCV's FFmpeg support its protocol?",
                "gstreamer": "does the pipeline run with gst-launch-1.0, and end in appsink?",
                "video": "is it a video OpenCV's FFmpeg can decode?",
            }[kind]
            raise InputError(f"cannot open {kind} {target!r} ({hint})")
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.source_total = count if count > 0 and not self.live else None  # frames in the file
        self.total = None if self.source_total is None else -(-self.source_total // vid_stride)
        fps = float(self.capture.get(cv2.CAP_PROP_FPS))
        self.fps = fps if 0 < fps < 1000 else None

    def _open(self):
        import cv2

        if self.live and self.kind != "camera":
            _quiet_video_logs(cv2)
        if self.kind == "gstreamer":
            return cv2.VideoCapture(self.target, cv2.CAP_GSTREAMER)
        if self.kind == "stream":  # bounded opens and reads: a hung link must count as dropped
            return cv2.VideoCapture(
                self.target,
                cv2.CAP_FFMPEG,
                [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                    int(1000 * self.reconnect.open_timeout_s),
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    int(1000 * self.reconnect.read_timeout_s),
                ],
            )
        return cv2.VideoCapture(self.target)

    @property
    def reconnects(self) -> bool:
        return self.kind in ("stream", "gstreamer") and self.reconnect.give_up_after_s > 0

    def _read(self, index: int):
        """(ok, image) of source frame `index`: frames between kept ones are grabbed, not converted."""
        if self.vid_stride > 1 and index % self.vid_stride:
            return self.capture.grab(), None
        return self.capture.read()

    def __iter__(self) -> Iterator[Frame]:
        """Frames in order. A video file's frame that does not decode before the declared frame
        count is skipped (an error Frame) and reading goes on; MAX_UNDECODABLE_IN_A_ROW failures
        in a row end the file, reported as one error Frame for all frames still missing.
        A camera ends at its first failed read; a stream or pipeline reconnects (module docstring)."""
        index, failed = 0, []
        last_frame_at = time.monotonic()
        try:
            while not self._stop.is_set():
                ok, image = self._read(index)
                if ok:
                    last_frame_at = time.monotonic()
                    for bad in failed:
                        yield Frame(
                            bad,
                            self._name(bad),
                            None,
                            error="the frame could not be decoded",
                            where=f"{self.target} frame {bad}",
                        )
                    failed = []
                    if image is not None:
                        yield Frame(index, self._name(index), image)
                elif self.reconnects:
                    index = yield from self._reconnect(index, last_frame_at)
                    if index is None:
                        return
                    last_frame_at = time.monotonic()
                    continue  # the reopened stream's first frame is read next
                elif self.kind in ("stream", "gstreamer"):  # reconnecting is off: the run ends, and says why
                    yield self._gave_up(
                        index,
                        str(self.target),
                        f"link dropped after {index} frames (reconnecting is off: --reconnect-timeout 0)",
                    )
                    break
                elif self.live or self.source_total is None or index >= self.source_total:
                    break
                else:
                    failed.append(index)
                    if len(failed) >= MAX_UNDECODABLE_IN_A_ROW:
                        break
                index += 1
            if failed:  # the file ended early: one report for every declared frame not decoded
                first, missing = failed[0], max(self.source_total - failed[0], len(failed))
                kept = len(range(first + (-first) % self.vid_stride, first + missing, self.vid_stride))
                yield Frame(
                    first,
                    self._name(first),
                    None,
                    lost=kept,
                    error=f"frames {first}-{first + missing - 1} of the {self.source_total} its header "
                    "declares could not be decoded (a truncated file?)",
                    where=str(self.target),
                )
        finally:
            self.close()

    def _reconnect(self, index: int, last_frame_at: float):
        """The link dropped before source frame `index`: reopen with backoff until it delivers a
        frame again (-> the index to go on from, past the frames lost in the gap) or the policy
        gives up (-> None). Yields the link Frames that report it."""
        policy, where = self.reconnect, str(self.target)
        yield Frame(
            index,
            self._name(index),
            None,
            link="down",
            lost=0,
            where=where,
            error=f"link dropped after {index} frames; reconnecting (giving up after "
            f"{policy.give_up_after_s:g} s without frames)",
        )
        attempts = 0
        for wait in policy.waits():
            remaining = last_frame_at + policy.give_up_after_s - time.monotonic()
            if remaining <= 0 or self._stop.wait(min(wait, remaining)):
                break
            attempts += 1
            self.capture.release()
            self.capture = self._open()
            if self.capture.isOpened() and not self._stop.is_set():
                # a reopened stream counts as back only once it delivers a frame
                ok, image = self.capture.read()
                if ok:
                    gap = time.monotonic() - last_frame_at
                    lost = round(gap * self.fps) if self.fps else 0
                    lost_kept = -(-lost // self.vid_stride) if lost else 0
                    yield Frame(
                        index,
                        self._name(index),
                        None,
                        link="back",
                        lost=lost_kept,
                        where=where,
                        error=f"link back after {gap:.1f} s ({attempts} reconnect attempt(s)); "
                        + (
                            f"~{lost_kept} frames lost in the gap"
                            if self.fps
                            else "frames lost in the gap unknown (the stream states no frame rate)"
                        ),
                    )
                    index += lost
                    if self.vid_stride > 1:  # the first frame after the gap is always kept
                        index += (-index) % self.vid_stride
                    yield Frame(index, self._name(index), image)
                    return index + 1
        if self._stop.is_set():
            return None
        yield self._gave_up(
            index,
            where,
            f"link down for {time.monotonic() - last_frame_at:.1f} s ({attempts} reconnect "
            f"attempt(s)): the stream did not come back within {policy.give_up_after_s:g} s",
        )
        return None

    def _name(self, index: int) -> str:
        return f"{self.stem}_{index:06d}"

    def _gave_up(self, index: int, where: str, error: str) -> Frame:
        """The Frame that ends a live source whose link stays down: no image, `error` says why."""
        return Frame(index, self._name(index), None, link="gave-up", lost=0, where=where, error=error)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.capture.release()


def _is_glob(text: str) -> bool:
    return any(char in text for char in "*?[")


def open_source(spec: str | int, vid_stride: int = 1, reconnect: ReconnectPolicy | None = None) -> FrameSource:
    """A FrameSource for an image file, a folder of images, a glob pattern, a video file, a camera
    index ("0"), a stream URL (rtsp://, http://, ...) or a GStreamer pipeline ("... ! appsink").
    UsageError names what was not understood, InputError a folder or pattern without images or a
    device / stream that does not open, MissingDependencyError a GStreamer pipeline on an OpenCV
    built without GStreamer.

    vid_stride: keep every Nth frame of a video, camera, stream or pipeline (images: refused).
    reconnect: how a stream or pipeline that drops is reopened (default ReconnectPolicy()).

    `inputs` of the result is what an output must never replace: the folder of a folder source
    (nothing may be written inside it), the matched files of a glob, the image or video file."""
    if isinstance(vid_stride, bool) or not isinstance(vid_stride, int) or vid_stride < 1:
        raise UsageError("--vid-stride must be a positive integer", got=vid_stride)
    source = _open(str(spec), vid_stride, reconnect)
    if vid_stride > 1 and source.kind == "images":
        raise UsageError(f"--vid-stride applies to videos, cameras and streams; source {str(spec)!r} is still images")
    return source


def _open(text: str, vid_stride: int, reconnect: ReconnectPolicy | None) -> FrameSource:
    video = {"vid_stride": vid_stride, "reconnect": reconnect}
    if text.isdigit():
        return VideoCapture(int(text), "camera", f"camera{text}", **video)
    if text.lower().startswith(STREAM_PREFIXES):
        return VideoCapture(text, "stream", "stream", **video)
    if GSTREAMER_LINK in text and not Path(text).exists():
        check_gstreamer_pipeline(text)
        return VideoCapture(text, "gstreamer", "gstreamer", **video)
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
            f"source {text!r} is not an existing file or folder, a glob pattern, a camera index, a "
            f"stream URL ({', '.join(STREAM_PREFIXES)}) or a GStreamer pipeline ('... ! appsink')"
        )
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return ImageFiles([path], f"image {text}")
    if suffix in VIDEO_SUFFIXES:
        return VideoCapture(str(path), "video", path.stem, **video)
    raise UsageError(
        f"source {text!r}: unknown file type {suffix!r}; images {', '.join(IMAGE_SUFFIXES)}, "
        f"videos {', '.join(VIDEO_SUFFIXES)}"
    )


def check_gstreamer_pipeline(text: str) -> None:
    """Refuse, in one line, a GStreamer pipeline this OpenCV cannot run: one without GStreamer
    support (pip's opencv-python wheels), or a pipeline that does not end in OpenCV's appsink."""
    import cv2

    if not opencv_backends()["GStreamer"]:
        raise MissingDependencyError(
            f"source is a GStreamer pipeline, but this OpenCV {cv2.__version__} ({Path(cv2.__file__).parent}) was "
            "built without GStreamer (see `sspnet doctor`); on a Jetson use JetPack's OpenCV (python3-opencv) "
            "and uninstall pip's opencv-python(-headless) from this environment"
        )
    last = text.rsplit(GSTREAMER_LINK, 1)[-1].strip()
    if not last.startswith("appsink"):
        raise UsageError(
            "a GStreamer pipeline for OpenCV must end in appsink, e.g. '... ! videoconvert ! "
            "video/x-raw,format=BGR ! appsink drop=true max-buffers=2'",
            got=last,
        )


class FrameQueue:
    """Decode frames on a background thread into a queue of at most `maxsize` frames.

    drop_when_full=False: the decoder waits for room (every frame is processed: files).
    drop_when_full=True: the decoder never waits; a new frame arriving at a full queue evicts the
    oldest queued one, counted in `dropped` (live sources). `max_queued` is the largest queue
    length seen, never above `maxsize`. Link events (Frames with `link` set) are never dropped:
    the consumer must hear that a stream went down. An exception in the decoder is re-raised in the
    consumer. Stop early with `close()` (iteration also closes the queue when the consumer breaks off).

    prepare: called on the decoder thread with every decoded item before it is queued (e.g. cutting
    a frame into model tiles), so that work overlaps with the consumer's inference.
    """

    def __init__(
        self, frames: Iterable, maxsize: int = 4, drop_when_full: bool = False, prepare: Callable | None = None
    ):
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be a positive integer, got {maxsize!r}")
        self.frames = frames
        self.prepare = prepare
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
                if self.prepare is not None:
                    frame = self.prepare(frame)
                with self._cond:
                    while not self.drop_when_full and len(self._queue) >= self.maxsize and not self._stop:
                        self._cond.wait()
                    if self._stop:
                        break
                    if len(self._queue) >= self.maxsize:  # live source, consumer behind: drop the oldest
                        self._drop_oldest_frame()
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

    def _drop_oldest_frame(self) -> None:
        """Drop the oldest queued frame that is not a link event (the queue may then hold one more
        item than maxsize while only events wait, which are few and small)."""
        for position, item in enumerate(self._queue):
            if getattr(item, "link", None) is None:
                del self._queue[position]
                self.dropped += 1
                return

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
        stop = getattr(self.frames, "stop", None)
        if callable(stop):  # cut a source's reconnect wait short
            stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        close = getattr(self.frames, "close", None)
        if callable(close) and (self._thread is None or not self._thread.is_alive()):
            close()


__all__ = [
    "Frame",
    "FrameSource",
    "FrameQueue",
    "ImageFiles",
    "ReconnectPolicy",
    "VideoCapture",
    "open_source",
    "opencv_backends",
    "check_gstreamer_pipeline",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "STREAM_PREFIXES",
]
