"""Noisy-neighbour benchmark: CPU latency quiet and next to busy processes, for every backend and
every threading setting that runtime/threads.py chose between, in one run.

    python benchmarks/bench_neighbours.py                       # ~6 min on 2 cores, random weights
    python benchmarks/bench_neighbours.py --checkpoint demo_out/run/last.safetensors --onnx demo_out/model.onnx
    python benchmarks/bench_neighbours.py --rows defaults       # only the before/after pairs (~3 min)
    python benchmarks/bench_neighbours.py --rows onnxruntime --onnx demo_out/model.onnx   # ~3 min
        (-> neighbours_onnxruntime.json: ONNX Runtime spinning / fixed thread count / adaptive, and the
        alternatives: dynamic block sizes, one thread)

Writes benchmarks/results/neighbours.json and neighbours.png (neighbours_ROWS.* for a partial --rows
run), and prints the table plus a Markdown
version for the README. Model: the demo's (`synthetic-cpu` recipe: FoveaBox + SSPNet R18, 64-channel
head) at 256 x 256, batch 1, random weights unless a trained checkpoint is given (latency only).

Rows (each in its own worker process, so OpenMP variables apply from the start; see
sspnet/benchmark/contention.py):
    torch eager    all cores with libgomp's default spin ("before"), 1 thread, all cores with
                   OMP_WAIT_POLICY=PASSIVE, GOMP_SPINCOUNT 1000 / 2000 / 3000 / 4000 / 20000 (thread
                   count fixed), and sspnet's default: GOMP_SPINCOUNT=4000 with the adaptive thread
                   count (runtime/threads.py ThreadGovernor)
    onnxruntime    intra-op spinning (ONNX Runtime's default, "before"), spinning off with a fixed
                   thread count ("before" the adaptive count), and sspnet's default: spinning off with
                   the adaptive thread count (a one-thread session beside the all-cores one,
                   runtime/onnxruntime_backend.py); alternatives: dynamic block sizes
                   (SSPNET_ORT_DYNAMIC_BLOCK_BASE=4) with and without the adaptive count, 1 thread
    kernels        sspnet's CPU multi-level RoIAlign (OpenMP): libgomp default / sspnet default
    training       one training step of the recipe: libgomp default / sspnet default
    (+ ONNX Runtime INT8 with --int8 MODEL)
Goals: loaded p50 at most 2.2x quiet (2.5x for training) with one neighbour, 1.6x for the ONNX
Runtime default with its adaptive thread count, and the default's quiet p50 at most 10 % above the
"before" row's. "one_core_bound" in the JSON is the lowest ratio reachable at all with one of two
cores taken (one thread's quiet time over all cores' quiet time; see one_core_bounds). The JSON
also records the memory an extra ONNX Runtime session costs ("onnxruntime_sessions").
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sspnet.runtime.threads import (
    ENV_ADAPTIVE_THREADS,
    ENV_OPENMP_DEFAULTS,
    ENV_ORT_DYNAMIC_BLOCK_BASE,
    ENV_ORT_SPINNING,
    GOMP_SPINCOUNT,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SIZE = (256, 256)  # (H, W) of the demo's images and export

# Worker environments. The worker applies sspnet's defaults unless told not to (ENV_OPENMP_DEFAULTS=0).
# OMP_NUM_THREADS is removed everywhere: rows run with the runtimes' default thread count (one per
# core) unless a row sets `threads`.
# The OpenMP study rows keep torch's thread count fixed (SSPNET_ADAPTIVE_THREADS=0) to measure the
# wait policy alone; the "sspnet default" rows run with everything sspnet sets, adaptive threads included.
LIBGOMP_DEFAULT = {
    ENV_OPENMP_DEFAULTS: "0",
    "OMP_WAIT_POLICY": None,
    "GOMP_SPINCOUNT": None,
    "OMP_NUM_THREADS": None,
    ENV_ADAPTIVE_THREADS: "0",
}
SSPNET_DEFAULT = {
    ENV_OPENMP_DEFAULTS: None,
    "OMP_WAIT_POLICY": None,
    "GOMP_SPINCOUNT": None,
    ENV_ORT_SPINNING: None,
    "OMP_NUM_THREADS": None,
    ENV_ADAPTIVE_THREADS: None,
    ENV_ORT_DYNAMIC_BLOCK_BASE: None,
}


def spincount(value: int) -> dict:
    return {**LIBGOMP_DEFAULT, "GOMP_SPINCOUNT": str(value)}


def prepare_model(work: Path, checkpoint: str | None, onnx_path: str | None) -> tuple[str, str]:
    """(checkpoint, onnx) of the demo model: the given files, or random weights saved and exported."""
    if checkpoint is None:
        import torch

        from sspnet.checkpoint import save_checkpoint
        from sspnet.engine.recipes import SYNTHETIC_CPU
        from sspnet.models import build_model

        torch.manual_seed(0)
        model = build_model(SYNTHETIC_CPU.preset, **SYNTHETIC_CPU.overrides).eval()
        checkpoint = str(work / "demo_random.safetensors")
        save_checkpoint(checkpoint, model, preset=SYNTHETIC_CPU.preset, overrides=SYNTHETIC_CPU.overrides)
    if onnx_path is None:
        from sspnet.export.onnx_export import export_onnx

        onnx_path = str(export_onnx(checkpoint, work / "demo_model.onnx", flavor="portable", imgsz=SIZE))
    return checkpoint, onnx_path


def plan(checkpoint: str, onnx_path: str, int8: str | None, which: str):
    from sspnet.benchmark.contention import ContentionRow

    def torch_row(label, env, threads=None, **extra):
        return ContentionRow(
            label=f"torch eager, {label}",
            kind="detector",
            model=checkpoint,
            backend="torch",
            frame_size=SIZE,
            input_size=SIZE,
            threads=threads,
            env=env,
            group="torch",
            **extra,
        )

    before_torch = "torch eager, all cores, libgomp default spin (before)"
    rows = [
        torch_row("all cores, libgomp default spin (before)", LIBGOMP_DEFAULT),
        torch_row("1 thread", LIBGOMP_DEFAULT, threads=1, baseline=before_torch, goal_slowdown=2.2),
        torch_row(
            "all cores, OMP_WAIT_POLICY=PASSIVE",
            {**LIBGOMP_DEFAULT, "OMP_WAIT_POLICY": "PASSIVE"},
            baseline=before_torch,
            goal_slowdown=2.2,
        ),
        torch_row("all cores, GOMP_SPINCOUNT=1000", spincount(1000), baseline=before_torch, goal_slowdown=2.2),
        torch_row("all cores, GOMP_SPINCOUNT=2000", spincount(2000), baseline=before_torch, goal_slowdown=2.2),
        torch_row("all cores, GOMP_SPINCOUNT=3000", spincount(3000), baseline=before_torch, goal_slowdown=2.2),
        torch_row(
            f"all cores, GOMP_SPINCOUNT={GOMP_SPINCOUNT}",
            spincount(GOMP_SPINCOUNT),
            baseline=before_torch,
            goal_slowdown=2.2,
        ),
        torch_row("all cores, GOMP_SPINCOUNT=20000", spincount(20000), baseline=before_torch, goal_slowdown=2.2),
        torch_row(
            f"GOMP_SPINCOUNT={GOMP_SPINCOUNT} + adaptive threads (sspnet default)",
            SSPNET_DEFAULT,
            baseline=before_torch,
            goal_slowdown=2.2,
        ),
        ContentionRow(
            label="onnxruntime, spinning (before)",
            model=onnx_path,
            backend="onnxruntime",
            frame_size=SIZE,
            env={**SSPNET_DEFAULT, ENV_ORT_SPINNING: "1", ENV_ADAPTIVE_THREADS: "0"},
            group="onnxruntime",
        ),
        ContentionRow(
            label="onnxruntime, no spinning, fixed thread count (before)",
            model=onnx_path,
            backend="onnxruntime",
            frame_size=SIZE,
            env={**SSPNET_DEFAULT, ENV_ADAPTIVE_THREADS: "0"},
            group="onnxruntime",
            baseline="onnxruntime, spinning (before)",
            goal_slowdown=2.2,
        ),
        ContentionRow(
            label="onnxruntime, no spinning + adaptive threads (sspnet default)",
            model=onnx_path,
            backend="onnxruntime",
            frame_size=SIZE,
            env=SSPNET_DEFAULT,
            group="onnxruntime",
            baseline="onnxruntime, no spinning, fixed thread count (before)",
            goal_slowdown=1.6,
        ),
        # alternatives: all cores with dynamic block sizes (a preempted thread's work goes to the others),
        # alone and under the adaptive count; and one thread always (what the adaptive count falls back to)
        ContentionRow(
            label="onnxruntime, no spinning, fixed thread count, dynamic blocks 4",
            model=onnx_path,
            backend="onnxruntime",
            frame_size=SIZE,
            env={**SSPNET_DEFAULT, ENV_ADAPTIVE_THREADS: "0", ENV_ORT_DYNAMIC_BLOCK_BASE: "4"},
            group="onnxruntime",
            baseline="onnxruntime, no spinning, fixed thread count (before)",
            goal_slowdown=1.6,
        ),
        ContentionRow(
            label="onnxruntime, no spinning + adaptive threads, dynamic blocks 4",
            model=onnx_path,
            backend="onnxruntime",
            frame_size=SIZE,
            env={**SSPNET_DEFAULT, ENV_ORT_DYNAMIC_BLOCK_BASE: "4"},
            group="onnxruntime",
            baseline="onnxruntime, no spinning, fixed thread count (before)",
            goal_slowdown=1.6,
        ),
        ContentionRow(
            label="onnxruntime, 1 thread",
            model=onnx_path,
            backend="onnxruntime",
            frame_size=SIZE,
            threads=1,
            env={**SSPNET_DEFAULT, ENV_ADAPTIVE_THREADS: "0"},
            group="onnxruntime",
            baseline="onnxruntime, no spinning, fixed thread count (before)",
        ),
        ContentionRow(
            label="RoIAlign kernel, libgomp default spin (before)",
            kind="roi-align",
            env=LIBGOMP_DEFAULT,
            group="kernels",
        ),
        ContentionRow(
            label="RoIAlign kernel, sspnet default",
            kind="roi-align",
            env=SSPNET_DEFAULT,
            group="kernels",
            baseline="RoIAlign kernel, libgomp default spin (before)",
            goal_slowdown=2.2,
        ),
        ContentionRow(
            label="training step, libgomp default spin (before)",
            kind="train-step",
            env=LIBGOMP_DEFAULT,
            group="training",
        ),
        ContentionRow(
            label="training step, GOMP_SPINCOUNT=1000",
            kind="train-step",
            env=spincount(1000),
            group="training",
            baseline="training step, libgomp default spin (before)",
            goal_slowdown=2.5,
        ),
        ContentionRow(
            label="training step, GOMP_SPINCOUNT=2000",
            kind="train-step",
            env=spincount(2000),
            group="training",
            baseline="training step, libgomp default spin (before)",
            goal_slowdown=2.5,
        ),
        ContentionRow(
            label="training step, sspnet default",
            kind="train-step",
            env=SSPNET_DEFAULT,
            group="training",
            baseline="training step, libgomp default spin (before)",
            goal_slowdown=2.5,
        ),
    ]
    if int8:
        rows.append(
            ContentionRow(
                label="onnxruntime INT8 (Q/DQ), no spinning",
                model=int8,
                backend="onnxruntime",
                frame_size=SIZE,
                env=SSPNET_DEFAULT,
                group="onnxruntime",
                goal_slowdown=2.2,
            )
        )
    if which == "defaults":  # with the one-thread rows: they give the bound (one_core_bounds)
        rows = [row for row in rows if any(key in row.label for key in ("(before)", "default", "INT8", "1 thread"))]
    elif which in ("torch", "training", "onnxruntime"):  # one study alone
        rows = [row for row in rows if row.group == which]
    return rows


def one_core_bounds(results: list[dict]) -> dict:
    """Per backend, the smallest loaded / quiet ratio any thread count can reach when a neighbour in its
    own session takes one of two cores: Linux then gives this process about one core (one scheduling
    entity per session), so a call can at best run as fast as one thread on a quiet machine. Bound =
    the one-thread row's quiet p50 / the sspnet-default row's quiet p50."""
    bounds = {}
    for group in ("torch", "onnxruntime"):
        rows = [r for r in results if r.get("group") == group and r.get("quiet") and not r.get("error")]
        one = next((r for r in rows if r["label"].endswith("1 thread")), None)
        default = next((r for r in rows if "(sspnet default)" in r["label"]), None)
        if one and default:
            bounds[group] = {
                "one_thread_quiet_p50_ms": one["quiet"]["p50"],
                "default_quiet_p50_ms": default["quiet"]["p50"],
                "bound": one["quiet"]["p50"] / default["quiet"]["p50"],
                "default_slowdown_p50": default["slowdown_p50"],
            }
    return bounds


def onnxruntime_session_memory(onnx_path: str) -> dict:
    """Resident memory (MB) of one ONNX Runtime session of the model and of the one-thread session the
    adaptive thread count adds beside it, each after one call, measured in a fresh process."""
    import json
    import subprocess

    code = f"""
import json, numpy as np
from sspnet.runtime.onnxruntime_backend import OnnxRuntimeBackend
def rss():
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS')) / 1024
before = rss()
backend = OnnxRuntimeBackend({onnx_path!r}, adaptive_threads=False)
images = np.zeros((backend.fixed_batch or 1, 3, *backend.input_size), np.uint8)
backend.infer(images)
one = rss()
extra = backend._new_session(1)
extra.run(None, {{'images': images}})
print(json.dumps({{"first_session_mb": round(one - before, 1), "extra_one_thread_session_mb": round(rss() - one, 1)}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown_table(results: list[dict], neighbours: int) -> str:
    lines = [
        f"| backend / setting | quiet p50 (ms) | with {neighbours} busy neighbour p50 (ms) | slow-down "
        "| p99 quiet / loaded (ms) |",
        "|---|---|---|---|---|",
    ]
    for row in results:
        if row.get("error"):
            lines.append(f"| {row['label']} | failed | | | |")
            continue
        lines.append(
            f"| {row['label']} | {row['quiet']['p50']:.0f} | {row['loaded']['p50']:.0f} | "
            f"{row['slowdown_p50']:.1f}x | {row['quiet']['p99']:.0f} / {row['loaded']['p99']:.0f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--neighbours", type=int, default=1, help="busy processes in the loaded phase (default 1)")
    parser.add_argument("--checkpoint", help="a trained demo checkpoint (default: random weights)")
    parser.add_argument("--onnx", help="its portable ONNX export (default: exported here)")
    parser.add_argument("--int8", help="also time this INT8 Q/DQ model (sspnet quantize)")
    parser.add_argument(
        "--rows",
        choices=("all", "defaults", "torch", "training", "onnxruntime"),
        default="all",
        help="all settings (default), only the before / sspnet-default pairs, or only the "
        "torch inference, training or ONNX Runtime rows",
    )
    parser.add_argument("--iters", type=int, default=30, help="timed calls per phase at most (default 30)")
    parser.add_argument("--max-seconds-quiet", type=float, default=5.0)
    parser.add_argument("--max-seconds-loaded", type=float, default=10.0)
    parser.add_argument("--work", default="/tmp/sspnet_bench_neighbours", help="folder for the random model files")
    parser.add_argument(
        "--out",
        help="output stem: STEM.json and STEM.png (default benchmarks/results/neighbours, "
        "or neighbours_ROWS for --rows other than all: a partial run never replaces "
        "the full study)",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = str(RESULTS / ("neighbours" if args.rows == "all" else f"neighbours_{args.rows}"))

    from sspnet.benchmark.contention import (
        ContentionSettings,
        plot_contention,
        print_contention_table,
        run_contention,
        write_contention_json,
    )
    from sspnet.io.outputs import OutputGuard

    stem = Path(args.out)
    guard = OutputGuard(inputs=[args.checkpoint, args.onnx, args.int8], verb="bench_neighbours")
    guard.check_file(stem.with_suffix(".json"), kind="json")  # before minutes of measuring
    guard.check_file(stem.with_suffix(".png"), kind="image")
    started = time.perf_counter()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    checkpoint, onnx_path = prepare_model(work, args.checkpoint, args.onnx)
    settings = ContentionSettings(
        neighbours=args.neighbours,
        iters=args.iters,
        max_seconds_quiet=args.max_seconds_quiet,
        max_seconds_loaded=args.max_seconds_loaded,
    )
    rows = plan(checkpoint, onnx_path, args.int8, args.rows)
    print(
        f"{len(rows)} rows, quiet then next to {args.neighbours} busy process(es): "
        f"at most ~{len(rows) * settings.estimated_seconds_per_row() / 60:.1f} min"
    )
    sessions = onnxruntime_session_memory(onnx_path)
    print(f"ONNX Runtime session memory (RSS): {sessions}")
    results = run_contention(rows, settings)
    print()
    print_contention_table(results, args.neighbours)
    print("\n" + markdown_table(results, args.neighbours))
    extra = {
        "command": " ".join(["python", "benchmarks/bench_neighbours.py", *(argv or sys.argv[1:])]),
        "model": {
            "checkpoint": checkpoint,
            "onnx": onnx_path,
            "trained": args.checkpoint is not None,
            "input_size": list(SIZE),
        },
        "onnxruntime_sessions": sessions,
        "one_core_bound": one_core_bounds(results),
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    print(f"\nJSON: {write_contention_json(stem.with_suffix('.json'), results, settings, extra)}")
    title = f"demo model {SIZE[0]}x{SIZE[1]}, batch 1: quiet vs {args.neighbours} busy neighbour(s)"
    print(f"plot: {plot_contention(results, stem.with_suffix('.png'), title)}")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 1 if any(row["error"] for row in results) else 0


if __name__ == "__main__":
    from sspnet.errors import SSPNetError

    try:
        sys.exit(main())
    except SSPNetError as error:  # a user's mistake (e.g. --out naming an input): one line, exit 2
        print(f"bench_neighbours.py: {error}", file=__import__("sys").stderr)
        raise SystemExit(error.exit_code) from None
