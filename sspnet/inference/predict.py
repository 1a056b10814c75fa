"""The `sspnet predict` loop: frames from a source -> Detector -> drawings, video and detections.

    detector = Detector(load_backend("model.onnx"), color_order="bgr", score_threshold=0.25)
    source = open_source("clips/flight.mp4")
    summary = predict(detector, source, PredictOptions(out="runs/pred"))

Outputs in `out` (all optional):
    <image name>                annotated copy of each still image (boxes, optional scores)
    <video stem>.mp4 / .avi     annotated video for video, camera and stream sources
    attention/<name>            2 x 2 attention heat-map panel per frame (torch backend), or
    attention/<stem>.mp4        the panels as a video
    detections.jsonl            JSON Lines, one record per processed frame, written and flushed as
                                each frame is done (a crash or Ctrl-C loses at most the frame in flight)
    detections.json             COCO results of every processed frame, written atomically at the end

detections.jsonl: one JSON object per line, in processing order, for every frame that was processed
(frames that could not be read are not listed; they are warned about and counted):

    {"image_id": 3, "file_name": "frame_2.png", "width": 1920, "height": 1080,
     "detections": [{"image_id": 3, "file_name": "frame_2.png", "category_id": 1,
                     "category": "person", "bbox": [x, y, w, h], "score": 0.91}, ...]}

image_id counts source frames from 1 (a skipped frame keeps its number, so ids stay stable);
"detections" holds the frame's COCO result rows exactly as detections.json lists them (so
detections.json is the concatenation of every line's "detections"); a damaged but decoded frame
(a truncated JPEG) also carries "warning". The last line may be incomplete after a crash.

Never destroying an input: `plan_outputs` resolves every output path and checks it with
sspnet.io.outputs.OutputGuard BEFORE any work (an output folder that is, or lies inside, an input
folder is refused; so is one holding an input image; the model file is protected too), and every
annotated image is checked again just before it is written. All files are written through
sspnet.io.atomic: a crash never leaves half an image, video or JSON file behind.

Keeping going: an image that cannot be read or a video frame that cannot be decoded is skipped with
one warning naming it, and counted (summary.skipped); when no frame at all could be processed,
`predict` raises InputError. Ctrl-C stops the run cleanly: the video and detections.json are
finished with the frames processed so far (summary.interrupted).

A pipeline that keeps the model busy: three stages on three threads, handing frames on through
bounded queues (memory stays bounded by --queue frames; a waiting frame also holds its cut tiles,
about its own size again: ~35 MB for a 4K frame in 640x512 tiles, freed once the model has run):
    decoder thread   decode + cut into model tiles (sources.FrameQueue, Detector.prepare)
    calling thread   the model (Detector.infer)
    writer thread    cross-tile merge, frame hook (tracking), drawing, video / JSON writing, in
                     frame order (Detector.finish; runs inline with attention overlays, which read
                     the model's last call)
Live sources drop their oldest waiting frame when inference is slower than the camera, and the
summary counts them. A stream whose link drops is reconnected by its source (sources.ReconnectPolicy):
the outage is warned about and counted (summary.outages, summary.lost_in_gaps), and a stream that
does not come back ends the run with summary.link_lost (the outputs hold every frame before it).

Frame hook (PredictOptions.frame_hook, e.g. a tracker): an object with
    plan(guard, folder)               called by plan_outputs to check its own output paths
    on_frame(frame, found, rows)      -> the rows to write, for each processed frame, in order
    on_gap(frame)                     optional; each Frame with no image (unreadable, link event)
    draw(image, frame)                -> the annotated image (replaces the plain box drawing)
    finish(summary)                   after the outputs are written (may add summary.outputs / extra_rows)
all called on the writer thread, one frame at a time, in frame order.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sspnet.errors import InputError, MissingDependencyError, UsageError
from sspnet.inference.draw import attention_panel, attention_to_frame, draw_detections
from sspnet.inference.results import coco_results, write_json
from sspnet.inference.sources import FrameQueue, FrameSource
from sspnet.io.atomic import atomic_output
from sspnet.io.outputs import OutputGuard
from sspnet.runtime.tiling import tile_grid

IMAGE_FORMATS = ("same", "png", "jpg")
STAGES = ("preprocess_ms", "inference_ms", "postprocess_ms")
JSON_NAME = "detections.json"
JSONL_NAME = "detections.jsonl"


@dataclass
class PredictOptions:
    """What `predict` writes and how it runs (see the module docstring).

    keep_results: also keep every COCO result row in memory (summary.results); a long camera run
    should not (the rows are in detections.jsonl / .json).
    warn: called with each warning line (default: printed to stderr).
    """

    out: str | Path | None = None
    show_labels: bool = True
    save_media: bool = True  # annotated images / video
    save_json: bool = True  # detections.jsonl as frames are processed + detections.json at the end
    attention: bool = False  # needs a TorchBackend with record_attention=True
    image_format: str = "same"  # annotated still images: the source's format, or png / jpg
    max_frames: int | None = None
    queue_size: int = 4
    progress: bool = True
    keep_results: bool = True
    warn: Callable[[str], None] | None = None
    frame_hook: object = None  # see the module docstring (e.g. sspnet.tracking's hook)


@dataclass
class PredictSummary:
    """Counts and timings of one `predict` run; `outputs` maps what was written to its path.

    frames: processed frames; skipped: source frames that could not be read or decoded;
    damaged: processed frames that came with a warning (truncated JPEG); non_finite: detections
    with NaN / inf values, dropped with a warning; dropped: live-source frames dropped because
    inference was slower; interrupted: stopped by Ctrl-C; outages: times a stream's link dropped;
    lost_in_gaps: source frames estimated lost while it was down; link_lost: the stream did not come
    back (the run ended there); extra_rows: rows a frame hook adds to the printed summary."""

    source: str
    frames: int = 0
    detections: int = 0
    skipped: int = 0
    damaged: int = 0
    non_finite: int = 0
    dropped: int = 0
    interrupted: bool = False
    outages: int = 0
    lost_in_gaps: int = 0
    link_lost: bool = False
    seconds: float = 0.0
    stage_ms: dict = field(default_factory=dict)  # mean per frame
    outputs: dict = field(default_factory=dict)
    results: list = field(default_factory=list, repr=False)  # the COCO result dicts (keep_results)
    first_problem: str | None = None  # the first skipped input and why
    link_problem: str | None = None  # why the link was given up
    extra_rows: list = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def rows(self) -> list[tuple[str, str]]:
        rows = [
            ("source", self.source),
            ("frames", str(self.frames)),
            ("skipped (unreadable)", str(self.skipped)),
        ]
        if self.damaged:
            rows.append(("damaged (processed, warned)", str(self.damaged)))
        if self.non_finite:
            rows.append(("non-finite detections dropped", str(self.non_finite)))
        rows += [
            ("detections", str(self.detections)),
            ("frames/s", f"{self.fps:.2f}"),
            ("dropped frames", str(self.dropped)),
        ]
        if self.outages or self.link_lost:
            rows += [
                ("link outages", str(self.outages)),
                ("frames lost in link gaps (estimated)", str(self.lost_in_gaps)),
            ]
        if self.link_lost:
            rows.append(("link lost", f"{self.link_problem}; outputs hold the frames processed before it"))
        if self.interrupted:
            rows.append(("interrupted", "Ctrl-C; outputs hold the frames processed before it"))
        rows += [(f"mean {name[:-3]} (ms)", f"{value:.1f}") for name, value in self.stage_ms.items()]
        rows += list(self.extra_rows)
        rows += [(f"wrote {kind}", str(path)) for kind, path in self.outputs.items()]
        return rows


# ---- output paths, checked before any work -------------------------------------------------------
@dataclass
class OutputPlan:
    """Every path `predict` writes, resolved and checked against the inputs (see plan_outputs)."""

    folder: Path
    guard: OutputGuard
    json: Path | None = None
    jsonl: Path | None = None
    video: Path | None = None
    attention_video: Path | None = None
    annotate_images: bool = False
    attention_images: bool = False


def plan_outputs(source: FrameSource, options: PredictOptions, protect=()) -> OutputPlan | None:
    """Resolve and check every output path of a run before any work (None when nothing is written).

    Raises OutputConflictError (one line naming both paths) when the output folder is, or lies
    inside, an input folder, holds an input image, or when an output file would replace an input
    (source files and `protect`, e.g. the model file) or a file of another kind.
    """
    if options.out is None:
        if options.frame_hook is not None:  # frame hook: told that nothing is written
            options.frame_hook.plan(None, None)
        return None
    folder = Path(options.out)
    guard = OutputGuard(inputs=getattr(source, "inputs", ()), verb="predict")
    guard.check_dir(folder)
    for path in protect:  # after check_dir: the model may sit in the output folder, never be replaced
        if path is not None:
            guard.add_input(path)
    plan = OutputPlan(folder=folder, guard=guard)
    if options.save_json:
        plan.json = guard.check_file(folder / JSON_NAME, "coco-results")
        plan.jsonl = guard.check_file(folder / JSONL_NAME, "jsonl")
    still_images = getattr(source, "kind", "images") == "images"
    if options.save_media and still_images:
        plan.annotate_images = True
        plan.attention_images = options.attention
    elif options.save_media:
        stem = getattr(source, "stem", "video")
        suffix = ".avi" if str(getattr(source, "target", "")).lower().endswith(".avi") else ".mp4"
        plan.video = guard.check_file(folder / f"{stem}{suffix}", "video")
        if options.attention:
            plan.attention_video = guard.check_file(folder / "attention" / f"{stem}{suffix}", "video")
    if options.frame_hook is not None:  # frame hook: checks its own outputs with the same guard
        options.frame_hook.plan(guard, folder)
    return plan


class _VideoOut:
    """An OpenCV VideoWriter on a temporary file, opened on the first frame (its size is known only
    then) and renamed over `path` when `stack` closes without an error (sspnet.io.atomic)."""

    def __init__(self, path: Path, fps: float, stack: contextlib.ExitStack):
        self.path = path
        self.fps = fps
        self.stack = stack
        self.writer = None

    def write(self, image: np.ndarray) -> None:
        import cv2

        if self.writer is None:
            temporary = self.stack.enter_context(atomic_output(self.path))
            codec = "MJPG" if self.path.suffix == ".avi" else "mp4v"
            height, width = image.shape[:2]
            self.writer = cv2.VideoWriter(str(temporary), cv2.VideoWriter_fourcc(*codec), self.fps, (width, height))
            self.stack.callback(self.writer.release)  # runs before atomic_output renames the file
            if not self.writer.isOpened():
                raise MissingDependencyError(
                    f"cannot write video {self.path} with codec {codec} (an OpenCV build without it?)"
                )
        self.writer.write(image)


def _image_name(name: str, image_format: str, used: set) -> str:
    stem, suffix = Path(name).stem, Path(name).suffix or ".png"
    suffix = suffix if image_format == "same" else f".{image_format}"
    candidate, k = f"{stem}{suffix}", 1
    while candidate in used:  # same file name from two folders (a recursive glob)
        candidate, k = f"{stem}_{k}{suffix}", k + 1
    used.add(candidate)
    return candidate


def _write_image(path: Path, image: np.ndarray, guard: OutputGuard) -> None:
    import cv2

    guard.check_file(path, "image")
    with atomic_output(path) as temporary:
        if not cv2.imwrite(str(temporary), image):
            raise OSError(errno.EIO, "OpenCV could not write the image", str(path))


def frame_attention(detector, frame_shape: tuple[int, ...]) -> list[np.ndarray]:
    """The attention maps of the detector's last frame, one float32 [H, W] per level, in frame
    pixels (needs fit="tile" and a TorchBackend recording attention)."""
    if detector.fit != "tile":
        raise UsageError(f"attention overlays need fit='tile', got fit={detector.fit!r}")
    tile_h, tile_w = detector.backend.input_size
    grid = tile_grid(frame_shape[0], frame_shape[1], tile_h, tile_w, detector.tile_overlap)
    maps = detector.backend.last_attention
    return [attention_to_frame(level, grid, (tile_h, tile_w), frame_shape[:2]) for level in maps]


def _check_options(detector, options: PredictOptions) -> None:
    if options.image_format not in IMAGE_FORMATS:
        raise UsageError(f"image_format must be one of {list(IMAGE_FORMATS)}, got {options.image_format!r}")
    if options.max_frames is not None and options.max_frames < 1:
        raise UsageError(f"max_frames must be positive or None, got {options.max_frames}")
    if detector.color_order != "bgr":
        raise UsageError("predict reads frames with OpenCV (BGR): build the Detector with color_order='bgr'")
    if options.attention and not getattr(detector.backend, "record_attention", False):
        raise UsageError(
            "attention overlays need the torch backend recording attention (TorchBackend(record_attention=True))"
        )
    if options.attention and detector.fit != "tile":
        raise UsageError(f"attention overlays need fit='tile', got fit={detector.fit!r}")


def _finite_rows(rows: list[dict]) -> list[dict]:
    return [row for row in rows if math.isfinite(row["score"]) and all(math.isfinite(v) for v in row["bbox"])]


class _RunWriter:
    """Writes one run's outputs frame by frame: the JSON Lines record (flushed), the annotated
    image or video frame, the attention panel; `finish` writes detections.json from the JSON Lines.
    Files it opens are closed by `stack` (videos renamed into place only when no error escapes)."""

    def __init__(self, plan: OutputPlan, options: PredictOptions, classes, fps: float, stack: contextlib.ExitStack):
        self.plan, self.options, self.classes, self.stack = plan, options, classes, stack
        self.video = _VideoOut(plan.video, fps, stack) if plan.video else None
        self.attention_video = _VideoOut(plan.attention_video, fps, stack) if plan.attention_video else None
        self.jsonl = None  # opened on the first processed frame: a run that processes nothing leaves no file
        self.used_names: set = set()

    def write(self, frame, found, rows: list[dict], detector) -> None:
        if self.plan.jsonl is not None:
            self._write_record(frame, rows)
        if not (self.plan.annotate_images or self.video is not None):
            return
        hook = self.options.frame_hook
        if hook is not None:  # frame hook: draws its own (e.g. track ids and trails)
            drawn = hook.draw(frame.image, frame)
        else:
            drawn = draw_detections(
                frame.image, found.boxes, found.scores, found.labels, self.classes, show_labels=self.options.show_labels
            )
        panel = None
        if self.options.attention:
            panel = attention_panel(frame.image, frame_attention(detector, frame.image.shape))
        if self.plan.annotate_images:
            name = _image_name(frame.name, self.options.image_format, self.used_names)
            _write_image(self.plan.folder / name, drawn, self.plan.guard)
            if panel is not None:
                _write_image(self.plan.folder / "attention" / name, panel, self.plan.guard)
        else:
            self.video.write(drawn)
            if panel is not None:
                self.attention_video.write(panel)

    def _write_record(self, frame, rows: list[dict]) -> None:
        if self.jsonl is None:
            self.plan.jsonl.parent.mkdir(parents=True, exist_ok=True)
            self.jsonl = self.stack.enter_context(open(self.plan.jsonl, "w", encoding="utf-8"))
        height, width = frame.image.shape[:2]
        record = {
            "image_id": frame.index + 1,
            "file_name": frame.name,
            "width": int(width),
            "height": int(height),
            "detections": rows,
        }
        if frame.warning:
            record["warning"] = frame.warning
        self.jsonl.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        self.jsonl.flush()

    def finish(self, summary: PredictSummary) -> None:
        """After the stack closed: write detections.json (atomically) and list what was written."""
        plan = self.plan
        if plan.annotate_images and summary.frames:
            summary.outputs["annotated images"] = plan.folder
        for kind, writer in (("annotated video", self.video), ("attention video", self.attention_video)):
            if writer is not None and writer.writer is not None:
                summary.outputs[kind] = writer.path
        if plan.attention_images and summary.frames:
            summary.outputs["attention panels"] = plan.folder / "attention"
        if self.jsonl is not None:
            summary.outputs["detections (JSON Lines)"] = plan.jsonl
            summary.outputs["detections (COCO JSON)"] = write_json(plan.json, _rows_of_jsonl(plan.jsonl))


class _InOrderWorker:
    """Runs jobs one at a time, in the order given, on one background thread, with at most `depth`
    jobs waiting (the caller blocks beyond that); inline=True runs each job at once on the caller's
    thread. A job's exception is raised in the caller at its next submit() or at drain(), and the
    jobs after it do not run."""

    def __init__(self, depth: int, inline: bool):
        self.depth = depth
        self.executor = None if inline else ThreadPoolExecutor(1, thread_name_prefix="sspnet-write")
        self.pending: deque = deque()
        self.failed = False  # a job raised: the jobs after it are skipped (no frame written past a failure)

    def _run(self, job: Callable, *args) -> None:
        if self.failed:
            return
        try:
            job(*args)
        except BaseException:
            self.failed = True
            raise

    def submit(self, job: Callable, *args) -> None:
        if self.executor is None:
            self._run(job, *args)
            return
        self.pending.append(self.executor.submit(self._run, job, *args))
        while self.pending and (self.pending[0].done() or len(self.pending) > self.depth):
            self.pending.popleft().result()

    def drain(self) -> None:
        while self.pending:
            self.pending.popleft().result()

    def shutdown(self) -> None:
        """Wait for the job in progress and drop the rest (after an error)."""
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)


def predict(
    detector, source: FrameSource, options: PredictOptions | None = None, plan: OutputPlan | None = None
) -> PredictSummary:
    """Run `detector` (a runtime Detector with color_order="bgr") over every frame of `source`.

    `plan`: the run's checked output paths (plan_outputs); made here when not given. The CLI makes
    it before loading the model, so that a refused output costs nothing. `options` default:
    PredictOptions().
    """
    options = PredictOptions() if options is None else options
    _check_options(detector, options)
    if plan is None:
        plan = plan_outputs(source, options, protect=[getattr(detector.backend, "path", None)])
    classes = detector.backend.metadata.classes
    hook = options.frame_hook
    summary = PredictSummary(source=getattr(source, "description", str(source)))

    total = getattr(source, "total", None)
    if options.max_frames is not None:
        total = min(total, options.max_frames) if total is not None else options.max_frames
    bar = None
    if options.progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="predict", unit="frame", dynamic_ncols=True, mininterval=0.5)

    def warn(message: str) -> None:
        if options.warn is not None:
            options.warn(message)
        elif bar is not None:
            bar.write(f"warning: {message}", file=sys.stderr)
        else:
            print(f"warning: {message}", file=sys.stderr, flush=True)

    def prepare(frame):  # decoder thread: cut the frame into model tiles while the model runs
        if frame.image is not None:
            frame.prepared = detector.prepare(frame.image)
        return frame

    queue = FrameQueue(
        source, maxsize=options.queue_size, drop_when_full=getattr(source, "live", False), prepare=prepare
    )
    stage_sums = dict.fromkeys(STAGES, 0.0)
    writer = None

    def gap(frame) -> None:  # writer thread: a frame that has no image (unreadable, or a link event)
        where = frame.where or frame.name
        if frame.link == "down":
            summary.outages += 1
        elif frame.link == "back":
            summary.lost_in_gaps += frame.lost
        elif frame.link == "gave-up":
            summary.link_lost, summary.link_problem = True, frame.error
        else:
            summary.skipped += frame.lost
            summary.first_problem = summary.first_problem or f"{where}: {frame.error}"
        warn(f"{where}: {frame.error}" if frame.link else f"skipped {where}: {frame.error}")
        if hook is not None and hasattr(hook, "on_gap"):  # frame hook
            hook.on_gap(frame)

    def finish(frame, outputs) -> None:  # writer thread: merge, hook, draw, write; in frame order
        where = frame.where or frame.name
        if frame.warning:
            summary.damaged += 1
            warn(f"{where}: {frame.warning}")
        found = detector.finish(frame.prepared, outputs)
        for stage in STAGES:
            stage_sums[stage] += frame.prepared.timings.get(stage, 0.0)
        rows = coco_results(frame.index + 1, frame.name, found.boxes, found.scores, found.labels, classes)
        finite = _finite_rows(rows)
        if len(finite) < len(rows):
            summary.non_finite += len(rows) - len(finite)
            warn(
                f"{where}: dropped {len(rows) - len(finite)} detections with non-finite boxes or "
                "scores (NaN / inf: is the model broken?)"
            )
            rows = finite
        if hook is not None:  # frame hook: e.g. a tracker adds "track_id" to each row
            rows = hook.on_frame(frame, found, rows)
        summary.frames += 1
        summary.detections += len(rows)
        if options.keep_results:
            summary.results += rows
        if writer is not None:
            writer.write(frame, found, rows, detector)
        frame.prepared = None
        if bar is not None:
            bar.update(1)
            bar.set_postfix(fps=f"{summary.frames / (time.perf_counter() - start):.2f}", dropped=queue.dropped)

    # attention overlays read the model's last call: they cannot lag behind it
    post = _InOrderWorker(depth=2, inline=options.attention)
    inferred = 0
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:  # closes the queue, the bar, the JSONL stream and the videos
        stack.callback(queue.close)
        if bar is not None:
            stack.callback(bar.close)
        if plan is not None:
            # the annotated video plays at the source's speed: --vid-stride N keeps 1 frame in N
            fps = (getattr(source, "fps", None) or 25.0) / getattr(source, "vid_stride", 1)
            writer = _RunWriter(plan, options, classes, fps, stack)
        try:
            try:
                for frame in queue:
                    if frame.image is None:
                        post.submit(gap, frame)
                        continue
                    post.submit(finish, frame, detector.infer(frame.prepared))
                    inferred += 1
                    if options.max_frames is not None and inferred >= options.max_frames:
                        break
            except KeyboardInterrupt:  # a clean stop: finish the outputs with the frames processed so far
                summary.interrupted = True
            except BaseException:  # a crash: still write the frames the model already did, then fail
                with contextlib.suppress(Exception):
                    post.drain()
                raise
            post.drain()
        finally:
            post.shutdown()  # before the stack closes the files the writer thread writes
    summary.seconds = time.perf_counter() - start
    summary.dropped = queue.dropped
    if summary.frames == 0 and summary.skipped > 0 and not summary.interrupted:
        raise InputError(
            f"no frame could be processed: all {summary.skipped} input frame(s) could not be read "
            f"(the first: {summary.first_problem})"
        )
    if summary.frames:
        summary.stage_ms = {stage: value / summary.frames for stage, value in stage_sums.items()}
    if writer is not None:
        writer.finish(summary)
    if hook is not None:  # frame hook: writes its own outputs last
        hook.finish(summary)
    return summary


def _rows_of_jsonl(path: Path):
    """The COCO result rows of every record of a detections.jsonl, streamed (bounded memory)."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            yield from json.loads(line)["detections"]


__all__ = [
    "PredictOptions",
    "PredictSummary",
    "OutputPlan",
    "plan_outputs",
    "predict",
    "frame_attention",
    "JSON_NAME",
    "JSONL_NAME",
]
