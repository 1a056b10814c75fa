"""Parity between the PyTorch detector and its exported ONNX graph.

    images = verification_images(8, imgsz=(512, 640))          # or a folder of images
    reference = run_pytorch(model, images)
    exported = run_onnx("model.onnx", images, flavor="portable")
    stats = compare_detections(reference, exported)
    print_parity(stats)

A PyTorch detection (score >= score_min) counts as matched when the exported graph has a detection
of the same label with IoU >= iou_min and |score difference| <= score_tol (each exported detection
matches at most one). Outputs are the contract's: num_dets [N, 1], boxes [N, K, 4], scores [N, K],
labels [N, K]; rows past num_dets are ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sspnet.runtime.contract import INPUT_NAME, OUTPUT_NAMES

from sspnet.errors import InputError, UsageError
from sspnet.io.table import print_table

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


# ---- inputs ----------------------------------------------------------------------------------


def synthetic_images(count: int, imgsz: tuple[int, int], seed: int = 0) -> np.ndarray:
    """`count` synthetic aerial scenes (sspnet.data.synth), uint8 [count, 3, H, W] RGB."""
    from sspnet.data.synth import generate_image

    height, width = imgsz
    rng = np.random.default_rng(seed)
    images = [generate_image(rng, width=width, height=height)[0] for _ in range(count)]
    return np.stack(images).transpose(0, 3, 1, 2).copy()


def folder_images(folder: str | Path, imgsz: tuple[int, int], limit: int = 16) -> np.ndarray:
    """Up to `limit` images of a folder (sorted by name), resized to imgsz, uint8 [n, 3, H, W] RGB."""
    import cv2

    folder = Path(folder)
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not paths:
        raise InputError(
            "no images in the folder",
            path=folder,
            field="--verify-images",
            expected=f"{'/'.join(IMAGE_SUFFIXES)} files",
        )
    height, width = imgsz
    images = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError("cannot read the image (corrupt or not an image)", path=path, field="--verify-images")
        rgb = cv2.cvtColor(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        images.append(rgb)
    return np.stack(images).transpose(0, 3, 1, 2).copy()


def dataset_images(data: str | Path, split: str = "val", limit: int | None = None) -> tuple[np.ndarray, object]:
    """The images of a data folder's split (all of one size), uint8 [n, 3, H, W] RGB, and its
    AnnotationSet (records in the same order), for parity and AP on real annotations."""
    from sspnet.data.images import read_image
    from sspnet.data.tinyperson import dataset_paths, load_annotations

    gt_path, image_root = dataset_paths(data, split)
    annotations = load_annotations(gt_path, image_root=image_root)
    annotations.records = annotations.records[:limit] if limit else annotations.records
    images = [read_image(record) for record in annotations.records]
    sizes = sorted({image.shape[:2] for image in images})
    if len(sizes) != 1:
        raise InputError("parity needs images of one size (the export size)", path=gt_path, got=f"sizes {sizes[:4]}")
    return np.stack(images).transpose(0, 3, 1, 2).copy(), annotations


def outputs_to_detections(outputs: dict, image_ids) -> dict:
    """Contract outputs of images in `image_ids` order -> {image_id: {boxes, scores, labels}}, the
    detections sspnet.evaluation.evaluate takes."""
    detections = {}
    for index, image_id in enumerate(image_ids):
        boxes, scores, labels = _valid(outputs, index)
        detections[image_id] = {"boxes": boxes, "scores": scores, "labels": labels}
    return detections


def verification_images(spec, imgsz: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Images for --verify: an int (that many synthetic scenes), a folder path, or an array."""
    if isinstance(spec, np.ndarray):
        if spec.dtype != np.uint8 or spec.ndim != 4 or spec.shape[1] != 3 or tuple(spec.shape[2:]) != tuple(imgsz):
            raise UsageError(
                f"verify images: expected uint8 [N, 3, {imgsz[0]}, {imgsz[1]}], got {spec.dtype} {list(spec.shape)}"
            )
        return spec
    if isinstance(spec, bool):
        raise UsageError("verify images: expected a count, a folder or an array, got a bool")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        count = int(spec)
        if count < 1:
            raise UsageError("the verify image count must be >= 1", field="--verify-images", got=count)
        return synthetic_images(count, imgsz, seed)
    path = Path(spec)
    if not path.is_dir():
        raise UsageError("not an image count nor an existing folder", field="--verify-images", got=str(path))
    return folder_images(path, imgsz)


# ---- running the two sides -------------------------------------------------------------------


def run_pytorch(model, images: np.ndarray, batch_size: int = 4) -> dict[str, np.ndarray]:
    """The eager PyTorch detector on uint8 [N, 3, H, W] images -> contract outputs as NumPy."""
    import torch

    model.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            out = model(torch.from_numpy(images[start : start + batch_size]))
            chunks.append({name: out[name].cpu().numpy() for name in OUTPUT_NAMES})
    return {name: np.concatenate([c[name] for c in chunks]) for name in OUTPUT_NAMES}


def onnx_session(model_path: str | Path, flavor: str):
    """A callable images -> outputs list for the graph: ONNX Runtime (portable) or onnx's
    ReferenceEvaluator with the plugin nodes implemented in Python (tensorrt; slow, but TensorRT
    cannot run here)."""
    if flavor == "portable":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        return lambda images: session.run(list(OUTPUT_NAMES), {INPUT_NAME: images})
    if flavor == "tensorrt":
        import onnx
        from sspnet.export.reference_ops import reference_evaluator

        evaluator = reference_evaluator(onnx.load(str(model_path)))
        return lambda images: evaluator.run(list(OUTPUT_NAMES), {INPUT_NAME: images})
    raise UsageError("unknown export flavour", field="flavor", expected="'portable' or 'tensorrt'", got=repr(flavor))


def run_onnx(model_path, images: np.ndarray, flavor: str, batch_size: int = 4) -> dict[str, np.ndarray]:
    """The exported graph on uint8 [N, 3, H, W] images, `batch_size` images per call.

    A graph exported with a fixed batch B must be called with batch_size=B; a short last chunk is
    padded with black images and the padding rows dropped.
    """
    run = onnx_session(model_path, flavor)
    chunks = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        real = len(chunk)
        if real < batch_size:
            pad = np.zeros((batch_size - real, *chunk.shape[1:]), chunk.dtype)
            chunk = np.concatenate([chunk, pad])
        outputs = run(np.ascontiguousarray(chunk))
        chunks.append({name: np.asarray(value)[:real] for name, value in zip(OUTPUT_NAMES, outputs)})
    return {name: np.concatenate([c[name] for c in chunks]) for name in OUTPUT_NAMES}


# ---- comparing -------------------------------------------------------------------------------


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU matrix [A, B] of (x1, y1, x2, y2) boxes; 0 where the union is empty."""
    a = boxes_a[:, None, :].astype(np.float64)
    b = boxes_b[None, :, :].astype(np.float64)
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _valid(outputs: dict, index: int):
    count = int(np.asarray(outputs["num_dets"])[index].reshape(-1)[0])
    return (
        np.asarray(outputs["boxes"])[index, :count],
        np.asarray(outputs["scores"])[index, :count],
        np.asarray(outputs["labels"])[index, :count],
    )


def compare_detections(
    reference: dict, exported: dict, score_min: float = 0.05, iou_min: float = 0.99, score_tol: float = 1e-3
) -> dict:
    """Match each reference detection (score >= score_min, best first) to an unused exported one.

    Returns counts and worst differences over the matched pairs: images, reference (detections
    with score >= score_min), exported (same filter), matched, matched_pct, max_box_diff (pixels),
    max_score_diff, equal_num_dets (images whose num_dets agree exactly).
    """
    images = len(reference["num_dets"])
    if len(exported["num_dets"]) != images:
        raise ValueError(f"reference has {images} images, exported {len(exported['num_dets'])}")
    stats = dict(images=images, reference=0, exported=0, matched=0, max_box_diff=0.0, max_score_diff=0.0)
    stats["equal_num_dets"] = int(
        np.sum(np.asarray(reference["num_dets"]).reshape(-1) == np.asarray(exported["num_dets"]).reshape(-1))
    )
    for index in range(images):
        ref_boxes, ref_scores, ref_labels = _valid(reference, index)
        out_boxes, out_scores, out_labels = _valid(exported, index)
        keep_ref = ref_scores >= score_min
        ref_boxes, ref_scores, ref_labels = ref_boxes[keep_ref], ref_scores[keep_ref], ref_labels[keep_ref]
        stats["reference"] += int(keep_ref.sum())
        stats["exported"] += int((out_scores >= score_min).sum())
        if len(ref_boxes) == 0 or len(out_boxes) == 0:
            continue
        iou = box_iou(ref_boxes, out_boxes)
        used = np.zeros(len(out_boxes), bool)
        for i in np.argsort(-ref_scores, kind="stable"):
            ok = (
                ~used
                & (out_labels == ref_labels[i])
                & (iou[i] >= iou_min)
                & (np.abs(out_scores - ref_scores[i]) <= score_tol)
            )
            if not ok.any():
                continue
            j = int(np.argmax(np.where(ok, iou[i], -1.0)))
            used[j] = True
            stats["matched"] += 1
            stats["max_box_diff"] = max(stats["max_box_diff"], float(np.abs(out_boxes[j] - ref_boxes[i]).max()))
            stats["max_score_diff"] = max(stats["max_score_diff"], float(abs(out_scores[j] - ref_scores[i])))
    stats["matched_pct"] = 100.0 * stats["matched"] / stats["reference"] if stats["reference"] else 100.0
    return stats


def print_parity(rows: dict[str, dict]) -> None:
    """One table row per compared graph: {label: compare_detections(...) result}."""
    print_table(
        [
            (
                label,
                s["images"],
                s["reference"],
                s["exported"],
                f"{s['matched_pct']:.2f}%",
                f"{s['max_box_diff']:.2e}",
                f"{s['max_score_diff']:.2e}",
                f"{s['equal_num_dets']}/{s['images']}",
            )
            for label, s in rows.items()
        ],
        headers=(
            "graph",
            "images",
            "torch dets",
            "onnx dets",
            "matched",
            "max box diff",
            "max score diff",
            "same count",
        ),
    )
