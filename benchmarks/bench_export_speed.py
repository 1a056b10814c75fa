"""CPU latency of the exported portable graph in ONNX Runtime vs the same model in PyTorch eager;
writes benchmarks/results/export_speed_cpu.json.

End to end (uint8 image in, fixed-size detections out), batch 1, 640x512 (W x H) by default, the
same --threads for both sides. Reference row: torchvision's fasterrcnn_resnet50_fpn (random
weights) in eager mode, with min_size/max_size set so that it runs at the same 512x640 input
instead of upscaling it to 800 px. Every figure is the median of --repeats runs after --warmup.

    python benchmarks/bench_export_speed.py [--preset faster_rcnn_r50_sspnet] [--threads 2] [--repeats 10]
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sspnet.io.atomic import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def median_ms(run, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", action="append", help="preset(s) to time (default faster_rcnn_r50_sspnet)")
    parser.add_argument("--checkpoint", help="time a checkpoint instead of a random-weight preset")
    parser.add_argument("--imgsz", type=int, nargs=2, default=(512, 640), metavar=("H", "W"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-torchvision", action="store_true", help="skip the torchvision reference row")
    parser.add_argument("--out", default=str(RESULTS / "export_speed_cpu.json"))
    args = parser.parse_args()

    import onnxruntime
    from sspnet.export.onnx_export import export_onnx
    from sspnet.export.parity import synthetic_images

    from sspnet.models import build_model

    torch.set_num_threads(args.threads)
    imgsz = tuple(args.imgsz)
    image = synthetic_images(1, imgsz, seed=0)
    rows = []
    if args.checkpoint:
        from sspnet.checkpoint import load_model

        models = {Path(args.checkpoint).stem: load_model(args.checkpoint)}
    else:
        torch.manual_seed(0)
        models = {p: build_model(p).eval() for p in (args.preset or ["faster_rcnn_r50_sspnet"])}

    with tempfile.TemporaryDirectory() as workdir:
        for label, model in models.items():
            path = export_onnx(model, Path(workdir) / f"{label}.onnx", flavor="portable", imgsz=imgsz, batch=1)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            ort_ms = median_ms(lambda: session.run(None, {"images": image}), args.warmup, args.repeats)
            tensor = torch.from_numpy(image)
            # The portable graph has hard NMS: time eager with hard NMS too (same work), and as configured.
            hard = copy.deepcopy(model)
            hard.config.nms_method = "hard"
            with torch.inference_mode():
                eager_ms = median_ms(lambda: hard(tensor), args.warmup, args.repeats)
                configured_ms = median_ms(lambda: model(tensor), args.warmup, args.repeats)
            method = model.config.nms_method
            rows.append(
                {"model": label, "runtime": "onnxruntime (portable graph, hard NMS)", "median_ms": round(ort_ms, 1)}
            )
            rows.append({"model": label, "runtime": "pytorch eager (hard NMS)", "median_ms": round(eager_ms, 1)})
            rows.append(
                {
                    "model": label,
                    "runtime": f"pytorch eager (configured {method} NMS)",
                    "median_ms": round(configured_ms, 1),
                }
            )
            rows.append(
                {
                    "model": label,
                    "runtime": "ratio eager (hard NMS) / onnxruntime",
                    "ratio": round(eager_ms / ort_ms, 2),
                }
            )
            print(
                f"{label}: onnxruntime {ort_ms:.1f} ms, pytorch eager {eager_ms:.1f} ms (hard NMS), "
                f"{configured_ms:.1f} ms ({method} NMS), ratio {eager_ms / ort_ms:.2f}"
            )

    if not args.no_torchvision:
        import torchvision

        reference = torchvision.models.detection.fasterrcnn_resnet50_fpn(
            weights=None, weights_backbone=None, min_size=imgsz[0], max_size=imgsz[1]
        ).eval()
        tensor = torch.from_numpy(image[0]).float() / 255.0
        with torch.inference_mode():
            tv_ms = median_ms(lambda: reference([tensor]), args.warmup, args.repeats)
        rows.append(
            {
                "model": "torchvision fasterrcnn_resnet50_fpn (random weights)",
                "runtime": "pytorch eager",
                "median_ms": round(tv_ms, 1),
            }
        )
        print(f"torchvision fasterrcnn_resnet50_fpn eager: {tv_ms:.1f} ms")

    import onnx

    report = {
        "benchmark": "export_speed_cpu",
        "input": f"batch 1, uint8 {imgsz[1]}x{imgsz[0]} (W x H), end to end incl. normalisation and NMS",
        "threads": args.threads,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "statistic": "median latency (ms)",
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
        "note": "CPU only; shared build machine, so treat absolute numbers as rough. Random weights: the "
        "number of RoIs / detections (and so NMS time) differs from a trained model.",
    }
    print(f"wrote {atomic_write_json(Path(args.out), report, indent=2)}")  # makes the folder too


if __name__ == "__main__":
    main()
