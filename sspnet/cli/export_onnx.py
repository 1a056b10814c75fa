"""`sspnet export`: a checkpoint -> one ONNX graph (portable or TensorRT flavour), optionally verified.

    sspnet export runs/best.safetensors --flavor portable --imgsz 512 640 --batch dynamic --out model.onnx --verify
"""

from __future__ import annotations

import sys

HELP = "export a checkpoint to ONNX (portable or tensorrt flavour), with a parity check"


def _batch(value: str):
    if value == "dynamic":
        return value
    try:
        batch = int(value)
    except ValueError:
        batch = 0
    if batch < 1:
        raise ValueError(f"--batch must be 'dynamic' or a positive integer, got {value!r}")
    return batch


def add_arguments(parser):
    parser.add_argument("checkpoint", help="sspnet .safetensors checkpoint or an original SSPNet .pth")
    parser.add_argument("--flavor", choices=("portable", "tensorrt"), default="portable",
                        help="portable: standard ONNX ops (hard NMS); tensorrt: sspnet plugin nodes (default portable)")
    parser.add_argument("--imgsz", type=int, nargs=2, default=(512, 640), metavar=("H", "W"),
                        help="input (tile) size, fixed per export (default 512 640)")
    parser.add_argument("--batch", default="dynamic", help="'dynamic' (default) or a fixed batch size")
    parser.add_argument("--out", default=None, help="output .onnx path (default: next to the checkpoint)")
    parser.add_argument("--preset", default=None, help="preset to build for an original .pth checkpoint")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18; >= 16)")
    parser.add_argument("--no-simplify", action="store_true", help="skip the onnxslim clean-up")
    parser.add_argument("--verify", action="store_true", help="compare PyTorch and the exported graph")
    parser.add_argument("--verify-images", default="8", metavar="DIR|N",
                        help="with --verify: a folder of images, or a number of synthetic scenes (default 8)")


def run(args) -> int:
    from pathlib import Path

    from sspnet.export.onnx_export import DEFAULT_OPSET, export_onnx

    try:
        batch = _batch(args.batch)
        out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(f".{args.flavor}.onnx")
        export_onnx(
            args.checkpoint,
            out,
            flavor=args.flavor,
            imgsz=tuple(args.imgsz),
            batch=batch,
            opset=args.opset or DEFAULT_OPSET,
            simplify=not args.no_simplify,
            verify_images=args.verify_images if args.verify else None,
            preset=args.preset,
        )
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"sspnet export: {error}", file=sys.stderr)
        return 2
    return 0
