"""Tracking tiny people: which tracker, association and camera-motion compensation, measured.

On held-out synthetic UAV sequences (`sspnet synth --video`: walkers 0-3 px/frame, groups, crossings,
occluders; camera hover / pan / rotate / zoom; 1280x720 frames, larger than one model tile), with the
detector trained by the demo recipe, the benchmark reports:

  1. tracking: HOTA / DetA / AssA / MOTA / IDF1 / ID switches (the `trackers` evaluator, TrackEval's
     definitions) for each tracker x association, with and without camera-motion compensation (CMC),
     over all sequences, the hovering ones and the moving-camera ones; then sweeps of the chosen
     tracker's start threshold, confirmation count and lost-track buffer. The best setting by HOTA
     over all sequences (ties within TIE_HOTA points go to the simpler, earlier row) is reported as
     `best`; sspnet track's defaults are set from it.
  2. detection beside it: AP50-tiny of the single-frame detections (TinyPerson protocol, every frame
     an image), and what tracking does to detection at the same score threshold: single-frame boxes
     vs boxes of tracks confirmed over k frames (DetA / DetRe / DetPr, FP / FN at IoU 0.5, AP50-tiny).
  3. CMC accuracy against the generator's true camera (worst frame-corner error, px) and cost.
  4. cost: the tracker step per frame for 300 detections, and CMC on a 1920x1080 frame (medians).

The detector runs once per frame; every tracker setting reuses its detections, and every CMC
setting reuses one motion estimate per frame (FrameTracker.update(motion=...)).

    python benchmarks/bench_tracking.py --part accuracy      # scores, demo_out/model.onnx (any machine)
    python benchmarks/bench_tracking.py --part cost          # timings: run it on a quiet machine
    python benchmarks/bench_tracking.py --oracle --sequences 2 --frames 12 --size 480 320 --cost-frames 20 \\
        --out /tmp/tracking_smoke.json --cost-out /tmp/tracking_cost_smoke.json   # smoke test, no model

Results: benchmarks/results/tracking.json (+ tracking.png) and tracking_cost.json; docs/tracking.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_MODELS = (ROOT / "demo_out" / "model.onnx", ROOT / "demo_out" / "run" / "last.safetensors")
HELD_OUT_SEED = 1000  # the demo trains on still images; these sequences are new scenes and people
COST_DETECTIONS = 300
COST_SIZE = (1920, 1080)
TIE_HOTA = 0.25  # HOTA points within which two settings count as equal (see `pick`)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict:
    """CPU model (lscpu's "Model name"), cores and the load when the run started."""
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return {
        "processor": cpu,
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "uptime": uptime,
        "load_average": list(os.getloadavg()),
    }


# ---- sequences and detections ------------------------------------------------------------------
def make_sequences(folder: Path, count: int, frames: int, size: tuple[int, int], seed: int):
    from sspnet.data.synth_video import find_sequences, write_sequences

    start = time.perf_counter()
    write_sequences(folder, count, frames=frames, size=size, seed=seed, progress=False)
    log(f"sequences: {count} x {frames} frames of {size[0]}x{size[1]} in {time.perf_counter() - start:.0f} s")
    return find_sequences(folder)


def read_frames(info):
    import cv2

    for k in range(info.frames):
        yield cv2.imread(str(info.folder / info.image_dir / f"{k + 1:06d}{info.image_ext}"))


def detect(infos, model: Path, conf: float, overlap: int) -> tuple[dict, dict]:
    """{sequence: [(xyxy, scores) per frame]} from the model (tiled, cross-tile merged), and timing facts."""
    from sspnet.runtime.backend import load_backend
    from sspnet.runtime.detector import Detector
    from tqdm import tqdm

    backend = load_backend(str(model))
    detector = Detector(backend, fit="tile", tile_overlap=overlap, score_threshold=conf, color_order="bgr")
    detections, seconds, frames = {}, 0.0, 0
    with tqdm(total=sum(i.frames for i in infos), desc="detect", unit="frame", file=sys.stderr) as bar:
        for info in infos:
            per_frame = []
            for image in read_frames(info):
                start = time.perf_counter()
                found = detector.detect(image)
                seconds += time.perf_counter() - start
                frames += 1
                boxes, scores = np.asarray(found.boxes, np.float64).reshape(-1, 4), np.asarray(found.scores, np.float64)
                per_frame.append((boxes, scores))
                bar.update(1)
            detections[info.name] = per_frame
    facts = {
        "model": str(model),
        "backend": backend.name,
        "tile_hw": list(backend.input_size),
        "overlap": overlap,
        "score_threshold": conf,
        "ms_per_frame": 1000 * seconds / max(frames, 1),
    }
    return detections, facts


def oracle(infos, gts: dict, seed: int) -> tuple[dict, dict]:
    """Detections made from the ground truth (smoke tests, tracker-only studies): boxes jittered by
    0.5 px, 10 % missed, scores 0.3-1, plus 1 false alarm per 50 people."""
    rng = np.random.default_rng(seed)
    detections = {}
    for info in infos:
        gt, per_frame = gts[info.name], []
        for frame in range(1, info.frames + 1):
            boxes = gt.box[(gt.frame == frame) & (rng.random(len(gt.frame)) > 0.1)]
            boxes = boxes + np.c_[rng.normal(0, 0.5, (len(boxes), 2)), np.zeros((len(boxes), 2))]
            false = int(rng.poisson(len(boxes) / 50))
            fake = np.c_[
                rng.uniform(0, info.width - 8, false),
                rng.uniform(0, info.height - 12, false),
                rng.uniform(3, 8, false),
                rng.uniform(6, 14, false),
            ]
            boxes = np.vstack([boxes, fake])
            scores = np.r_[rng.uniform(0.3, 1.0, len(boxes) - false), rng.uniform(0.1, 0.6, false)]
            per_frame.append((np.c_[boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], scores))
        detections[info.name] = per_frame
    return detections, {"model": "oracle (jittered ground truth)", "ms_per_frame": None}


# ---- camera motion -----------------------------------------------------------------------------
CMC_CHOICES = (("sparseOptFlow", 4), ("orb", 2))  # measured on every frame; tracker settings reuse them


def estimate_motions(infos, detections: dict, high: float) -> tuple[dict, list]:
    """{(method, downscale): {sequence: [2x3 per frame]}} and their accuracy against the true camera."""
    from sspnet.data.synth_video import read_camera, true_motion
    from sspnet.tracking.tracker import MotionEstimator

    motions, accuracy = {}, []
    for method, downscale in CMC_CHOICES:
        motions[(method, downscale)] = {}
        errors, unmoved = {"hover": [], "moving": []}, {"hover": [], "moving": []}
        for info in infos:
            estimator, camera = MotionEstimator(method, downscale), read_camera(info)
            corners = np.array(
                [[0, 0, 1], [info.width, 0, 1], [0, info.height, 1], [info.width, info.height, 1]], float
            ).T
            per_frame = []
            for k, image in enumerate(read_frames(info)):
                boxes, scores = detections[info.name][k]
                H = estimator.estimate(image, boxes[scores >= high])
                per_frame.append(H)
                if k:
                    truth = true_motion(camera, k)
                    group = "hover" if info.name.endswith("hover") else "moving"
                    errors[group].append(np.abs(H @ corners - truth @ corners).max())
                    unmoved[group].append(np.abs(corners[:2] - truth @ corners).max())
            motions[(method, downscale)][info.name] = per_frame
        row = {"method": method, "downscale": downscale}
        for group in ("hover", "moving"):
            if errors[group]:
                row[f"{group}_corner_error_px_median"] = float(np.median(errors[group]))
                row[f"{group}_without_cmc_px_median"] = float(np.median(unmoved[group]))
        accuracy.append(row)
    return motions, accuracy


# ---- tracking ----------------------------------------------------------------------------------
def run_tracker(settings, infos, detections: dict, motions: dict, min_score: float = 0.0) -> dict:
    """{sequence: MotRows} of one tracker setting over the cached detections."""
    from sspnet.tracking.mot import MotRows
    from sspnet.tracking.tracker import FrameTracker

    out = {}
    for info in infos:
        tracker = FrameTracker(replace(settings, fps=info.fps))
        cmc = motions.get((settings.cmc, settings.cmc_downscale), {}).get(info.name)
        rows = []
        for k, (boxes, scores) in enumerate(detections[info.name]):
            keep = scores >= min_score
            ids = tracker.update(boxes[keep], scores[keep], k, motion=cmc[k] if cmc is not None else None)
            tracked = ids > 0
            xyxy = boxes[keep][tracked]
            rows.append(
                (
                    np.full(tracked.sum(), k + 1),
                    ids[tracked],
                    np.c_[xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]],
                    scores[keep][tracked],
                )
            )
        frame, ids, box, score = (np.concatenate(column) for column in zip(*rows))
        out[info.name] = MotRows(
            frame.astype(np.int64), ids, box.reshape(-1, 4), score, np.ones(len(frame), np.int64), np.ones(len(frame))
        )
    return out


def score(infos, gts: dict, tracks: dict) -> dict:
    """Metrics over all sequences, the hovering ones and the moving ones (TrackEval-style combination)."""
    from sspnet.tracking.evaluate import _summary, aggregate, evaluate_rows

    raws = {info.name: evaluate_rows(gts[info.name], tracks[info.name], info.frames)[1] for info in infos}
    groups = {
        "all": list(raws),
        "hover": [n for n in raws if n.endswith("hover")],
        "moving": [n for n in raws if not n.endswith("hover")],
    }
    keys = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "DetRe", "DetPr", "FP", "FN")
    result = {}
    for group, names in groups.items():
        if names:
            summary = _summary(aggregate([raws[n] for n in names]))
            result[group] = {k: round(summary[k], 3) if isinstance(summary[k], float) else summary[k] for k in keys}
    return result


def threshold_sweep(base):
    """Stage 0: the start threshold follows the detector's score scale: chosen first, on ByteTrack."""
    for high in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        yield (
            f"high_threshold={high}",
            replace(base, tracker="bytetrack", association="biou", buffer_ratio=0.5, cmc="none", high_threshold=high),
        )


def tracker_grid(base):
    """Stage 1: every tracker x association, without and with CMC (sparse optical flow, 1/4 size)."""
    associations = {
        "sort": [("iou", 0.5), ("biou", 0.5)],
        "bytetrack": [("iou", 0.5), ("biou", 0.3), ("biou", 0.5), ("biou", 1.0), ("diou", 0.5), ("giou", 0.5)],
        "ocsort": [("iou", 0.5), ("biou", 0.5)],
        "botsort": [("iou", 0.5), ("biou", 0.5)],
        "cbiou": [("biou", 0.5)],
    }
    for tracker, choices in associations.items():
        for association, ratio in choices:
            for cmc in (("none", 4),) + ((("sparseOptFlow", 4),) if tracker != "ocsort" else ()):
                yield replace(
                    base, tracker=tracker, association=association, buffer_ratio=ratio, cmc=cmc[0], cmc_downscale=cmc[1]
                )


def sweeps(best):
    """Stage 2: one setting at a time around the stage-1 winner -> (what varies, settings)."""
    if best.cmc != "none":
        yield "cmc=orb/2", replace(best, cmc="orb", cmc_downscale=2)
    for high in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        yield f"high_threshold={high}", replace(best, high_threshold=high)
    for hits in (1, 2, 3, 5):
        yield f"min_hits={hits}", replace(best, min_hits=hits)
    for lost in (10, 30, 60):
        yield f"lost_track_buffer={lost}", replace(best, lost_track_buffer=lost)


def pick(rows: list) -> dict:
    """The row with the highest HOTA over all sequences, except that a row listed earlier (simpler or
    cheaper: the stage order) wins when it is within TIE_HOTA points of it: run-to-run noise (RANSAC in
    the motion estimate) must not flip the choice."""
    top = max(row["metrics"]["all"]["HOTA"] for row in rows)
    return next(row for row in rows if row["metrics"]["all"]["HOTA"] >= top - TIE_HOTA)


# ---- detection beside tracking -----------------------------------------------------------------
def ap50_tiny(infos, gts: dict, boxes_of: dict) -> float:
    """TinyPerson AP50-tiny with every frame an image; ignore rows are ignore regions.
    boxes_of: {sequence: [(xyxy, scores) per frame]}."""
    from sspnet.evaluation.tinyperson import evaluate

    images, annotations, detections = [], [], {}
    for info in infos:
        gt = gts[info.name]
        for k in range(info.frames):
            image_id = len(images) + 1
            images.append(
                {
                    "id": image_id,
                    "file_name": f"{info.name}/{k + 1:06d}.jpg",
                    "width": info.width,
                    "height": info.height,
                }
            )
            for row in np.flatnonzero(gt.frame == k + 1):
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": 1,
                        "bbox": gt.box[row].tolist(),
                        "iscrowd": 0,
                        "ignore": bool(gt.score[row] == 0),
                        "uncertain": False,
                        "area": float(gt.box[row, 2] * gt.box[row, 3]),
                    }
                )
            boxes, scores = boxes_of[info.name][k]
            detections[image_id] = {"boxes": boxes, "scores": scores, "labels": np.zeros(len(scores), np.int64)}
    data = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    return float(evaluate(data, detections, compute_mr=False)["AP50_tiny"])


def rows_as_boxes(tracks: dict, infos) -> dict:
    """{sequence: MotRows} -> {sequence: [(xyxy, scores) per frame]}."""
    out = {}
    for info in infos:
        rows = tracks[info.name]
        per_frame = []
        for k in range(1, info.frames + 1):
            mask = rows.frame == k
            box = rows.box[mask]
            per_frame.append((np.c_[box[:, :2], box[:, :2] + box[:, 2:]], rows.score[mask]))
        out[info.name] = per_frame
    return out


def single_frame_rows(detections: dict, infos, threshold: float) -> dict:
    """Single-frame detections at or above `threshold` as MOT rows, each box its own id (so only the
    detection metrics DetA / DetRe / DetPr / FP / FN mean something)."""
    from sspnet.tracking.mot import MotRows

    out = {}
    for info in infos:
        parts, next_id = [], 1
        for k, (boxes, scores) in enumerate(detections[info.name]):
            keep = scores >= threshold
            n = int(keep.sum())
            parts.append((np.full(n, k + 1), np.arange(next_id, next_id + n), boxes[keep], scores[keep]))
            next_id += n
        frame, ids, xyxy, score_ = (np.concatenate(c) for c in zip(*parts))
        xyxy = xyxy.reshape(-1, 4)
        out[info.name] = MotRows(
            frame.astype(np.int64),
            ids,
            np.c_[xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]],
            score_,
            np.ones(len(frame), np.int64),
            np.ones(len(frame)),
        )
    return out


def tracking_vs_detection(best, infos, gts, detections, motions) -> list:
    rows = []
    for threshold in sorted({0.3, best.high_threshold, 0.5}):
        single = single_frame_rows(detections, infos, threshold)
        metrics = score(infos, gts, single)["all"]
        rows.append(
            {
                "boxes": "single-frame",
                "score_threshold": threshold,
                "min_hits": None,
                "AP50_tiny": ap50_tiny(infos, gts, rows_as_boxes(single, infos)),
                **{k: metrics[k] for k in ("DetA", "DetRe", "DetPr", "FP", "FN")},
            }
        )
        for hits in (1, 2, 3, 5):
            settings = replace(best, high_threshold=threshold, min_hits=hits)
            tracks = run_tracker(settings, infos, detections, motions, min_score=threshold)
            metrics = score(infos, gts, tracks)["all"]
            rows.append(
                {
                    "boxes": "tracked",
                    "score_threshold": threshold,
                    "min_hits": hits,
                    "tracker": settings.label(),
                    "AP50_tiny": ap50_tiny(infos, gts, rows_as_boxes(tracks, infos)),
                    **{k: metrics[k] for k in ("DetA", "DetRe", "DetPr", "FP", "FN")},
                }
            )
    return rows


# ---- cost ----------------------------------------------------------------------------------------
def tracker_cost(frames: int, seed: int) -> list:
    """Median ms per update() with 300 detections (and 50, to show how it scales) of people walking
    0-3 px/frame on a 1920x1080 frame."""
    from sspnet.tracking.tracker import FrameTracker, TrackerSettings

    rows = []
    for n in (50, COST_DETECTIONS):
        rng = np.random.default_rng(seed)
        centre = rng.uniform([20, 20], [COST_SIZE[0] - 20, COST_SIZE[1] - 20], (n, 2))
        velocity = rng.uniform(-3, 3, (n, 2)) / np.sqrt(2)
        size = rng.uniform(4, 14, n)[:, None] * [0.6, 1.6]
        scenes = []
        for _ in range(frames + 10):
            centre = centre + velocity + rng.normal(0, 0.2, (n, 2))
            boxes = np.c_[centre - size / 2, centre + size / 2] + rng.normal(0, 0.3, (n, 4))
            scenes.append((boxes, rng.uniform(0.3, 1.0, n)))
        for tracker, association, array_form in (
            ("sort", "iou", False),
            ("bytetrack", "iou", False),
            ("bytetrack", "iou", True),
            ("bytetrack", "biou", True),
            ("ocsort", "iou", False),
            ("botsort", "biou", False),
            ("botsort", "biou", True),
            ("cbiou", "biou", False),
        ):
            settings = TrackerSettings(tracker=tracker, association=association, cmc="none")
            # array_form=False: the library's own tracker, the baseline of sspnet's array form of it
            tracked = FrameTracker(settings, array_form=array_form)
            implementation = "array form" if tracked.array is not None else "library"
            times = []
            for k, (boxes, scores) in enumerate(scenes):
                start = time.perf_counter()
                tracked.update(boxes, scores, k)
                if k >= 10:  # tracks established
                    times.append(1000 * (time.perf_counter() - start))
            rows.append(
                {
                    "tracker": settings.label(),
                    "implementation": implementation,
                    "detections": n,
                    "frames": len(times),
                    "median_ms": float(np.median(times)),
                    "p90_ms": float(np.percentile(times, 90)),
                }
            )
            median = rows[-1]["median_ms"]
            log(f"  step {settings.label():<22} {implementation:<10} {n} detections: {median:.2f} ms median")
    return rows


def cmc_cost(frames: int, seed: int) -> list:
    """Median ms per CMC estimate on 1920x1080 frames of a panning camera, and its accuracy."""
    from sspnet.data.synth_video import SequenceGenerator
    from sspnet.tracking.tracker import MotionEstimator

    generator = SequenceGenerator(np.random.default_rng(seed), "pan", frames + 1, *COST_SIZE)
    images = [generator.frame(k)[0] for k in range(frames + 1)]
    corners = np.array([[0, 0, 1], [COST_SIZE[0], 0, 1], [0, COST_SIZE[1], 1], [*COST_SIZE, 1]], float).T
    rows = []
    for method, downscale in (
        ("sparseOptFlow", 2),
        ("sparseOptFlow", 4),
        ("sparseOptFlow", 8),
        ("orb", 2),
        ("orb", 4),
        ("ecc", 4),
        ("ecc", 8),
    ):
        estimator = MotionEstimator(method, downscale)
        times, errors = [], []
        for k, image in enumerate(images):
            start = time.perf_counter()
            H = estimator.estimate(image)
            if k:
                times.append(1000 * (time.perf_counter() - start))
                previous, current = (np.vstack([generator.transforms[j], [0, 0, 1]]) for j in (k - 1, k))
                truth = (current @ np.linalg.inv(previous))[:2]
                errors.append(np.abs(H @ corners - truth @ corners).max())
        rows.append(
            {
                "method": method,
                "downscale": downscale,
                "frame": list(COST_SIZE),
                "frames": len(times),
                "median_ms": float(np.median(times)),
                "p90_ms": float(np.percentile(times, 90)),
                "corner_error_px_median": float(np.median(errors)),
            }
        )
        log(
            f"  cmc {method}/{downscale}: {rows[-1]['median_ms']:.1f} ms, "
            f"error {rows[-1]['corner_error_px_median']:.2f} px"
        )
    return rows


# ---- plot ----------------------------------------------------------------------------------------
def plot(stage1: list, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sspnet.benchmark.report import save_figure

    labels = [row["label"] for row in stage1]
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(labels) + 1.5))
    for offset, group, colour in ((-0.2, "hover", "#4c72b0"), (0.2, "moving", "#dd8452")):
        values = [row["metrics"].get(group, {}).get("HOTA", np.nan) for row in stage1]
        ax.barh(y + offset, values, height=0.4, label=f"{group} camera", color=colour)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("HOTA (%)")
    ax.set_title("Tracking tiny people on synthetic UAV sequences")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    fig.subplots_adjust(left=0.38, bottom=0.12)  # room for the long setting names
    return save_figure(fig, path)


# ---- main ----------------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--part",
        choices=("accuracy", "cost", "all"),
        default="all",
        help="accuracy: tracking / detection scores (any machine); cost: timings (a quiet machine); "
        "all: both (default)",
    )
    parser.add_argument("--model", type=Path, help="detector (.onnx / .safetensors; default demo_out/model.onnx)")
    parser.add_argument("--oracle", action="store_true", help="jittered ground truth instead of a detector (smoke)")
    parser.add_argument(
        "--sequences",
        type=int,
        default=6,
        help="held-out sequences; camera modes in turn: hover, pan, rotate, zoom (default 6)",
    )
    parser.add_argument("--frames", type=int, default=40, help="frames per sequence (default 40)")
    parser.add_argument("--size", type=int, nargs=2, default=(1280, 720), metavar=("W", "H"))
    parser.add_argument("--conf", type=float, default=0.1, help="detector score threshold (default 0.1)")
    parser.add_argument("--overlap", type=int, default=30, help="tile overlap (default 30)")
    parser.add_argument("--cost-frames", type=int, default=200, help="frames timed per cost row (default 200)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--workdir", type=Path, help="keep the sequences here (default: a temporary folder)")
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS / "tracking.json",
        help="accuracy JSON (default benchmarks/results/tracking.json; + .png)",
    )
    parser.add_argument(
        "--cost-out",
        type=Path,
        default=RESULTS / "tracking_cost.json",
        help="cost JSON (default benchmarks/results/tracking_cost.json)",
    )
    return parser.parse_args(argv)


def accuracy_part(args, model) -> dict:
    """Sections 1-3 of the module docstring: the accuracy document."""
    from sspnet.tracking.mot import read_mot
    from sspnet.tracking.tracker import TrackerSettings

    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_tracking_")))
        infos = make_sequences(workdir, args.sequences, args.frames, tuple(args.size), args.seed)
        gts = {info.name: read_mot(info.gt, "gt", info.frames) for info in infos}
        if args.oracle:
            detections, detector = oracle(infos, gts, args.seed)
        else:
            detections, detector = detect(infos, model, args.conf, args.overlap)
        base = TrackerSettings(cmc="none")
        motions, cmc_accuracy = estimate_motions(infos, detections, base.high_threshold)

        def evaluate(settings, varied=None):
            metrics = score(infos, gts, run_tracker(settings, infos, detections, motions))
            row = {"label": settings.label(), "varied": varied, "settings": settings.as_dict(), "metrics": metrics}
            log(
                f"  {row['label']:<38} {varied or '':<22} HOTA all {metrics['all']['HOTA']:.2f}  "
                f"IDF1 {metrics['all']['IDF1']:.2f}  IDSW {metrics['all']['IDSW']}"
            )
            return row

        log("stage 0: start threshold (ByteTrack, buffered IoU)")
        stage0 = [evaluate(settings, varied) for varied, settings in threshold_sweep(base)]
        high = pick(stage0)["settings"]["high_threshold"]
        base = replace(base, high_threshold=high)
        log(f"stage 1: trackers x associations, with and without CMC (high_threshold {high})")
        stage1 = [evaluate(settings) for settings in tracker_grid(base)]
        winner = pick(stage1)
        best = TrackerSettings(**winner["settings"])
        log(f"stage 2: sweeps around {best.label()}")
        stage2 = [evaluate(settings, varied) for varied, settings in sweeps(best)]
        overall = pick(stage1 + stage2)
        best = TrackerSettings(**overall["settings"])
        log("tracking vs single-frame detection")
        ap_single = ap50_tiny(infos, gts, detections)
        versus = tracking_vs_detection(best, infos, gts, detections, motions)
    defaults = TrackerSettings()
    matches = all(getattr(defaults, k) == v for k, v in best.as_dict().items() if k != "fps")
    if not matches:
        log(
            f"note: sspnet track's defaults ({defaults.label()}, high {defaults.high_threshold}, hits "
            f"{defaults.min_hits}, lost {defaults.lost_track_buffer}) differ from this run's best: "
            "update TrackerSettings"
        )
    plot(stage1, args.out.with_suffix(".png"))
    log(f"best: {best.label()} HOTA {overall['metrics']['all']['HOTA']:.2f}")
    return {
        "benchmark": "tracking",
        "seconds": round(time.perf_counter() - start, 1),
        "sequences": {
            "count": len(infos),
            "frames": args.frames,
            "size": list(args.size),
            "seed": args.seed,
            "names": [info.name for info in infos],
            "gt_boxes": int(sum(int((g.score == 1).sum()) for g in gts.values())),
            "gt_ids": int(sum(len(np.unique(g.id)) for g in gts.values())),
        },
        "detector": {**detector, "AP50_tiny_single_frame": ap_single},
        "evaluator": "trackers.eval (TrackEval definitions: HOTA over IoU 0.05..0.95; CLEAR and Identity at IoU 0.5)",
        "stage0": stage0,
        "stage1": stage1,
        "stage2": stage2,
        "best": {"label": best.label(), "settings": best.as_dict(), "metrics": overall["metrics"]},
        "defaults_match_best": matches,
        "tie_hota": TIE_HOTA,
        "tracking_vs_detection": versus,
        "cmc_accuracy_on_sequences": cmc_accuracy,
    }


def cost_part(args) -> dict:
    """Section 4: timings (run on a quiet machine)."""
    start = time.perf_counter()
    log("cost: tracker step")
    steps = tracker_cost(args.cost_frames, args.seed)
    log("cost: camera-motion estimate")
    cmc = cmc_cost(max(args.cost_frames // 4, 5), args.seed)
    return {
        "benchmark": "tracking_cost",
        "seconds": round(time.perf_counter() - start, 1),
        "tracker_step": steps,
        "cmc": cmc,
        "targets": {"tracker_step_ms_300_detections": 2.0, "cmc_ms_1920x1080": 8.0},
    }


def main(argv=None) -> int:
    from sspnet.io.atomic import atomic_write_json
    from sspnet.io.outputs import OutputGuard

    args = parse_args(argv)
    command = "python benchmarks/bench_tracking.py " + " ".join(sys.argv[1:] if argv is None else argv)
    model = args.model or next((m for m in DEFAULT_MODELS if m.exists()), None)
    if args.part != "cost" and not args.oracle and (model is None or not model.exists()):
        sys.exit(
            f"bench_tracking: no detector at {args.model or DEFAULT_MODELS[0]} (run `sspnet demo --out demo_out` "
            "or pass --model; --oracle for a smoke test)"
        )
    guard = OutputGuard(inputs=[model] if model else [], verb="bench_tracking")
    outputs = {"accuracy": args.out, "cost": args.cost_out}
    for part, path in outputs.items():
        if args.part in (part, "all"):
            guard.check_file(path, "json")
    for part, make in (("accuracy", lambda: accuracy_part(args, model)), ("cost", lambda: cost_part(args))):
        if args.part in (part, "all"):
            document = {**make(), "command": command, "machine": machine()}
            atomic_write_json(outputs[part], document)
            log(f"wrote {outputs[part]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
