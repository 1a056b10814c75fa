"""`sspnet export`: a checkpoint -> one ONNX graph (portable or TensorRT flavour), optionally verified.

    sspnet export runs/best.safetensors --flavor portable --imgsz 512 640 --batch dynamic --out model.onnx --verify

Every argument, the checkpoint file and the output path are checked before torch is imported, so a
mistake is reported at once (one line, exit 2) instead of after minutes of tracing.
"""

from __future__ import annotations

HELP = "export a checkpoint to ONNX (portable or tensorrt flavour), with a parity check"


def add_arguments(parser):
    parser.add_argument("checkpoint", help="sspnet .safetensors checkpoint or an original SSPNet .pth")
    parser.add_argument(
        "--flavor",
        choices=("portable", "tensorrt"),
        default="portable",
        help="portable: standard ONNX ops (hard NMS); tensorrt: sspnet plugin nodes (default portable)",
    )
    parser.add_argument(
        "--imgsz",
        type=int,
        nargs=2,
        default=(512, 640),
        metavar=("H", "W"),
        help="input (tile) size, multiples of 32, fixed per export (default 512 640)",
    )
    parser.add_argument("--batch", default="dynamic", help="'dynamic' (default) or a fixed batch size")
    parser.add_argument(
        "--out", default=None, help="output .onnx path (default: <checkpoint>.<flavor>.onnx next to the checkpoint)"
    )
    parser.add_argument("--preset", default=None, help="preset to build for an original .pth checkpoint")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18; >= 16)")
    parser.add_argument("--no-simplify", action="store_true", help="skip the onnxslim clean-up")
    parser.add_argument("--verify", action="store_true", help="compare PyTorch and the exported graph")
    parser.add_argument(
        "--trt-lint",
        choices=("report", "strict", "off"),
        default="report",
        help="check the graph against TensorRT's ONNX parser support matrix: report findings "
        "(default), strict = also refuse to write a graph the parser cannot import, or off",
    )
    parser.add_argument(
        "--verify-images",
        default="8",
        metavar="DIR|N",
        help="with --verify: a folder of images, or a number of synthetic scenes (default 8)",
    )


def run(args) -> int:
    from sspnet.checkpoint import check_preset_name
    from sspnet.export.options import (
        DEFAULT_OPSET,
        check_export_paths,
        check_imgsz,
        check_opset,
        default_onnx_path,
        parse_batch,
    )

    # Cheapest checks first; check_opset imports onnx (seconds), the exporter imports torch.
    imgsz, batch = check_imgsz(args.imgsz, "--imgsz"), parse_batch(args.batch, "--batch")
    verify_images = args.verify_images if args.verify else None
    out = check_export_paths(
        args.checkpoint, args.out or default_onnx_path(args.checkpoint, args.flavor), verify_images
    )
    check_preset_name(args.preset)
    opset = check_opset(DEFAULT_OPSET if args.opset is None else args.opset, "--opset")

    from sspnet.export.onnx_export import export_onnx  # imports torch: only after every check passed

    export_onnx(
        args.checkpoint,
        out,
        flavor=args.flavor,
        imgsz=imgsz,
        batch=batch,
        opset=opset,
        simplify=not args.no_simplify,
        verify_images=verify_images,
        preset=args.preset,
        trt_lint=args.trt_lint,
    )
    return 0
