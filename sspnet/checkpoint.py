"""Checkpoints -> models: load_model (our .safetensors or an original SSPNet .pth), save_checkpoint.

Reading and writing the files themselves (format detection, safe safetensors reading, restricted
unpickling, key and shape checks, atomic writes) lives in sspnet.io.checkpoint_files, which
imports no model code; this module builds models from what it reads, so the dependency runs one
way: sspnet.checkpoint -> sspnet.models -> sspnet.io.checkpoint_files. Import the file-level names
(read_checkpoint, read_mmdet_checkpoint, check_state_dict ...) from sspnet.io.checkpoint_files.

Original checkpoints (mmcv `save_checkpoint`: a dict with `state_dict`, `meta` and maybe
`optimizer`) have the same keys as ours, so the mapping is the identity.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sspnet.errors import InputError, UsageError
from sspnet.io.checkpoint_files import (
    FORMAT_NAME,
    FORMAT_VERSION,
    TORCH,
    check_state_dict,
    checkpoint_format,
    read_checkpoint,
    read_mmdet_checkpoint,
    write_checkpoint,
)

DEFAULT_PRESETS = {"faster_rcnn": "faster_rcnn_r50_sspnet", "fovea": "fovea_r50_sspnet"}
# Settings that describe how a model was built, not what its weights are: never stored / restored.
_NOT_STORED = ("pretrained",)


def check_preset_name(name: str | None, option: str = "--preset") -> None:
    """UsageError for a preset name that does not exist, before any model is built (None: no preset)."""
    if name is None:
        return
    from sspnet.models.presets import preset_names

    if name not in preset_names():
        raise UsageError("unknown preset", field=option, expected=f"one of {', '.join(preset_names())}", got=repr(name))


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
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    return write_checkpoint(path, tensors, info)


def load_model(path: str | os.PathLike, preset: str | None = None, **overrides):
    """A model with the weights of `path` (our .safetensors or an original SSPNet .pth), in eval mode.

    The format is told from the file's content. preset: for an original .pth, which preset to build
    (default: the published one of the detected variant); for our format it must match the stored
    preset if given. overrides: extra settings (e.g. score_thr=0.1), applied over the stored ones.
    Every key is used and every shape is checked. The model's `checkpoint_info` holds the file's
    info dict. File problems raise InputError naming the file (FileNotFoundError when missing).
    """
    path = Path(path)
    overrides = {k: v for k, v in overrides.items() if k not in _NOT_STORED}
    if checkpoint_format(path) == TORCH:
        state, info = read_mmdet_checkpoint(path)
        return model_from_mmdet(state, info, preset, source=str(path), **overrides)
    state, info = read_checkpoint(path)
    _check_stored_preset(path, info)
    if preset is not None and preset != info["preset"]:
        raise UsageError(
            f"{path} was saved from preset {info['preset']!r}, not {preset!r}",
            field="preset",
            expected=info["preset"],
            got=preset,
        )
    merged = {**info.get("overrides", {}), **overrides}
    return _model_with_weights(info["preset"], merged, state, info, str(path))


def _check_stored_preset(path: Path, info: dict) -> None:
    """A checkpoint written by another sspnet version may name a preset (or settings) this one lacks."""
    from sspnet.models.presets import load_preset, preset_names

    if info["preset"] not in preset_names():
        raise InputError(
            f"the checkpoint was saved from preset {info['preset']!r}, which sspnet {_version()} does not know",
            path=path,
            field="preset",
            expected=f"one of {', '.join(preset_names())}",
            got=repr(info["preset"]),
        )
    try:
        load_preset(info["preset"], **info.get("overrides", {}))
    except (TypeError, ValueError) as error:
        raise InputError(
            f"the checkpoint's stored settings do not fit this sspnet version ({error})", path=path, field="overrides"
        ) from None


def _version() -> str:
    import sspnet

    return sspnet.__version__


def model_from_mmdet(
    state: Mapping[str, Any], info: dict, preset: str | None = None, source: str = "checkpoint", **overrides
):
    """A model (eval mode) from the output of read_mmdet_checkpoint; preset defaults to the
    published one of the detected variant and must be of that variant."""
    from sspnet.models.presets import load_preset

    check_preset_name(preset, option="preset")
    preset = preset or DEFAULT_PRESETS[info["variant"]]
    preset_variant = load_preset(preset).variant
    if preset_variant != info["variant"]:
        raise InputError(f"{source} holds a {info['variant']} model but preset {preset!r} is {preset_variant}")
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


__all__ = ["DEFAULT_PRESETS", "check_preset_name", "load_model", "model_from_mmdet", "save_checkpoint"]
