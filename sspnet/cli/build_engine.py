"""`sspnet build-engine`: a `tensorrt`-flavour ONNX -> TensorRT engine + JSON sidecar (runtime/engine_builder.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "build a TensorRT engine (+ sidecar) from a tensorrt-flavour ONNX; prints the trtexec equivalent"


EPILOG = """INT8, the way that works on TensorRT 10 and 11 alike: quantize to Q/DQ, then build
  sspnet quantize M.onnx --calib IMAGES_OR_DATA --out M_int8.onnx
  sspnet build-engine M_int8.onnx            # a Q/DQ model builds as int8 (sidecar: "int8": "explicit-qdq")
TensorRT 10 (JetPack 6) also calibrates a float model itself: --precision int8 --calib-images DIR
(entropy calibrator, reusable cache). TensorRT 11: no precision flags (strongly typed): fp16 needs an
ONNX exported in fp16, INT8 needs a Q/DQ model. --save-calib-npy writes the calibration images for
other quantizers (e.g. NVIDIA ModelOpt's --calibration_data)."""

LINT_NOTE = """Before TensorRT is loaded, the ONNX goes through the TensorRT lint (export/trt_lint.py): its
summary, errors and Q/DQ fusion blockers are printed; a Q/DQ error (a scale or weight layout the
parser refuses or mis-reads) stops the build (exit 2)."""


def qdq_precision_help() -> str:
    """Which layers of a Q/DQ model run in int8 / fp16 / fp32, per TensorRT version (the epilog)."""
    from sspnet.runtime.engine_builder import qdq_layer_precisions

    cases = [
        ("TensorRT 10 (weakly typed, --fp16 --int8 flags)", qdq_layer_precisions(10, False, "fp16")),
        (
            "TensorRT 11, or 10 --strongly-typed, fp16 TensorRT form (sspnet quantize's default)",
            qdq_layer_precisions(11, True, "fp16"),
        ),
        ("TensorRT 11, or 10 --strongly-typed, --float-type fp32 form", qdq_layer_precisions(11, True, "fp32")),
    ]
    lines = ["Layer precisions of a Q/DQ model:"]
    for title, precisions in cases:
        lines.append(f"  {title}:")
        lines += [f"    {kind}: {layers}" for kind, layers in precisions.items()]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG + "\n\n" + qdq_precision_help() + "\n\n" + LINT_NOTE
    parser.add_argument("onnx", type=Path, help="ONNX exported with `sspnet export ... --flavor tensorrt`")
    parser.add_argument(
        "--out",
        "--engine",
        "-o",
        dest="out",
        type=Path,
        help="output engine (default: <onnx stem>_<precision>.engine); --engine is the same option",
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "fp16", "int8"),
        help="default: int8 for a Q/DQ model (from `sspnet quantize`), fp16 otherwise",
    )
    parser.add_argument("--batch", help="N or MIN,OPT,MAX for a dynamic-batch ONNX (default 1,4,8)")
    parser.add_argument(
        "--workspace",
        type=int,
        default=1024,
        metavar="MIB",
        help="builder workspace limit (default 1024 MiB)",
    )
    parser.add_argument("--timing-cache", type=Path, help="timing cache file, read if present and updated")
    parser.add_argument(
        "--dla-core", type=int, help="build for this DLA core (Orin AGX / NX); needs --allow-gpu-fallback"
    )
    parser.add_argument(
        "--allow-gpu-fallback", action="store_true", help="layers DLA cannot run (the plugins) go to the GPU"
    )
    parser.add_argument(
        "--strongly-typed",
        action="store_true",
        help="TensorRT 10: strongly typed network (always on with 11)",
    )
    calibration = parser.add_argument_group("INT8 calibration (TensorRT 10)")
    calibration.add_argument("--calib-images", type=Path, help="folder of representative images")
    calibration.add_argument(
        "--calib-cache", type=Path, help="calibration cache (default <onnx>.calib); reused if present"
    )
    calibration.add_argument("--calib-batch", type=int, default=8, help="calibration batch size (default 8)")
    calibration.add_argument(
        "--calib-max-images", type=int, default=512, help="use at most this many images (default 512)"
    )
    calibration.add_argument(
        "--save-calib-npy",
        type=Path,
        help="only write the calibration images as one uint8 .npy (for ModelOpt) and exit",
    )
    parser.add_argument(
        "--plugins", type=Path, help="libsspnet_trt_plugins.so (default: installed copy or build/tensorrt)"
    )
    parser.add_argument("--device", type=int, default=0, help="CUDA device index")
    parser.add_argument("--verbose", action="store_true", help="TensorRT verbose log")
    parser.add_argument(
        "--print-trtexec",
        action="store_true",
        help="only print the equivalent trtexec command (no TensorRT needed)",
    )
    parser.add_argument(
        "--trt-major",
        type=int,
        choices=(10, 11),
        help="TensorRT major for --print-trtexec (default: the installed one)",
    )
    parser.add_argument(
        "--sidecar-only",
        action="store_true",
        help="only write the sidecar for an existing --engine built elsewhere",
    )


def _options(args):
    from sspnet.runtime.engine_builder import BuildOptions, parse_batch

    return BuildOptions(
        precision=args.precision,
        batch=parse_batch(args.batch) if args.batch else None,
        workspace_mib=args.workspace,
        timing_cache=args.timing_cache,
        dla_core=args.dla_core,
        gpu_fallback=args.allow_gpu_fallback,
        strongly_typed=args.strongly_typed,
        calibration_images=args.calib_images,
        calibration_cache=args.calib_cache,
        calibration_batch=args.calib_batch,
        calibration_max_images=args.calib_max_images,
        plugin_library=args.plugins,
        device=args.device,
        verbose=args.verbose,
    )


def _installed_trt_major() -> int | None:
    from sspnet.runtime.sidecar import tensorrt_major
    from sspnet.runtime.tensorrt_common import import_tensorrt

    try:
        return tensorrt_major(import_tensorrt().__version__)
    except ImportError:
        return None


def trtexec_line(args, options, trt_major: int, has_qdq: bool) -> str:
    """The trtexec command for these arguments, from the ONNX metadata alone (no TensorRT needed)."""
    from sspnet.runtime import engine_builder as eb
    from sspnet.runtime.tensorrt_common import find_plugin_library, plugin_library_candidates

    props, metadata = eb.read_model_metadata(args.onnx)
    eb.check_qdq_build(args.onnx, props, options.precision, has_qdq)
    try:
        library = find_plugin_library(options.plugin_library)
    except FileNotFoundError:  # the command is for another device: name where it usually is
        library = options.plugin_library or plugin_library_candidates()[0]
    eb.check_dla(options.dla_core, options.gpu_fallback, options.precision)
    batch = eb.resolve_batch(options.batch, metadata.batch)
    command = eb.build_trtexec_command(
        args.onnx,
        args.out or eb.default_engine_path(args.onnx, options.precision),
        options,
        plugin_library=library,
        input_size=metadata.input_size,
        batch=None if metadata.batch else batch,  # a fixed-batch ONNX needs no shape flags
        trt_major=trt_major,
        has_qdq=has_qdq,
        calibration_cache=options.calibration_cache or eb.default_calibration_cache(args.onnx),
    )
    return eb.format_command(command)


def lint_before_parsing(onnx_path) -> None:
    """The TensorRT lint, before TensorRT is imported: print its summary, errors and Q/DQ findings;
    InputError (exit 2) on a Q/DQ error, which the parser would refuse or read wrongly."""
    from sspnet.errors import InputError
    from sspnet.export.trt_lint import format_qdq_findings, lint_file

    findings = lint_file(onnx_path)
    print(format_qdq_findings(findings))
    qdq_errors = [finding for finding in findings if finding.severity == "error" and finding.rule]
    if qdq_errors:
        raise InputError(
            f"{len(qdq_errors)} Q/DQ error(s) TensorRT's parser refuses or mis-reads (first: {qdq_errors[0]})",
            path=onnx_path,
        )


def run(args) -> int:
    from sspnet.errors import MissingDependencyError, UsageError
    from sspnet.io.outputs import OutputGuard
    from sspnet.runtime import engine_builder as eb
    from sspnet.runtime.tensorrt_common import import_tensorrt

    # Read once (a byte search of the whole file); a missing ONNX is reported below, by name.
    has_qdq = Path(args.onnx).is_file() and eb.onnx_has_qdq(args.onnx)
    args.precision = eb.resolve_precision(args.precision, has_qdq)  # int8 for a Q/DQ model
    options = _options(args)
    # Output paths first, then the ONNX (a missing or unusable file is named as such), then TensorRT.
    if args.save_calib_npy:
        from sspnet.runtime.calibration import CalibrationBatches

        if args.calib_images is None:
            raise UsageError("--save-calib-npy needs --calib-images DIR")
        OutputGuard(inputs=[args.onnx, args.calib_images], verb="build-engine").check_file(
            args.save_calib_npy, kind="binary"
        )
        _, metadata = eb.read_model_metadata(args.onnx)
        batches = CalibrationBatches(args.calib_images, metadata.input_size, 1, max_images=args.calib_max_images)
        print(f"wrote {eb.save_calibration_array(batches, args.save_calib_npy)} ({len(batches.paths)} images)")
        return 0
    if args.print_trtexec:
        trt_major = args.trt_major or _installed_trt_major()
        if trt_major is None:
            raise UsageError(
                "TensorRT is not installed here: say which version the command is for with --trt-major 10|11"
            )
        print(trtexec_line(args, options, trt_major, has_qdq))
        return 0
    if args.sidecar_only:
        if args.out is None:
            raise UsageError("--sidecar-only needs --engine ENGINE (the engine built elsewhere)")
        eb.write_sidecar_only(args.onnx, args.out, args.plugins, args.device)
        return 0
    eb.check_build_outputs(args.onnx, args.out, options)
    props, _ = eb.read_model_metadata(args.onnx)
    eb.check_qdq_build(args.onnx, props, options.precision, has_qdq)
    lint_before_parsing(args.onnx)
    try:
        import_tensorrt()
    except MissingDependencyError as error:  # say what to run on the device instead
        raise MissingDependencyError(
            f"{error.message}; on a device with TensorRT 10 (e.g. JetPack 6) the equivalent trtexec "
            f"command is: {trtexec_line(args, options, 10, has_qdq)}"
        ) from None
    eb.build_engine(args.onnx, args.out, options)
    return 0
