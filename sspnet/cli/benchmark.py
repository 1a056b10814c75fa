"""`sspnet benchmark`: latency, throughput, stage times, memory (and AP50-tiny) per backend.

    sspnet benchmark --model model.onnx --model best.safetensors --batch 1 --imgsz 512 640 \\
        --iters 50 --json out.json --plot out.png
    sspnet benchmark --model model.onnx --imgsz 2160 3840 --batch 1     # 4K frames, tiled
    sspnet benchmark --model model.onnx --data data/synth --json out.json   # + AP50-tiny

One row per model x mode x precision x frame size x batch (sspnet.benchmark.harness); the last
column is each row's speed relative to the first, from the median latency per image
(first row's p50 / batch over this row's). A torch checkpoint also
gets a reference row: torchvision's Faster R-CNN R50-FPN on the same input (random weights).
"""

from __future__ import annotations

import argparse
import sys

HELP = "latency / throughput / memory (and AP50-tiny) per backend; table, JSON, PNG plot"


def add_arguments(parser):
    parser.add_argument("--model", action="append", required=True, metavar="FILE",
                        help="model file (repeat for several): .safetensors/.pth (torch), .onnx, .engine")
    parser.add_argument("--batch", type=int, nargs="+", default=[1], help="frames per call (default 1)")
    parser.add_argument("--imgsz", type=int, nargs=2, action="append", metavar=("H", "W"),
                        help="frame size, repeatable (default 512 640); torch models use it as input size "
                             "(rounded up to a multiple of 32), exported models tile frames into their export size")
    parser.add_argument("--tile", type=int, nargs=2, metavar=("H", "W"),
                        help="torch models: input (tile) size instead of the frame size")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=("fp32", "fp16"),
                        help="torch precisions (fp16: CUDA autocast); exported files run their own")
    parser.add_argument("--iters", type=int, default=50, help="timed iterations per row (default 50)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed iterations first (default 10)")
    parser.add_argument("--device", help="torch device (default cuda when available, else cpu)")
    parser.add_argument("--providers", nargs="+", default=["auto"],
                        help="onnxruntime providers, one row each (default auto: cpu, plus cuda where installed)")
    parser.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                        help="torch / tensorrt CUDA-graph rows (default: eager and cuda-graph rows on CUDA)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch and onnxruntime (default: their own)")
    parser.add_argument("--reference-torchvision", action=argparse.BooleanOptionalAction, default=None,
                        help="torchvision Faster R-CNN R50-FPN reference row (default: on with a torch model)")
    parser.add_argument("--data", metavar="DIR", help="data folder: also measure AP50-tiny on its --split")
    parser.add_argument("--split", default="val", help="split for --data (default val)")
    parser.add_argument("--max-eval-images", type=int, help="evaluate on at most this many images")
    parser.add_argument("--overlap", type=int, default=30, help="tile overlap in pixels (default 30)")
    parser.add_argument("--json", metavar="PATH", help="write every row (with all timings) as JSON")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG: latency distributions, throughput vs batch")
    parser.add_argument("--no-tegrastats", action="store_true", help="do not sample tegrastats on a Jetson")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    from sspnet.benchmark.harness import BenchSettings, machine_info, plan_rows, run_benchmark
    from sspnet.benchmark.report import add_speedups, benchmark_document, plot, print_benchmark_table, write_json

    settings = BenchSettings(
        iters=args.iters, warmup=args.warmup, threads=args.threads, tile_overlap=args.overlap, data=args.data,
        split=args.split, max_eval_images=args.max_eval_images, tegrastats=not args.no_tegrastats,
        progress=not args.quiet,
    )
    try:
        settings.check()
        specs = plan_rows(
            args.model, args.batch, [tuple(s) for s in (args.imgsz or [(512, 640)])], args.precision,
            device=args.device, providers=args.providers, cuda_graph=args.cuda_graph,
            reference=args.reference_torchvision, tile=tuple(args.tile) if args.tile else None,
        )
    except ValueError as error:
        print(f"sspnet benchmark: {error}", file=sys.stderr)
        return 2
    rows = add_speedups(run_benchmark(specs, settings))
    print()
    print_benchmark_table(rows)
    print("speed vs #1 = median latency per image (p50 / batch) of row 1 over the row's (2.00x: twice as fast); "
          "pre/inf/post = mean pre-process / inference / post-process incl. tile merge")
    if args.json:
        document = benchmark_document(rows, machine_info(), vars(args))
        print(f"JSON written to {write_json(args.json, document)}")
    if args.plot:
        print(f"plot written to {plot(rows, args.plot)}")
    failed = [row for row in rows if row["error"]]
    if failed:
        print(f"sspnet benchmark: {len(failed)} of {len(rows)} rows failed (see above)", file=sys.stderr)
        return 1
    return 0
