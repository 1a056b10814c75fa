"""`sspnet demo --out DIR`: the whole toolkit end to end on a CPU, nothing downloaded.

    sspnet demo --out runs/demo            # says up front how long it takes on this machine
    sspnet demo --out /tmp/demo --quick    # tiny data, a few iterations (tests)

Stages (each prints its progress; a failure names the stage and the reason, exit status 1):
    data         synthetic tiny-person set in the TinyPerson format (sspnet.data.synth)
    train        a FIXED number of iterations of the `synthetic-cpu` recipe (its `iterations`, why
                 that length: sspnet/engine/recipes.py), so every machine trains the same model; a
                 slow or busy machine takes longer and says so up front (time per iteration measured
                 before training), then shows a progress bar with an ETA
    evaluate     TinyPerson AP / MR table of the trained model on the val split (PyTorch)
    export       portable ONNX graph (sspnet.export.onnx_export)
    onnxruntime  the ONNX Runtime backend on the val images: AP50-tiny, annotated samples
    int8         INT8 Q/DQ models (sspnet.export.quantize, calibrated on the train split): the
                 TensorRT form and the ONNX Runtime CPU form, their AP50-tiny and latency beside fp32
    attention    SSPNet's attention maps A0..A3 as heat-maps over sample images (PyTorch)
    benchmark    PyTorch vs ONNX Runtime latency / throughput (sspnet.benchmark)
    report       DIR/report.md, DIR/report.html, DIR/summary.json

A final AP50-tiny below 50 % means the model is not trained well enough: summary.json
("trained_well_enough": false), the top of the report and the last lines printed say so, and the
exit status is 3 (with --quick, whose few iterations cannot train a model, only the exit status
stays 0).

Training uses the `synthetic-cpu` recipe (sspnet/engine/recipes.py), the one
benchmarks/train_synthetic.py measures: no ImageNet weights, so every backbone stage trains, with a
higher learning rate, gradient clipping and a narrow head on small images.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from sspnet.cli.arguments import positive_int
from sspnet.io.atomic import json_safe

HELP = "end-to-end demo: synthetic data -> train -> evaluate -> export -> ONNX Runtime -> benchmark -> report"

STAGES = ("data", "train", "evaluate", "export", "onnxruntime", "int8", "attention", "benchmark", "report")
NOT_TRAINED_EXIT = 3


@dataclass
class DemoSettings:
    """Sizes and budgets of one demo run (full or --quick)."""

    out: Path
    images: int = 250
    val_fraction: float = 0.2
    size: tuple[int, int] = (256, 256)  # W, H of the synthetic images (multiples of 32)
    train_iters: int | None = None  # None: the recipe's fixed count (SYNTHETIC_CPU.iterations)
    int8_tiles: int = 64  # INT8 calibration tiles
    int8_rounds: int = 5  # interleaved latency rounds of fp32 vs INT8 (10 calls per model each)
    bench_iters: int = 20
    bench_warmup: int = 3
    samples: int = 4  # annotated sample images and attention panels in the report
    conf: float = 0.3  # score threshold of the drawn samples
    reference: bool = False  # torchvision reference row in the benchmark
    seed: int = 0
    quick: bool = False

    @property
    def imgsz(self) -> tuple[int, int]:
        """(H, W) the model is exported for: the synthetic image size."""
        return self.size[1], self.size[0]


QUICK = {
    "images": 12,
    "val_fraction": 0.34,
    "size": (128, 128),
    "train_iters": 2,
    "bench_iters": 3,
    "bench_warmup": 1,
    "samples": 2,
    "int8_tiles": 4,
    "int8_rounds": 1,
}


def add_arguments(parser):
    from sspnet.engine.recipes import SYNTHETIC_CPU

    parser.add_argument("--out", required=True, help="report folder (data, run, model, report.md, summary.json)")
    parser.add_argument("--quick", action="store_true", help="tiny version (few images / iterations, ~1-2 min)")
    parser.add_argument("--images", type=positive_int, help="synthetic images, train + val (default 250; quick 12)")
    parser.add_argument(
        "--train-iters",
        type=positive_int,
        help=f"training iterations (default: the synthetic-cpu recipe's {SYNTHETIC_CPU.iterations})",
    )
    parser.add_argument(
        "--bench-iters", type=positive_int, help="timed benchmark iterations per backend (default 20; quick 3)"
    )
    parser.add_argument(
        "--reference-torchvision",
        action="store_true",
        help="add torchvision's Faster R-CNN R50-FPN as a benchmark reference row",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic set and training (default 0)")


def settings_from_args(args) -> DemoSettings:
    from sspnet.errors import UsageError

    settings = DemoSettings(out=Path(args.out), reference=args.reference_torchvision, seed=args.seed, quick=args.quick)
    if args.quick:
        for key, value in QUICK.items():
            setattr(settings, key, value)
    for key in ("images", "train_iters", "bench_iters"):  # checked by their argparse type
        value = getattr(args, key)
        if value is not None:
            setattr(settings, key, value)
    if settings.images < 4:
        raise UsageError(f"--images must be at least 4 (train and val need images), got {settings.images}")
    return settings


# ---- stage bookkeeping -------------------------------------------------------------------------


class StageFailed(Exception):
    def __init__(self, stage: str, error: BaseException):
        super().__init__(f"stage '{stage}' failed: {type(error).__name__}: {error}")
        self.stage = stage
        self.error = error


@dataclass
class Stages:
    """Prints "[k/N] stage: what" before each stage and its time after; turns an exception into
    StageFailed naming the stage."""

    seconds: dict = field(default_factory=dict)

    def run(self, name: str, what: str, function, *args, **kwargs):
        number = STAGES.index(name) + 1
        print(f"\n[{number}/{len(STAGES)}] {name}: {what}", flush=True)
        start = time.perf_counter()
        try:
            result = function(*args, **kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException as error:
            self.seconds[name] = time.perf_counter() - start
            raise StageFailed(name, error) from error
        self.seconds[name] = time.perf_counter() - start
        print(f"[{number}/{len(STAGES)}] {name} done in {self.seconds[name]:.1f} s", flush=True)
        return result


# ---- the stages --------------------------------------------------------------------------------


def make_data(settings: DemoSettings) -> dict:
    from sspnet.data.synth import write_dataset

    data = settings.out / "data"
    if data.exists():
        shutil.rmtree(data)
    summary = write_dataset(
        data, settings.images, seed=settings.seed, val_fraction=settings.val_fraction, size=settings.size, progress=True
    )
    for split in ("train", "val"):
        if summary[split]["images"] == 0:
            raise ValueError(f"the {split} split is empty: use more --images")
    print(
        f"{summary['train']['images']} train / {summary['val']['images']} val images of "
        f"{settings.size[0]}x{settings.size[1]}, {summary['train']['boxes'] + summary['val']['boxes']} people"
    )
    return summary


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def train_model(settings: DemoSettings) -> dict:
    from sspnet.engine.recipes import SYNTHETIC_CPU as recipe
    from sspnet.engine.trainer import LAST_WEIGHTS, train

    iters = settings.train_iters or recipe.iterations
    # A short measurement first: the run length is fixed, so a slow or busy machine takes longer.
    per_iter = recipe.seconds_per_iteration(steps=3, size=settings.size)
    estimate = 1.05 * per_iter * iters  # + data loading and logging
    # s per iteration of this recipe on a quiet 2-core CPU: benchmarks/results/demo_summary.json,
    # train.seconds_per_iteration_measured
    quiet = 0.30
    print(
        f"training {iters} iterations; measured {per_iter:.2f} s per iteration on this machine now, "
        f"so training takes about {_duration(estimate)} (ends around "
        f"{time.strftime('%H:%M', time.localtime(time.time() + estimate))})",
        flush=True,
    )
    if settings.size == recipe.image_size and per_iter > 1.5 * quiet:
        print(
            f"note: this machine is {per_iter / quiet:.1f}x slower than a quiet 2-core CPU right now (slower "
            "hardware or other programs running): the demo trains the same model, it just takes longer",
            flush=True,
        )
    run_dir = settings.out / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    config = recipe.train_config(
        settings.out / "data",
        run_dir,
        max_iters=iters,
        seed=settings.seed,
        eval_every=0,
        log_every=max(1, min(20, iters)),
    )
    start = time.perf_counter()
    result = train(config)
    return {
        "recipe": recipe.name,
        "preset": recipe.preset,
        "overrides": recipe.overrides,
        "iterations": result.iteration,
        "planned_iterations": iters,
        "batch_size": recipe.batch_size,
        "lr": recipe.lr,
        "seconds_per_iteration_measured": per_iter,
        "estimated_seconds": estimate,
        "seconds": time.perf_counter() - start,
        "checkpoint": str(run_dir / LAST_WEIGHTS),
    }


def evaluate_torch(settings: DemoSettings, checkpoint: str) -> dict:
    from sspnet.benchmark.harness import evaluate_backend
    from sspnet.evaluation import print_results_table
    from sspnet.inference.torch_backend import TorchBackend

    backend = TorchBackend.from_checkpoint(checkpoint, input_size=settings.imgsz, device="cpu")
    metrics = evaluate_backend(backend, str(settings.out / "data"), "val", compute_mr=True, progress=True)
    print_results_table(metrics)
    return metrics


def export_model(settings: DemoSettings, checkpoint: str) -> str:
    from sspnet.export.onnx_export import export_onnx

    path = export_onnx(
        checkpoint, settings.out / "model.onnx", flavor="portable", imgsz=settings.imgsz, batch="dynamic"
    )
    return str(path)


def _sample_source(settings: DemoSettings):
    from sspnet.data.tinyperson import dataset_paths, load_annotations
    from sspnet.inference.sources import ImageFiles

    gt_path, image_root = dataset_paths(settings.out / "data", "val")
    records = load_annotations(gt_path, image_root=image_root).records[: settings.samples]
    return ImageFiles([record.path for record in records], f"{len(records)} val images")


def run_onnxruntime(settings: DemoSettings, onnx_path: str) -> dict:
    from sspnet.benchmark.harness import accuracy
    from sspnet.inference.predict import PredictOptions, predict
    from sspnet.runtime.backend import load_backend
    from sspnet.runtime.detector import Detector

    backend = load_backend(onnx_path, "onnxruntime")
    ap = accuracy(backend, str(settings.out / "data"), "val", progress=True)
    print(f"ONNX Runtime AP50-tiny on val: {ap:.2f} %")
    detector = Detector(backend, score_threshold=settings.conf, color_order="bgr")
    summary = predict(
        detector,
        _sample_source(settings),
        PredictOptions(out=settings.out / "samples", image_format="png", progress=False),
    )
    images = sorted(str(p) for p in (settings.out / "samples").glob("*.png"))
    return {"AP50_tiny": ap, "samples": images, "sample_detections": summary.detections}


def run_int8(settings: DemoSettings, onnx_path: str) -> dict:
    """Both INT8 forms with the default calibration, their AP50-tiny on val, and latency beside fp32."""
    from sspnet.benchmark.int8 import ap50_tiny, interleaved_latency
    from sspnet.export.quantize import QuantizeSettings, quantize_onnx

    data = str(settings.out / "data")
    forms = {}
    for form, name in (("symmetric", "model_int8.onnx"), ("asymmetric", "model_int8_cpu.onnx")):
        report = quantize_onnx(
            onnx_path,
            settings.out / name,
            data,
            QuantizeSettings(activations=form, max_tiles=settings.int8_tiles, split="train"),
        )
        forms[form] = {
            "file": name,
            "method": report.method,
            "float_groups": report.float_groups,
            "calibration_tiles": report.calibration.get("tiles"),
            "AP50_tiny": ap50_tiny(str(settings.out / name), data, progress=True),
        }
        print(f"INT8 {form} ({name}): AP50-tiny {forms[form]['AP50_tiny']:.2f} %")
    paths = [onnx_path] + [str(settings.out / forms[form]["file"]) for form in ("symmetric", "asymmetric")]
    latency = interleaved_latency(paths, settings.imgsz, rounds=settings.int8_rounds, iters=10, progress=True)
    fp32_p50 = latency[onnx_path]["p50"]
    for form, path in zip(("symmetric", "asymmetric"), paths[1:]):
        forms[form]["ms_p50"] = latency[path]["p50"]
        forms[form]["speedup_vs_fp32"] = fp32_p50 / latency[path]["p50"]
    print(
        f"ONNX Runtime p50: fp32 {fp32_p50:.1f} ms, INT8 TensorRT form {forms['symmetric']['ms_p50']:.1f} ms, "
        f"INT8 CPU form {forms['asymmetric']['ms_p50']:.1f} ms"
    )
    return {"fp32_ms_p50": fp32_p50, **forms}


def attention_maps(settings: DemoSettings, checkpoint: str) -> list[str]:
    from sspnet.inference.predict import PredictOptions, predict
    from sspnet.inference.torch_backend import TorchBackend
    from sspnet.runtime.detector import Detector

    backend = TorchBackend.from_checkpoint(checkpoint, input_size=settings.imgsz, device="cpu", record_attention=True)
    detector = Detector(backend, score_threshold=settings.conf, color_order="bgr")
    out = settings.out / "torch"  # annotated PyTorch detections, attention panels in torch/attention/
    predict(
        detector,
        _sample_source(settings),
        PredictOptions(out=out, attention=True, image_format="png", save_json=False, progress=False),
    )
    return sorted(str(p) for p in (out / "attention").glob("*.png"))


def benchmark(settings: DemoSettings, checkpoint: str, onnx_path: str) -> list[dict]:
    from sspnet.benchmark.harness import BenchSettings, machine_info, plan_rows, run_benchmark
    from sspnet.benchmark.report import add_speedups, benchmark_document, plot, print_benchmark_table, write_json

    specs = plan_rows(
        [checkpoint, onnx_path],
        [1],
        [settings.imgsz],
        device="cpu",
        providers=["cpu"],
        cuda_graph=False,
        reference=settings.reference,
    )
    bench = BenchSettings(iters=settings.bench_iters, warmup=settings.bench_warmup, progress=True)
    rows = add_speedups(run_benchmark(specs, bench))
    print_benchmark_table(rows)
    failed = [row["error"] for row in rows if row["error"]]
    if failed:
        raise RuntimeError(f"benchmark rows failed: {'; '.join(failed)}")
    write_json(
        settings.out / "benchmark.json",
        benchmark_document(rows, machine_info(), {"iters": bench.iters, "warmup": bench.warmup}),
    )
    plot(rows, settings.out / "benchmark.png", title="sspnet demo: PyTorch vs ONNX Runtime (CPU)")
    return rows


# ---- the report -----------------------------------------------------------------------------------


def summary_dict(settings: DemoSettings, results: dict, stage_seconds: dict, wall: float) -> dict:
    """summary.json's content: the headline numbers of every stage and the training verdict."""
    from sspnet.benchmark.report import training_verdict

    rows = results["benchmark"]
    torch_row = next(row for row in rows if row["backend"] == "torch" and row["model"] != "torchvision")
    ort_row = next(row for row in rows if row["backend"] == "onnxruntime")
    torch_p50, ort_p50 = torch_row["latency_ms"]["p50"], ort_row["latency_ms"]["p50"]
    int8 = results["int8"]
    ap = results["metrics"]["AP50_tiny"]
    trained, verdict = training_verdict(ap, results["train"]["iterations"], settings.quick)
    return json_safe(
        {
            "trained_well_enough": trained,
            "verdict": verdict,
            "AP50_tiny": ap,
            "AP50_tiny_onnxruntime": results["onnxruntime"]["AP50_tiny"],
            "AP50_tiny_int8": int8["symmetric"]["AP50_tiny"],
            "AP50_tiny_int8_cpu": int8["asymmetric"]["AP50_tiny"],
            "onnxruntime_fp32_ms_p50_int8_run": int8["fp32_ms_p50"],
            "onnxruntime_int8_ms_p50": int8["symmetric"]["ms_p50"],
            "onnxruntime_int8_cpu_ms_p50": int8["asymmetric"]["ms_p50"],
            "speedup_int8_vs_fp32": int8["symmetric"]["speedup_vs_fp32"],
            "speedup_int8_cpu_vs_fp32": int8["asymmetric"]["speedup_vs_fp32"],
            "int8": int8,
            "torch_ms_p50": torch_p50,
            "onnxruntime_ms_p50": ort_p50,
            "speedup_onnxruntime_vs_torch": torch_p50 / ort_p50,
            "torch_images_per_s": torch_row["throughput_ips"],
            "onnxruntime_images_per_s": ort_row["throughput_ips"],
            "metrics": results["metrics"],
            "train": results["train"],
            "data": {
                "images": settings.images,
                "size_wh": list(settings.size),
                "seed": settings.seed,
                "train": results["data"]["train"],
                "val": results["data"]["val"],
            },
            "quick": settings.quick,
            "stage_seconds": {k: round(v, 2) for k, v in stage_seconds.items()},
            "wall_time_s": round(wall, 1),
            "files": {
                "report": "report.md",
                "html": "report.html",
                "model_onnx": "model.onnx",
                "model_int8_onnx": int8["symmetric"]["file"],
                "model_int8_cpu_onnx": int8["asymmetric"]["file"],
                "checkpoint": os.path.relpath(results["train"]["checkpoint"], settings.out),
                "benchmark_json": "benchmark.json",
                "benchmark_plot": "benchmark.png",
            },
        }
    )


def write_report(settings: DemoSettings, results: dict, stage_seconds: dict, started: float) -> dict:
    from sspnet.benchmark.report import demo_report
    from sspnet.io.atomic import atomic_write_json, atomic_write_text

    summary = summary_dict(settings, results, stage_seconds, time.perf_counter() - started)
    relative = [os.path.relpath(path, settings.out) for path in results["onnxruntime"]["samples"]]
    attention = [os.path.relpath(path, settings.out) for path in results["attention"]]
    markdown, page = demo_report(summary, results["benchmark"], relative, attention)
    atomic_write_text(settings.out / "report.md", markdown)
    atomic_write_text(settings.out / "report.html", page)
    atomic_write_json(settings.out / "summary.json", summary)
    return summary


# ---- the verb -------------------------------------------------------------------------------------


def run_demo(settings: DemoSettings) -> dict:
    """Run every stage; returns summary.json's content. Raises StageFailed."""
    started = time.perf_counter()
    settings.out.mkdir(parents=True, exist_ok=True)
    stages = Stages()
    results: dict = {}
    results["data"] = stages.run("data", f"{settings.images} synthetic images", make_data, settings)
    results["train"] = stages.run(
        "train", "recipe synthetic-cpu on CPU, a fixed number of iterations", train_model, settings
    )
    checkpoint = results["train"]["checkpoint"]
    results["metrics"] = stages.run(
        "evaluate", "TinyPerson AP / MR on val (PyTorch)", evaluate_torch, settings, checkpoint
    )
    onnx_path = stages.run("export", "portable ONNX", export_model, settings, checkpoint)
    results["onnxruntime"] = stages.run(
        "onnxruntime", "ONNX Runtime on the val images", run_onnxruntime, settings, onnx_path
    )
    results["int8"] = stages.run(
        "int8", "INT8 Q/DQ models (TensorRT form, CPU form): AP and latency", run_int8, settings, onnx_path
    )
    results["attention"] = stages.run(
        "attention", "attention heat-maps (PyTorch)", attention_maps, settings, checkpoint
    )
    results["benchmark"] = stages.run(
        "benchmark", "PyTorch vs ONNX Runtime on CPU", benchmark, settings, checkpoint, onnx_path
    )
    summary = stages.run(
        "report", "report.md, report.html, summary.json", write_report, settings, results, stages.seconds, started
    )
    return summary


def run(args) -> int:
    from sspnet.io.atomic import atomic_write_text
    from sspnet.io.outputs import OutputGuard

    settings = settings_from_args(args)
    OutputGuard(inputs=[], verb="demo").check_dir(settings.out)
    try:
        summary = run_demo(settings)
    except StageFailed as failure:
        log = settings.out / "demo_error.log"
        atomic_write_text(log, "".join(traceback.format_exception(failure.error)))
        print(f"\nsspnet demo: {failure} (traceback in {log})", file=sys.stderr)
        return 1
    print(
        f"\nAP50-tiny {summary['AP50_tiny']:.2f} % (PyTorch), {summary['AP50_tiny_onnxruntime']:.2f} % (ONNX Runtime), "
        f"{summary['AP50_tiny_int8']:.2f} % (INT8, TensorRT form), "
        f"{summary['AP50_tiny_int8_cpu']:.2f} % (INT8, CPU form)"
    )
    print(
        f"p50 {summary['torch_ms_p50']:.1f} ms PyTorch vs {summary['onnxruntime_ms_p50']:.1f} ms ONNX Runtime "
        f"({summary['speedup_onnxruntime_vs_torch']:.2f}x); "
        f"INT8 CPU form {summary['onnxruntime_int8_cpu_ms_p50']:.1f} ms "
        f"({summary['speedup_int8_cpu_vs_fp32']:.2f}x fp32 ONNX Runtime); {summary['wall_time_s']:.0f} s in total"
    )
    print(f"report: {settings.out / 'report.md'} (also report.html, summary.json)")
    if not summary["trained_well_enough"]:
        banner = "!" * 100
        print(f"\n{banner}\n!!! {summary['verdict']}\n{banner}", file=sys.stderr)
        if not settings.quick:
            return NOT_TRAINED_EXIT
    return 0
