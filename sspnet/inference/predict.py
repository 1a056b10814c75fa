"""The `sspnet predict` loop: frames from a source -> Detector -> drawings, video and COCO JSON.

    detector = Detector(open_backend("model.onnx"), color_order="bgr", score_threshold=0.25)
    summary = predict(detector, open_source("clips/flight.mp4"), PredictOptions(out="runs/pred"))

Outputs in `out` (all optional):
    <image name>                annotated copy of each still image (boxes, optional scores)
    <video stem>.mp4 / .avi     annotated video for video, camera and stream sources
    attention/<name>            2 x 2 attention heat-map panel per frame (torch backend), or
    attention/<stem>.mp4        the panels as a video
    detections.json             COCO results of every processed frame (sspnet.inference.results)

Decoding runs on its own thread (sources.FrameQueue); live sources drop frames when inference is
slower than the camera, and the summary counts them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sspnet.inference.draw import attention_panel, attention_to_frame, draw_detections
from sspnet.inference.results import coco_results, write_json
from sspnet.inference.sources import FrameQueue, FrameSource
from sspnet.runtime.tiling import tile_grid

IMAGE_FORMATS = ("same", "png", "jpg")
STAGES = ("preprocess_ms", "inference_ms", "postprocess_ms")


@dataclass
class PredictOptions:
    """What `predict` writes and how it runs (see the module docstring)."""

    out: str | Path | None = None
    show_labels: bool = True
    save_media: bool = True  # annotated images / video
    save_json: bool = True
    attention: bool = False  # needs a TorchBackend with record_attention=True
    image_format: str = "same"  # annotated still images: the source's format, or png / jpg
    max_frames: int | None = None
    queue_size: int = 4
    progress: bool = True


@dataclass
class PredictSummary:
    """Counts and timings of one `predict` run; `outputs` maps what was written to its path."""

    source: str
    frames: int = 0
    detections: int = 0
    dropped: int = 0
    seconds: float = 0.0
    stage_ms: dict = field(default_factory=dict)  # mean per frame
    outputs: dict = field(default_factory=dict)
    results: list = field(default_factory=list, repr=False)  # the COCO result dicts

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def rows(self) -> list[tuple[str, str]]:
        rows = [
            ("source", self.source),
            ("frames", str(self.frames)),
            ("detections", str(self.detections)),
            ("frames/s", f"{self.fps:.2f}"),
            ("dropped frames", str(self.dropped)),
        ]
        rows += [(f"mean {name[:-3]} (ms)", f"{value:.1f}") for name, value in self.stage_ms.items()]
        rows += [(f"wrote {kind}", str(path)) for kind, path in self.outputs.items()]
        return rows


class _VideoOut:
    """An OpenCV VideoWriter opened on the first frame (its size is known only then)."""

    def __init__(self, path: Path, fps: float):
        self.path = path
        self.fps = fps
        self.writer = None

    def write(self, image: np.ndarray) -> None:
        import cv2

        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            codec = "MJPG" if self.path.suffix == ".avi" else "mp4v"
            height, width = image.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*codec), self.fps, (width, height))
            if not self.writer.isOpened():
                raise RuntimeError(f"cannot write video {self.path} with codec {codec} (OpenCV build without it?)")
        self.writer.write(image)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def _image_name(name: str, image_format: str, used: set) -> str:
    stem, suffix = Path(name).stem, Path(name).suffix or ".png"
    suffix = suffix if image_format == "same" else f".{image_format}"
    candidate, k = f"{stem}{suffix}", 1
    while candidate in used:  # same file name from two folders (a recursive glob)
        candidate, k = f"{stem}_{k}{suffix}", k + 1
    used.add(candidate)
    return candidate


def _write_image(path: Path, image: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise RuntimeError(f"cannot write image {path}")


def frame_attention(detector, frame_shape: tuple[int, ...]) -> list[np.ndarray]:
    """The attention maps of the detector's last frame, one float32 [H, W] per level, in frame
    pixels (needs fit="tile" and a TorchBackend recording attention)."""
    if detector.fit != "tile":
        raise ValueError(f"attention overlays need fit='tile', got fit={detector.fit!r}")
    tile_h, tile_w = detector.backend.input_size
    grid = tile_grid(frame_shape[0], frame_shape[1], tile_h, tile_w, detector.tile_overlap)
    maps = detector.backend.last_attention
    return [attention_to_frame(level, grid, (tile_h, tile_w), frame_shape[:2]) for level in maps]


def predict(detector, source: FrameSource, options: PredictOptions = PredictOptions()) -> PredictSummary:
    """Run `detector` (a runtime Detector with color_order="bgr") over every frame of `source`."""
    if options.image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {list(IMAGE_FORMATS)}, got {options.image_format!r}")
    if options.max_frames is not None and options.max_frames < 1:
        raise ValueError(f"max_frames must be positive or None, got {options.max_frames}")
    if detector.color_order != "bgr":
        raise ValueError("predict reads frames with OpenCV (BGR): build the Detector with color_order='bgr'")
    if options.attention and not getattr(detector.backend, "record_attention", False):
        raise ValueError("attention overlays need the torch backend recording attention (TorchBackend(record_attention=True))")
    if options.attention and detector.fit != "tile":
        raise ValueError(f"attention overlays need fit='tile', got fit={detector.fit!r}")
    out = Path(options.out) if options.out is not None else None
    classes = detector.backend.metadata.classes
    summary = PredictSummary(source=getattr(source, "description", str(source)))
    still_images = getattr(source, "kind", "images") == "images"
    video = attention_video = None
    if out is not None and options.save_media and not still_images:
        stem = getattr(source, "stem", "video")
        suffix = ".avi" if str(getattr(source, "target", "")).lower().endswith(".avi") else ".mp4"
        fps = getattr(source, "fps", None) or 25.0
        video = _VideoOut(out / f"{stem}{suffix}", fps)
        if options.attention:
            attention_video = _VideoOut(out / "attention" / f"{stem}{suffix}", fps)

    total = getattr(source, "total", None)
    if options.max_frames is not None:
        total = min(total, options.max_frames) if total is not None else options.max_frames
    bar = None
    if options.progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="predict", unit="frame", dynamic_ncols=True, mininterval=0.5)
    queue = FrameQueue(source, maxsize=options.queue_size, drop_when_full=getattr(source, "live", False))
    results, used_names, stage_sums = [], set(), dict.fromkeys(STAGES, 0.0)
    start = time.perf_counter()
    try:
        for frame in queue:
            found = detector.detect(frame.image)
            for stage in STAGES:
                stage_sums[stage] += detector.timings.get(stage, 0.0)
            summary.frames += 1
            summary.detections += len(found)
            results += coco_results(frame.index + 1, frame.name, found.boxes, found.scores, found.labels, classes)
            if out is not None and options.save_media:
                drawn = draw_detections(frame.image, found.boxes, found.scores, found.labels, classes,
                                        show_labels=options.show_labels)
                panel = attention_panel(frame.image, frame_attention(detector, frame.image.shape)) if options.attention else None
                if still_images:
                    name = _image_name(frame.name, options.image_format, used_names)
                    _write_image(out / name, drawn)
                    if panel is not None:
                        _write_image(out / "attention" / name, panel)
                else:
                    video.write(drawn)
                    if panel is not None:
                        attention_video.write(panel)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(fps=f"{summary.frames / (time.perf_counter() - start):.2f}", dropped=queue.dropped)
            if options.max_frames is not None and summary.frames >= options.max_frames:
                break
    finally:
        queue.close()
        if bar is not None:
            bar.close()
        for writer in (video, attention_video):
            if writer is not None:
                writer.close()
    summary.seconds = time.perf_counter() - start
    summary.dropped = queue.dropped
    if summary.frames:
        summary.stage_ms = {stage: value / summary.frames for stage, value in stage_sums.items()}
    if out is not None:
        if options.save_media and still_images and summary.frames:
            summary.outputs["annotated images"] = out
        for kind, writer in (("annotated video", video), ("attention video", attention_video)):
            if writer is not None and writer.writer is not None:
                summary.outputs[kind] = writer.path
        if options.attention and still_images and summary.frames and options.save_media:
            summary.outputs["attention panels"] = out / "attention"
        if options.save_json:
            summary.outputs["detections (COCO JSON)"] = write_json(out / "detections.json", results)
    summary.results = results
    return summary


__all__ = ["PredictOptions", "PredictSummary", "predict", "frame_attention"]
