"""`sspnet doctor`: is this device ready for TensorRT inference? Checks, in order:

    cuda-python, a CUDA device, TensorRT (>= 10), the plugin library and its creators (registry
    lookup by name / version / namespace), ONNX Runtime, OpenCV's video backends (FFmpeg,
    GStreamer: whether GStreamer pipeline sources work), a small exported model, a tiny engine
    built from it, and TensorRT vs ONNX Runtime on the same images (parity table).

Every check prints one table row (ok / MISSING / FAILED / skipped); a check whose prerequisite is
missing is skipped, never crashes. Exit code 0 only when everything passed.

The model: --onnx (tensorrt flavour) and --portable-onnx (for ONNX Runtime) exported elsewhere, or,
when torch is installed, an untrained small preset exported here in both flavours (hard NMS, since
the portable flavour has no soft-NMS; parity needs no trained weights, only the same ones).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import sspnet
from sspnet.io.table import print_table

HELP = "check CUDA, TensorRT, the plugins; build a tiny engine and compare it with ONNX Runtime"

OK, MISSING, FAILED, SKIPPED = "ok", "MISSING", "FAILED", "skipped"
DEFAULT_PRESET = "faster_rcnn_r18_sspnet_small"
TRT_ONNX, PORTABLE_ONNX = "doctor_trt.onnx", "doctor_portable.onnx"  # exported into the workdir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--onnx", type=Path, help="tensorrt-flavour ONNX to build the test engine from")
    parser.add_argument("--portable-onnx", type=Path, help="portable ONNX of the same model, for ONNX Runtime")
    parser.add_argument("--plugins", type=Path, help="libsspnet_trt_plugins.so (default: the usual places)")
    parser.add_argument(
        "--precision", choices=("fp32", "fp16"), default="fp32", help="test engine precision (default fp32)"
    )
    parser.add_argument("--images", type=int, default=4, help="images in the parity run (default 4)")
    parser.add_argument(
        "--preset", default=DEFAULT_PRESET, help=f"preset exported when no --onnx is given ({DEFAULT_PRESET})"
    )
    parser.add_argument(
        "--imgsz",
        type=int,
        nargs=2,
        default=(256, 320),
        metavar=("H", "W"),
        help="export size (default 256 320)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the exported models and engine here (default: a temporary folder)"
    )
    parser.add_argument("--device", type=int, default=0, help="CUDA device index")


@dataclass
class Report:
    """The rows printed at the end, plus what later checks need from earlier ones."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)
    found: dict = field(default_factory=dict)

    def add(self, check: str, status: str, detail: str) -> str:
        self.rows.append((check, status, detail))
        return status

    @property
    def passed(self) -> bool:
        return all(status in (OK, SKIPPED) for _, status, _ in self.rows) and not any(
            status == SKIPPED and check in ("model", "engine build", "parity") for check, status, _ in self.rows
        )


def _first_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


# ---- environment ------------------------------------------------------------------------------


def check_cuda(report: Report, device: int) -> None:
    try:
        from sspnet.runtime.tensorrt_common import cuda_call, gpu_facts, import_cudart

        cudart = import_cudart()
    except ImportError as error:
        report.add("cuda-python", MISSING, str(error))
        report.add("CUDA device", SKIPPED, "needs cuda-python")
        return
    try:
        from cuda import bindings as cuda_module
    except ImportError:  # cuda-python < 12.6: only the older `cuda` package
        import cuda as cuda_module
    report.add("cuda-python", OK, getattr(cuda_module, "__version__", "installed"))
    try:
        count = cuda_call(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
        name, capability = gpu_facts(device)
        driver = cuda_call(cudart.cudaDriverGetVersion(), "cudaDriverGetVersion")
        runtime = cuda_call(cudart.cudaRuntimeGetVersion(), "cudaRuntimeGetVersion")
    except RuntimeError as error:
        report.add("CUDA device", MISSING, _first_line(error))
        return
    report.found["gpu"] = (name, capability)
    report.add(
        "CUDA device",
        OK,
        f"{count} device(s); #{device} {name} (sm {capability}), driver {driver // 1000}.{driver % 1000 // 10}, "
        f"runtime {runtime // 1000}.{runtime % 1000 // 10}",
    )


def check_tensorrt(report: Report) -> None:
    try:
        from sspnet.runtime.tensorrt_common import import_tensorrt

        trt = import_tensorrt()
    except ImportError as error:
        report.add("TensorRT", MISSING, _first_line(error.__cause__ or error))
        return
    from sspnet.runtime.engine_builder import MIN_TENSORRT_MAJOR
    from sspnet.runtime.sidecar import tensorrt_major

    if tensorrt_major(trt.__version__) < MIN_TENSORRT_MAJOR:
        report.add(
            "TensorRT",
            FAILED,
            f"{trt.__version__}: the plugins need TensorRT >= {MIN_TENSORRT_MAJOR} (IPluginV3)",
        )
        return
    report.found["tensorrt"] = trt
    report.add("TensorRT", OK, trt.__version__)


def check_plugins(report: Report, library: Path | None) -> None:
    from sspnet.runtime.sidecar import expected_plugin_versions, plugin_namespace
    from sspnet.runtime.tensorrt_common import (
        find_plugin_library,
        load_plugin_library,
        plugin_library_candidates,
        registered_plugin_versions,
    )

    try:
        path = find_plugin_library(library)
    except FileNotFoundError as error:
        detail = _first_line(error)
        if library is None:
            looked = ", ".join(str(c) for c in plugin_library_candidates())
            detail = f"not built: none of {looked}; build it: csrc/tensorrt/README.md"
        report.add("plugin library", MISSING, detail)
    else:
        if "tensorrt" not in report.found:
            report.add("plugin library", SKIPPED, f"found {path}; loading needs TensorRT")
        else:
            try:
                report.add("plugin library", OK, str(load_plugin_library(path)))
                report.found["plugins"] = path
            except (RuntimeError, OSError) as error:
                report.add("plugin library", FAILED, _first_line(error))
    namespace = plugin_namespace()
    registered = registered_plugin_versions(report.found["tensorrt"]) if "plugins" in report.found else {}
    for name, version in expected_plugin_versions().items():
        check = f"creator {namespace}::{name} v{version}"
        if "plugins" not in report.found:
            report.add(check, SKIPPED, "needs the plugin library")
        elif version in registered.get(name, []):
            report.add(check, OK, "registered")
        else:
            have = registered.get(name)
            report.add(check, MISSING, f"registry has versions {have}" if have else "not in the registry")
            report.found.pop("plugins", None)


def check_onnxruntime(report: Report) -> None:
    try:
        import onnxruntime
    except ImportError:
        report.add("onnxruntime", MISSING, "pip install onnxruntime (or onnxruntime-gpu)")
        return
    report.found["onnxruntime"] = True
    report.add("onnxruntime", OK, f"{onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})")


def check_opencv(report: Report) -> None:
    """OpenCV reads every video, camera and stream: which of its video backends are built in.
    GStreamer is what a Jetson's camera (nvarguscamerasrc) and hardware decoder (nvv4l2decoder)
    pipelines need; pip's opencv-python wheels have FFmpeg only, JetPack's python3-opencv has GStreamer."""
    try:
        import cv2

        from sspnet.inference.sources import opencv_backends
    except ImportError:
        report.add(
            "OpenCV",
            MISSING,
            "pip install opencv-python-headless (predict reads frames with it), "
            "or JetPack's python3-opencv (with GStreamer)",
        )
        return
    backends = opencv_backends()
    gstreamer = (
        "GStreamer yes: pipeline strings ('... ! appsink') work as sources"
        if backends["GStreamer"]
        else "GStreamer no: GStreamer pipeline sources are refused (JetPack's python3-opencv has it)"
    )
    report.add(
        "OpenCV",
        OK,
        f"{cv2.__version__} ({Path(cv2.__file__).parent}); FFmpeg {'yes' if backends['FFMPEG'] else 'no'}; {gstreamer}",
    )


# ---- model, engine, parity --------------------------------------------------------------------


def _export_small_model(args, workdir: Path) -> tuple[Path, Path]:
    """An untrained preset exported in both flavours (needs torch and the exporter)."""
    from sspnet.export.onnx_export import export_onnx
    from sspnet.models import build_model

    model = build_model(args.preset, nms_method="hard").eval()
    imgsz = tuple(args.imgsz)
    trt_onnx = export_onnx(model, workdir / TRT_ONNX, flavor="tensorrt", imgsz=imgsz, batch="dynamic")
    portable = export_onnx(model, workdir / PORTABLE_ONNX, flavor="portable", imgsz=imgsz, batch="dynamic")
    return Path(trt_onnx), Path(portable)


def find_model(report: Report, args, workdir: Path) -> None:
    if args.onnx is not None:  # checked to exist by check_arguments
        report.found["model"] = (args.onnx, args.portable_onnx)
        report.add("model", OK, f"{args.onnx}" + (f" + {args.portable_onnx}" if args.portable_onnx else ""))
        return
    needs = [what for what in ("tensorrt", "plugins", "gpu") if what not in report.found]
    if needs:  # exporting takes a while and only feeds the engine build
        report.add("model", SKIPPED, f"needs {', '.join(needs)} (or pass --onnx / --portable-onnx)")
        return
    try:
        import torch  # noqa: F401  (the exporter needs it)
    except ImportError:
        report.add(
            "model",
            MISSING,
            "no --onnx given and no torch to export one: pass --onnx MODEL_trt.onnx "
            "--portable-onnx MODEL.onnx exported elsewhere (sspnet export)",
        )
        return
    try:
        report.found["model"] = _export_small_model(args, workdir)
    except Exception as error:  # the exporter may fail in many ways; the doctor reports, never crashes
        report.add("model", FAILED, f"exporting {args.preset}: {_first_line(error)}")
        return
    report.add("model", OK, f"untrained {args.preset} exported to {workdir} ({args.imgsz[0]}x{args.imgsz[1]})")


def build_test_engine(report: Report, args, workdir: Path) -> None:
    needs = [what for what in ("tensorrt", "plugins", "gpu", "model") if what not in report.found]
    if needs:
        report.add("engine build", SKIPPED, f"needs {', '.join(needs)}")
        return
    from sspnet.runtime.engine_builder import BuildOptions, build_engine

    onnx_path = report.found["model"][0]
    engine_path = _engine_path(args, workdir)
    options = BuildOptions(
        precision=args.precision,
        batch=(1, 2, 2),
        workspace_mib=512,
        plugin_library=report.found["plugins"],
        device=args.device,
    )
    try:
        build_engine(onnx_path, engine_path, options, log=lambda message: print(f"  [build] {message}"))
    except Exception as error:  # report any build failure as a row
        report.add("engine build", FAILED, _first_line(error))
        return
    report.found["engine"] = engine_path
    report.add("engine build", OK, f"{engine_path} ({args.precision}, batch 1..2)")


def _test_images(count: int, imgsz: tuple[int, int]):
    import numpy as np

    try:
        from sspnet.export.parity import synthetic_images

        return synthetic_images(count, imgsz)
    except Exception:  # e.g. no OpenCV for the synthetic scenes: noise still exercises every layer
        return np.random.default_rng(0).integers(0, 256, (count, 3, *imgsz), dtype=np.uint8)


def run_parity(report: Report, args) -> dict | None:
    needs = [what for what in ("engine", "onnxruntime") if what not in report.found]
    portable = report.found.get("model", (None, None))[1]
    if portable is None and "model" in report.found:
        needs.append("--portable-onnx")
    if needs:
        report.add("parity", SKIPPED, f"needs {', '.join(needs)}")
        return None
    from sspnet.export.parity import compare_detections
    from sspnet.runtime.backend import load_backend

    try:
        trt_backend = load_backend(report.found["engine"], plugin_library=report.found["plugins"], device=args.device)
        ort_backend = load_backend(portable)
        images = _test_images(args.images, trt_backend.input_size)
        stats = compare_detections(ort_backend.infer(images), trt_backend.infer(images), iou_min=0.9, score_tol=0.02)
    except Exception as error:  # any runtime failure is the finding
        report.add("parity", FAILED, _first_line(error))
        return None
    status = OK if stats["matched_pct"] >= 95.0 else FAILED
    report.add("parity", status, f"{stats['matched_pct']:.1f}% of ONNX Runtime's detections matched by TensorRT")
    return stats


def _engine_path(args, workdir: Path) -> Path:
    return workdir / f"doctor_{args.precision}.engine"


def _model_files(args, workdir: Path) -> dict[Path, str]:
    """{file the doctor writes into workdir: its kind}."""
    engine = _engine_path(args, workdir)
    files = {engine: "tensorrt-engine", engine.with_name(engine.name + ".json"): "json"}
    if args.onnx is None:
        files.update({workdir / TRT_ONNX: "onnx", workdir / PORTABLE_ONNX: "onnx"})
    return files


def check_arguments(args) -> None:
    """Argument mistakes and output conflicts, before any check runs (UsageError / OutputConflictError)."""
    from sspnet.errors import UsageError
    from sspnet.export.options import check_imgsz
    from sspnet.io.outputs import OutputGuard

    if args.portable_onnx is not None and args.onnx is None:
        raise UsageError("--portable-onnx needs --onnx (the tensorrt-flavour export of the same model)")
    for option, path in (("--onnx", args.onnx), ("--portable-onnx", args.portable_onnx)):
        if path is not None and not path.is_file():
            raise UsageError("no such model file", path=path, field=option)
    if args.workdir is not None and args.workdir.exists() and not args.workdir.is_dir():
        raise UsageError("an existing file, expected a folder", path=args.workdir, field="--workdir")
    if args.images < 1:
        raise UsageError("the parity run needs at least one image", field="--images", got=args.images)
    if args.onnx is None:
        from sspnet.checkpoint import check_preset_name

        check_imgsz(args.imgsz, "--imgsz")
        check_preset_name(args.preset)
    if args.workdir is not None:
        guard = OutputGuard(inputs=[args.onnx, args.portable_onnx, args.plugins], verb="doctor")
        for path, kind in _model_files(args, args.workdir).items():
            guard.check_file(path, kind)


def run(args) -> int:
    check_arguments(args)
    report = Report()
    report.add("sspnet", OK, f"{sspnet.__version__} on Python {platform.python_version()} ({platform.machine()})")
    check_cuda(report, args.device)
    check_tensorrt(report)
    check_plugins(report, args.plugins)
    check_onnxruntime(report)
    check_opencv(report)
    with tempfile.TemporaryDirectory(prefix="sspnet_doctor_") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        find_model(report, args, workdir)
        build_test_engine(report, args, workdir)
        stats = run_parity(report, args)
    print_table(report.rows, headers=("check", "status", "detail"))
    if stats is not None:
        print()
        print_table(
            [
                (
                    f"TensorRT {args.precision} vs ONNX Runtime",
                    stats["images"],
                    stats["reference"],
                    stats["exported"],
                    f"{stats['matched_pct']:.2f}%",
                    f"{stats['max_box_diff']:.2e}",
                    f"{stats['max_score_diff']:.2e}",
                    f"{stats['equal_num_dets']}/{stats['images']}",
                )
            ],
            headers=(
                "parity",
                "images",
                "ORT dets",
                "TRT dets",
                "matched",
                "max box diff",
                "max score diff",
                "same count",
            ),
        )
    if report.passed:
        print("\nsspnet doctor: everything needed for TensorRT inference works on this device")
        return 0
    problems = [check for check, status, _ in report.rows if status in (MISSING, FAILED)]
    print(
        f"\nsspnet doctor: not ready for TensorRT inference; fix: {', '.join(problems) or 'the skipped checks'} "
        "(see csrc/tensorrt/README.md)"
    )
    return 1
