"""`sspnet predict`: detect tiny people in images, folders, globs, videos, cameras or streams.

    sspnet predict --model model.onnx data/images --out runs/pred
    sspnet predict --model best.safetensors flight.mp4 --out runs/pred --attention
    sspnet predict --model model_fp16.engine rtsp://10.0.0.5/live --out runs/live --max-frames 1000

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
"""

from __future__ import annotations

import argparse

from sspnet.io.table import print_table

HELP = "detect in images / folders / globs / videos / cameras / stream URLs; annotated output + COCO JSON"

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
be, or lie inside, an input folder, or replace an input file (refused before any work, exit 2)."""


def add_arguments(parser):
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("source", help="image, folder, glob ('imgs/*.jpg'), video file, camera index (0) or stream URL")
    parser.add_argument("--model", required=True, help="model file: .safetensors/.pth (torch), .onnx, .engine")
    parser.add_argument("--backend", choices=("torch", "onnxruntime", "tensorrt"),
                        help="default: from the model file's suffix")
    parser.add_argument("--out", help="output folder (annotated images / video, detections.jsonl / .json); "
                                      "none: print only. Must not be, or lie inside, the input folder")
    parser.add_argument("--conf", type=float, default=0.25,
                        help="keep detections with score >= this (drawn and in the JSON; default 0.25)")
    parser.add_argument("--fit", choices=("tile", "letterbox", "stretch"), default="tile",
                        help="how frames reach the model input size (default tile)")
    parser.add_argument("--overlap", type=int, default=30, help="tile overlap in pixels (default 30)")
    parser.add_argument("--max-tiles-per-batch", type=int, default=None, metavar="N",
                        help="tiles sent to the model per call; bounds memory for any frame size "
                             "(default 4, sized for an 8 GB Jetson: ~0.6 GB per tile in flight; 8-16 suit 16+ GB boards)")
    parser.add_argument("--imgsz", type=int, nargs=2, metavar=("H", "W"),
                        help="torch backend: model input (tile) size (default 512 640); exported models have their own")
    parser.add_argument("--device", help="torch backend: device (default cuda when available, else cpu)")
    parser.add_argument("--providers", nargs="+", help="onnxruntime: execution providers, e.g. cuda cpu (default cpu)")
    parser.add_argument("--threads", type=int, help="CPU intra-op threads (default: all cores; torch adapts the count to other "
                        "processes' load, a fixed --threads turns that off)")
    parser.add_argument("--attention", action="store_true",
                        help="torch backend: also write the attention maps A0..A3 as heat-map panels")
    parser.add_argument("--labels", action=argparse.BooleanOptionalAction, default=True,
                        help="draw the score next to each box (default on)")
    parser.add_argument("--no-media", action="store_true",
                        help="write only detections.jsonl / .json, no annotated images / video")
    parser.add_argument("--image-format", choices=("same", "png", "jpg"), default="same",
                        help="format of annotated still images (default: the source's)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames (cameras / streams run until stopped)")
    parser.add_argument("--queue", type=int, default=4,
                        help="decoded frames waiting for inference; live sources drop the oldest beyond this (default 4)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_arguments(args) -> None:
    """Argument values that need no file: refused before anything is opened."""
    from sspnet.errors import UsageError
    from sspnet.export.options import check_imgsz

    if args.imgsz is not None:
        check_imgsz(args.imgsz, "--imgsz")
    if not 0.0 <= args.conf <= 1.0:  # also refuses nan
        raise UsageError("--conf must be in [0, 1]", got=args.conf)
    if args.overlap < 0:
        raise UsageError("--overlap must be >= 0 pixels", got=args.overlap)
    for name in ("max_tiles_per_batch", "max_frames", "queue", "threads"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "threads" else 1):
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be {'>= 0' if name == 'threads' else 'a positive integer'}", got=value)


def run(args) -> int:
    from sspnet.errors import UsageError
    from sspnet.inference.predict import PredictOptions, plan_outputs, predict
    from sspnet.inference.sources import open_source
    from sspnet.runtime.backend import load_backend
    from sspnet.runtime.detector import DEFAULT_MAX_TILES_PER_BATCH, Detector

    _check_arguments(args)
    source = open_source(args.source)
    options = PredictOptions(
        out=args.out, show_labels=args.labels, save_media=not args.no_media, attention=args.attention,
        image_format=args.image_format, max_frames=args.max_frames, queue_size=args.queue,
        progress=not args.quiet, keep_results=False,
    )
    plan = plan_outputs(source, options, protect=[args.model])  # refuses a bad --out before loading anything
    backend = load_backend(  # options left None take the backend's default; others must fit the backend
        args.model, args.backend, input_size=tuple(args.imgsz) if args.imgsz else None, device=args.device,
        record_attention=args.attention or None, providers=args.providers, threads=args.threads,
    )
    if args.fit == "tile" and args.overlap >= min(backend.input_size):
        raise UsageError(f"--overlap must be smaller than the model's tile {backend.input_size[0]}x"
                         f"{backend.input_size[1]} (HxW)", got=args.overlap)
    detector = Detector(backend, fit=args.fit, tile_overlap=args.overlap, score_threshold=args.conf,
                        color_order="bgr", max_tiles_per_batch=args.max_tiles_per_batch or DEFAULT_MAX_TILES_PER_BATCH)
    print(f"{backend.name} backend: {backend.path} (input {backend.input_size[0]}x{backend.input_size[1]}, "
          f"classes {list(backend.metadata.classes)}); source: {source.description}", flush=True)
    summary = predict(detector, source, options, plan=plan)
    print_table(summary.rows(), headers=("predict", "value"))
    return 130 if summary.interrupted else 0
