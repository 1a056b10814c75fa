"""`sspnet predict`: detect tiny people in images, folders, globs, videos, cameras or streams.

    sspnet predict --model model.onnx data/images --out runs/pred
    sspnet predict --model best.safetensors flight.mp4 --out runs/pred --attention
    sspnet predict --model model_fp16.engine rtsp://10.0.0.5/live --out runs/live --max-frames 1000

Frames larger than the model input are cut into tiles of the input size (30 px overlap) and the
tiles' detections merged; smaller ones are padded (sspnet.runtime.Detector). The backend follows
the model file: .safetensors/.pth -> torch, .onnx -> onnxruntime, .engine -> tensorrt.
"""

from __future__ import annotations

import argparse
import sys

from sspnet.cli.table import print_table

HELP = "detect in images / folders / globs / videos / cameras / stream URLs; annotated output + COCO JSON"


def add_arguments(parser):
    parser.add_argument("source", help="image, folder, glob ('imgs/*.jpg'), video file, camera index (0) or stream URL")
    parser.add_argument("--model", required=True, help="model file: .safetensors/.pth (torch), .onnx, .engine")
    parser.add_argument("--backend", choices=("torch", "onnxruntime", "tensorrt"),
                        help="default: from the model file's suffix")
    parser.add_argument("--out", help="output folder (annotated images / video, detections.json); none: print only")
    parser.add_argument("--conf", type=float, default=0.25,
                        help="keep detections with score >= this (drawn and in the JSON; default 0.25)")
    parser.add_argument("--fit", choices=("tile", "letterbox", "stretch"), default="tile",
                        help="how frames reach the model input size (default tile)")
    parser.add_argument("--overlap", type=int, default=30, help="tile overlap in pixels (default 30)")
    parser.add_argument("--imgsz", type=int, nargs=2, metavar=("H", "W"),
                        help="torch backend: model input (tile) size (default 512 640); exported models have their own")
    parser.add_argument("--device", help="torch backend: device (default cuda when available, else cpu)")
    parser.add_argument("--providers", nargs="+", help="onnxruntime: execution providers, e.g. cuda cpu (default cpu)")
    parser.add_argument("--threads", type=int, help="onnxruntime: intra-op threads (default: all cores)")
    parser.add_argument("--attention", action="store_true",
                        help="torch backend: also write the attention maps A0..A3 as heat-map panels")
    parser.add_argument("--labels", action=argparse.BooleanOptionalAction, default=True,
                        help="draw the score next to each box (default on)")
    parser.add_argument("--no-media", action="store_true", help="write only detections.json, no annotated images / video")
    parser.add_argument("--image-format", choices=("same", "png", "jpg"), default="same",
                        help="format of annotated still images (default: the source's)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames (cameras / streams run until stopped)")
    parser.add_argument("--queue", type=int, default=4,
                        help="decoded frames waiting for inference; live sources drop the oldest beyond this (default 4)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _fail(message: str) -> int:
    print(f"sspnet predict: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    from sspnet.inference.backends import open_backend
    from sspnet.inference.predict import PredictOptions, predict
    from sspnet.inference.sources import open_source
    from sspnet.runtime.detector import Detector

    if not 0.0 <= args.conf <= 1.0:
        return _fail(f"--conf must be in [0, 1], got {args.conf}")
    try:
        backend = open_backend(
            args.model, args.backend, input_size=tuple(args.imgsz) if args.imgsz else None, device=args.device,
            record_attention=args.attention, providers=args.providers, threads=args.threads,
        )
        detector = Detector(backend, fit=args.fit, tile_overlap=args.overlap, score_threshold=args.conf,
                            color_order="bgr")
        source = open_source(args.source)
        options = PredictOptions(
            out=args.out, show_labels=args.labels, save_media=not args.no_media, attention=args.attention,
            image_format=args.image_format, max_frames=args.max_frames, queue_size=args.queue,
            progress=not args.quiet,
        )
        print(f"{backend.name} backend: {backend.path} (input {backend.input_size[0]}x{backend.input_size[1]}, "
              f"classes {list(backend.metadata.classes)}); source: {source.description}")
        summary = predict(detector, source, options)
    except (ValueError, TypeError, FileNotFoundError, ImportError, RuntimeError) as error:
        return _fail(str(error))
    print_table(summary.rows(), headers=("predict", "value"))
    return 0
