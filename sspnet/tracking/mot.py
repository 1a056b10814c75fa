"""MOTChallenge files: tracks.txt / gt.txt rows and seqinfo.ini, read strictly and written atomically.

    rows = read_mot("SEQ/gt/gt.txt", kind="gt", num_frames=info.frames)
    info = read_seqinfo("SEQ")                     # SEQ/seqinfo.ini
    write_mot("runs/track/tracks.txt", rows)       # frame,id,x,y,w,h,score,-1,-1,-1

One row per line, comma separated (spaces after the commas allowed):

    tracks:  frame, id, x, y, w, h[, score[, -1, -1, -1]]
    gt:      frame, id, x, y, w, h[, consider[, class[, visibility]]]

Frames count from 1; x, y is the top-left corner in pixels. In gt files `consider` 0 marks a row
that is not scored (an ignore flag) and `class` follows MOTChallenge (1 pedestrian; 2, 7, 8, 12 are
distractors: a tracker box on them is neither rewarded nor penalised).

Why a reader of our own: the evaluator's loader (trackers.io.mot) stops at the first bad row with a
message that names neither the line nor the field, and accepts negative sizes, repeated ids and
frames past the end of the sequence. Every such mistake is refused here with ONE line naming the
file, the line and the field (InputError, exit 2), before anything is scored.
"""

from __future__ import annotations

import configparser
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sspnet.errors import InputError
from sspnet.io.atomic import atomic_write_text

TRACK_COLUMNS = ("frame", "id", "x", "y", "w", "h", "score")
GT_COLUMNS = ("frame", "id", "x", "y", "w", "h", "consider", "class", "visibility")
PEDESTRIAN, DISTRACTOR = 1, 8  # MOTChallenge class ids used by sspnet synth


@dataclass
class MotRows:
    """The rows of one MOT file as columns (row order of the file)."""

    frame: np.ndarray  # int [N], from 1
    id: np.ndarray  # int [N]
    box: np.ndarray  # float [N, 4] x, y, w, h
    score: np.ndarray  # float [N]: score (tracks) or consider flag (gt)
    cls: np.ndarray  # int [N]: class (gt; 1 when absent)
    visibility: np.ndarray  # float [N] (gt; 1 when absent)

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def empty(cls) -> MotRows:
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros((0, 4)),
            np.zeros(0),
            np.zeros(0, np.int64),
            np.zeros(0),
        )


@dataclass
class SeqInfo:
    """seqinfo.ini of a MOTChallenge sequence folder."""

    folder: Path
    name: str
    frames: int
    width: int
    height: int
    fps: float
    image_dir: str = "img1"
    image_ext: str = ".jpg"

    @property
    def gt(self) -> Path:
        return self.folder / "gt" / "gt.txt"


def _number(text: str, path, line: int, column: str, integer: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(
            "not a number",
            path=path,
            field=f"line {line}: {column}",
            expected="an integer" if integer else "a number",
            got=repr(text),
        ) from None
    if not math.isfinite(value):
        raise InputError("not a finite number", path=path, field=f"line {line}: {column}", got=text)
    if integer and value != int(value):
        raise InputError("not an integer", path=path, field=f"line {line}: {column}", expected="an integer", got=text)
    return value


def read_mot(path: str | Path, kind: str = "tracks", num_frames: int | None = None) -> MotRows:
    """Read and check a MOT file (see the module docstring); InputError names file, line and field.

    kind: "tracks" or "gt". num_frames: the sequence length; a frame above it is refused.
    An empty file is valid (a tracker that found nothing)."""
    if kind not in ("tracks", "gt"):
        raise ValueError(f"kind must be 'tracks' or 'gt', got {kind!r}")
    path = Path(path)
    names = TRACK_COLUMNS if kind == "tracks" else GT_COLUMNS
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("not a text file", path=path, expected="MOTChallenge rows 'frame,id,x,y,w,h,...'") from None
    rows = []
    seen: dict[tuple[int, int], int] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) < 6:
            raise InputError(
                "missing columns",
                path=path,
                field=f"line {line_number}",
                expected="at least 6 comma-separated columns frame,id,x,y,w,h",
                got=len(fields),
            )
        values = []
        for k, name in enumerate(names):
            if k >= len(fields) or fields[k] == "":
                values.append({"score": 1.0, "consider": 1.0, "class": PEDESTRIAN, "visibility": 1.0}[name])
                continue
            values.append(_number(fields[k], path, line_number, name, integer=name in ("frame", "id", "class")))
        for k in range(len(names), len(fields)):  # trailing -1 columns: still numbers
            _number(fields[k], path, line_number, f"column {k + 1}", integer=False)
        frame, track_id, x, y, w, h = (values[0], values[1], *values[2:6])
        if frame < 1:
            raise InputError(
                "frame out of range",
                path=path,
                field=f"line {line_number}: frame",
                expected="frames counted from 1",
                got=int(frame),
            )
        if num_frames is not None and frame > num_frames:
            raise InputError(
                "frame out of range",
                path=path,
                field=f"line {line_number}: frame",
                expected=f"1..{num_frames} (seqLength of the sequence)",
                got=int(frame),
            )
        if track_id < 0:
            raise InputError(
                "bad id", path=path, field=f"line {line_number}: id", expected="an id >= 0", got=int(track_id)
            )
        for name, value in (("w", w), ("h", h)):
            if value < 0:
                raise InputError(
                    "negative box size",
                    path=path,
                    field=f"line {line_number}: {name}",
                    expected="a size >= 0",
                    got=value,
                )
        key = (int(frame), int(track_id))
        if key in seen:
            raise InputError(
                "id repeated within one frame",
                path=path,
                field=f"line {line_number}: id",
                expected=f"one row per id per frame (frame {key[0]}, id {key[1]} is already on line {seen[key]})",
                got=key[1],
            )
        seen[key] = line_number
        if kind == "gt":
            if values[6] not in (0.0, 1.0):
                raise InputError(
                    "bad consider flag",
                    path=path,
                    field=f"line {line_number}: consider",
                    expected="0 or 1",
                    got=values[6],
                )
            if not 0.0 <= values[8] <= 1.0:
                raise InputError(
                    "bad visibility",
                    path=path,
                    field=f"line {line_number}: visibility",
                    expected="a number in [0, 1]",
                    got=values[8],
                )
            rows.append((frame, track_id, x, y, w, h, values[6], values[7], values[8]))
        else:
            rows.append((frame, track_id, x, y, w, h, values[6], PEDESTRIAN, 1.0))
    if not rows:
        return MotRows.empty()
    table = np.array(rows, dtype=np.float64)
    return MotRows(
        frame=table[:, 0].astype(np.int64),
        id=table[:, 1].astype(np.int64),
        box=table[:, 2:6],
        score=table[:, 6],
        cls=table[:, 7].astype(np.int64),
        visibility=table[:, 8],
    )


def format_track_row(frame: int, track_id: int, box_xywh, score: float) -> str:
    """One tracks.txt line (no newline): frame,id,x,y,w,h,score,-1,-1,-1."""
    x, y, w, h = (float(v) for v in box_xywh)
    return f"{int(frame)},{int(track_id)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{float(score):.4f},-1,-1,-1"


def format_gt_row(frame: int, track_id: int, box_xywh, consider: int, cls: int, visibility: float) -> str:
    x, y, w, h = (float(v) for v in box_xywh)
    return f"{int(frame)},{int(track_id)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{int(consider)},{int(cls)},{visibility:.3f}"


def write_mot(path: str | Path, rows: MotRows, kind: str = "tracks") -> Path:
    """Write rows as a MOT file atomically (sorted by frame, then id)."""
    order = np.lexsort((rows.id, rows.frame))
    if kind == "tracks":
        lines = [format_track_row(rows.frame[k], rows.id[k], rows.box[k], rows.score[k]) for k in order]
    else:
        lines = [
            format_gt_row(rows.frame[k], rows.id[k], rows.box[k], rows.score[k], rows.cls[k], rows.visibility[k])
            for k in order
        ]
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


# ---- seqinfo.ini -----------------------------------------------------------------------------------
SEQINFO_KEYS = ("name", "imDir", "frameRate", "seqLength", "imWidth", "imHeight", "imExt")


def write_seqinfo(folder: str | Path, info: SeqInfo, extra: dict | None = None) -> Path:
    lines = [
        "[Sequence]",
        f"name={info.name}",
        f"imDir={info.image_dir}",
        f"frameRate={info.fps:g}",
        f"seqLength={info.frames}",
        f"imWidth={info.width}",
        f"imHeight={info.height}",
        f"imExt={info.image_ext}",
    ]
    lines += [f"{key}={value}" for key, value in (extra or {}).items()]
    return atomic_write_text(Path(folder) / "seqinfo.ini", "\n".join(lines) + "\n")


def read_seqinfo(folder: str | Path) -> SeqInfo:
    """The seqinfo.ini of a sequence folder; InputError (one line) when it is missing or incomplete."""
    folder = Path(folder)
    path = folder / "seqinfo.ini"
    if not folder.is_dir():
        raise InputError("not a sequence folder", path=folder, expected="a MOTChallenge sequence folder")
    if not path.is_file():
        raise InputError(
            "not a MOTChallenge sequence folder: no seqinfo.ini", path=folder, expected="SEQ/seqinfo.ini, SEQ/gt/gt.txt"
        )
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
    except (configparser.Error, UnicodeDecodeError) as error:
        raise InputError("unreadable seqinfo.ini", path=path, got=str(error).splitlines()[0]) from None
    if "Sequence" not in parser:
        raise InputError("no [Sequence] section", path=path)
    section = parser["Sequence"]

    def value(key, kind):
        if key not in section:
            raise InputError("missing key", path=path, field=key, expected=f"{key}=...")
        try:
            result = kind(section[key])
        except ValueError:
            raise InputError("bad value", path=path, field=key, expected=kind.__name__, got=section[key]) from None
        if kind is not str and not result > 0:
            raise InputError("bad value", path=path, field=key, expected="a positive number", got=section[key])
        return result

    return SeqInfo(
        folder=folder,
        name=section.get("name", folder.name),
        frames=value("seqLength", int),
        width=value("imWidth", int),
        height=value("imHeight", int),
        fps=value("frameRate", float),
        image_dir=section.get("imDir", "img1"),
        image_ext=section.get("imExt", ".jpg"),
    )


__all__ = [
    "MotRows",
    "SeqInfo",
    "read_mot",
    "write_mot",
    "format_track_row",
    "format_gt_row",
    "read_seqinfo",
    "write_seqinfo",
    "PEDESTRIAN",
    "DISTRACTOR",
]
