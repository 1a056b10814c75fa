"""Does the pipeline keep the model busy? End-to-end frames per second of `sspnet predict` against
the model alone on the same tiles, with SAHI's sliced prediction over the same ONNX model beside it,
in one run.

    python benchmarks/bench_pipeline.py                       # ~4 min on 2 cores (demo model if present)
    python benchmarks/bench_pipeline.py --frames 2 --rounds 1 --size 640 360   # smoke test, seconds

Writes benchmarks/results/pipeline.json and pipeline.png. On the same decoded-from-file 1920x1080
synthetic clip (a tiny-person scene from sspnet's generator, the camera panning over it), each
round times, for the same frames:

    model only    the model on the frame's tiles, cut beforehand (Detector.prepare outside the
                  clock): ONNX Runtime calls of at most --max-tiles-per-batch tiles; nothing else
    sspnet        sspnet.inference.predict on the video file: decode, tile, model, cross-tile merge,
                  detections.jsonl and the annotated video (its three-stage pipeline)
    SAHI          a plain loop: decode (OpenCV), sahi.predict.get_sliced_prediction over the same
                  OnnxRuntimeBackend (a small SAHI DetectionModel wrapper, one model call per batch
                  of --max-tiles-per-batch slices), the same slice size and overlap, class-aware NMS
                  at IoU 0.5 like sspnet's merge, no extra full-frame pass, then the same JSON line
                  and annotated frame written as sspnet writes them

and reports each pipeline's frames per second, sspnet's over model-only (goal >= 0.9), and each
pipeline's overhead over model time: sspnet's against the model-only row ("sspnet_overhead") and,
measured like SAHI's, against the time its own model thread spent in the model; SAHI's against
the time its wrapper spent in the model. Medians over --rounds rounds; the rounds are in the JSON
too (a load change on the machine shows there). The model: the demo's
(demo_out/model.onnx, from `sspnet demo`) when it exists, else the demo recipe with random weights
exported here (speed only). Needs `sahi` (pip install sahi --no-deps; see the `bench` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_neighbours.prepare_model

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DEMO_ONNX = ROOT / "demo_out" / "model.onnx"
FPS = 25.0
MODEL_KIND = {True: "the demo model", False: "random weights", None: "given with --onnx"}


def write_clip(path: Path, frames: int, width: int, height: int, seed: int = 0) -> Path:
    """A synthetic UAV clip: one generated tiny-person scene, the camera panning 3 px per frame."""
    import cv2

    from sspnet.data.synth import generate_image

    pan = 3 * frames
    scene, _ = generate_image(np.random.default_rng(seed), width=width + pan, height=height + pan // 2)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (width, height))
    for k in range(frames):
        x, y = 3 * k, (3 * k) // 2
        writer.write(np.ascontiguousarray(scene[y : y + height, x : x + width, ::-1]))
    writer.release()
    return path


def decode(path: Path, frames: int) -> list[np.ndarray]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    images = []
    while len(images) < frames:
        ok, image = capture.read()
        if not ok:
            break
        images.append(image)
    capture.release()
    return images


def sahi_model(backend, confidence: float):
    """A SAHI DetectionModel over sspnet's ONNX Runtime backend; `model_seconds` adds up the time
    spent in the model (written here because SAHI has no ONNX Runtime model for this contract)."""
    from sahi.models.base import DetectionModel
    from sahi.prediction import ObjectPrediction

    class SspnetOnnxModel(DetectionModel):
        def __init__(self):
            self.model_seconds = 0.0
            classes = backend.metadata.classes
            super().__init__(
                model=backend,
                confidence_threshold=confidence,
                device="cpu",
                category_mapping={str(k): name for k, name in enumerate(classes)},
            )

        def set_model(self, model, **kwargs):
            self.model = model

        def load_model(self):
            self.model = backend

        @property
        def num_categories(self):
            return len(backend.metadata.classes)

        @property
        def has_mask(self):
            return False

        @property
        def category_names(self):
            return list(backend.metadata.classes)

        def perform_inference(self, image):
            self.perform_batch_inference([image])

        def perform_batch_inference(self, images):
            # slices of a frame smaller than the model input are zero-padded at the bottom / right, as
            # sspnet pads its tiles (boxes stay in slice pixels)
            height, width = backend.input_size
            batch = np.zeros((len(images), 3, height, width), np.uint8)
            for k, image in enumerate(images):
                batch[k, :, : image.shape[0], : image.shape[1]] = image.transpose(2, 0, 1)  # RGB HWC -> CHW
            start = time.perf_counter()
            self._original_predictions = backend.infer(batch)
            self.model_seconds += time.perf_counter() - start

        def _create_object_prediction_list_from_original_predictions(
            self, shift_amount_list=None, full_shape_list=None
        ):
            outputs = self._original_predictions
            per_image = []
            for k, count in enumerate(outputs["num_dets"][:, 0]):
                predictions = []
                for box, score, label in zip(
                    outputs["boxes"][k, :count], outputs["scores"][k, :count], outputs["labels"][k, :count]
                ):
                    if score < self.confidence_threshold:
                        continue
                    predictions.append(
                        ObjectPrediction(
                            bbox=[float(v) for v in box],
                            category_id=int(label),
                            category_name=backend.metadata.classes[int(label)],
                            score=float(score),
                            shift_amount=shift_amount_list[k],
                            full_shape=full_shape_list[k] if full_shape_list else None,
                        )
                    )
                per_image.append(predictions)
            self._object_prediction_list_per_image = per_image

    return SspnetOnnxModel()


def run_model_only(detector, images) -> float:
    """Seconds of the model alone on every frame's tiles (cut before the clock starts)."""
    batches = [detector.prepare(image).batches for image in images]
    start = time.perf_counter()
    for frame_batches in batches:
        detector.backend.infer_chunks(iter(frame_batches))
    return time.perf_counter() - start


def run_sspnet(detector, clip: Path, frames: int, out: Path) -> tuple[float, float, int]:
    """Seconds, seconds in the model and detections of sspnet's predict on the clip (JSON Lines +
    annotated video)."""
    from sspnet.inference.predict import PredictOptions, predict
    from sspnet.inference.sources import open_source

    options = PredictOptions(out=out, progress=False, keep_results=False, max_frames=frames)
    start = time.perf_counter()
    summary = predict(detector, open_source(str(clip)), options)
    model_s = summary.stage_ms.get("inference_ms", 0.0) * summary.frames / 1e3
    return time.perf_counter() - start, model_s, summary.detections


def sahi_predict(model, rgb: np.ndarray, tile: tuple[int, int], overlap: int, batch: int):
    """SAHI's sliced prediction set up as sspnet's tiling: the same slices, overlap and batch, class-aware
    NMS at IoU 0.5 as the cross-tile merge, no extra full-frame pass."""
    from sahi.predict import get_sliced_prediction

    return get_sliced_prediction(
        rgb,
        model,
        slice_height=tile[0],
        slice_width=tile[1],
        overlap_height_ratio=overlap / tile[0],
        overlap_width_ratio=overlap / tile[1],
        perform_standard_pred=False,
        postprocess_type="NMS",
        postprocess_match_metric="IOU",
        postprocess_match_threshold=0.5,
        postprocess_class_agnostic=False,
        verbose=0,
        batch_size=batch,
    )


def run_sahi(model, clip: Path, frames: int, out: Path, tile: tuple[int, int], overlap: int, batch: int, classes):
    """Seconds, model seconds and detections of the SAHI loop (decode, slice, model, merge, write)."""
    import cv2

    from sspnet.inference.draw import draw_detections
    from sspnet.io.atomic import atomic_output

    out.mkdir(parents=True, exist_ok=True)
    model.model_seconds, detections = 0.0, 0
    start = time.perf_counter()
    capture = cv2.VideoCapture(str(clip))
    writer = None
    with atomic_output(out / "clip.mp4") as video, open(out / "detections.jsonl", "w", encoding="utf-8") as lines:
        for k in range(frames):
            ok, image = capture.read()
            if not ok:
                break
            result = sahi_predict(model, np.ascontiguousarray(image[..., ::-1]), tile, overlap, batch)
            rows = result.to_coco_predictions(image_id=k + 1)
            detections += len(rows)
            lines.write(json.dumps({"image_id": k + 1, "detections": rows}) + "\n")
            lines.flush()
            found = result.object_prediction_list
            boxes = np.array([p.bbox.to_xyxy() for p in found], np.float32).reshape(-1, 4)
            scores = np.array([p.score.value for p in found], np.float32)
            labels = np.array([p.category.id for p in found], np.int64)
            if writer is None:
                writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), FPS, image.shape[1::-1])
            writer.write(draw_detections(image, boxes, scores, labels, classes))
        if writer is not None:
            writer.release()
    capture.release()
    return time.perf_counter() - start, model.model_seconds, detections


def sahi_tiles(height: int, width: int, tile: tuple[int, int], overlap: int) -> int:
    from sahi.slicing import get_slice_bboxes

    return len(
        get_slice_bboxes(
            height,
            width,
            slice_height=tile[0],
            slice_width=tile[1],
            overlap_height_ratio=overlap / tile[0],
            overlap_width_ratio=overlap / tile[1],
        )
    )


def plot(document: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = document["summary"]
    names = ["model only", "sspnet predict", "SAHI sliced"]
    fps = [summary["model_only_fps"], summary["sspnet_fps"], summary["sahi_fps"]]
    figure, axis = plt.subplots(figsize=(7, 3.8))
    bars = axis.bar(names, fps, color=["#888888", "#2a7ab9", "#d9822b"])
    for bar, value in zip(bars, fps):
        axis.text(bar.get_x() + bar.get_width() / 2, value, f"{value:.2f}", ha="center", va="bottom")
    axis.set_ylabel("frames / s (median over rounds)")
    width, height = document["clip"]["size"]
    axis.set_title(
        f"{width}x{height} clip, {document['tiles_per_frame']['sspnet']} tiles/frame: sspnet "
        f"{summary['sspnet_over_model_only']:.2f}x model-only, overhead sspnet "
        f"{100 * summary['sspnet_overhead']:.0f} % / SAHI {100 * summary['sahi_overhead']:.0f} %",
        fontsize=9,
    )
    figure.tight_layout()
    from sspnet.io.atomic import atomic_output

    with atomic_output(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--onnx",
        help=f"portable ONNX model (default: {DEMO_ONNX.relative_to(ROOT)} if it exists, "
        "else the demo recipe with random weights, exported here)",
    )
    parser.add_argument("--frames", type=int, default=10, help="frames per pipeline and round (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three pipelines (default 3)")
    parser.add_argument("--size", type=int, nargs=2, default=(1920, 1080), metavar=("W", "H"))
    parser.add_argument("--overlap", type=int, default=30, help="tile overlap in pixels (default 30)")
    parser.add_argument("--max-tiles-per-batch", type=int, default=4, help="tiles per model call (default 4)")
    parser.add_argument("--conf", type=float, default=0.25, help="score threshold of both pipelines (default 0.25)")
    parser.add_argument("--work", default="/tmp/sspnet_bench_pipeline", help="clip, outputs and random model")
    parser.add_argument(
        "--out",
        default=str(RESULTS / "pipeline"),
        help="output stem: STEM.json and STEM.png (default benchmarks/results/pipeline)",
    )
    args = parser.parse_args(argv)

    from sspnet.runtime.backend import load_backend
    from sspnet.runtime.detector import Detector
    from sspnet.runtime.threads import describe
    from sspnet.runtime.tiling import tile_grid

    from sspnet.benchmark.harness import cpu_model
    from sspnet.errors import UsageError
    from sspnet.io.atomic import atomic_write_json
    from sspnet.io.outputs import OutputGuard

    for name in ("frames", "rounds", "max_tiles_per_batch"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be a positive integer", got=getattr(args, name))
    try:
        import sahi
    except ImportError:
        raise UsageError("bench_pipeline.py needs SAHI: pip install --no-deps sahi (see the `bench` extra)") from None
    stem = Path(args.out)
    guard = OutputGuard(inputs=[args.onnx], verb="bench_pipeline")
    guard.check_file(stem.with_suffix(".json"), kind="json")  # before minutes of measuring
    guard.check_file(stem.with_suffix(".png"), kind="image")

    started = time.perf_counter()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    onnx_path = args.onnx or (str(DEMO_ONNX) if DEMO_ONNX.is_file() else None)
    trained = None if args.onnx else onnx_path is not None  # None: a model given with --onnx
    if onnx_path is None:
        from bench_neighbours import prepare_model

        onnx_path = prepare_model(work, None, None)[1]
    backend = load_backend(onnx_path)
    tile = tuple(backend.input_size)
    detector = Detector(
        backend,
        tile_overlap=args.overlap,
        score_threshold=args.conf,
        color_order="bgr",
        max_tiles_per_batch=args.max_tiles_per_batch,
    )
    width, height = args.size
    clip = write_clip(work / "clip.mp4", args.frames, width, height)
    images = decode(clip, args.frames)
    model = sahi_model(backend, args.conf)
    classes = backend.metadata.classes
    tiles = {
        "sspnet": len(tile_grid(height, width, tile[0], tile[1], args.overlap)),
        "sahi": sahi_tiles(height, width, tile, args.overlap),
    }
    print(
        f"model {onnx_path} ({MODEL_KIND[trained]}), tile {tile[0]}x{tile[1]}, "
        f"{width}x{height} clip, {len(images)} frames x {args.rounds} rounds; tiles/frame {tiles}",
        flush=True,
    )

    # warm-up: one frame through each pipeline (sessions, arenas, codecs)
    run_model_only(detector, images[:1])
    run_sspnet(detector, clip, 1, work / "warmup_sspnet")
    run_sahi(model, clip, 1, work / "warmup_sahi", tile, args.overlap, args.max_tiles_per_batch, classes)

    from tqdm import tqdm

    def model_only(k):
        return {"model_only_s": run_model_only(detector, images)}

    def sspnet(k):
        seconds, model_s, found = run_sspnet(detector, clip, len(images), work / f"sspnet_{k}")
        return {"sspnet_s": seconds, "sspnet_model_s": model_s, "sspnet_detections": found}

    def sahi_loop(k):
        seconds, model_s, found = run_sahi(
            model, clip, len(images), work / f"sahi_{k}", tile, args.overlap, args.max_tiles_per_batch, classes
        )
        return {"sahi_s": seconds, "sahi_model_s": model_s, "sahi_detections": found}

    pipelines = [model_only, sspnet, sahi_loop]
    rounds = []
    for k in tqdm(range(args.rounds), desc="rounds", unit="round"):
        record = {"order": []}
        for run in pipelines[k % 3 :] + pipelines[: k % 3]:  # rotated each round: a load drift hits all alike
            record["order"].append(run.__name__)
            record.update(run(k))
        rounds.append(record)
        tqdm.write(
            f"round {k + 1}: model only {len(images) / record['model_only_s']:.2f} fps, sspnet "
            f"{len(images) / record['sspnet_s']:.2f} fps, SAHI {len(images) / record['sahi_s']:.2f} fps"
        )

    def median(key):
        return statistics.median(r[key] for r in rounds)

    frames = len(images)
    summary = {
        "model_only_fps": frames / median("model_only_s"),
        "sspnet_fps": frames / median("sspnet_s"),
        "sahi_fps": frames / median("sahi_s"),
        "sspnet_over_model_only": median("model_only_s") / median("sspnet_s"),
        "sahi_over_model_only": median("model_only_s") / median("sahi_s"),
        "sspnet_overhead": median("sspnet_s") / median("model_only_s") - 1,
        "sahi_overhead": median("sahi_s") / median("sahi_model_s") - 1,
        # the same measure as SAHI's: over the time sspnet's own model thread spent in the model
        "sspnet_overhead_over_own_model_time": median("sspnet_s") / median("sspnet_model_s") - 1,
        "goal_sspnet_over_model_only": 0.9,
    }
    summary["goal_met"] = summary["sspnet_over_model_only"] >= 0.9
    document = {
        "command": " ".join(["python", "benchmarks/bench_pipeline.py", *(argv if argv is not None else sys.argv[1:])]),
        "model": {"onnx": onnx_path, "trained": trained, "input_size": list(tile)},
        "clip": {
            "size": [width, height],
            "frames": frames,
            "fps": FPS,
            "content": "synthetic tiny-person scene, camera panning 3 px/frame, mp4v",
        },
        "settings": {
            "overlap_px": args.overlap,
            "max_tiles_per_batch": args.max_tiles_per_batch,
            "conf": args.conf,
            "rounds": args.rounds,
            "sahi": {
                "version": sahi.__version__,
                "postprocess": "NMS IOU 0.5 class-aware",
                "perform_standard_pred": False,
            },
        },
        "tiles_per_frame": tiles,
        "summary": summary,
        "rounds": rounds,
        "threads": describe(),
        "cpu": cpu_model(),
        "load_average_before_after": [list(LOAD_BEFORE), list(os.getloadavg())],
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary, indent=1))
    print(f"JSON: {atomic_write_json(stem.with_suffix('.json'), document)}")
    print(f"plot: {plot(document, stem.with_suffix('.png'))}")
    return 0


LOAD_BEFORE = os.getloadavg()

if __name__ == "__main__":
    from sspnet.errors import SSPNetError

    try:
        sys.exit(main())
    except SSPNetError as error:  # a user's mistake: one line, exit 2
        print(f"bench_pipeline.py: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
