"""Output-path guard: no verb ever overwrites one of its inputs or a file of another kind.

Every verb builds one OutputGuard from its inputs BEFORE any work and checks each output path
(and, for folders it fills, each file it writes) through it:

    guard = OutputGuard(inputs=[args.checkpoint], verb="export")
    guard.check_file(out, kind="onnx")          # raises OutputConflictError, one line naming both

An output is refused when
  - it is one of the inputs (same resolved path, or the same file through a hard link), or
  - it lies inside an input folder (e.g. `predict imgs/ --out imgs/`), or an input lies inside an
    output folder the verb fills with files, or
  - it exists and holds a file of another kind than the verb writes (`export --out weights.pth`,
    `val --json tiny_set_test.json`). Overwriting the verb's own earlier output stays allowed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from sspnet.errors import OutputConflictError

# ---- what kind of file is this? ------------------------------------------------------------------
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
_JSON_SNIFF_LIMIT = 64 * 1024 * 1024  # larger JSON files are classified from their first bytes only


def _json_kind(path: Path) -> str:
    """'coco-annotations', 'coco-results', 'json' or 'text' (not JSON at all)."""
    if path.stat().st_size > _JSON_SNIFF_LIMIT:
        with open(path, "rb") as f:
            head = f.read(4096).lstrip()
        if head.startswith(b"["):
            return "coco-results" if b'"image_id"' in head else "json"
        return "coco-annotations" if b'"images"' in head or b'"annotations"' in head else "json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "text"
    if isinstance(data, dict) and ("annotations" in data or "images" in data):
        return "coco-annotations"
    if isinstance(data, list) and data and all(isinstance(r, dict) and "image_id" in r for r in data[:100]):
        return "coco-results"
    return "json"


def sniff_kind(path: str | os.PathLike) -> str:
    """What an existing file holds, from its first bytes (and suffix where bytes cannot tell):
    'empty', 'folder', 'safetensors', 'torch-checkpoint', 'onnx', 'tensorrt-engine', 'image',
    'video', 'coco-annotations', 'coco-results', 'jsonl', 'json', 'yaml', 'text' or 'binary'."""
    path = Path(path)
    if path.is_dir():
        return "folder"
    size = path.stat().st_size
    if size == 0:
        return "empty"
    with open(path, "rb") as f:
        head = f.read(64)
    suffix = path.suffix.lower()
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < size:
        return "safetensors"
    if head.startswith(b"PK\x03\x04") and suffix in (".pth", ".pt", ".ckpt", ".bin"):
        return "torch-checkpoint"
    if head[:1] == b"\x80" and suffix in (".pth", ".pt", ".ckpt", ".bin", ".pkl"):
        return "torch-checkpoint"
    if suffix == ".onnx" and head[:1] == b"\x08":
        return "onnx"
    if suffix in ENGINE_SUFFIXES:
        return "tensorrt-engine"
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG", b"BM", b"II*\x00", b"MM\x00*")) or head[8:12] == b"WEBP":
        return "image"
    if head[4:8] in (b"ftyp", b"moov") or head.startswith((b"RIFF", b"\x1aE\xdf\xa3")):
        return "video"
    if suffix == ".jsonl":
        return "jsonl"
    if head.lstrip()[:1] in (b"{", b"["):
        return _json_kind(path)
    if suffix in (".yaml", ".yml"):
        return "yaml"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    return "text"


# Which existing kinds each output kind may replace: its own, an empty file, and the text flavours
# a previous crashed or hand-made version of the same output could be.
_REPLACEABLE = {
    "safetensors": {"safetensors"},
    "onnx": {"onnx"},
    "tensorrt-engine": {"tensorrt-engine"},
    "image": {"image"},
    "video": {"video"},
    "coco-results": {"coco-results", "json"},  # an empty result list sniffs as plain json
    "coco-annotations": {"coco-annotations"},
    "json": {"json"},
    "jsonl": {"jsonl", "text"},
    "yaml": {"yaml", "text"},
    "text": {"text"},
    "binary": {"binary"},
}


# ---- the guard ---------------------------------------------------------------------------------
class OutputGuard:
    """Knows a verb's inputs; refuses outputs that would destroy them (see module docstring)."""

    def __init__(self, inputs: Iterable[str | os.PathLike | None], verb: str = ""):
        self.verb = verb
        self._input_files: dict[Path, Path] = {}  # resolved -> as given
        self._input_dirs: dict[Path, Path] = {}
        self._inodes: dict[tuple[int, int], Path] = {}
        for given in inputs:
            if given is None:
                continue
            self.add_input(given)

    def add_input(self, given: str | os.PathLike) -> None:
        given = Path(given)
        if not given.exists():
            return  # non-file sources (camera index, URL, glob) are checked by their own code
        resolved = given.resolve()
        if resolved.is_dir():
            self._input_dirs[resolved] = given
        else:
            self._input_files[resolved] = given
            stat = resolved.stat()
            self._inodes[(stat.st_dev, stat.st_ino)] = given

    def _refuse(self, output: Path, reason: str, other: Path | None = None) -> OutputConflictError:
        what = f"refusing to write {output}: {reason}"
        if other is not None:
            what += f" {other}"
        return OutputConflictError(what + "; choose another output path")

    def check_file(self, path: str | os.PathLike, kind: str) -> Path:
        """Refuse (OutputConflictError) if writing `path` as `kind` could destroy an input or a
        different kind of file. Returns the path. Cheap enough to call for every file written."""
        path = Path(path)
        resolved = path.resolve()
        if resolved in self._input_files:
            raise self._refuse(path, "it is an input of this command:", self._input_files[resolved])
        if resolved.exists():
            stat = resolved.stat()
            same = self._inodes.get((stat.st_dev, stat.st_ino))
            if same is not None:
                raise self._refuse(path, "it is the same file (hard link) as the input", same)
            if resolved.is_dir():
                raise self._refuse(path, "it is a folder, expected a file path")
            existing = sniff_kind(resolved)
            if existing != "empty" and existing not in _REPLACEABLE.get(kind, {kind}):
                raise self._refuse(
                    path,
                    f"it already holds a {existing} file and this command writes {kind}; "
                    "delete it first if it is no longer needed",
                )
        for folder, given in self._input_dirs.items():
            if resolved.is_relative_to(folder):
                raise self._refuse(path, "it lies inside the input folder", given)
        return path

    def check_dir(self, path: str | os.PathLike) -> Path:
        """Refuse an output folder that is, lies inside, or contains an input (files the verb writes
        into it are checked one by one with check_file too)."""
        path = Path(path)
        resolved = path.resolve()
        if resolved.exists() and not resolved.is_dir():
            raise self._refuse(path, f"it is an existing {sniff_kind(resolved)} file, expected a folder")
        for folder, given in self._input_dirs.items():
            if resolved == folder:
                raise self._refuse(path, "it is the input folder", given)
            if resolved.is_relative_to(folder):
                raise self._refuse(path, "it lies inside the input folder", given)
        for file, given in self._input_files.items():
            if file.parent == resolved:
                raise self._refuse(path, "it is the folder of the input", given)
        return path


__all__ = ["OutputGuard", "sniff_kind", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES"]
