"""Checkpoints: our safetensors format, original SSPNet (mmdetection) .pth files, atomic writes.

Our format is one `.safetensors` file: the model's state dict plus a JSON block in the
safetensors metadata under the key "sspnet":
    {"format": "sspnet-checkpoint", "format_version": 1, "preset": ..., "overrides": {...},
     "classes": [...], "sspnet_version": ..., "extra": {...}}
Loading never unpickles. Original checkpoints (mmcv `save_checkpoint`: a dict with `state_dict`,
`meta` and maybe `optimizer`) are read with restricted unpickling (tensors and plain containers
only); their keys equal ours (spec 8.6), so the mapping is the identity.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

FORMAT_NAME = "sspnet-checkpoint"
FORMAT_VERSION = 1
METADATA_KEY = "sspnet"
DEFAULT_PRESETS = {"faster_rcnn": "faster_rcnn_r50_sspnet", "fovea": "fovea_r50_sspnet"}
# Settings that describe how a model was built, not what its weights are: never stored / restored.
_NOT_STORED = ("pretrained",)


# ---- atomic writes: one helper for the whole toolkit (sspnet.io.atomic) -----------------------
from sspnet.io.atomic import atomic_write, atomic_write_bytes  # noqa: E402


def atomic_torch_save(path: str | os.PathLike, obj) -> Path:
    """torch.save(obj) into `path` atomically (e.g. a trainer's resume state)."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


# ---- restricted torch.load -----------------------------------------------------------------
def torch_load_restricted(path: str | os.PathLike):
    """torch.load(weights_only=True) on CPU: only tensors and plain containers are unpickled.

    A file that needs any other class (e.g. a pickled custom object) is refused with a ValueError
    naming the refused global; no code from the file runs.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        match = re.search(r"GLOBAL ([\w.<>]+)", str(error))
        refused = match.group(1) if match else "an object that is not a tensor or plain container"
        raise ValueError(
            f"{path}: refusing to unpickle {refused}: only tensors and plain containers (dict, list, "
            f"str, numbers) are loaded, so no code from the file can run. If you trust the file, "
            f"re-save its state dict with plain torch.save(state_dict)."
        ) from None
    except (RuntimeError, EOFError) as error:
        raise ValueError(f"{path}: not a readable torch checkpoint ({error})") from None


# ---- key / shape checks --------------------------------------------------------------------
def _preview(keys: Iterable[str], limit: int = 10) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def check_state_dict(model, state: Mapping[str, Any], source: str = "checkpoint") -> None:
    """Raise ValueError naming every missing, unexpected or reshaped key of `state` vs `model`."""
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
        raise ValueError(f"{source} does not match the model: " + "; ".join(problems))


# ---- our format --------------------------------------------------------------------------------
def save_checkpoint(
    path: str | os.PathLike,
    model,
    *,
    preset: str,
    overrides: Mapping[str, Any] | None = None,
    classes: Iterable[str] = ("person",),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save `model`'s weights and how to rebuild it as one .safetensors file (atomic write).

    preset / overrides: as given to build_model (validated here; `pretrained` is not stored).
    classes: class names in label order. extra: any JSON-serialisable user data.
    """
    import torch
    from safetensors.torch import save as safetensors_save

    import sspnet
    from sspnet.models.presets import load_preset

    overrides = {k: v for k, v in dict(overrides or {}).items() if k not in _NOT_STORED}
    load_preset(preset, **overrides)  # fails early with a clear message
    info = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "preset": preset,
        "overrides": overrides,
        "classes": [str(c) for c in classes],
        "sspnet_version": sspnet.__version__,
        "extra": dict(extra or {}),
    }
    try:
        metadata = {METADATA_KEY: json.dumps(info)}
    except TypeError as error:
        raise TypeError(f"overrides and extra must be JSON-serialisable: {error}") from None
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"state dict entry {key!r} is not a tensor ({type(value).__name__})")
    return atomic_write_bytes(path, safetensors_save(tensors, metadata=metadata))


def is_safetensors_file(path: str | os.PathLike) -> bool:
    """True when the file starts like a safetensors file (8-byte header length, then a JSON object)."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict]:
    """Our .safetensors checkpoint -> (state_dict of CPU tensors, info dict)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable safetensors file ({error})") from None
    if METADATA_KEY not in metadata:
        raise ValueError(f"{path}: a safetensors file without sspnet metadata (key {METADATA_KEY!r})")
    try:
        info = json.loads(metadata[METADATA_KEY])
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: sspnet metadata is not valid JSON ({error})") from None
    if info.get("format") != FORMAT_NAME or not isinstance(info.get("preset"), str):
        raise ValueError(f"{path}: sspnet metadata lacks format {FORMAT_NAME!r} / a preset name")
    if info.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format version {info['format_version']} is newer than this sspnet "
            f"({FORMAT_VERSION}); upgrade sspnet"
        )
    return state, info


# ---- original (mmdetection) checkpoints ----------------------------------------------------
def detect_variant(state: Mapping[str, Any], source: str = "checkpoint") -> str:
    """'faster_rcnn' (rpn_head.* / roi_head.* keys) or 'fovea' (bbox_head.* keys)."""
    faster = any(k.startswith(("rpn_head.", "roi_head.")) for k in state)
    fovea = any(k.startswith("bbox_head.") for k in state)
    if faster == fovea:
        raise ValueError(
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
        raise ValueError(f"{path}: expected a dict (state_dict / meta), got {type(raw).__name__}")
    state = raw["state_dict"] if isinstance(raw.get("state_dict"), dict) else raw
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ValueError(f"{path}: state dict entries that are not tensors: {_preview(map(str, not_tensors))}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    meta = raw.get("meta") if isinstance(raw.get("meta"), dict) else {}
    classes = meta.get("CLASSES", ("person",))
    if isinstance(classes, str):  # the original dataset stores the bare string "person" (spec 9.11)
        classes = (classes,)
    info = {
        "variant": detect_variant(state, str(path)),
        "classes": [str(c) for c in classes],
        "source": "mmdetection",
        "meta": _json_scalars(meta, ("mmdet_version", "mmcv_version", "time", "epoch", "iter", "exp_name", "seed")),
    }
    return state, info


# ---- one loader for both ---------------------------------------------------------------------
def load_model(path: str | os.PathLike, preset: str | None = None, **overrides):
    """A model with the weights of `path` (our .safetensors or an original SSPNet .pth), in eval mode.

    preset: for an original .pth, which preset to build (default: the published one of the
    detected variant); for our format it must match the stored preset if given. overrides: extra
    settings (e.g. score_thr=0.1), applied over the stored ones. Every key is used and every shape
    is checked. The model's `checkpoint_info` holds the file's info dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    overrides = {k: v for k, v in overrides.items() if k not in _NOT_STORED}
    if not is_safetensors_file(path):
        state, info = read_mmdet_checkpoint(path)
        return model_from_mmdet(state, info, preset, source=str(path), **overrides)
    state, info = read_checkpoint(path)
    if preset is not None and preset != info["preset"]:
        raise ValueError(f"{path} was saved from preset {info['preset']!r}, not {preset!r}")
    merged = {**info.get("overrides", {}), **overrides}
    return _model_with_weights(info["preset"], merged, state, info, str(path))

def model_from_mmdet(state: Mapping[str, Any], info: dict, preset: str | None = None, source: str = "checkpoint", **overrides):
    """A model (eval mode) from the output of read_mmdet_checkpoint; preset defaults to the
    published one of the detected variant and must be of that variant."""
    from sspnet.models.presets import load_preset

    preset = preset or DEFAULT_PRESETS[info["variant"]]
    preset_variant = load_preset(preset).variant
    if preset_variant != info["variant"]:
        raise ValueError(f"{source} holds a {info['variant']} model but preset {preset!r} is {preset_variant}")
    overrides = {k: v for k, v in overrides.items() if k not in _NOT_STORED}
    info = {**info, "preset": preset, "overrides": overrides}
    return _model_with_weights(preset, overrides, state, info, source)


def _model_with_weights(preset: str, overrides: dict, state: Mapping[str, Any], info: dict, source: str):
    from sspnet.models.presets import build_model

    model = build_model(preset, **overrides)
    check_state_dict(model, state, source=source)
    model.load_state_dict(state, strict=True)
    model.checkpoint_info = info
    return model.eval()
