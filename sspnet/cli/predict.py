"""`sspnet predict`: detect tiny people in images, folders, globs, videos, cameras or streams.

    sspnet predict --model model.onnx data/images --out runs/pred
    sspnet predict --model best.safetensors flight.mp4 --out runs/pred --attention
    sspnet predict --model model_fp16.engine rtsp://10.0.0.5/live --out runs/live --max-frames 1000
    sspnet predict --model model.onnx "rtspsrc location=rtsp://10.0.0.5/live latency=100 ! rtph264depay ! \
        h264parse ! nvv4l2decoder ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! \
        video/x-raw,format=BGR ! appsink drop=true max-buffers=2" --out runs/live

Frames larger than the model input are cut into tiles of the input size (30 px overlap) and the
tiles' detections merged; smaller ones are padded (sspnet.runtime.Detector). Tiles reach the model
at most --max-tiles-per-batch at a time, so any frame size runs in bounded memory. The backend
follows the model file: .safetensors/.pth -> torch, .onnx -> onnxruntime, .engine -> tensorrt.

Outputs (--out): annotated images or video, detections.jsonl (one JSON record per processed frame,
written as it is processed) and detections.json (COCO results, written at the end); the formats are
described in sspnet.inference.predict. The output folder may not be, or lie inside, the input
folder, and no output ever replaces an input: such a run is refused before any work. An unreadable
image or video frame is skipped with a warning naming it and counted in the summary; the run fails
(exit 2) only when no frame at all could be processed. Ctrl-C finishes the outputs (exit 130).

A stream URL or GStreamer pipeline whose link drops is reopened with backoff (--reconnect-*); the
outage is warned about and counted. One that stays down for --reconnect-timeout seconds ends the run
with its outputs finished, a warning, and exit status 3 (EXIT_LINK_LOST).
"""

from __future__ import annotations

import argparse
import sys

from sspnet.cli.arguments import (
    non_negative_int,
    non_negative_seconds,
    positive_int,
    positive_seconds,
    unit_interval,
)
from sspnet.io.table import print_table

HELP = "detect in images / folders / globs / videos / cameras / stream URLs; annotated output + COCO JSON"
EXIT_LINK_LOST = 3  # a stream stayed down for --reconnect-timeout: the run ended there (outputs complete)

EPILOG = """\
outputs in --out:
  <image name> / <video stem>.mp4   annotated copies (boxes, scores)
  detections.jsonl   JSON Lines, one record per processed frame, flushed as each frame is done
                     (a crash or Ctrl-C loses at most the frame in flight):
                     {"image_id": 3, "file_name": "frame_2.png", "width": W, "height": H,
                      "detections": [{"image_id": 3, "file_name": "frame_2.png", "category_id": 1,
                                      "category": "person", "bbox": [x, y, w, h], "score": 0.91}]}
                     (+ "warning" for a damaged but decoded frame, e.g. a truncated JPEG)
  detections.json    COCO results: every record's "detections" in one array, written at the end
unreadable images / undecodable video frames are skipped with a warning and counted; no output may
be, or lie inside, an input folder, or replace an input file (refused before any work, exit 2).
live links (stream URLs, GStreamer pipelines): a stream that drops is reopened after 0.5 s, 1 s, 2 s,
... (at most --reconnect-max-wait apart); each outage is warned about, and the summary counts outages
and the frames estimated lost (gap x the stream's frame rate); frame numbers (image_id) skip them.
A stream still down after --reconnect-timeout s ends the run: outputs finished, exit status 3.
exit status: 0 done, 2 a user mistake (one line), 3 the stream's link was lost, 130 Ctrl-C.
predict does not follow people across frames: `sspnet track` does (ids, tracks.txt, trails)."""


def add_source_arguments(parser) -> None:
    """The options that say how frames are read (shared by `predict` and `track`)."""
    parser.add_argument(
        "source",
        help="image, folder, glob ('imgs/*.jpg'), video file, camera index (0), stream "
        "URL (rtsp://, http://, udp://, tcp://, ...) or a GStreamer pipeline ending "
        "in appsink (needs an OpenCV built with GStreamer: see `sspnet doctor`)",
    )
    parser.add_argument(
        "--vid-stride",
        type=positive_int,
        default=1,
        metavar="N",
        help="process every Nth frame of a video, camera or stream (default 1: all)",
    )
    parser.add_argument(
        "--reconnect-timeout",
        type=non_negative_seconds,
        default=30.0,
        metavar="S",
        help="streams: end the run (exit 3) when the link stays down this long; 0: do not "
        "reconnect, end at the first failed read (exit 3) (default 30)",
    )
    parser.add_argument(
        "--reconnect-wait",
        type=non_negative_seconds,
        default=0.5,
        metavar="S",
        help="streams: wait before the first reconnect, doubled after each failed one (default 0.5)",
    )
    parser.add_argument(
        "--reconnect-max-wait",
        type=non_negative_seconds,
        default=5.0,
        metavar="S",
        help="streams: longest wait between reconnect attempts (default 5)",
    )
    parser.add_argument(
        "--read-timeout",
        type=positive_seconds,
        default=5.0,
        metavar="S",
        help="stream URLs: a read or (re)open that delivers nothing this long counts as a drop (default 5)",
    )


def source_from_args(args):
    """The FrameSource the source options name (their values were checked by their argparse types)."""
    from sspnet.inference.sources import ReconnectPolicy, open_source

    policy = ReconnectPolicy(
        first_wait_s=args.reconnect_wait,
        max_wait_s=args.reconnect_max_wait,
        give_up_after_s=args.reconnect_timeout,
        read_timeout_s=args.read_timeout,
        open_timeout_s=args.read_timeout,
    )
    return open_source(args.source, vid_stride=args.vid_stride, reconnect=policy)


def run_exit_code(summary) -> int:
    """0 done, 130 stopped by Ctrl-C, EXIT_LINK_LOST when a stream's link did not come back."""
    if summary.interrupted:
        return 130
    if summary.link_lost:
        print(
            f"sspnet: the stream's link was lost ({summary.link_problem}); the outputs hold the "
            f"{summary.frames} frames processed before it",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_LINK_LOST
    return 0


def add_arguments(parser):
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_source_arguments(parser)
    from sspnet.runtime.backend import BACKENDS, MODEL_SUFFIXES  # the one suffix table

    files = ", ".join(f"{'/'.join(suffixes)} ({backend})" for backend, suffixes in MODEL_SUFFIXES.items())
    parser.add_argument("--model", required=True, help=f"model file: {files}")
    parser.add_argument("--backend", choices=BACKENDS, help="default: from the model file's suffix")
    parser.add_argument(
        "--out",
        help="output folder (annotated images / video, detections.jsonl / .json); "
        "none: print only. Must not be, or lie inside, the input folder",
    )
    parser.add_argument(
        "--conf",
        type=unit_interval,
        default=0.25,
        help="keep detections with score >= this (drawn and in the JSON; default 0.25)",
    )
    parser.add_argument(
        "--fit",
        choices=("tile", "letterbox", "stretch"),
        default="tile",
        help="how frames reach the model input size (default tile)",
    )
    parser.add_argument("--overlap", type=non_negative_int, default=30, help="tile overlap in pixels (default 30)")
    parser.add_argument(
        "--max-tiles-per-batch",
        type=positive_int,
        default=None,
        metavar="N",
        help="tiles sent to the model per call; bounds memory for any frame size "
        "(default 4, sized for an 8 GB Jetson: ~0.6 GB per tile in flight; "
        "8-16 suit 16+ GB boards)",
    )
    parser.add_argument(
        "--imgsz",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="torch backend: model input (tile) size (default 512 640); exported models have their own",
    )
    parser.add_argument("--device", help="torch backend: device (default cuda when available, else cpu)")
    parser.add_argument("--providers", nargs="+", help="onnxruntime: execution providers, e.g. cuda cpu (default cpu)")
    parser.add_argument(
        "--threads",
        type=non_negative_int,
        help="CPU intra-op threads (default: all cores; torch and onnxruntime adapt the "
        "count to other processes' load, a fixed --threads turns that off)",
    )
    parser.add_argument(
        "--attention",
        action="store_true",
        help="torch backend: also write the attention maps A0..A3 as heat-map panels",
    )
    parser.add_argument(
        "--labels",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="draw the score next to each box (default on)",
    )
    parser.add_argument(
        "--no-media", action="store_true", help="write only detections.jsonl / .json, no annotated images / video"
    )
    parser.add_argument(
        "--image-format",
        choices=("same", "png", "jpg"),
        default="same",
        help="format of annotated still images (default: the source's)",
    )
    parser.add_argument(
        "--max-frames", type=positive_int, help="stop after this many frames (cameras / streams run until stopped)"
    )
    parser.add_argument(
        "--queue",
        type=positive_int,
        default=4,
        help="decoded frames waiting for inference; live sources drop the oldest beyond this (default 4)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_arguments(args) -> None:
    """Argument values that need no file (beyond the argparse types): refused before anything is opened."""
    from sspnet.export.options import check_imgsz

    if args.imgsz is not None:
        check_imgsz(args.imgsz, "--imgsz")


def run(args, hook_factory=None, title: str = "predict") -> int:
    """The predict run; `sspnet track` passes `hook_factory(source) -> frame hook` (its tracker) and its title."""
    from sspnet.errors import UsageError
    from sspnet.inference.predict import PredictOptions, plan_outputs, predict
    from sspnet.runtime.backend import load_backend
    from sspnet.runtime.detector import DEFAULT_MAX_TILES_PER_BATCH, Detector

    _check_arguments(args)
    source = source_from_args(args)
    frame_hook = hook_factory(source) if hook_factory is not None else None
    options = PredictOptions(
        out=args.out,
        show_labels=args.labels,
        save_media=not args.no_media,
        attention=args.attention,
        image_format=args.image_format,
        max_frames=args.max_frames,
        queue_size=args.queue,
        progress=not args.quiet,
        keep_results=False,
        frame_hook=frame_hook,
    )
    plan = plan_outputs(source, options, protect=[args.model])  # refuses a bad --out before loading anything
    backend = load_backend(
        args.model,
        args.backend,
        input_size=tuple(args.imgsz) if args.imgsz else None,
        device=args.device,
        record_attention=args.attention or None,
        providers=args.providers,
        threads=args.threads,
    )
    if args.fit == "tile" and args.overlap >= min(backend.input_size):
        raise UsageError(
            f"--overlap must be smaller than the model's tile {backend.input_size[0]}x{backend.input_size[1]} (HxW)",
            got=args.overlap,
        )
    detector = Detector(
        backend,
        fit=args.fit,
        tile_overlap=args.overlap,
        score_threshold=args.conf,
        color_order="bgr",
        max_tiles_per_batch=args.max_tiles_per_batch or DEFAULT_MAX_TILES_PER_BATCH,
    )
    print(
        f"{backend.name} backend: {backend.path} (input {backend.input_size[0]}x{backend.input_size[1]}, "
        f"classes {list(backend.metadata.classes)}); source: {source.description}",
        flush=True,
    )
    summary = predict(detector, source, options, plan=plan)
    print_table(summary.rows(), headers=(title, "value"))
    return run_exit_code(summary)
