"""Peak host memory (RSS) of the runtime Detector on large frames, with and without tile chunking.

Why: a 10000x10000 frame sent as ONE batch of its 357 tiles asks ONNX Runtime for a buffer of
several GB. The Detector therefore sends at most `max_tiles_per_batch` tiles per model call (default
4) and cuts each batch from the frame only when the model asks for it. This benchmark measures,
for a 4K (3840x2160) and a 10000x10000 frame, the peak RSS of a process that loads the model,
holds the frame and runs `Detector.detect` on it, once with the default limit and once unbounded
(all tiles in one batch, the old behaviour).

Each case runs in a fresh subprocess, so ru_maxrss is that case's own peak. Reported per case:
rss_mb at three points (model loaded, frame allocated, peak while detecting; the peak is
ru_maxrss, cross-checked by a 2 ms /proc/self/statm sampler), `detect_extra_mb` = peak - RSS with
the frame held (what detection itself costs), tiles, model calls and the largest batch.
(4 is the default limit; runtime/detector.py.)

The model: by default the marker model of tests/runtime/runtime_models.py (a real contract-following
ONNX graph of standard ops, 512x640 input, dynamic batch, a few MB of activations per tile), so the
numbers show the Detector's own buffers (tiles, NCHW batch) and the runtime's per-batch memory,
not a network's. `--model some.onnx` measures an exported sspnet model instead (the activations
per tile in flight then dominate, which is what the default limit is sized for; see
runtime/detector.py). Memory is not timing: a busy machine does not change these numbers much.

    python benchmarks/bench_tile_memory.py [--model m.onnx --describe TEXT] [--frames 2160x3840 10000x10000]
                                           [--limits 4 none] [--out benchmarks/results/tile_memory.json]

Measured: benchmarks/results/tile_memory.json (marker model) and tile_memory_r50_random_4k.json (an
exported faster_rcnn_r50_sspnet: the memory per tile in flight that the default of 4 is sized from);
docs pages results/tile_memory.md and results/tile_memory_r50_random_4k.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MARKER_INPUT_SIZE = (512, 640)  # (H, W): the default export / tile size


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class RssSampler:
    """Highest /proc/self/statm RSS seen every `interval` seconds while running."""

    def __init__(self, interval: float = 0.002):
        self.interval, self.peak_mb = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, _rss_mb())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def build_marker_model(path: Path) -> Path:
    """The runtime tests' marker model at the default tile size (tests/ is not a package)."""
    sys.path.insert(0, str(ROOT / "tests" / "runtime"))
    from runtime_models import build_marker_model as build

    return Path(build(path, input_size=MARKER_INPUT_SIZE, k=100))


def run_case(model: str, frame_hw: tuple[int, int], limit: int | None, threads: int) -> dict:
    """One measurement, in this (fresh) process."""
    import numpy as np
    from sspnet.runtime.backend import load_backend
    from sspnet.runtime.detector import Detector

    backend = load_backend(model, intra_op_num_threads=threads)
    rss_loaded = _rss_mb()
    height, width = frame_hw
    frame = np.zeros((height, width, 3), np.uint8)
    frame[::97, ::89, 0] = 200  # sparse red "markers": some detections in every tile
    frame[:, :, 2] = 1  # touch every page, so the frame is really resident
    rss_frame = _rss_mb()

    batch_sizes, run = [], backend._run  # record every batch the model is given

    def recording_run(images):
        batch_sizes.append(len(images))
        return run(images)

    backend._run = recording_run
    detector = Detector(backend, max_tiles_per_batch=limit)
    with RssSampler() as sampler:
        start = time.perf_counter()
        found = detector.detect(frame)
        seconds = time.perf_counter() - start
    peak = max(_peak_rss_mb(), sampler.peak_mb)
    return {
        "frame": f"{width}x{height}",
        "frame_mb": round(frame.nbytes / 2**20, 1),
        "max_tiles_per_batch": limit,
        "tiles": int(detector.timings["inputs"]),
        "model_calls": len(batch_sizes),
        "largest_batch": max(batch_sizes),
        "rss_mb": {"model_loaded": round(rss_loaded, 1), "frame_held": round(rss_frame, 1), "peak": round(peak, 1)},
        "detect_extra_mb": round(peak - rss_frame, 1),
        "sampler_peak_mb": round(sampler.peak_mb, 1),
        "detections": len(found),
        "detect_seconds": round(seconds, 2),
    }


def _parse_frame(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def _parse_limit(text: str) -> int | None:
    return None if text.lower() == "none" else int(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a contract-following .onnx (default: the marker model, 512x640)")
    parser.add_argument("--frames", nargs="+", default=["2160x3840", "10000x10000"], metavar="HxW")
    parser.add_argument(
        "--limits", nargs="+", default=["4", "none"], help="max_tiles_per_batch values; none = one batch"
    )
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS / "tile_memory.json")
    parser.add_argument("--describe", help="what --model is, for the report (default: its path)")
    parser.add_argument("--case", nargs=3, metavar=("MODEL", "HxW", "LIMIT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.case:  # child process: one measurement, JSON on stdout
        model, frame, limit = args.case
        print(json.dumps(run_case(model, _parse_frame(frame), _parse_limit(limit), args.threads)))
        return 0

    import onnxruntime

    from sspnet.io.atomic import atomic_write_json

    with tempfile.TemporaryDirectory() as scratch:
        model = args.model or str(build_marker_model(Path(scratch) / "marker_512x640.onnx"))
        rows = []
        for frame in args.frames:
            for limit in args.limits:
                command = [sys.executable, __file__, "--case", model, frame, limit, "--threads", str(args.threads)]
                done = subprocess.run(
                    command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
                )
                if done.returncode != 0:
                    print(done.stderr, file=sys.stderr)
                    rows.append(
                        {
                            "frame": frame,
                            "max_tiles_per_batch": _parse_limit(limit),
                            "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed",
                        }
                    )
                    continue
                row = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(
                    f"{row['frame']:>12}  limit {str(row['max_tiles_per_batch']):>4}  tiles {row['tiles']:>3}  "
                    f"calls {row['model_calls']:>3}  largest batch {row['largest_batch']:>3}  "
                    f"RSS frame held {row['rss_mb']['frame_held']:>7.1f} MB  peak {row['rss_mb']['peak']:>7.1f} MB  "
                    f"detect +{row['detect_extra_mb']:.1f} MB",
                    flush=True,
                )
    report = {
        "benchmark": "tile_memory",
        "model": args.describe
        or args.model
        or f"marker model (tests/runtime/runtime_models.py), input {MARKER_INPUT_SIZE[0]}x"
        f"{MARKER_INPUT_SIZE[1]}, K=100, dynamic batch",
        "onnxruntime": onnxruntime.__version__,
        "threads": args.threads,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "note": "peak RSS per case in a fresh process; detect_extra_mb = peak - RSS with the frame held",
        "rows": rows,
    }
    atomic_write_json(args.out, report, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
