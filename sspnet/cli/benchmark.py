"""`sspnet benchmark`: latency, throughput, stage times, memory (and AP50-tiny) per backend.

    sspnet benchmark --model model.onnx --model best.safetensors --batch 1 --imgsz 512 640 \\
        --iters 50 --json out.json --plot out.png
    sspnet benchmark --model model.onnx --imgsz 2160 3840 --batch 1     # 4K frames, tiled
    sspnet benchmark --model model.onnx --data data/synth --json out.json   # + AP50-tiny
    sspnet benchmark --model best.safetensors --model model.onnx --imgsz 256 256 --neighbours 1 \\
        --json busy.json --plot busy.png     # each CPU row quiet and next to 1 busy process

--neighbours K times every CPU row twice in one run, quiet and next to K busy processes (each in
its own session), and reports p50 / p99 and the slow-down (sspnet.benchmark.contention; each row
runs in its own worker process with the toolkit's threading defaults, runtime/threads.py).

One row per model x mode x precision x frame size x batch (sspnet.benchmark.harness); the last
column is each row's speed relative to the first, from the median latency per image
(first row's p50 / batch over this row's). A torch checkpoint also
gets a reference row: torchvision's Faster R-CNN R50-FPN on the same input (random weights).
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

HELP = "latency / throughput / memory (and AP50-tiny) per backend; table, JSON, PNG plot"


def add_arguments(parser):
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="FILE",
        help="model file (repeat for several): .safetensors/.pth (torch), .onnx, .engine",
    )
    parser.add_argument("--batch", type=int, nargs="+", default=[1], help="frames per call (default 1)")
    parser.add_argument(
        "--imgsz",
        type=int,
        nargs=2,
        action="append",
        metavar=("H", "W"),
        help="frame size, repeatable (default 512 640); torch models use it as input size "
        "(rounded up to a multiple of 32), exported models tile frames into their export size",
    )
    parser.add_argument(
        "--tile",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="torch models: input (tile) size instead of the frame size",
    )
    parser.add_argument(
        "--precision",
        nargs="+",
        default=["fp32"],
        choices=("fp32", "fp16"),
        help="torch precisions (fp16: CUDA autocast); exported files run their own",
    )
    parser.add_argument("--iters", type=int, default=50, help="timed iterations per row (default 50)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed iterations first (default 10)")
    parser.add_argument("--device", help="torch device (default cuda when available, else cpu)")
    parser.add_argument(
        "--providers",
        nargs="+",
        default=["auto"],
        help="onnxruntime providers, one row each (default auto: cpu, plus cuda where installed)",
    )
    parser.add_argument(
        "--cuda-graph",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch / tensorrt CUDA-graph rows (default: eager and cuda-graph rows on CUDA)",
    )
    parser.add_argument("--threads", type=int, help="CPU threads for torch and onnxruntime (default: their own)")
    parser.add_argument(
        "--reference-torchvision",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torchvision Faster R-CNN R50-FPN reference row (default: on with a torch model)",
    )
    parser.add_argument("--data", metavar="DIR", help="data folder: also measure AP50-tiny on its --split")
    parser.add_argument("--split", default="val", help="split for --data (default val)")
    parser.add_argument("--max-eval-images", type=int, help="evaluate on at most this many images")
    parser.add_argument("--overlap", type=int, default=30, help="tile overlap in pixels (default 30)")
    parser.add_argument("--json", metavar="PATH", help="write every row (with all timings) as JSON")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG: latency distributions, throughput vs batch")
    parser.add_argument("--no-tegrastats", action="store_true", help="do not sample tegrastats on a Jetson")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--neighbours",
        type=int,
        metavar="K",
        help="time every CPU row quiet and next to K busy processes (JSON + plot of both)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=12.0,
        help="--neighbours: cut a phase short after this many seconds (default 12)",
    )


def run(args) -> int:
    from sspnet.benchmark.harness import BenchSettings, machine_info, plan_rows, run_benchmark
    from sspnet.benchmark.report import add_speedups, benchmark_document, plot, print_benchmark_table, write_json
    from sspnet.io.outputs import OutputGuard

    settings = BenchSettings(
        iters=args.iters,
        warmup=args.warmup,
        threads=args.threads,
        tile_overlap=args.overlap,
        data=args.data,
        split=args.split,
        max_eval_images=args.max_eval_images,
        tegrastats=not args.no_tegrastats,
        progress=not args.quiet,
    )
    settings.check()
    specs = plan_rows(
        args.model,
        args.batch,
        [tuple(s) for s in (args.imgsz or [(512, 640)])],
        args.precision,
        device=args.device,
        providers=args.providers,
        cuda_graph=args.cuda_graph,
        reference=args.reference_torchvision if args.neighbours is None else False,
        tile=tuple(args.tile) if args.tile else None,
    )
    for model in args.model:  # up front: a missing file is the user's mistake, not a failed row
        if not Path(model).is_file():
            raise FileNotFoundError(errno.ENOENT, "model file not found", model)
    if args.data:
        from sspnet.data.tinyperson import dataset_paths

        dataset_paths(args.data, args.split)  # the folder and its split's annotations exist
    guard = OutputGuard(inputs=[*args.model, args.data], verb="benchmark")
    if args.json:
        guard.check_file(args.json, "json")
    if args.plot:
        guard.check_file(args.plot, "image")
    if args.neighbours is not None:
        return run_with_neighbours(specs, args)
    rows = add_speedups(run_benchmark(specs, settings))
    print()
    print_benchmark_table(rows)
    print(
        "speed vs #1 = median latency per image (p50 / batch) of row 1 over the row's (2.00x: twice as fast); "
        "pre/inf/post = mean pre-process / inference / post-process incl. tile merge"
    )
    if args.json:
        document = benchmark_document(rows, machine_info(), vars(args))
        print(f"JSON written to {write_json(args.json, document)}")
    if args.plot:
        print(f"plot written to {plot(rows, args.plot)}")
    return _exit_code(rows)


def run_with_neighbours(specs, args) -> int:
    """--neighbours K: each CPU row quiet and loaded (sspnet.benchmark.contention)."""
    from sspnet.benchmark.contention import (
        ContentionRow,
        ContentionSettings,
        plot_contention,
        print_contention_table,
        run_contention,
        write_contention_json,
    )
    from sspnet.errors import UsageError

    rows = [
        ContentionRow(
            label=spec.name,
            kind="detector",
            model=spec.model,
            backend=spec.backend,
            frame_size=spec.frame_size,
            batch=spec.batch,
            input_size=spec.input_size,
            threads=args.threads,
            group=spec.backend,
            goal_slowdown=2.2,
        )
        for spec in specs
        if spec.device == "cpu"
    ]
    if not rows:
        raise UsageError("--neighbours measures CPU rows: give --device cpu / --providers cpu (or a CPU model)")
    settings = ContentionSettings(
        neighbours=args.neighbours,
        iters=args.iters,
        warmup=args.warmup,
        max_seconds_quiet=args.max_seconds,
        max_seconds_loaded=args.max_seconds,
    )
    settings.check()
    estimate = len(rows) * settings.estimated_seconds_per_row()
    print(
        f"{len(rows)} rows, each quiet then next to {args.neighbours} busy process(es): "
        f"at most ~{estimate / 60:.1f} min"
    )
    results = run_contention(rows, settings)
    print()
    print_contention_table(results, args.neighbours)
    if args.json:
        print(f"JSON written to {write_contention_json(args.json, results, settings, {'command': vars(args)})}")
    if args.plot:
        title = f"sspnet benchmark: quiet vs {args.neighbours} busy neighbour(s)"
        print(f"plot written to {plot_contention(results, args.plot, title)}")
    return _exit_code(results)


def _exit_code(rows) -> int:
    """1 when a row failed (its error was printed with it), else 0."""
    failed = [row for row in rows if row["error"]]
    if failed:
        print(f"sspnet benchmark: {len(failed)} of {len(rows)} rows failed (see above)", file=sys.stderr)
        return 1
    return 0
