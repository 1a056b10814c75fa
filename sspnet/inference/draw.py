"""Drawing on frames (OpenCV, BGR HWC uint8): detection boxes, tracks and SSPNet attention heat-maps.

Boxes are drawn 1 px thin (a little thicker on 4K frames) so that a 10-pixel person stays visible
under its box; score labels are optional and small.

Attention maps (the paper's CAM visualisation): SSPNet's neck predicts one map per pyramid level,
A0..A3 at strides 4, 8, 16, 32 of its input, values in [0, 1]. For a tiled frame every tile has
its own maps; `attention_to_frame` resizes each tile's map to the tile and pastes it at the
tile's place (maximum where tiles overlap). `attention_panel` shows the four levels as a 2 x 2
grid of half-size frames with the map blended over each (JET colour map on the absolute values,
so levels compare).
"""

from __future__ import annotations

import numpy as np

BOX_COLOR = (0, 255, 0)  # BGR green
TEXT_COLOR = (255, 255, 255)
ATTENTION_STRIDES = (4, 8, 16, 32)  # A0..A3 (pyramid levels P2..P5)


def box_thickness(frame_shape: tuple[int, ...]) -> int:
    """1 px up to 1080p, 2 px for 4K frames: thin enough for tiny objects."""
    return max(1, round(min(frame_shape[:2]) / 1080))


def draw_detections(
    image: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray | None = None,
    classes: tuple[str, ...] | None = None,
    show_labels: bool = True,
    color: tuple[int, int, int] = BOX_COLOR,
) -> np.ndarray:
    """A copy of `image` (HWC uint8) with each box (x1, y1, x2, y2 in pixels) drawn; with
    show_labels the score (and the class name when there are several classes) above the box."""
    import cv2

    out = np.ascontiguousarray(image).copy()
    thickness = box_thickness(out.shape)
    font_scale = 0.3 * thickness
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores).reshape(-1)
    labels = np.zeros(len(scores), np.int64) if labels is None else np.asarray(labels).reshape(-1)
    # corners rounded outwards, so the box encloses the object's pixels
    for (x1, y1, x2, y2), score, label in zip(boxes, scores, labels):
        p1 = (int(np.floor(x1)), int(np.floor(y1)))
        p2 = (max(int(np.ceil(x2)) - 1, p1[0]), max(int(np.ceil(y2)) - 1, p1[1]))
        cv2.rectangle(out, p1, p2, color, thickness, lineType=cv2.LINE_8)
        if show_labels:
            text = f"{score:.2f}"
            if classes and len(classes) > 1 and 0 <= int(label) < len(classes):
                text = f"{classes[int(label)]} {text}"
            origin = (p1[0], max(p1[1] - 2, 8))
            cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, color, 1, cv2.LINE_AA)
    return out


def track_color(track_id: int) -> tuple[int, int, int]:
    """A bright BGR colour per track id; neighbouring ids get far-apart hues (golden-ratio steps)."""
    import cv2

    hue = int((track_id * 0.61803398875 % 1.0) * 180)
    bgr = cv2.cvtColor(np.uint8([[[hue, 230, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def draw_tracks(
    image: np.ndarray,
    boxes: np.ndarray,
    track_ids: np.ndarray,
    trails: dict[int, list[tuple[float, float]]] | None = None,
    show_labels: bool = True,
) -> np.ndarray:
    """A copy of `image` with each tracked box (x1, y1, x2, y2) in its track's colour, the id above it,
    and each track's recent centres (`trails`: id -> [(x, y), ...], oldest first) as a polyline.
    Boxes with id 0 (detections not in a confirmed track) are drawn thin and grey, without a label."""
    import cv2

    out = np.ascontiguousarray(image).copy()
    thickness = box_thickness(out.shape)
    for track_id, points in (trails or {}).items():
        if len(points) > 1:
            line = np.round(np.asarray(points, np.float64)).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [line], False, track_color(track_id), thickness, cv2.LINE_AA)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    for (x1, y1, x2, y2), track_id in zip(boxes, np.asarray(track_ids).reshape(-1)):
        color = track_color(int(track_id)) if track_id > 0 else (160, 160, 160)
        p1 = (int(np.floor(x1)), int(np.floor(y1)))
        p2 = (max(int(np.ceil(x2)) - 1, p1[0]), max(int(np.ceil(y2)) - 1, p1[1]))
        cv2.rectangle(out, p1, p2, color, thickness, lineType=cv2.LINE_8)
        if show_labels and track_id > 0:
            origin = (p1[0], max(p1[1] - 2, 8))
            font = cv2.FONT_HERSHEY_SIMPLEX
            cv2.putText(out, str(int(track_id)), origin, font, 0.35 * thickness, color, 1, cv2.LINE_AA)
    return out


def attention_to_frame(
    maps: np.ndarray, grid: np.ndarray, tile_size: tuple[int, int], frame_size: tuple[int, int]
) -> np.ndarray:
    """One level's per-tile maps -> one map over the frame.

    Args:
        maps: float [T, 1, h, w] (or [T, h, w]) attention of each tile, values in [0, 1].
        grid: int [T, 4] tile corners (x1, y1, x2, y2) in frame pixels (runtime.tiling.tile_grid).
        tile_size: (H, W) of the tiles the model saw.
        frame_size: (H, W) of the frame.
    Returns:
        float32 [H, W]: each tile's map resized (bilinear) to the tile, pasted at its corner;
        the maximum where tiles overlap.
    """
    import cv2

    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 4:
        maps = maps[:, 0]
    grid = np.asarray(grid, dtype=np.int64).reshape(-1, 4)
    if len(maps) != len(grid):
        raise ValueError(f"attention_to_frame: {len(maps)} maps for {len(grid)} tiles")
    tile_h, tile_w = tile_size
    frame_h, frame_w = frame_size
    canvas = np.zeros((max(frame_h, int(grid[:, 3].max())), max(frame_w, int(grid[:, 2].max()))), np.float32)
    for level_map, (x1, y1, _, _) in zip(maps, grid):
        resized = cv2.resize(level_map, (tile_w, tile_h), interpolation=cv2.INTER_LINEAR)
        region = canvas[y1 : y1 + tile_h, x1 : x1 + tile_w]
        np.maximum(region, resized, out=region)
    return canvas[:frame_h, :frame_w]


def heatmap_overlay(image: np.ndarray, attention: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a JET heat-map of `attention` (float [H, W] in [0, 1]) over a BGR image of that size."""
    import cv2

    heat = cv2.applyColorMap(np.clip(attention * 255.0 + 0.5, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(np.ascontiguousarray(image), 1.0 - alpha, heat, alpha, 0.0)


def attention_panel(image: np.ndarray, level_maps: list[np.ndarray], titles: list[str] | None = None) -> np.ndarray:
    """A frame-sized BGR image: a 2 x 2 grid of half-size overlays, one per attention level."""
    import cv2

    height, width = image.shape[:2]
    if len(level_maps) > 4:
        raise ValueError(f"attention_panel shows up to 4 levels, got {len(level_maps)}")
    titles = titles or [f"A{k} (stride {ATTENTION_STRIDES[k]})" for k in range(len(level_maps))]
    cell_h, cell_w = max(height // 2, 1), max(width // 2, 1)
    panel = np.zeros((2 * cell_h, 2 * cell_w, 3), np.uint8)
    for k, (level_map, title) in enumerate(zip(level_maps, titles)):
        overlay = heatmap_overlay(image, level_map)
        cell = cv2.resize(overlay, (cell_w, cell_h), interpolation=cv2.INTER_AREA)
        cv2.putText(cell, title, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, TEXT_COLOR, 1, cv2.LINE_AA)
        row, col = divmod(k, 2)
        panel[row * cell_h : (row + 1) * cell_h, col * cell_w : (col + 1) * cell_w] = cell
    if panel.shape[:2] != (height, width):  # odd sizes: stretch the grid back to the frame size
        panel = cv2.resize(panel, (width, height), interpolation=cv2.INTER_NEAREST)
    return panel


__all__ = [
    "draw_detections",
    "draw_tracks",
    "track_color",
    "attention_to_frame",
    "heatmap_overlay",
    "attention_panel",
    "box_thickness",
]
