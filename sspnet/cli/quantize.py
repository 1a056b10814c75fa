"""`sspnet quantize`: post-training INT8 quantization of an exported model into an explicit Q/DQ ONNX graph.

    sspnet quantize model.onnx --calib data/synth --out model_int8.onnx               # TensorRT form
    sspnet quantize model.onnx --calib frames/ --out model_int8_cpu.onnx --activations asymmetric
    sspnet quantize model.onnx --calib data/synth --method entropy --float box score

--calib is a folder of images or a data folder (its --split, default train). The result runs like
any exported model (`sspnet predict`, `sspnet benchmark`, sspnet.runtime.load_backend) and, in
the symmetric form, is TensorRT's explicit-quantization input: Q/DQ placed as TensorRT fuses it,
the other layers in fp16 (post-processing in fp32). The TensorRT lint (export/trt_lint.py) checks
the written model and prints its errors and Q/DQ fusion blockers. sspnet/export/quantize.py says
what is quantized, what stays float, and why there are two forms; docs/int8.md is the user guide.
"""

from __future__ import annotations

HELP = "INT8 post-training quantization of an exported .onnx into a Q/DQ model (calibrated on images)"


def add_arguments(parser):
    from sspnet.export.quantize import (
        ACTIVATIONS,
        DEFAULT_FLOAT_GROUPS,
        DEFAULT_METHOD,
        FLOAT_GROUPS,
        FLOAT_TYPES,
        METHODS,
        PLACEMENTS,
    )

    parser.add_argument("model", help="float model exported by `sspnet export` (.onnx, either flavour)")
    parser.add_argument(
        "--calib",
        required=True,
        metavar="DIR",
        help="calibration images: a folder of images, or a data folder (uses --split)",
    )
    parser.add_argument("--out", required=True, help="the INT8 Q/DQ model to write (.onnx)")
    parser.add_argument("--split", default="train", help="split of a data folder (default train)")
    parser.add_argument(
        "--method",
        choices=METHODS,
        default=DEFAULT_METHOD,
        help=f"calibration method (default {DEFAULT_METHOD}, chosen by measured AP)",
    )
    parser.add_argument(
        "--float",
        nargs="*",
        choices=FLOAT_GROUPS,
        default=list(DEFAULT_FLOAT_GROUPS),
        metavar="GROUP",
        dest="float_groups",
        help=f"layer groups kept in float: {', '.join(FLOAT_GROUPS)} (default: "
        f"{' '.join(DEFAULT_FLOAT_GROUPS) or 'none'}, chosen by measured AP)",
    )
    parser.add_argument(
        "--activations",
        choices=ACTIVATIONS,
        default="symmetric",
        help="symmetric: int8, zero point 0 (TensorRT; default); asymmetric: uint8, for "
        "ONNX Runtime on x86 CPUs (fast there, not buildable by TensorRT)",
    )
    parser.add_argument(
        "--placement",
        choices=PLACEMENTS,
        default="tensorrt",
        help="symmetric form: where the Q/DQ nodes go: tensorrt (inputs of weighted layers, the "
        "residual identity input, shared concat scales; default) or onnxruntime (ONNX "
        "Runtime's own placement, for comparison)",
    )
    parser.add_argument(
        "--float-type",
        choices=FLOAT_TYPES,
        default=None,
        help="type of the layers that are not int8: fp16 (default for the symmetric form: "
        "TensorRT 11 runs each layer in the ONNX's type; post-processing stays fp32) or fp32 "
        "(the only one for --activations asymmetric)",
    )
    parser.add_argument("--max-tiles", type=int, default=64, help="calibration tiles at most (default 64)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from sspnet.export.quantize import QuantizeSettings, quantize_onnx
    from sspnet.export.trt_lint import format_qdq_findings, lint_file
    from sspnet.io.outputs import OutputGuard

    settings = QuantizeSettings(
        method=args.method,
        float_groups=tuple(args.float_groups),
        activations=args.activations,
        max_tiles=args.max_tiles,
        split=args.split,
        progress=not args.quiet,
        placement=args.placement,
        float_type=args.float_type,
    )
    settings.check()
    guard = OutputGuard(inputs=[args.model, args.calib], verb="quantize")
    guard.check_file(args.out, "onnx")
    report = quantize_onnx(args.model, args.out, args.calib, settings)
    qdq = report.qdq
    print(
        f"wrote {report.out}: {report.quantized_nodes} nodes quantized ({args.activations} "
        f"{'int8' if args.activations == 'symmetric' else 'uint8'} activations, int8 per-channel weights in "
        f"{qdq['per_channel_weight_layers']} layers), calibration {report.method} on "
        f"{report.calibration.get('tiles', '?')} tiles in {report.seconds.get('calibration', 0):.0f} s"
    )
    kept = {group: len(nodes) for group, nodes in report.kept_float.items()}
    if kept:
        print(
            "kept in float: "
            + ", ".join(f"{group} ({count} nodes)" for group, count in kept.items())
            + "; box decoding, TopK and NMS always run in float"
        )
    if args.activations == "asymmetric":
        print("note: asymmetric form: for ONNX Runtime on CPU; TensorRT needs --activations symmetric")
    else:
        print(f"TensorRT form: Q/DQ placement {report.placement}, non-int8 layers in {report.float_type}")
        print(format_qdq_findings(lint_file(args.out)))
    return 0
