"""Parity of the exported ONNX graphs with the PyTorch detector (fp32, CPU);
writes benchmarks/results/export_parity.json.

Metric (target >= 99%): the share of PyTorch detections with score >= 0.05 that the exported graph
reproduces: a detection of the same label with IoU >= 0.99 and |score difference| <= 1e-3.

- portable flavour: ONNX Runtime (CPU) on --images synthetic scenes (sspnet.data.synth). The graph
  has hard NMS, so it is compared with the PyTorch model switched to hard NMS; the comparison with
  the configured soft-NMS model is reported too, for information (that gap is what AP measures).
- tensorrt flavour: onnx's ReferenceEvaluator with the plugin nodes in Python (TensorRT cannot run
  here; slow, hence --trt-images).

Without --checkpoint the small presets are used with random weights (seed 0). A random FoveaBox
head scores everything ~0.01 (its prior-probability bias), below 0.05: its classification bias is
zeroed so that there are detections to compare.

With --data (a `sspnet synth` folder) the images are that folder's val split at its native size
(the export size), and each side's detections are also scored with the TinyPerson protocol: the
AP of the exported graph must be within 0.1 points of PyTorch's (portable vs the hard-NMS model,
tensorrt vs the configured soft-NMS model). This is how a trained checkpoint is checked:

    python benchmarks/bench_export_parity.py [--checkpoint CKPT] [--images 50] [--trt-images 4] [--imgsz 512 640]
    python benchmarks/bench_export_parity.py --checkpoint RUN/last.safetensors --data SYNTH_DIR --trt-images 50 \
        --out benchmarks/results/export_parity_trained.json
"""

from __future__ import annotations

import argparse
import copy
import platform
import tempfile
import time
from pathlib import Path

import torch

from sspnet.io.atomic import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PRESETS = ("faster_rcnn_r18_sspnet_small", "fovea_r18_sspnet_small")
TARGET_PCT = 99.0
TARGET_AP_POINTS = 0.1  # |AP(exported) - AP(PyTorch)|, percentage points
AP_KEYS = ("AP50_tiny", "AP50_all", "AP25_tiny", "AP75_tiny")


def random_model(preset: str):
    from sspnet.models import build_model

    torch.manual_seed(0)
    model = build_model(preset).eval()
    if model.config.variant == "fovea":
        with torch.no_grad():
            model.bbox_head.conv_cls.bias.zero_()
    return model


def hard_nms_twin(model):
    twin = copy.deepcopy(model)
    twin.config.nms_method = "hard"
    return twin


def average_precisions(outputs: dict, annotations) -> dict:
    """TinyPerson AP (percent) of contract outputs for the first len(outputs) records."""
    from sspnet.export.parity import outputs_to_detections

    from sspnet.evaluation import evaluate

    count = len(outputs["num_dets"])
    subset = copy.copy(annotations)
    subset.records = annotations.records[:count]
    detections = outputs_to_detections(outputs, [record.image_id for record in subset.records])
    metrics = evaluate(subset, detections, compute_mr=False)
    return {key: round(metrics[key], 4) for key in AP_KEYS}


def ap_row(reference: dict, exported: dict, annotations) -> dict:
    torch_ap, onnx_ap = average_precisions(reference, annotations), average_precisions(exported, annotations)
    difference = {key: round(abs(onnx_ap[key] - torch_ap[key]), 4) for key in AP_KEYS}
    return {
        "images": len(reference["num_dets"]),
        "torch": torch_ap,
        "onnx": onnx_ap,
        "abs_difference": difference,
        "target_points": TARGET_AP_POINTS,
        "meets_target": max(difference.values()) <= TARGET_AP_POINTS,
    }


def measure(model, label: str, images, trt_images: int, imgsz, workdir: Path, annotations=None) -> dict:
    from sspnet.export.onnx_export import export_onnx
    from sspnet.export.parity import compare_detections, print_parity, run_onnx, run_pytorch

    result = {"preset": model.config.name, "nms_method": model.config.nms_method}
    start = time.perf_counter()
    reference_soft = run_pytorch(model, images, batch_size=1)
    reference_hard = run_pytorch(hard_nms_twin(model), images, batch_size=1)
    result["pytorch_seconds"] = round(time.perf_counter() - start, 1)

    rows, ap_rows = {}, {}
    portable = export_onnx(model, workdir / f"{label}_portable.onnx", flavor="portable", imgsz=imgsz)
    outputs = run_onnx(portable, images, "portable", batch_size=1)
    rows[f"{label} portable vs hard-NMS torch"] = compare_detections(reference_hard, outputs)
    rows[f"{label} portable vs configured torch (info)"] = compare_detections(reference_soft, outputs)
    if annotations is not None:
        ap_rows[f"{label} portable vs hard-NMS torch"] = ap_row(reference_hard, outputs, annotations)

    tensorrt = export_onnx(model, workdir / f"{label}_tensorrt.onnx", flavor="tensorrt", imgsz=imgsz)
    few = images[:trt_images]
    start = time.perf_counter()
    outputs = run_onnx(tensorrt, few, "tensorrt", batch_size=1)
    result["tensorrt_reference_seconds_per_image"] = round((time.perf_counter() - start) / len(few), 1)
    rows[f"{label} tensorrt vs torch"] = compare_detections(_first(reference_soft, len(few)), outputs)
    if annotations is not None:
        ap_rows[f"{label} tensorrt vs torch"] = ap_row(_first(reference_soft, len(few)), outputs, annotations)

    print_parity(rows)
    if ap_rows:
        print_ap_rows(ap_rows)
        result["ap_rows"] = ap_rows
    result["rows"] = {
        name: {**stats, "target_pct": TARGET_PCT, "meets_target": stats["matched_pct"] >= TARGET_PCT}
        for name, stats in rows.items()
    }
    return result


def print_ap_rows(ap_rows: dict) -> None:
    from sspnet.io.table import print_table

    print_table(
        [
            (
                label,
                row["images"],
                *(f"{row['torch'][k]:.2f} / {row['onnx'][k]:.2f}" for k in AP_KEYS),
                f"{max(row['abs_difference'].values()):.3f}",
                "yes" if row["meets_target"] else "NO",
            )
            for label, row in ap_rows.items()
        ],
        headers=("graph", "images", *(f"{k} torch / onnx" for k in AP_KEYS), "max |diff|", f"<= {TARGET_AP_POINTS}"),
    )


def _first(outputs: dict, count: int) -> dict:
    return {name: value[:count] for name, value in outputs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a trained checkpoint (default: the small presets, random weights)")
    parser.add_argument(
        "--preset", action="append", help=f"preset(s) with random weights (default {', '.join(PRESETS)})"
    )
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--trt-images", type=int, default=4)
    parser.add_argument("--imgsz", type=int, nargs=2, default=(512, 640), metavar=("H", "W"))
    parser.add_argument("--data", help="a `sspnet synth` folder: its val images (native size) and AP on them")
    parser.add_argument("--out", default=str(RESULTS / "export_parity.json"))
    args = parser.parse_args()

    from sspnet.export.parity import synthetic_images

    annotations = None
    if args.data:
        from sspnet.export.parity import dataset_images

        images, annotations = dataset_images(args.data, "val", limit=args.images)
        imgsz = tuple(images.shape[2:])
    else:
        imgsz = tuple(args.imgsz)
        images = synthetic_images(args.images, imgsz, seed=0)
    if args.checkpoint:
        from sspnet.checkpoint import load_model

        models = {Path(args.checkpoint).stem: load_model(args.checkpoint)}
    else:
        models = {preset: random_model(preset) for preset in (args.preset or PRESETS)}

    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for label, model in models.items():
            results.append(measure(model, label, images, args.trt_images, imgsz, Path(workdir), annotations))

    import onnx
    import onnxruntime

    report = {
        "benchmark": "export_parity",
        "metric": "share of PyTorch detections (score >= 0.05) matched: same label, IoU >= 0.99, |score diff| <= 1e-3",
        "weights": args.checkpoint or "random (seed 0; fovea classification bias zeroed)",
        "images": (
            f"{len(images)} val images of {args.data}"
            if args.data
            else f"{len(images)} synthetic scenes (sspnet.data.synth, seed 0)"
        )
        + f", tensorrt flavour on the first {min(args.trt_images, len(images))}",
        "imgsz": list(imgsz),
        "precision": "fp32, CPU",
        "versions": {
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(),
        },
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "date": time.strftime("%Y-%m-%d"),
        "results": results,
    }
    print(f"wrote {atomic_write_json(Path(args.out), report, indent=2)}")  # makes the folder too


if __name__ == "__main__":
    main()
