"""Run a detector over a data set for evaluation: whole images, tiles, and/or several scales.

The model contract (the same as the ONNX contract): `model(images)` with uint8 [N, 3, H, W] RGB returns
a dict with `num_dets` [N, 1], `boxes` [N, K, 4] (x1, y1, x2, y2 in input pixels), `scores` [N, K],
`labels` [N, K]; rows past num_dets are padding.

Modes (combinable):
  * whole image: the image zero-padded bottom/right to a multiple of 32;
  * tiles (`tile=(h, w)`): `sspnet.runtime.tiling` cuts tiles with overlap, runs them in batches,
    shifts detections to the frame and merges them with NMS (IoU 0.5, legacy +1-pixel boxes, as
    TinyBenchmark merges cut results);
  * scales (`scales=[(long, short), ...]`): keep-ratio resize with factor
    min(long / long_side, short / short_side); `PAPER_TTA_SCALES` are the original test scales.
    An SSPNet model merges the scales inside the detector exactly as the original does
    (`detect_multiscale`: Faster R-CNN averages boxes and scores over shared proposals, FoveaBox
    concatenates candidates; then soft-NMS and top max_detections). Any other model (an exported
    graph, a backend) runs each scale and its final detections, divided by the factor, are merged
    with the tile NMS. With tiles too, every tile is cut at native scale and then seen at every
    scale, as the original tests its 640 x 512 pieces.
"""

from __future__ import annotations

import numpy as np

from sspnet.runtime.tiling import cut_tiles, merge_tile_detections, tile_grid

PAPER_TTA_SCALES = ((1280, 1024), (1920, 1536))
MERGE_IOU = 0.5
PAD_MULTIPLE = 32


def _model_device(model):
    import torch

    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def _padded_batch(images_hwc: list[np.ndarray], device):
    """uint8 [h, w, 3] arrays -> uint8 [N, 3, H, W] tensor, zero-padded bottom/right to /32."""
    import torch

    height = -(-max(a.shape[0] for a in images_hwc) // PAD_MULTIPLE) * PAD_MULTIPLE
    width = -(-max(a.shape[1] for a in images_hwc) // PAD_MULTIPLE) * PAD_MULTIPLE
    batch = torch.zeros((len(images_hwc), 3, height, width), dtype=torch.uint8)
    for k, array in enumerate(images_hwc):
        batch[k, :, : array.shape[0], : array.shape[1]] = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
    return batch.to(device)


def _unpack(result: dict, count: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The contract's padded outputs -> one (boxes [D, 4], scores [D], labels [D]) per image."""
    for key in ("num_dets", "boxes", "scores", "labels"):
        if key not in result:
            raise ValueError(f"model output: missing {key!r}; expected num_dets, boxes, scores, labels")
    num = result["num_dets"].reshape(-1).cpu().numpy()
    return [
        (
            result["boxes"][k, : int(num[k])].float().cpu().numpy(),
            result["scores"][k, : int(num[k])].float().cpu().numpy(),
            result["labels"][k, : int(num[k])].cpu().numpy().astype(np.int64),
        )
        for k in range(count)
    ]


def run_model(
    model, images_hwc: list[np.ndarray], batch_size: int = 8
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Run the model on uint8 [h, w, 3] arrays (batched; each batch zero-padded to a multiple of 32).

    Returns one (boxes float32 [D, 4], scores float32 [D], labels int64 [D]) per input image.
    """
    import torch

    device = _model_device(model)
    outputs = []
    for start in range(0, len(images_hwc), batch_size):
        chunk = images_hwc[start : start + batch_size]
        with torch.no_grad():
            outputs.extend(_unpack(model(_padded_batch(chunk, device)), len(chunk)))
    return outputs


def run_model_multiscale(model, images_hwc: list[np.ndarray], scales, batch_size: int = 8):
    """Like run_model, each image seen at every keep-ratio scale and merged inside the model
    (`model.detect_multiscale`). Images of one batch must share their size (tiles do)."""
    device = _model_device(model)
    outputs = []
    for start in range(0, len(images_hwc), batch_size):
        chunk = images_hwc[start : start + batch_size]
        height, width = chunk[0].shape[:2]
        if any(a.shape[:2] != (height, width) for a in chunk):
            raise ValueError("run_model_multiscale: the images of one batch must have the same size")
        factors = [keep_ratio_factor(height, width, scale) for scale in scales]
        batches = [_padded_batch([a if f == 1.0 else _resize(a, f) for a in chunk], device) for f in factors]
        outputs.extend(_unpack(model.detect_multiscale(batches, factors), len(chunk)))
    return outputs


def _resize(image: np.ndarray, factor: float) -> np.ndarray:
    import cv2

    height, width = image.shape[:2]
    size = (int(width * factor + 0.5), int(height * factor + 0.5))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def keep_ratio_factor(height: int, width: int, scale: tuple[int, int]) -> float:
    """mmdet keep-ratio rescale factor for target (long, short)."""
    long_target, short_target = max(scale), min(scale)
    return min(long_target / max(height, width), short_target / min(height, width))


def detect_image(
    model,
    image: np.ndarray,
    tile=None,
    overlap: int = 30,
    scales=None,
    batch_size: int = 8,
    max_detections: int | None = 500,
):
    """Detections of one uint8 [H, W, 3] RGB image -> (boxes [D, 4] in image pixels, scores, labels)."""
    if scales and hasattr(model, "detect_multiscale"):
        return _detect_multiscale_in_model(model, image, tile, overlap, scales, batch_size, max_detections)
    boxes_all, scores_all, labels_all = [], [], []
    for scale in scales or (None,):
        factor = 1.0 if scale is None else keep_ratio_factor(image.shape[0], image.shape[1], scale)
        scaled = image if factor == 1.0 else _resize(image, factor)
        if tile is None:
            ((boxes, scores, labels),) = run_model(model, [scaled], batch_size)
        else:
            tile_h, tile_w = tile
            grid = tile_grid(scaled.shape[0], scaled.shape[1], tile_h, tile_w, overlap)
            tiles = cut_tiles(scaled, grid, tile_h, tile_w)
            per_tile = run_model(model, list(tiles), batch_size)
            boxes, scores, labels = merge_tile_detections(
                [p[0] for p in per_tile],
                [p[1] for p in per_tile],
                [p[2] for p in per_tile],
                grid,
                iou_threshold=MERGE_IOU,
                plus_one=True,
            )
        boxes_all.append(boxes / factor)
        scores_all.append(scores)
        labels_all.append(labels)
    if len(boxes_all) == 1:
        boxes, scores, labels = boxes_all[0], scores_all[0], labels_all[0]
        order = np.argsort(-scores, kind="stable")[:max_detections]
        return boxes[order], scores[order], labels[order]
    # several scales: the same merge as tiles, with every "tile" at the frame origin
    origin = np.zeros((len(boxes_all), 4), np.int64)
    return merge_tile_detections(
        boxes_all, scores_all, labels_all, origin, iou_threshold=MERGE_IOU, max_detections=max_detections, plus_one=True
    )


def _detect_multiscale_in_model(model, image, tile, overlap, scales, batch_size, max_detections):
    """Whole image or native-scale tiles, each merged over the scales by the model itself."""
    if tile is None:
        ((boxes, scores, labels),) = run_model_multiscale(model, [image], scales, batch_size)
        order = np.argsort(-scores, kind="stable")[:max_detections]
        return boxes[order], scores[order], labels[order]
    tile_h, tile_w = tile
    grid = tile_grid(image.shape[0], image.shape[1], tile_h, tile_w, overlap)
    per_tile = run_model_multiscale(model, list(cut_tiles(image, grid, tile_h, tile_w)), scales, batch_size)
    return merge_tile_detections(
        [p[0] for p in per_tile],
        [p[1] for p in per_tile],
        [p[2] for p in per_tile],
        grid,
        iou_threshold=MERGE_IOU,
        max_detections=max_detections,
        plus_one=True,
    )


def detect_dataset(
    model,
    annotations,
    tile=None,
    overlap: int = 30,
    scales=None,
    batch_size: int = 8,
    max_detections: int | None = 500,
    progress: bool = True,
) -> dict:
    """Run `detect_image` over every record of an AnnotationSet (images must be readable).

    Returns {image_id: {"boxes": float32 [D, 4] xyxy, "scores": [D], "labels": [D]}}, the input
    `sspnet.evaluation.evaluate` accepts.
    """
    from sspnet.data.images import read_image

    if hasattr(model, "eval"):
        model.eval()
    records = annotations.records
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(records), desc="detect", unit="img")
    detections = {}
    # plain whole-image inference batches several images per forward; tiles / scales go image by image
    step = batch_size if tile is None and not scales else 1
    for start in range(0, len(records), step):
        chunk = records[start : start + step]
        images = [read_image(record) for record in chunk]
        if step == 1:
            outputs = [detect_image(model, images[0], tile, overlap, scales, batch_size, max_detections)]
        else:
            outputs = [
                (b[order], s[order], lab[order])
                for b, s, lab in run_model(model, images, batch_size)
                for order in [np.argsort(-s, kind="stable")[:max_detections]]
            ]
        for record, (boxes, scores, labels) in zip(chunk, outputs):
            detections[record.image_id] = {"boxes": boxes, "scores": scores, "labels": labels}
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return detections
