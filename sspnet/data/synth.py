"""A synthetic tiny-person data set in the TinyPerson format (NumPy + OpenCV, no torch).

Each image is an aerial-looking scene (beach with shoreline, open sea, crop fields, roads, dirt and
sand) with people 3-30 px in size, drawn as small shaded figures (head, body, legs, cast shadow;
swimmers as head and shoulders with a ripple), crowds, dense crowd patches marked as ignore regions,
uncertain boxes (very small, faint or half-occluded people) and distractors that are NOT people
(rocks, bushes, posts, buoys, boats, umbrellas, towels).

Output (`write_dataset`):

    OUT/images/synth_000000.jpg ...
    OUT/annotations/train.json, OUT/annotations/val.json

The JSON is TinyPerson-style COCO: boxes `bbox` x, y, w, h; per-box `ignore`, `uncertain`, `logo`,
`in_dense_image`, `iscrowd` 0; categories sea_person (1) and earth_person (2); an `info` block with
`"generator": "sspnet synth"` marks the file as ours (`is_synth_annotation_file`).
Image k depends only on (seed, k): the same seed always gives the same bytes.

Safety: every setting and the output folder are checked before the first image is generated. OUT
may be new, empty, or an earlier synth output; it is refused when it is a file or when
OUT/annotations holds a JSON file synth did not write (a real data set). Every file is written
atomically (sspnet.io.atomic); synth's old annotation files are removed before the new images are
written, so an interrupted run leaves no annotations, never annotations that mismatch the images.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sspnet.errors import OutputConflictError, UsageError
from sspnet.io.atomic import atomic_write_bytes, atomic_write_json
from sspnet.io.outputs import OutputGuard

CATEGORIES = [
    {"id": 1, "name": "sea_person", "supercategory": "person"},
    {"id": 2, "name": "earth_person", "supercategory": "person"},
]
SEA_PERSON, EARTH_PERSON = 1, 2

SUPERSAMPLE = 4  # figures are drawn 4x larger and area-downsampled: sub-pixel shapes and soft edges

# TinyPerson-like size distribution of sqrt(w*h): most below 20 px, many below 8 px
SIZE_BINS = ((3.0, 8.0), (8.0, 12.0), (12.0, 20.0), (20.0, 30.0))
SIZE_BIN_PROBS = (0.32, 0.27, 0.26, 0.15)

SKIN = np.array(
    [[255, 219, 172], [241, 194, 125], [224, 172, 105], [198, 134, 66], [141, 85, 36], [90, 60, 40]], np.float32
)
HAIR = np.array([[20, 15, 10], [60, 40, 20], [110, 80, 40], [200, 170, 100], [30, 30, 30]], np.float32)
SCENES = ("beach", "sea", "field", "road", "sand")
SCENE_PROBS = (0.35, 0.15, 0.18, 0.14, 0.18)


@dataclass
class Scene:
    """A generated background and where people/objects may stand."""

    image: np.ndarray  # float32 [H, W, 3] RGB in 0..255
    water: np.ndarray  # bool [H, W]
    shadow_dir: np.ndarray  # unit 2-vector, direction shadows fall (x, y)


# ----------------------------------------------------------------------------------- backgrounds


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float, octaves: int = 3) -> np.ndarray:
    """Fractal value noise, float32 [H, W] roughly in [-1, 1]: random grids upsampled bicubically."""
    total = np.zeros((height, width), np.float32)
    amplitude, norm = 1.0, 0.0
    for _ in range(octaves):
        gh, gw = max(2, int(height / cell) + 2), max(2, int(width / cell) + 2)
        grid = rng.uniform(-1, 1, size=(gh, gw)).astype(np.float32)
        total += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        norm += amplitude
        amplitude *= 0.5
        cell = max(cell / 2.0, 1.5)
    return total / norm


def _jitter_colour(rng, base, amount=18.0) -> np.ndarray:
    return np.clip(np.asarray(base, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


def _textured(rng, height, width, colour, strength, cell) -> np.ndarray:
    """A colour field modulated by smooth noise plus fine grain -> float32 [H, W, 3]."""
    coarse = smooth_noise(rng, height, width, cell, octaves=4)
    grain = smooth_noise(rng, height, width, 2.0, octaves=1)
    shade = 1.0 + strength * coarse + 0.05 * grain
    return colour[None, None, :] * shade[..., None]


def _stripes(rng, height, width, period, angle, warp=0.0) -> np.ndarray:
    """Parallel sine stripes, optionally bent by smooth noise (`warp` radians of phase)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period)
    if warp:
        phase += warp * smooth_noise(rng, height, width, 100.0, octaves=2)
    return np.sin(phase + rng.uniform(0, 2 * np.pi))


def _half_plane(rng, height, width, wobble) -> np.ndarray:
    """Signed distance (px) to a random wavy line through the image; < 0 on one side."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    cx, cy = rng.uniform(0.25, 0.75) * width, rng.uniform(0.25, 0.75) * height
    distance = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    return distance + wobble * smooth_noise(rng, height, width, 120.0, octaves=2)


def _water(rng, height, width) -> np.ndarray:
    colour = _jitter_colour(rng, rng.choice([[35, 90, 120], [40, 110, 130], [25, 70, 95], [60, 120, 125]]), 12)
    water = _textured(rng, height, width, colour, 0.12, 90.0)
    waves = _stripes(rng, height, width, rng.uniform(6, 14), rng.uniform(0, np.pi), warp=4.0)
    waves *= np.clip(smooth_noise(rng, height, width, 50.0, octaves=2) * 3.0, 0.0, 1.0)  # patchy crests
    return water + rng.uniform(3.0, 8.0) * waves[..., None]


def _land(rng, height, width, kind) -> np.ndarray:
    if kind == "sand":
        colour = _jitter_colour(rng, [205, 185, 145])
        return _textured(rng, height, width, colour, 0.10, 60.0)
    if kind == "dirt":
        colour = _jitter_colour(rng, [135, 110, 80])
        return _textured(rng, height, width, colour, 0.18, 50.0)
    # grass / crop field: rows of stripes with a second colour patchwork
    colour = _jitter_colour(rng, rng.choice([[70, 110, 50], [100, 130, 60], [140, 140, 70], [60, 90, 45]]))
    field = _textured(rng, height, width, colour, 0.15, 70.0)
    rows = _stripes(rng, height, width, rng.uniform(5, 12), rng.uniform(0, np.pi))
    patches = smooth_noise(rng, height, width, 150.0, octaves=1) > 0
    return field * (1.0 + 0.06 * rows * patches)[..., None]


def _draw_roads(rng, image, count) -> None:
    height, width = image.shape[:2]
    for _ in range(count):
        colour = _jitter_colour(rng, rng.choice([[95, 95, 100], [150, 130, 100]]), 10).tolist()
        thickness = int(rng.integers(10, 28))
        p1 = (int(rng.uniform(-0.1, 1.1) * width), 0)
        p2 = (int(rng.uniform(-0.1, 1.1) * width), height)
        if rng.random() < 0.5:
            p1, p2 = (0, int(rng.uniform(0, 1) * height)), (width, int(rng.uniform(0, 1) * height))
        cv2.line(image, p1, p2, colour, thickness, lineType=cv2.LINE_AA)
        if thickness > 16 and rng.random() < 0.6:  # dashed centre line
            for t in np.arange(0, 1, 0.04)[::2]:
                a = (int(p1[0] + (p2[0] - p1[0]) * t), int(p1[1] + (p2[1] - p1[1]) * t))
                b = (int(p1[0] + (p2[0] - p1[0]) * (t + 0.02)), int(p1[1] + (p2[1] - p1[1]) * (t + 0.02)))
                cv2.line(image, a, b, (225, 225, 215), 1, lineType=cv2.LINE_AA)


def make_scene(rng: np.random.Generator, height: int, width: int) -> Scene:
    kind = SCENES[rng.choice(len(SCENES), p=SCENE_PROBS)]
    water = np.zeros((height, width), bool)
    if kind == "sea":
        image = _water(rng, height, width)
        water[:] = True
    elif kind == "beach":
        land = _land(rng, height, width, "sand")
        sea = _water(rng, height, width)
        distance = _half_plane(rng, height, width, wobble=rng.uniform(10, 40))
        water = distance < 0
        wet = np.clip(1.0 - np.abs(distance) / 14.0, 0, 1)[..., None]  # darker wet sand + foam at the shore
        image = np.where(water[..., None], sea, land * (1 - 0.25 * wet))
        foam = np.clip(1.0 - np.abs(distance + 3.0) / 3.0, 0, 1)[..., None]
        image = image * (1 - 0.6 * foam) + 235.0 * 0.6 * foam
    else:
        image = _land(
            rng, height, width, {"field": "grass", "road": "grass", "sand": rng.choice(["sand", "dirt"])}[kind]
        )
        if kind == "road" or rng.random() < 0.2:
            _draw_roads(rng, image, int(rng.integers(1, 3)))
    # sun: a soft global brightness gradient, shadows fall away from it
    angle = rng.uniform(0, 2 * np.pi)
    shadow_dir = np.array([np.cos(angle), np.sin(angle)], np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    gradient = 1.0 + rng.uniform(0.03, 0.12) * (
        (xx / width - 0.5) * shadow_dir[0] + (yy / height - 0.5) * shadow_dir[1]
    )
    image *= gradient[..., None] * rng.uniform(0.85, 1.1)
    return Scene(image=image.astype(np.float32), water=water, shadow_dir=shadow_dir)


# ------------------------------------------------------------------------------------ drawing


def _blend(image: np.ndarray, colour: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> None:
    """Alpha-blend a patch (colour [h, w, 3], alpha [h, w] in 0..1) into image at (x0, y0), clipped."""
    height, width = image.shape[:2]
    h, w = alpha.shape
    x1, y1, x2, y2 = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
    if x2 <= x1 or y2 <= y1:
        return
    a = alpha[y1 - y0 : y2 - y0, x1 - x0 : x2 - x0, None]
    c = colour[y1 - y0 : y2 - y0, x1 - x0 : x2 - x0]
    region = image[y1:y2, x1:x2]
    region *= 1 - a
    region += a * c


class Canvas:
    """A supersampled drawing patch covering the frame rectangle [x, x+w) x [y, y+h) plus a margin."""

    def __init__(self, x: float, y: float, w: float, h: float, margin: float):
        self.x0, self.y0 = int(np.floor(x - margin)), int(np.floor(y - margin))
        self.cols = int(np.ceil(x + w + margin)) - self.x0
        self.rows = int(np.ceil(y + h + margin)) - self.y0
        shape = (self.rows * SUPERSAMPLE, self.cols * SUPERSAMPLE)
        self.colour = np.zeros(shape + (3,), np.float32)
        self.alpha = np.zeros(shape, np.float32)

    def point(self, x: float, y: float) -> tuple[int, int]:
        """Frame coordinates -> supersampled canvas pixel."""
        return int(round((x - self.x0) * SUPERSAMPLE)), int(round((y - self.y0) * SUPERSAMPLE))

    def ellipse(self, cx, cy, rx, ry, colour, angle=0.0, opacity=1.0) -> None:
        centre = self.point(cx, cy)
        axes = (max(1, int(round(rx * SUPERSAMPLE))), max(1, int(round(ry * SUPERSAMPLE))))
        cv2.ellipse(self.colour, centre, axes, angle, 0, 360, [float(v) for v in colour], -1)
        cv2.ellipse(self.alpha, centre, axes, angle, 0, 360, float(opacity), -1)

    def shade(self, light: np.ndarray, strength: float) -> None:
        """Directional shading: brighter towards the light, darker away from it."""
        rows, cols = self.alpha.shape
        yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
        ramp = ((xx / cols - 0.5) * light[0] + (yy / rows - 0.5) * light[1]) * 2
        self.colour *= (1.0 - strength * ramp)[..., None]

    def paste(self, image: np.ndarray, opacity: float = 1.0) -> None:
        """Area-downsample (premultiplied by alpha, so edges do not darken) and blend into image."""
        size = (self.cols, self.rows)
        premultiplied = cv2.resize(self.colour * self.alpha[..., None], size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(self.alpha, size, interpolation=cv2.INTER_AREA)
        colour = premultiplied / np.maximum(alpha, 1e-6)[..., None]
        _blend(image, colour, np.clip(alpha * opacity, 0.0, 1.0), self.x0, self.y0)


def _clothing(rng) -> np.ndarray:
    if rng.random() < 0.3:  # dark / neutral clothes
        return rng.uniform(15, 90, 3).astype(np.float32)
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(90, 255), rng.integers(120, 255)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def draw_shadow(image, scene: Scene, x, y, w, h, length: float) -> None:
    """A soft dark ellipse on the ground, pointing away from the sun, starting at the feet."""
    dx, dy = scene.shadow_dir * length
    feet_x, feet_y = x + w / 2, y + h
    canvas = Canvas(min(feet_x, feet_x + dx) - w, min(feet_y, feet_y + dy) - w, abs(dx) + 2 * w, abs(dy) + 2 * w, 1)
    angle = float(np.degrees(np.arctan2(dy, dx)))
    canvas.ellipse(feet_x + dx / 2, feet_y + dy / 2, max(length / 2, 0.6), max(w * 0.35, 0.5), (0, 0, 0), angle)
    canvas.paste(image, opacity=0.35)


def draw_standing_person(rng, image, scene, x, y, w, h, opacity=1.0) -> None:
    """Head on top, torso, two legs; seen obliquely from above. Box = [x, x+w] x [y, y+h]."""
    draw_shadow(image, scene, x, y, w, h, length=h * rng.uniform(0.4, 1.0))
    canvas = Canvas(x, y, w, h, margin=1)
    skin, hair, shirt = SKIN[rng.integers(len(SKIN))], HAIR[rng.integers(len(HAIR))], _clothing(rng)
    pants = _clothing(rng) * 0.7
    cx, head_r = x + w / 2, min(w * 0.32, h * 0.13)
    leg_top, leg_w = y + h * 0.58, w * 0.16
    for side in (-1, 1):  # legs
        canvas.ellipse(cx + side * w * 0.15, leg_top + h * 0.2, leg_w, h * 0.21, pants)
    canvas.ellipse(cx, y + 2 * head_r + h * 0.2, w * 0.45, h * 0.24, shirt)  # torso with arms
    canvas.ellipse(cx, y + head_r, head_r, head_r, skin)
    canvas.ellipse(cx, y + head_r * 0.8, head_r * 0.95, head_r * 0.75, hair)  # hair covers the top
    canvas.shade(-scene.shadow_dir, strength=0.3)
    canvas.paste(image, opacity)


def draw_lying_person(rng, image, scene, x, y, w, h, opacity=1.0) -> None:
    """A person lying on the ground (horizontal or vertical), sometimes on a towel."""
    horizontal = w >= h
    long_side, short_side = (w, h) if horizontal else (h, w)
    if rng.random() < 0.4:
        towel = Canvas(x - 1, y - 1, w + 2, h + 2, margin=1)
        towel.ellipse(x + w / 2, y + h / 2, w / 2 + 1, h / 2 + 1, _clothing(rng))
        towel.paste(image)
    canvas = Canvas(x, y, w, h, margin=1)
    skin, shirt = SKIN[rng.integers(len(SKIN))], _clothing(rng)
    angle = 0.0 if horizontal else 90.0
    canvas.ellipse(
        x + w / 2, y + h / 2, long_side * 0.38, short_side * 0.4, shirt if rng.random() < 0.6 else skin, angle
    )
    head_offset = long_side / 2 - short_side * 0.35  # the head touches the box edge
    hx, hy = (x + w / 2 + head_offset, y + h / 2) if horizontal else (x + w / 2, y + h / 2 - head_offset)
    canvas.ellipse(hx, hy, short_side * 0.35, short_side * 0.35, skin)
    canvas.shade(-scene.shadow_dir, strength=0.25)
    canvas.paste(image, opacity)


def draw_swimmer(rng, image, scene, x, y, w, h, opacity=1.0) -> None:
    """Head and shoulders above water with a light ripple ring."""
    ripple = Canvas(x - w * 0.4, y - h * 0.4, w * 1.8, h * 1.8, margin=1)
    ripple.ellipse(x + w / 2, y + h / 2, w * 0.85, h * 0.8, (225, 235, 235))
    ripple.ellipse(x + w / 2, y + h / 2, w * 0.65, h * 0.6, (0, 0, 0), opacity=0.0)
    ripple.paste(image, opacity=rng.uniform(0.0, 0.25))
    canvas = Canvas(x, y, w, h, margin=1)
    skin = SKIN[rng.integers(len(SKIN))]
    canvas.ellipse(x + w / 2, y + h * 0.65, w * 0.48, h * 0.3, skin * 0.9)  # shoulders
    canvas.ellipse(x + w / 2, y + h * 0.35, w * 0.3, h * 0.32, skin)
    canvas.ellipse(x + w / 2, y + h * 0.28, w * 0.3, h * 0.22, HAIR[rng.integers(len(HAIR))])
    canvas.shade(-scene.shadow_dir, strength=0.25)
    canvas.paste(image, opacity)


# --------------------------------------------------------------------------------- distractors


def draw_distractor(rng, image, scene: Scene, x: float, y: float, on_water: bool) -> None:
    """Something that is not a person, often person-sized."""
    size = float(np.exp(rng.uniform(np.log(3), np.log(30))))
    kinds = ("buoy", "boat") if on_water else ("rock", "bush", "post", "umbrella", "towel", "rock")
    kind = kinds[rng.integers(len(kinds))]
    if kind == "boat":
        length, beam = size * rng.uniform(1.5, 2.5), size * rng.uniform(0.35, 0.55)
        angle = rng.uniform(0, 180)
        wake = Canvas(x - length, y - length, 2 * length, 2 * length, 1)
        wake.ellipse(x, y, length * 0.9, beam * 0.9, (235, 240, 240), angle)
        wake.paste(image, opacity=0.3)
        canvas = Canvas(x - length, y - length, 2 * length, 2 * length, 1)
        hull = rng.choice([[240, 240, 240], [200, 40, 40], [40, 60, 150], [230, 200, 60]])
        canvas.ellipse(x, y, length / 2, beam / 2, hull, angle)
        canvas.ellipse(x, y, length / 5, beam / 3, (150, 120, 90), angle)
        canvas.paste(image)
    elif kind == "buoy":
        r = max(size * 0.15, 0.8)
        canvas = Canvas(x - r, y - r, 2 * r, 2 * r, 1)
        canvas.ellipse(x, y, r, r, rng.choice([[240, 110, 20], [230, 40, 30], [245, 230, 60]]))
        canvas.shade(-scene.shadow_dir, 0.3)
        canvas.paste(image)
    elif kind == "post":  # thin and upright like a standing person: a hard negative
        h, w = size, max(size * 0.12, 0.8)
        draw_shadow(image, scene, x, y, w, h, length=h * 0.8)
        canvas = Canvas(x, y, w, h, 1)
        canvas.ellipse(x + w / 2, y + h / 2, w / 2, h / 2, rng.uniform(40, 120, 3))
        canvas.paste(image)
    else:
        colours = {
            "rock": rng.uniform(90, 170) * np.ones(3) + rng.uniform(-10, 10, 3),
            "bush": [rng.uniform(20, 60), rng.uniform(60, 100), rng.uniform(20, 50)],
            "umbrella": _clothing(rng),
            "towel": _clothing(rng),
        }
        w, h = size * rng.uniform(0.7, 1.4), size * rng.uniform(0.6, 1.2)
        if kind == "towel":
            w, h = (size * 0.5, size) if rng.random() < 0.5 else (size, size * 0.5)
        draw_shadow(image, scene, x, y, w, h, length=h * 0.3)
        canvas = Canvas(x, y, w, h, 1)
        canvas.ellipse(x + w / 2, y + h / 2, w / 2, h / 2, colours[kind], rng.uniform(0, 180))
        if kind == "umbrella":
            canvas.ellipse(x + w / 2, y + h / 2, w / 6, h / 6, (240, 240, 240))
        canvas.shade(-scene.shadow_dir, 0.35)
        canvas.paste(image)


# ---------------------------------------------------------------------------------- one image


def _person_size(rng) -> float:
    low, high = SIZE_BINS[rng.choice(len(SIZE_BINS), p=SIZE_BIN_PROBS)]
    return float(rng.uniform(low, high))


def _person_pose(rng, size: float, swimmer: bool) -> tuple[str, float, float]:
    """(pose, w, h) with sqrt(w*h) = size: swimmers are round, standing people tall, people lying
    on the ground wide or tall (lying along x or y)."""
    if swimmer:
        pose, aspect = "swimming", rng.uniform(0.8, 1.3)
    elif rng.random() < 0.15:
        pose, aspect = "lying", (rng.uniform(0.35, 0.6) if rng.random() < 0.5 else rng.uniform(1.8, 2.6))
    else:
        pose, aspect = "standing", rng.uniform(1.5, 2.6)  # aspect = h / w
    return pose, size / np.sqrt(aspect), size * np.sqrt(aspect)


def _box_annotation(x, y, w, h, category, ignore=False, uncertain=False) -> dict:
    return {
        "bbox": [round(float(x), 2), round(float(y), 2), round(float(w), 2), round(float(h), 2)],
        "category_id": category,
        "ignore": bool(ignore),
        "uncertain": bool(uncertain),
        "logo": False,
        "in_dense_image": False,
        "iscrowd": 0,
    }


def _place_person(rng, image, scene, cx, cy, size, uncertain_hint=False) -> dict | None:
    height, width = image.shape[:2]
    col, row = int(np.clip(cx, 0, width - 1)), int(np.clip(cy, 0, height - 1))
    swimmer = bool(scene.water[row, col])
    pose, w, h = _person_pose(rng, size, swimmer)
    x, y = cx - w / 2, cy - h / 2
    if x < 0 or y < 0 or x + w > width or y + h > height:
        return None
    faint = rng.random() < 0.06
    opacity = rng.uniform(0.35, 0.55) if faint else 1.0
    draw = {"swimming": draw_swimmer, "lying": draw_lying_person, "standing": draw_standing_person}[pose]
    draw(rng, image, scene, x, y, w, h, opacity)
    uncertain = uncertain_hint or faint or (size < 4.0 and rng.random() < 0.5)
    return _box_annotation(x, y, w, h, SEA_PERSON if swimmer else EARTH_PERSON, uncertain=uncertain)


def _random_point(rng, scene: Scene, want_water: bool | None, margin: float = 16) -> tuple[float, float]:
    height, width = scene.water.shape
    margin = min(margin, 0.25 * min(width, height))  # small images: keep the range non-empty
    for _ in range(20):
        x, y = rng.uniform(margin, width - margin), rng.uniform(margin, height - margin)
        if want_water is None or scene.water[int(y), int(x)] == want_water:
            return x, y
    return x, y


def generate_image(rng: np.random.Generator, width: int = 640, height: int = 512) -> tuple[np.ndarray, list[dict]]:
    """One synthetic scene -> (uint8 [H, W, 3] RGB image, annotation dicts without ids)."""
    scene = make_scene(rng, height, width)
    image = scene.image
    annotations: list[dict] = []
    has_water, has_land = scene.water.any(), (~scene.water).any()

    for _ in range(int(rng.integers(5, 40))):
        on_water = bool(has_water and (not has_land or rng.random() < 0.4))
        x, y = _random_point(rng, scene, on_water if has_water and has_land else None)
        draw_distractor(rng, image, scene, x, y, on_water)

    dense = rng.random() < 0.06
    # dense crowd patches: drawn, but annotated as one ignore region
    for _ in range(int(rng.integers(0, 2)) + (2 if dense else 0)):
        cx, cy = _random_point(rng, scene, None, margin=40)
        rw, rh = rng.uniform(25, 70), rng.uniform(20, 50)
        boxes = []
        for _ in range(int(rng.integers(25, 60))):
            px, py = cx + rng.uniform(-rw / 2, rw / 2), cy + rng.uniform(-rh / 2, rh / 2)
            person = _place_person(rng, image, scene, px, py, rng.uniform(5, 12))
            if person is not None:
                boxes.append(person["bbox"])
        if boxes:
            b = np.array(boxes)
            x1, y1 = b[:, 0].min(), b[:, 1].min()
            x2, y2 = (b[:, 0] + b[:, 2]).max(), (b[:, 1] + b[:, 3]).max()
            annotations.append(_box_annotation(x1, y1, x2 - x1, y2 - y1, EARTH_PERSON, ignore=True))

    # crowds (clusters) and scattered people
    for _ in range(int(rng.integers(0, 4)) + (6 if dense else 0)):
        cx, cy = _random_point(rng, scene, None, margin=30)
        base = _person_size(rng)
        spread = rng.uniform(3, 8) * base
        for _ in range(int(rng.integers(4, 20))):
            person = _place_person(
                rng,
                image,
                scene,
                cx + rng.normal(0, spread),
                cy + rng.normal(0, spread * 0.7),
                float(np.clip(base * rng.uniform(0.8, 1.25), 2.5, 30)),
            )
            if person is not None:
                annotations.append(person)
    for _ in range(int(rng.integers(2, 25))):
        x, y = _random_point(rng, scene, None, margin=20)
        person = _place_person(rng, image, scene, x, y, _person_size(rng))
        if person is not None:
            annotations.append(person)

    # half-occluded people: behind a distractor drawn on top, flagged uncertain
    for _ in range(int(rng.integers(0, 3))):
        x, y = _random_point(rng, scene, False if has_land else None, margin=20)
        person = _place_person(rng, image, scene, x, y, _person_size(rng), uncertain_hint=True)
        if person is not None:
            annotations.append(person)
            bx, by, bw, bh = person["bbox"]
            draw_distractor(
                rng, image, scene, bx + bw * rng.uniform(0.3, 0.7), by + bh * 0.5, bool(scene.water[int(y), int(x)])
            )

    if dense:
        for annotation in annotations:
            annotation["in_dense_image"] = True

    # camera: slight blur and sensor noise
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 0.7))
    image += rng.uniform(1.5, 4.0) * rng.standard_normal(size=image.shape, dtype=np.float32)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), annotations


# ------------------------------------------------------------------------------------ data set


GENERATOR = "sspnet synth"  # the `info.generator` mark of synth's annotation files
_OLD_DESCRIPTION = "sspnet synthetic tiny-person set"  # files written before the mark existed
MIN_SIDE, MAX_SIDE = 64, 8192  # image side in pixels (a 8192x8192 scene needs about 3 GB while drawn)
MAX_IMAGES = 1_000_000
SPLIT_NAMES = ("train", "val")


def _split(count: int, val_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """bool [count]: True for validation images, at least one in each split (count >= 2)."""
    n_val = min(max(int(round(count * val_fraction)), 1), count - 1)
    is_val = np.zeros(count, bool)
    is_val[rng.permutation(count)[:n_val]] = True
    return is_val


def check_settings(images, val_fraction, size, seed) -> None:
    """UsageError naming the option for a setting synth cannot honour."""
    if not isinstance(images, (int, np.integer)) or isinstance(images, bool) or not 2 <= images <= MAX_IMAGES:
        raise UsageError(
            "bad number of images",
            field="--images",
            expected=f"an integer from 2 (one train and one val image) to {MAX_IMAGES:,}",
            got=images,
        )
    if not (isinstance(val_fraction, (int, float)) and 0.0 < val_fraction < 1.0):
        raise UsageError(
            "bad share of val images",
            field="--val-fraction",
            expected="a number between 0 and 1 (exclusive)",
            got=val_fraction,
        )
    try:
        width, height = (int(side) for side in size)
    except (TypeError, ValueError):
        raise UsageError("bad image size", field="--size", expected="W H", got=size) from None
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise UsageError(
            "bad image size",
            field="--size",
            expected=f"W and H each between {MIN_SIDE} and {MAX_SIDE} pixels",
            got=f"{width} {height}",
        )
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise UsageError("bad random seed", field="--seed", expected="an integer >= 0", got=seed)


def is_synth_annotation_file(path) -> bool:
    """True when `path` is an annotation JSON that synth wrote (its `info` block says so)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    info = data.get("info") if isinstance(data, dict) else None
    return isinstance(info, dict) and (
        info.get("generator") == GENERATOR or info.get("description") == _OLD_DESCRIPTION
    )


def prepare_output_folder(out_dir, images: int) -> None:
    """Refuse an output folder synth must not write into (OutputConflictError, see the module
    docstring), create OUT/images and OUT/annotations, and check that they are writable."""
    out_dir = Path(out_dir)
    guard = OutputGuard(inputs=[], verb="synth")
    guard.check_dir(out_dir)
    annotations_dir = out_dir / "annotations"
    if annotations_dir.is_dir():
        for path in sorted(annotations_dir.glob("*.json")):
            if not is_synth_annotation_file(path):
                raise OutputConflictError(
                    f"refusing to write into {out_dir}: {path} is an annotation file synth did not write "
                    "(a real data set?); choose another output folder"
                )
    for k in range(images):
        guard.check_file(out_dir / "images" / image_file_name(k), "image")
    for folder in (out_dir / "images", annotations_dir):
        guard.check_dir(folder)
        folder.mkdir(parents=True, exist_ok=True)
        try:  # os.access says yes to root even on a read-only folder: try a real write
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise UsageError(f"cannot write into {folder} ({exc.strerror or exc})") from None


def image_file_name(k: int) -> str:
    return f"synth_{k:06d}.jpg"


def write_dataset(
    out_dir,
    images: int,
    seed: int = 0,
    val_fraction: float = 0.25,
    size: tuple[int, int] = (640, 512),
    jpeg_quality: int = 92,
    progress: bool = True,
) -> dict:
    """Generate `images` scenes of size (W, H) into out_dir; returns a summary dict.
    Settings and output folder are checked first (UsageError / OutputConflictError)."""
    check_settings(images, val_fraction, size, seed)
    width, height = (int(side) for side in size)
    out_dir = Path(out_dir)
    prepare_output_folder(out_dir, images)
    for name in SPLIT_NAMES:  # synth's own (checked above): never leave them beside new images
        (out_dir / "annotations" / f"{name}.json").unlink(missing_ok=True)

    seeds = np.random.SeedSequence(seed)
    is_val = _split(images, val_fraction, np.random.default_rng(seeds.spawn(1)[0]))
    image_seeds = np.random.SeedSequence([seed, 1]).spawn(images)
    splits = {name: {"images": [], "annotations": []} for name in SPLIT_NAMES}
    annotation_id = 1
    iterator = range(images)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="synth", unit="img")
    for k in iterator:
        image, annotations = generate_image(np.random.default_rng(image_seeds[k]), width, height)
        file_name = image_file_name(k)
        ok, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        if not ok:
            raise RuntimeError(f"could not encode {file_name}")
        atomic_write_bytes(out_dir / "images" / file_name, encoded.tobytes())
        split = splits["val" if is_val[k] else "train"]
        split["images"].append({"id": k + 1, "file_name": file_name, "width": width, "height": height})
        for annotation in annotations:
            x, y, w, h = annotation["bbox"]
            x1, y1, x2, y2 = x, y, x + w, y + h
            annotation.update(
                id=annotation_id,
                image_id=k + 1,
                area=round(w * h, 4),
                segmentation=[[x1, y1, x1, y2, x2, y2, x2, y1]],
            )
            split["annotations"].append(annotation)
            annotation_id += 1

    summary = {"out": str(out_dir), "seed": seed}
    for name, split in splits.items():
        data = {
            "info": {"description": _OLD_DESCRIPTION, "generator": GENERATOR, "seed": seed, "size": [width, height]},
            "images": split["images"],
            "annotations": split["annotations"],
            "categories": CATEGORIES,
        }
        atomic_write_json(out_dir / "annotations" / f"{name}.json", data, indent=None, separators=(",", ":"))
        boxes = split["annotations"]
        summary[name] = {
            "images": len(split["images"]),
            "boxes": sum(not a["ignore"] for a in boxes),
            "ignore": sum(a["ignore"] for a in boxes),
            "uncertain": sum(a["uncertain"] and not a["ignore"] for a in boxes),
        }
    return summary
