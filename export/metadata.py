"""Model facts written into an exported graph's `metadata_props` (keys: runtime/contract.py).

Values are strings; lists and dicts are JSON. Both runtimes read them back, so the ONNX file alone
says what it detects, at which input size and with which thresholds.
"""

from __future__ import annotations

import json

import onnx
from sspnet.runtime.contract import METADATA_KEYS

import sspnet


def class_names(config) -> list[str]:
    """Class names of a model config: its own list if it has one, else "person" for one class."""
    names = getattr(config, "class_names", None) or getattr(config, "classes", None)
    if names:
        return [str(n) for n in names]
    if config.num_classes == 1:
        return ["person"]
    return [f"class_{i}" for i in range(config.num_classes)]


def export_metadata(config, *, flavor: str, imgsz: tuple[int, int], batch) -> dict[str, str]:
    """metadata_props for a detector exported from `config` (an sspnet ModelConfig).

    The `nms` entry describes what the GRAPH does: the portable flavour only has hard NMS, so a
    soft-NMS config is recorded as method "hard" with the configured method under "config_method".
    """
    nms = {
        "method": config.nms_method,
        "iou_threshold": float(config.nms_iou_thr),
        "sigma": float(config.nms_sigma),
        "min_score": float(config.nms_min_score),
    }
    if flavor == "portable" and config.nms_method != "hard":
        nms["method"] = "hard"
        nms["config_method"] = config.nms_method
    metadata = {
        "sspnet_version": sspnet.__version__,
        "preset": str(config.name),
        "variant": str(config.variant),
        "classes": json.dumps(class_names(config)),
        "input_size": json.dumps([int(imgsz[0]), int(imgsz[1])]),
        "max_detections": str(int(config.max_detections)),
        "score_threshold": repr(float(config.score_thr)),
        "nms": json.dumps(nms, sort_keys=True),
        "flavor": flavor,
        "batch": "dynamic" if batch == "dynamic" else str(int(batch)),
    }
    if set(metadata) != set(METADATA_KEYS):
        raise RuntimeError(f"export metadata keys {sorted(metadata)} != contract {sorted(METADATA_KEYS)}")
    return metadata


def write_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    """Replace the graph's metadata_props with `metadata` (every contract key required)."""
    missing = sorted(set(METADATA_KEYS) - set(metadata))
    if missing:
        raise ValueError(f"metadata is missing contract keys {missing}")
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {k: str(v) for k, v in metadata.items()})


def read_metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {entry.key: entry.value for entry in model.metadata_props}
