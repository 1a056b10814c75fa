"""Synthetic UAV video sequences with ground-truth tracks, in MOTChallenge layout (NumPy + OpenCV).

    write_sequences("synth_mot", count=4, frames=150, size=(1280, 720), seed=0)

    OUT/synth000-hover/seqinfo.ini     [Sequence] name, imDir, frameRate, seqLength, imWidth, imHeight,
                                       imExt (+ camera, seed, generator: ours)
    OUT/synth000-hover/img1/000001.jpg ...
    OUT/synth000-hover/gt/gt.txt       frame,id,x,y,w,h,consider,class,visibility (frames from 1)
    OUT/synth000-hover/gt/camera.txt   frame,a11,a12,a13,a21,a22,a23: the camera's 2x3 world -> frame
                                       affine per frame (to score camera-motion estimates against)

The scene and the people come from the still-image generator (sspnet.data.synth): one large
ground image per sequence ("the world") with scene objects that are not people (rocks, posts,
bushes...), people drawn by the same figure code (each person rendered once as a sprite, so a
frame costs a warp and some pastes, not a redraw), and occluders (tree crowns, roofs) drawn OVER
the people. People are 3.5-14 px tall-ish (sqrt(w*h)), walk at 0-3 px per frame, stop and go on,
turn, cross each other's paths, walk in and out of view; some walk in dense groups.

The camera (one mode per sequence, in turn): hover (sub-pixel jitter), pan (1.5-4 px per frame),
rotate (0.15-0.3 degrees per frame and a slow drift) and zoom (scale 1 -> 1.35 or back). Frames
are larger than one model tile (default 1280x720 vs a 640x512 tile), so tiling and the cross-tile
merge are exercised.

Ground truth: a box per person inside the frame, clipped to it; `visibility` is the share of the
box that is inside the frame and not under an occluder. Rows with visibility below 0.3 are ignore
rows (consider 0, class 8 "distractor"): an evaluator neither counts them as misses nor a box on
them as a false positive. Sequence k depends only on (seed, k).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from sspnet.data.synth import Scene, _blend, _person_size, draw_distractor, draw_standing_person, make_scene
from sspnet.errors import OutputConflictError, UsageError
from sspnet.io.atomic import atomic_write_bytes, atomic_write_text
from sspnet.io.outputs import OutputGuard
from sspnet.tracking.mot import DISTRACTOR, PEDESTRIAN, SeqInfo, format_gt_row, read_seqinfo, write_seqinfo

CAMERA_MODES = ("hover", "pan", "rotate", "zoom")
MOVING_MODES = ("pan", "rotate", "zoom")
GENERATOR = "sspnet synth"
IGNORE_BELOW_VISIBILITY = 0.3
FPS = 30.0
MAX_SPEED = 3.0  # px per frame at zoom 1
MIN_FRAMES, MAX_FRAMES = 2, 100_000


@dataclass
class Person:
    """One walker in world coordinates; the sprite is drawn once (colour, alpha, box offset in it)."""

    id: int
    x: float  # box centre, world px
    y: float
    speed: float
    heading: float
    colour: np.ndarray
    alpha: np.ndarray
    box_offset: tuple[float, float]  # top-left of the person's box inside the sprite
    box_size: tuple[float, float]  # w, h
    stop_left: int = 0
    group: int = -1
    offset: tuple[float, float] = (0.0, 0.0)  # from the group centre


@dataclass
class Group:
    x: float
    y: float
    speed: float
    heading: float
    members: list = field(default_factory=list)


def person_sprite(rng: np.random.Generator, scene: Scene, size: float):
    """Draw one standing person (with its shadow) on black and on white and recover colour and
    alpha from the two: the figure code of the still-image generator, reused unchanged."""
    aspect = rng.uniform(1.5, 2.4)  # h / w
    w, h = size / np.sqrt(aspect), size * np.sqrt(aspect)
    margin = int(np.ceil(h)) + 3  # room for the shadow on every side
    side_w, side_h = int(np.ceil(w)) + 2 * margin, int(np.ceil(h)) + 2 * margin
    seed = int(rng.integers(2**31))
    layers = []
    for background in (0.0, 255.0):
        patch = np.full((side_h, side_w, 3), background, np.float32)
        draw_standing_person(np.random.default_rng(seed), patch, scene, margin, margin, w, h)
        layers.append(patch)
    black, white = layers
    alpha = np.clip(1.0 - (white - black).mean(axis=2) / 255.0, 0.0, 1.0)
    colour = black / np.maximum(alpha, 1e-3)[..., None]
    return colour.astype(np.float32), alpha.astype(np.float32), (float(margin), float(margin)), (float(w), float(h))


def _camera_path(rng, mode: str, frames: int, width: int, height: int):
    """Per frame: camera centre (world px, relative to the start), rotation (rad), zoom."""
    t = np.arange(frames, dtype=np.float64)
    jitter = np.cumsum(rng.normal(0, 0.15, (frames, 2)), axis=0)
    jitter -= np.linspace(0, 1, frames)[:, None] * jitter[-1]  # a hover that stays near its spot
    centre, angle, zoom = jitter.copy(), np.zeros(frames), np.ones(frames)
    if mode == "pan":
        direction = rng.uniform(0, 2 * np.pi)
        centre += np.outer(t * rng.uniform(1.5, 4.0), [np.cos(direction), np.sin(direction)])
    elif mode == "rotate":
        angle = t * np.radians(rng.uniform(0.15, 0.3)) * rng.choice([-1, 1])
        direction = rng.uniform(0, 2 * np.pi)
        centre += np.outer(t * 0.5, [np.cos(direction), np.sin(direction)])
    elif mode == "zoom":
        end = rng.uniform(1.25, 1.35)
        zoom = np.linspace(1.0, end, frames) if rng.random() < 0.5 else np.linspace(end, 1.0, frames)
    return centre, angle, zoom


def _world_to_frame(centre, angle, zoom, world_centre, width, height) -> np.ndarray:
    """2x3 affine: frame = zoom * R(angle) (world - camera) + frame centre."""
    cos, sin = np.cos(angle) * zoom, np.sin(angle) * zoom
    rotation = np.array([[cos, -sin], [sin, cos]])
    camera = world_centre + centre
    translation = np.array([width / 2, height / 2]) - rotation @ camera
    return np.hstack([rotation, translation[:, None]])


def _draw_occluders(rng, world_h: int, world_w: int) -> np.ndarray:
    """float32 [H, W, 4] RGBA layer of tree crowns and roofs drawn over the people."""
    layer = np.zeros((world_h, world_w, 4), np.float32)
    for _ in range(max(2, int(world_h * world_w / 120_000))):
        cx, cy = rng.uniform(0, world_w), rng.uniform(0, world_h)
        if rng.random() < 0.6:  # a tree crown: dark green blob with a lighter top
            r = rng.uniform(12, 35)
            green = [rng.uniform(20, 50), rng.uniform(60, 100), rng.uniform(20, 45)]
            cv2.circle(layer, (int(cx), int(cy)), int(r), (*green, 1.0), -1, cv2.LINE_AA)
            light = (green[0] * 1.3, green[1] * 1.3, green[2] * 1.3, 1.0)
            cv2.circle(layer, (int(cx - r / 4), int(cy - r / 4)), int(r / 2), light, -1, cv2.LINE_AA)
        else:  # a roof: a rotated rectangle with a ridge line
            w, h = rng.uniform(30, 80), rng.uniform(25, 60)
            colour = rng.choice([[150, 60, 50], [120, 120, 125], [170, 150, 120]]) + rng.uniform(-15, 15, 3)
            corners = cv2.boxPoints(((cx, cy), (w, h), rng.uniform(0, 180))).astype(np.int32)
            cv2.fillConvexPoly(layer, corners, (*colour.tolist(), 1.0), cv2.LINE_AA)
            ridge = ((corners[0] + corners[1]) // 2).tolist(), ((corners[2] + corners[3]) // 2).tolist()
            cv2.line(layer, tuple(ridge[0]), tuple(ridge[1]), (*(colour * 0.7).tolist(), 1.0), 2, cv2.LINE_AA)
    return layer


def _ground(rng, world_h: int, world_w: int) -> Scene:
    """A land scene (people walk): the still-image scenes, redrawn while most of it is water."""
    for _ in range(6):
        scene = make_scene(rng, world_h, world_w)
        if scene.water.mean() < 0.3:
            break
    for _ in range(int(world_h * world_w / 25_000)):  # scene objects that are not people
        x, y = rng.uniform(0, world_w), rng.uniform(0, world_h)
        draw_distractor(rng, scene.image, scene, x, y, bool(scene.water[int(y), int(x)]))
    scene.image = cv2.GaussianBlur(scene.image, (0, 0), 0.5)
    return scene


class SequenceGenerator:
    """One sequence: world, camera path and walkers, rendered frame by frame (`frame(k)`)."""

    def __init__(self, rng: np.random.Generator, mode: str, frames: int, width: int, height: int):
        self.rng, self.mode, self.frames, self.width, self.height = rng, mode, frames, width, height
        centre, angle, zoom = _camera_path(rng, mode, frames, width, height)
        # the world covers every frame corner seen from every camera pose, plus a margin for walkers
        half_diag = 0.5 * np.hypot(width, height) / zoom.min()
        low, high = centre.min(axis=0) - half_diag - 60, centre.max(axis=0) + half_diag + 60
        self.world_w, self.world_h = int(np.ceil(high[0] - low[0])), int(np.ceil(high[1] - low[1]))
        world_centre = -low  # camera offset 0 sits here in world pixels
        self.transforms = [
            _world_to_frame(centre[k], angle[k], zoom[k], world_centre, width, height) for k in range(frames)
        ]
        self.zoom = zoom
        self.scene = _ground(rng, self.world_h, self.world_w)
        self.world = np.clip(self.scene.image + 0.5, 0, 255).astype(np.uint8)
        self.occluders = _draw_occluders(rng, self.world_h, self.world_w)
        self.people: list[Person] = []
        self.groups: list[Group] = []
        self._spawn(world_centre)
        self.noise = rng.normal(0, rng.uniform(1.5, 3.5), (height + 32, width + 32, 3)).astype(np.float32)

    # ---- walkers --------------------------------------------------------------------------------
    def _new_person(self, x, y, speed, heading, size=None) -> Person:
        size = size if size is not None else float(np.clip(_person_size(self.rng), 3.5, 14.0))
        colour, alpha, box_offset, box_size = person_sprite(self.rng, self.scene, size)
        person = Person(len(self.people) + 1, x, y, speed, heading, colour, alpha, box_offset, box_size)
        self.people.append(person)
        return person

    def _spawn(self, world_centre) -> None:
        rng = self.rng
        view = 0.5 * min(self.width, self.height)
        for _ in range(int(rng.integers(20, 40))):  # scattered walkers, some starting out of view
            radius = view * np.sqrt(rng.uniform(0, 1)) * (1.6 if rng.random() < 0.3 else 1.0)
            direction = rng.uniform(0, 2 * np.pi)
            unit = np.array([np.cos(direction), np.sin(direction)])
            x, y = world_centre + radius * unit * [self.width / self.height, 1]
            speed = 0.0 if rng.random() < 0.15 else rng.uniform(0.3, MAX_SPEED)
            heading = direction + np.pi + rng.normal(0, 0.8)  # mostly towards the middle: in and out of view
            self._new_person(x, y, speed, heading)
        for _ in range(int(rng.integers(2, 5))):  # pairs walking into each other: crossings
            meet = world_centre + rng.uniform(-0.5, 0.5, 2) * [self.width, self.height] * 0.6
            heading, speed = rng.uniform(0, 2 * np.pi), rng.uniform(1.0, MAX_SPEED)
            steps = self.frames * rng.uniform(0.3, 0.6)
            for side in (0.0, np.pi):
                start = meet - steps * speed * np.array([np.cos(heading + side), np.sin(heading + side)])
                self._new_person(start[0], start[1], speed, heading + side)
        for _ in range(int(rng.integers(1, 3))):  # dense groups walking together
            direction = rng.uniform(0, 2 * np.pi)
            gx, gy = world_centre + view * 0.5 * np.array([np.cos(direction), np.sin(direction)])
            group = Group(gx, gy, rng.uniform(0.5, 2.0), direction + np.pi + rng.normal(0, 0.5))
            base = float(np.clip(rng.uniform(4, 9), 3.5, 14))
            for _ in range(int(rng.integers(6, 13))):
                person = self._new_person(gx, gy, group.speed, group.heading, size=base * rng.uniform(0.85, 1.15))
                person.group = len(self.groups)
                person.offset = tuple(rng.normal(0, base * 1.6, 2))
                person.x, person.y = gx + person.offset[0], gy + person.offset[1]
                group.members.append(person)
            self.groups.append(group)

    def _step(self) -> None:
        rng = self.rng
        for group in self.groups:
            group.heading += rng.normal(0, 0.03)
            group.x += group.speed * np.cos(group.heading)
            group.y += group.speed * np.sin(group.heading)
        for person in self.people:
            if person.group >= 0:
                group = self.groups[person.group]
                person.offset = tuple(np.asarray(person.offset) + rng.normal(0, 0.08, 2))
                person.x, person.y = group.x + person.offset[0], group.y + person.offset[1]
                continue
            if person.stop_left > 0:
                person.stop_left -= 1
                continue
            if rng.random() < 0.008:  # stop for a while
                person.stop_left = int(rng.integers(15, 60))
            person.heading += rng.normal(0, 0.05)
            person.x += person.speed * np.cos(person.heading)
            person.y += person.speed * np.sin(person.heading)

    # ---- rendering ------------------------------------------------------------------------------
    def frame(self, k: int) -> tuple[np.ndarray, list[tuple]]:
        """Frame k (0-based; call in order): BGR uint8 image and gt rows (id, x, y, w, h, visibility)."""
        if k > 0:
            self._step()
        M = self.transforms[k]
        zoom = float(self.zoom[k])
        image = cv2.warpAffine(
            self.world, M, (self.width, self.height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        ).astype(np.float32)
        occluders = cv2.warpAffine(self.occluders, M, (self.width, self.height), flags=cv2.INTER_LINEAR)
        rows = []
        for person in self.people:
            fx, fy = M[:, :2] @ (person.x, person.y) + M[:, 2]
            w, h = person.box_size[0] * zoom, person.box_size[1] * zoom
            x0, y0 = fx - w / 2, fy - h / 2
            if x0 + w <= 0 or y0 + h <= 0 or x0 >= self.width or y0 >= self.height:
                continue
            colour, alpha = person.colour, person.alpha
            if abs(zoom - 1.0) > 1e-3:
                size = (max(1, round(alpha.shape[1] * zoom)), max(1, round(alpha.shape[0] * zoom)))
                colour = cv2.resize(colour, size, interpolation=cv2.INTER_AREA)
                alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
            # whole-pixel paste; the box follows the sprite exactly
            sx, sy = int(round(x0 - person.box_offset[0] * zoom)), int(round(y0 - person.box_offset[1] * zoom))
            _blend(image, colour, alpha, sx, sy)
            bx, by = sx + person.box_offset[0] * zoom, sy + person.box_offset[1] * zoom
            rows.append((person.id, bx, by, w, h))
        # occluders over the people
        cover = occluders[..., 3:4]
        image = image * (1 - cover) + occluders[..., :3] * cover
        dx, dy = self.rng.integers(0, 32, 2)
        image += self.noise[dy : dy + self.height, dx : dx + self.width]
        bgr = np.clip(image + 0.5, 0, 255).astype(np.uint8)[..., ::-1]
        gt = []
        for person_id, bx, by, w, h in rows:
            x1, y1 = max(bx, 0.0), max(by, 0.0)
            x2, y2 = min(bx + w, float(self.width)), min(by + h, float(self.height))
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            inside = (x2 - x1) * (y2 - y1) / (w * h)
            region = occluders[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2)), 3]
            visible = inside * (1.0 - float(region.mean()) if region.size else 1.0)
            gt.append((person_id, x1, y1, x2 - x1, y2 - y1, visible))
        return np.ascontiguousarray(bgr), gt


# ---- writing sequences --------------------------------------------------------------------------
def sequence_name(k: int) -> str:
    return f"synth{k:03d}-{CAMERA_MODES[k % len(CAMERA_MODES)]}"


def check_video_settings(count, frames, size, seed) -> None:
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or not 1 <= count <= 10_000:
        raise UsageError("bad number of sequences", field="--video", expected="an integer from 1 to 10,000", got=count)
    if not isinstance(frames, (int, np.integer)) or isinstance(frames, bool) or not MIN_FRAMES <= frames <= MAX_FRAMES:
        raise UsageError(
            "bad sequence length",
            field="--frames",
            expected=f"an integer from {MIN_FRAMES} to {MAX_FRAMES:,}",
            got=frames,
        )
    width, height = size
    if not (128 <= width <= 4096 and 128 <= height <= 4096):
        raise UsageError(
            "bad frame size",
            field="--size",
            expected="W and H each between 128 and 4096 pixels",
            got=f"{width} {height}",
        )
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise UsageError("bad random seed", field="--seed", expected="an integer >= 0", got=seed)


def _is_our_sequence(folder: Path) -> bool:
    ini = folder / "seqinfo.ini"
    return ini.is_file() and f"generator={GENERATOR}" in ini.read_text(encoding="utf-8", errors="replace")


def prepare_sequence_folders(out_dir: Path, names: list[str]) -> None:
    """Refuse an output folder holding a sequence synth did not write (a real data set)."""
    OutputGuard(inputs=[], verb="synth").check_dir(out_dir)
    for name in names:
        folder = out_dir / name
        if folder.exists() and any(folder.iterdir()) and not _is_our_sequence(folder):
            raise OutputConflictError(
                f"refusing to write into {folder}: it holds files synth did not write "
                "(a real sequence?); choose another output folder"
            )


def write_sequences(
    out_dir,
    count: int,
    frames: int = 150,
    size: tuple[int, int] = (1280, 720),
    seed: int = 0,
    jpeg_quality: int = 92,
    progress: bool = True,
) -> list[dict]:
    """Write `count` sequences (see the module docstring); returns one summary dict per sequence."""
    width, height = (int(side) for side in size)
    check_video_settings(count, frames, (width, height), seed)
    out_dir = Path(out_dir)
    names = [sequence_name(k) for k in range(count)]
    prepare_sequence_folders(out_dir, names)
    seeds = np.random.SeedSequence([seed, 2]).spawn(count)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=count * frames, desc="synth video", unit="frame")
    summaries = []
    for k, name in enumerate(names):
        folder = out_dir / name
        if folder.exists():  # an earlier synth sequence (checked above): no stale frames or gt beside new ones
            shutil.rmtree(folder)
        mode = CAMERA_MODES[k % len(CAMERA_MODES)]
        generator = SequenceGenerator(np.random.default_rng(seeds[k]), mode, frames, width, height)
        lines, ids, ignored = [], set(), 0
        for f in range(frames):
            image, gt = generator.frame(f)
            ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
            if not ok:
                raise RuntimeError(f"could not encode frame {f + 1} of {name}")
            atomic_write_bytes(folder / "img1" / f"{f + 1:06d}.jpg", encoded.tobytes())
            for person_id, x, y, w, h, visible in gt:
                considered = visible >= IGNORE_BELOW_VISIBILITY
                lines.append(
                    format_gt_row(
                        f + 1,
                        person_id,
                        (x, y, w, h),
                        int(considered),
                        PEDESTRIAN if considered else DISTRACTOR,
                        visible,
                    )
                )
                ids.add(person_id)
                ignored += not considered
            if bar is not None:
                bar.update(1)
        atomic_write_text(folder / "gt" / "gt.txt", "".join(line + "\n" for line in lines))
        camera = [f"{f + 1}," + ",".join(f"{v:.6f}" for v in generator.transforms[f].ravel()) for f in range(frames)]
        atomic_write_text(folder / "gt" / "camera.txt", "\n".join(camera) + "\n")
        info = SeqInfo(folder=folder, name=name, frames=frames, width=width, height=height, fps=FPS)
        # seqinfo.ini last: a folder with it is a complete sequence
        write_seqinfo(folder, info, extra={"camera": mode, "seed": seed, "generator": GENERATOR})
        summaries.append(
            {"name": name, "camera": mode, "frames": frames, "ids": len(ids), "boxes": len(lines), "ignored": ignored}
        )
    if bar is not None:
        bar.close()
    return summaries


def read_camera(info: SeqInfo) -> np.ndarray:
    """float [frames, 2, 3]: the world -> frame affine of each frame (gt/camera.txt of a synth sequence)."""
    table = np.loadtxt(info.folder / "gt" / "camera.txt", delimiter=",", ndmin=2)
    return table[:, 1:].reshape(-1, 2, 3)


def true_motion(camera: np.ndarray, k: int) -> np.ndarray:
    """2x3 affine from frame k-1 to frame k (0-based), the quantity a camera-motion estimate measures."""
    previous, current = (np.vstack([camera[j], [0.0, 0.0, 1.0]]) for j in (k - 1, k))
    return (current @ np.linalg.inv(previous))[:2]


def find_sequences(folder: str | Path) -> list[SeqInfo]:
    """A sequence folder itself, or every sequence folder (holding seqinfo.ini) directly inside it."""
    folder = Path(folder)
    if (folder / "seqinfo.ini").is_file():
        return [read_seqinfo(folder)]
    found = sorted(path.parent for path in folder.glob("*/seqinfo.ini"))
    if not found:
        read_seqinfo(folder)  # raises the one-line "no seqinfo.ini" error
    return [read_seqinfo(path) for path in found]


__all__ = [
    "write_sequences",
    "SequenceGenerator",
    "find_sequences",
    "read_camera",
    "true_motion",
    "sequence_name",
    "CAMERA_MODES",
    "MOVING_MODES",
]
