"""Checkpoint files, with no model imports: what a file holds, safe reading, atomic writing, key checks.

Two formats are read:
- sspnet's own: one `.safetensors` file, the model's state dict plus a JSON block in the
  safetensors metadata under the key "sspnet":
      {"format": "sspnet-checkpoint", "format_version": 1, "preset": ..., "overrides": {...},
       "classes": [...], "sspnet_version": ..., "extra": {...}}
  Its header is checked here before safetensors sees it, so an empty, truncated or corrupt file
  is reported as such, naming the file.
- original SSPNet (mmdetection) `.pth` files: a torch pickle (zip or legacy) read with restricted
  unpickling (tensors and plain containers only: no code from the file can run).

The format is told from the file's first bytes, not its name. Every problem with a file raises
sspnet.errors.InputError naming the file; a missing file raises FileNotFoundError with the path.
Building a model from the weights is sspnet.checkpoint's job (it imports this module, never the
other way round). Torch and safetensors are imported inside the functions that need them.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sspnet.errors import InputError
from sspnet.io.atomic import atomic_write, atomic_write_bytes
from sspnet.io.outputs import sniff_kind

FORMAT_NAME = "sspnet-checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "sspnet"
SAFETENSORS = "safetensors"
TORCH = "torch"
_MAX_SAFETENSORS_HEADER = 100_000_000  # the limit safetensors itself enforces
_PICKLE_STARTS = tuple(bytes([0x80, protocol]) for protocol in range(2, 6))
_ZIP_START = b"PK\x03\x04"
# What sniff_kind's answer means to a user who expected a checkpoint.
_KIND_WORDS = {
    "empty": "an empty file (0 bytes)",
    "onnx": "an ONNX model",
    "tensorrt-engine": "a TensorRT engine",
    "image": "an image",
    "video": "a video",
    "coco-annotations": "a COCO annotation file",
    "coco-results": "a COCO results file",
    "json": "a JSON file",
    "jsonl": "a JSON Lines file",
    "yaml": "a YAML file",
    "text": "a text file",
    "binary": "unrecognised binary data",
}


# ---- which format is this file? -----------------------------------------------------------------
def _existing_file(path: str | os.PathLike) -> Path:
    """`path` as a Path; FileNotFoundError / IsADirectoryError (with the path) when it is not a file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "checkpoint file does not exist", str(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "checkpoint is a folder, expected a file", str(path))
    return path


def _expected_format(path: Path) -> str:
    if path.suffix.lower() == ".safetensors":
        return "safetensors file"
    if path.suffix.lower() in (".pth", ".pt", ".ckpt", ".bin", ".pkl"):
        return "torch checkpoint"
    return "checkpoint"


def checkpoint_format(path: str | os.PathLike) -> str:
    """'safetensors' or 'torch' (a torch.save pickle, zip or legacy), from the file's first bytes.

    Raises InputError naming the file and what it holds instead (empty, an ONNX model, an image,
    random bytes ...), FileNotFoundError when it does not exist.
    """
    path = _existing_file(path)
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        if 8 + int.from_bytes(head[:8], "little") <= path.stat().st_size or path.suffix.lower() == ".safetensors":
            return SAFETENSORS  # (a named .safetensors whose header overruns the file: reported as truncated)
    if head.startswith(_ZIP_START) or head.startswith(_PICKLE_STARTS):
        return TORCH
    what = _KIND_WORDS.get(sniff_kind(path), "unrecognised data")
    raise InputError(
        f"not a {_expected_format(path)}",
        path=path,
        expected="a .safetensors file or a PyTorch .pth (zip or pickle)",
        got=what,
    )


def check_checkpoint_file(path: str | os.PathLike) -> str:
    """The cheap checks a command makes before any heavy work: the file exists, is a checkpoint
    format, and (safetensors) its header fits the file. Returns the format (see checkpoint_format).
    A torch pickle can only be fully checked by loading it."""
    kind = checkpoint_format(path)
    if kind == SAFETENSORS:
        _check_safetensors_layout(Path(path))
    return kind


def is_safetensors_file(path: str | os.PathLike) -> bool:
    """True when the file starts like a safetensors file (8-byte header length, then a JSON object)."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


# ---- safetensors -----------------------------------------------------------------------------------
def _check_safetensors_layout(path: Path) -> dict:
    """Read and check a safetensors header against the file size; returns the parsed header.

    safetensors' own errors ("header too small", "incomplete metadata, file not fully covered")
    name neither the file nor what is wrong with it; these do.
    """
    size = path.stat().st_size
    if size == 0:
        raise InputError("empty safetensors file (0 bytes)", path=path)
    with open(path, "rb") as f:
        head = f.read(9)
        if len(head) < 9 or head[8:9] != b"{":
            got = _KIND_WORDS.get(sniff_kind(path), "unrecognised data")
            if head.startswith(_ZIP_START) or head.startswith(_PICKLE_STARTS):
                got = "a PyTorch .pth checkpoint (pickle)"
            raise InputError(
                "not a safetensors file",
                path=path,
                expected="an 8-byte header length followed by a JSON header",
                got=got,
            )
        header_bytes = int.from_bytes(head[:8], "little")
        if header_bytes > _MAX_SAFETENSORS_HEADER or 8 + header_bytes > size:
            raise InputError(
                "truncated or corrupt safetensors file: its header is longer than the file",
                path=path,
                expected=f"{header_bytes} header bytes",
                got=f"a {size}-byte file",
            )
        f.seek(8)
        raw_header = f.read(header_bytes)
    try:
        header = json.loads(raw_header.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"corrupt safetensors file: its header is not valid JSON ({error})", path=path) from None
    if not isinstance(header, dict):
        raise InputError("corrupt safetensors file: its header is not a JSON object", path=path)
    data_end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise InputError("corrupt safetensors file: a tensor entry without data_offsets", path=path, field=name)
        data_end = max(data_end, offsets[1])
    expected_size = 8 + header_bytes + data_end
    if expected_size > size:
        raise InputError(
            "truncated safetensors file (an interrupted copy or download?)",
            path=path,
            expected=f"{expected_size} bytes",
            got=f"{size} bytes",
        )
    if expected_size < size:
        raise InputError(
            "corrupt safetensors file: bytes after the last tensor",
            path=path,
            expected=f"{expected_size} bytes",
            got=f"{size} bytes",
        )
    return header


def read_safetensors(path: str | os.PathLike) -> tuple[dict, dict[str, str]]:
    """Any .safetensors file -> (state dict of CPU tensors, its string metadata). Never unpickles."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = _existing_file(path)
    header = _check_safetensors_layout(path)
    metadata = header.get("__metadata__") or {}
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, ValueError) as error:
        raise InputError(f"unreadable safetensors file ({error})", path=path) from None
    return state, metadata


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict]:
    """sspnet's .safetensors checkpoint -> (state_dict of CPU tensors, info dict)."""
    path = _existing_file(path)
    if checkpoint_format(path) == TORCH:
        raise InputError(
            "a PyTorch .pth checkpoint, not sspnet's .safetensors format: load it with "
            "sspnet.checkpoint.load_model or convert it with `sspnet convert`",
            path=path,
        )
    state, metadata = read_safetensors(path)
    if METADATA_KEY not in metadata:
        raise InputError(f"a safetensors file without sspnet metadata (key {METADATA_KEY!r})", path=path)
    try:
        info = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as error:
        raise InputError(f"sspnet metadata is not valid JSON ({error})", path=path) from None
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME or not isinstance(info.get("preset"), str):
        raise InputError(f"sspnet metadata lacks format {FORMAT_NAME!r} / a preset name", path=path)
    version = info.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(
            "checkpoint format is newer than this sspnet; upgrade sspnet",
            path=path,
            field="format_version",
            expected=f"<= {FORMAT_VERSION}",
            got=version,
        )
    return state, info


def write_checkpoint(path: str | os.PathLike, tensors: Mapping[str, Any], info: Mapping[str, Any]) -> Path:
    """Write `tensors` (name -> CPU tensor) with `info` as the sspnet metadata, atomically."""
    import torch
    from safetensors.torch import save as safetensors_save

    try:
        metadata = {METADATA_KEY: json.dumps(dict(info))}
    except TypeError as error:
        raise TypeError(f"checkpoint info must be JSON-serialisable: {error}") from None
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"state dict entry {key!r} is not a tensor ({type(value).__name__})")
    return atomic_write_bytes(path, safetensors_save(dict(tensors), metadata=metadata))


# ---- torch pickles ------------------------------------------------------------------------------------
def torch_load_restricted(path: str | os.PathLike):
    """torch.load(weights_only=True) on CPU: only tensors and plain containers are unpickled.

    A file that is no torch pickle at all is reported as "not a torch checkpoint"; one that needs
    another class (e.g. a pickled custom object) is refused naming the class; no code from the
    file runs either way.
    """
    import torch

    path = _existing_file(path)
    with open(path, "rb") as f:
        head = f.read(2)
    if not (head.startswith(_ZIP_START[:2]) or head.startswith(_PICKLE_STARTS)):
        what = _KIND_WORDS.get(sniff_kind(path), "unrecognised data")
        if is_safetensors_file(path):
            what = "a safetensors file"
        raise InputError(
            "not a torch checkpoint", path=path, expected="a torch.save file (zip archive or pickle)", got=what
        )
    try:
        # A file object, not the path: torch picks a loader from the suffix (a `.safetensors` name
        # would go to safetensors), but this file was already recognised as a torch pickle.
        with open(path, "rb") as f:
            return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        match = re.search(r"GLOBAL ([\w.<>]+)", str(error))
        if match is None:
            raise InputError(
                f"not a torch checkpoint: corrupt pickle data ({_first_sentence(error)})", path=path
            ) from None
        raise InputError(
            f"refusing to unpickle {match.group(1)}: only tensors and plain containers (dict, list, "
            f"str, numbers) are loaded, so no code from the file can run. If you trust the file, "
            f"re-save its state dict with plain torch.save(state_dict)",
            path=path,
        ) from None
    except (RuntimeError, EOFError, ValueError) as error:
        raise InputError(f"truncated or corrupt torch checkpoint ({_first_sentence(error)})", path=path) from None


def _first_sentence(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return re.split(r"(?<=[a-z)])\. ", text, maxsplit=1)[0].rstrip(".") or type(error).__name__


def atomic_torch_save(path: str | os.PathLike, obj) -> Path:
    """torch.save(obj) into `path` atomically (e.g. a trainer's resume state)."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


# ---- original (mmdetection) checkpoints -------------------------------------------------------------
def _preview(keys: Iterable[str], limit: int = 10) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def detect_variant(state: Mapping[str, Any], source: str = "checkpoint") -> str:
    """'faster_rcnn' (rpn_head.* / roi_head.* keys) or 'fovea' (bbox_head.* keys)."""
    faster = any(k.startswith(("rpn_head.", "roi_head.")) for k in state)
    fovea = any(k.startswith("bbox_head.") for k in state)
    if faster == fovea:
        raise InputError(
            f"{source}: cannot tell the variant: expected rpn_head.* / roi_head.* keys (Faster R-CNN) "
            f"or bbox_head.* keys (FoveaBox), found {'both' if faster else 'neither'}"
        )
    return "faster_rcnn" if faster else "fovea"


def _json_scalars(meta: Mapping[str, Any], keys: Iterable[str]) -> dict:
    return {k: meta[k] for k in keys if isinstance(meta.get(k), (str, int, float, bool))}


def read_mmdet_checkpoint(path: str | os.PathLike) -> tuple[dict, dict]:
    """An original SSPNet .pth -> (state_dict with `module.` stripped, info).

    info: {"variant", "classes", "source": "mmdetection", "meta": {mmdet_version, epoch, ...}}.
    """
    import torch

    raw = torch_load_restricted(path)
    if not isinstance(raw, dict):
        raise InputError("not a checkpoint: expected a dict (state_dict / meta)", path=path, got=type(raw).__name__)
    state = raw["state_dict"] if isinstance(raw.get("state_dict"), dict) else raw
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise InputError(f"state dict entries that are not tensors: {_preview(map(str, not_tensors))}", path=path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    meta = raw.get("meta") if isinstance(raw.get("meta"), dict) else {}
    classes = meta.get("CLASSES", ("person",))
    if isinstance(classes, str):  # the original dataset stores the bare string "person"
        classes = (classes,)
    info = {
        "variant": detect_variant(state, str(path)),
        "classes": [str(c) for c in classes],
        "source": "mmdetection",
        "meta": _json_scalars(meta, ("mmdet_version", "mmcv_version", "time", "epoch", "iter", "exp_name", "seed")),
    }
    return state, info


# ---- key / shape checks --------------------------------------------------------------------------------
def check_state_dict(model, state: Mapping[str, Any], source: str = "checkpoint") -> None:
    """Raise InputError naming every missing, unexpected or reshaped key of `state` vs `model`
    (any torch module: only its state_dict() is used)."""
    expected = model.state_dict()
    missing = set(expected) - set(state)
    unexpected = set(state) - set(expected)
    reshaped = [
        f"{k} (checkpoint {list(state[k].shape)}, model {list(expected[k].shape)})"
        for k in sorted(set(state) & set(expected))
        if tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_preview(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_preview(unexpected)}")
    if reshaped:
        problems.append(f"shape mismatch: {_preview(reshaped)}")
    if problems:
        raise InputError(f"{source} does not match the model: " + "; ".join(problems))


__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "atomic_torch_save",
    "check_checkpoint_file",
    "check_state_dict",
    "checkpoint_format",
    "detect_variant",
    "is_safetensors_file",
    "read_checkpoint",
    "read_mmdet_checkpoint",
    "read_safetensors",
    "torch_load_restricted",
    "write_checkpoint",
]
