"""The checks on export settings, torch-free so `sspnet export` can refuse a bad argument at once
(before torch and the exporter are imported) and `export_onnx` applies the same rules.

    imgsz, batch = check_export_options("portable", (512, 640), "dynamic", 18)
"""

from __future__ import annotations

import os
from pathlib import Path

from sspnet.errors import UsageError

FLAVORS = ("portable", "tensorrt")
DEFAULT_OPSET = 18  # RoiAlign needs >= 16; the torch exporter builds opset 18 natively
MIN_OPSET = 16
STRIDE = 32  # the backbone's largest stride: H and W must be multiples of it


def check_imgsz(imgsz, option: str = "imgsz") -> tuple[int, int]:
    """(H, W) as ints; UsageError unless both are positive multiples of 32."""
    values = tuple(imgsz) if isinstance(imgsz, (tuple, list)) else (imgsz,)
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise UsageError("the input size must be two integers H W", field=option, got=repr(imgsz))
    if not all(v >= STRIDE and v % STRIDE == 0 for v in values):
        nearest = [max(STRIDE, round(v / STRIDE) * STRIDE) for v in values]
        raise UsageError(
            f"the input size must be positive multiples of {STRIDE} (the backbone's stride)",
            field=option,
            expected=f"e.g. {nearest[0]} {nearest[1]}",
            got=f"{values[0]} {values[1]}",
        )
    return int(values[0]), int(values[1])


def parse_batch(value, option: str = "batch"):
    """'dynamic' or a positive integer (also from a string such as "4")."""
    if value == "dynamic":
        return value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError("batch must be 'dynamic' or a positive integer", field=option, got=repr(value))
    return value


def check_opset(opset, option: str = "opset") -> int:
    """An ONNX opset between 16 (RoiAlign) and the newest the installed onnx package knows."""
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise UsageError(
            "unsupported ONNX opset (RoiAlign needs 16)",
            field=option,
            expected=f"an integer in [{MIN_OPSET}, {newest}]",
            got=repr(opset),
        )
    return opset


def check_flavor(flavor, option: str = "flavor") -> str:
    if flavor not in FLAVORS:
        raise UsageError("unknown export flavour", field=option, expected=f"one of {FLAVORS}", got=repr(flavor))
    return flavor


def check_export_options(flavor, imgsz, batch, opset) -> tuple[tuple[int, int], object]:
    """All export settings at once; returns (imgsz as ints, batch)."""
    check_flavor(flavor)
    imgsz = check_imgsz(imgsz)
    batch = parse_batch(batch)
    check_opset(opset)
    return imgsz, batch


def default_onnx_path(checkpoint: str | os.PathLike, flavor: str) -> Path:
    """best.safetensors -> best.portable.onnx (next to the checkpoint)."""
    return Path(checkpoint).with_suffix(f".{flavor}.onnx")


def check_export_paths(checkpoint: str | os.PathLike | None, out: str | os.PathLike, verify_images=None) -> Path:
    """Before any work: the checkpoint (if a path) is a readable checkpoint file, a --verify-images
    folder exists, and `out` may be written as ONNX without destroying an input or another kind of
    file (sspnet.io.outputs.OutputGuard). Returns `out` as a Path."""
    from sspnet.io.checkpoint_files import check_checkpoint_file
    from sspnet.io.outputs import OutputGuard

    inputs = []
    if checkpoint is not None:
        check_checkpoint_file(checkpoint)
        inputs.append(checkpoint)
    if isinstance(verify_images, (str, os.PathLike)) and not str(verify_images).isdigit():
        if not Path(verify_images).is_dir():
            raise UsageError(
                "not an image count nor an existing folder", field="--verify-images", got=str(verify_images)
            )
        inputs.append(verify_images)
    return OutputGuard(inputs=inputs, verb="export").check_file(out, kind="onnx")


__all__ = [
    "DEFAULT_OPSET",
    "FLAVORS",
    "check_export_options",
    "check_export_paths",
    "check_flavor",
    "check_imgsz",
    "check_opset",
    "default_onnx_path",
    "parse_batch",
]
