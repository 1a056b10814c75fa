"""Benchmark sspnet's batched NMS against baselines; writes benchmarks/results/nms_<device>.json.

- hard NMS, 5,000 and 30,000 boxes, single-class and multi-class, vs torchvision.ops.batched_nms
  (same boxes, same device; max_output = number of boxes so both do the full work).
- soft-NMS linear (iou 0.3, min_score 0.05, the SSPNet test config), 2,000 and 5,000 boxes, vs the
  plain NumPy reference in tests/ops/nms_reference.py (float64, CPU).

Boxes look like detector output: clusters of jittered boxes around small objects in a 1920x1080
frame (score falls with the jitter) plus scattered low-score background boxes.
Every timing is the median of --repeats runs after --warmup runs.

    python benchmarks/bench_nms.py [--device cpu|cuda|all] [--repeats 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

from sspnet.benchmark.harness import cpu_model
from sspnet.io.atomic import atomic_write_json
from sspnet.ops import batched_nms

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
HARD_SIZES = (5_000, 30_000)
SOFT_SIZES = (2_000, 5_000)
NUM_CLASSES = 10


def load_reference():
    """tests/ops/nms_reference.py, imported by path (tests/ is not a package)."""
    path = ROOT / "tests" / "ops" / "nms_reference.py"
    spec = importlib.util.spec_from_file_location("nms_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def detector_like_boxes(num_boxes: int, seed: int = 0):
    """[M, 4] float32 boxes, [M] scores in (0, 1), [M] int64 labels (one class per cluster)."""
    rng = np.random.default_rng(seed)
    num_objects = max(1, num_boxes // 25)
    num_background = num_boxes // 5
    per_object = rng.multinomial(num_boxes - num_background, np.ones(num_objects) / num_objects)
    centers = rng.uniform([0, 0], [1920, 1080], size=(num_objects, 2))
    sizes = rng.uniform(6, 48, size=(num_objects, 1)) * np.array([[0.6, 1.0]])  # people: tall
    object_class = rng.integers(0, NUM_CLASSES, size=num_objects)
    owner = np.repeat(np.arange(num_objects), per_object)
    jitter = rng.normal(0.0, 0.15, size=(len(owner), 4))
    size = sizes[owner]
    center = centers[owner] + jitter[:, :2] * size
    half = 0.5 * size * np.exp(jitter[:, 2:])
    cluster_boxes = np.concatenate([center - half, center + half], axis=1)
    cluster_scores = np.clip(0.95 - 1.5 * np.abs(jitter).mean(axis=1), 0.06, 1.0)
    cluster_scores *= rng.uniform(0.5, 1.0, size=num_objects)[owner]
    bg_xy = rng.uniform([0, 0], [1920, 1080], size=(num_background, 2))
    bg_wh = rng.uniform(4, 64, size=(num_background, 2))
    boxes = np.concatenate([cluster_boxes, np.concatenate([bg_xy, bg_xy + bg_wh], axis=1)])
    scores = np.concatenate([cluster_scores, rng.uniform(0.051, 0.3, size=num_background)])
    labels = np.concatenate([object_class[owner], rng.integers(0, NUM_CLASSES, num_background)])
    perm = rng.permutation(num_boxes)
    return (
        torch.from_numpy(boxes[perm].astype(np.float32)),
        torch.from_numpy(scores[perm].astype(np.float32)),
        torch.from_numpy(labels[perm].astype(np.int64)),
    )


def _time_ms(fn, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3


def paired_median_ms(ours, theirs, device: str, warmup: int, repeats: int, theirs_repeats=None):
    """Medians of both functions, runs interleaved so both see the same machine load."""
    theirs_repeats = repeats if theirs_repeats is None else theirs_repeats
    for _ in range(warmup):
        ours()
        theirs()
    ours_times, theirs_times = [], []
    for k in range(max(repeats, theirs_repeats)):
        if k < repeats:
            ours_times.append(_time_ms(ours, device))
        if k < theirs_repeats:
            theirs_times.append(_time_ms(theirs, device))
    return statistics.median(ours_times), statistics.median(theirs_times)


def bench_hard(device: str, warmup: int, repeats: int) -> list[dict]:
    rows = []
    for num_boxes in HARD_SIZES:
        boxes, scores, labels = (t.to(device) for t in detector_like_boxes(num_boxes))
        for classes in ("single", "multi"):
            idxs = torch.zeros_like(labels) if classes == "single" else labels
            ours_labels = None if classes == "single" else labels

            def ours():
                return batched_nms(boxes, scores, ours_labels, 0.5, max_output=num_boxes)

            def theirs():
                return torchvision.ops.batched_nms(boxes, scores, idxs, 0.5)

            keep, _, count = ours()
            expected = theirs()
            agree = torch.equal(keep[: int(count)].cpu(), expected.cpu())
            ours_ms, theirs_ms = paired_median_ms(ours, theirs, device, warmup, repeats)
            baseline = ("torchvision.ops.batched_nms", theirs_ms)
            rows.append(_result_row("hard", num_boxes, classes, int(count), agree, ours_ms, baseline, target=1.0))
    return rows


def bench_soft(device: str, warmup: int, repeats: int, reference) -> list[dict]:
    rows = []
    for num_boxes in SOFT_SIZES:
        boxes, scores, _ = detector_like_boxes(num_boxes, seed=1)
        boxes_np, scores_np = boxes.double().numpy(), scores.double().numpy()
        boxes, scores = boxes.to(device), scores.to(device)

        def ours():
            return batched_nms(boxes, scores, None, 0.3, "linear", min_score=0.05, max_output=num_boxes)

        def theirs():
            return reference.soft_nms(boxes_np, scores_np, 0.3, "linear", min_score=0.05)

        keep, kept_scores, count = ours()
        ref_keep, ref_scores = theirs()
        count = int(count)
        agree = count == len(ref_keep) and np.array_equal(keep[:count].cpu().numpy(), ref_keep)
        # The reference is slow: fewer runs of it (still a median).
        ours_ms, theirs_ms = paired_median_ms(ours, theirs, device, 1, repeats, theirs_repeats=max(3, repeats // 5))
        baseline = ("tests/ops/nms_reference.py soft_nms (NumPy float64, CPU)", theirs_ms)
        rows.append(_result_row("linear", num_boxes, "single", count, agree, ours_ms, baseline, target=20.0))
    return rows


def _result_row(method: str, boxes: int, classes: str, kept: int, same, ours_ms: float, baseline, target: float):
    """One result row, printed as it is made: sspnet's median against the (name, median ms) baseline's."""
    name, theirs_ms = baseline
    row = {
        "method": method,
        "boxes": boxes,
        "classes": classes,
        "kept": kept,
        "same_as_baseline": bool(same),
        "sspnet_ms": round(ours_ms, 4),
        "baseline": name,
        "baseline_ms": round(theirs_ms, 4),
        "speedup": round(theirs_ms / ours_ms, 3),
        "target_speedup": target,
    }
    print(_line(row), flush=True)
    return row


def _line(row: dict) -> str:
    return (
        f"{row['method']:>6} {row['boxes']:>6} boxes {row['classes']:>6}-class"
        f" kept {row['kept']:>5}"
        f"  sspnet {row['sspnet_ms']:9.3f} ms  baseline {row['baseline_ms']:9.3f} ms"
        f"  speedup {row['speedup']:7.2f}x (target {row['target_speedup']}x)"
        f"  same result: {row['same_as_baseline']}"
    )


def run(device: str, warmup: int, repeats: int, reference) -> Path:
    print(f"== {device} ==", flush=True)
    rows = bench_hard(device, warmup, repeats) + bench_soft(device, warmup, repeats, reference)
    report = {
        "device": torch.cuda.get_device_name() if device == "cuda" else cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "threads": torch.get_num_threads(),
        "warmup": warmup,
        "repeats": repeats,
        "results": rows,
        "all_targets_met": all(r["speedup"] >= r["target_speedup"] for r in rows),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"nms_{device}.json"
    atomic_write_json(path, report, indent=2)
    print(f"wrote {path}", flush=True)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: one image runs on one thread in sspnet's kernel, and "
        "torchvision's nms kernel is single-threaded too)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if not torch.cuda.is_available():
        devices = [d for d in devices if d != "cuda"]
    reference = load_reference()
    for device in devices:
        run(device, args.warmup, args.repeats, reference)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
