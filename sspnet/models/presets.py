"""Model presets: YAML files in sspnet/models/presets/, validated into a ModelConfig on load.

`build_model(name, **overrides)` is the one way to make a model; `list_presets()` and
`describe_model()` feed `sspnet info --presets` / `sspnet info --model`.

A preset file may start from another one: `base: other_preset` takes every setting of that preset
(its description included), and the file's own keys replace them. The default FoveaBox preset
`fovea_r50_sspnet` is such a file: it names which of the two original configurations
(`fovea_r50_sspnet_v1`, root tree; `fovea_r50_sspnet_v2`, latest_version) is the default and why.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from sspnet.models.config import ModelConfig, make_config

PRESET_DIR = Path(__file__).parent / "presets"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str, **overrides) -> ModelConfig:
    """The validated settings of preset `name` with `overrides` applied on top.

    Raises ValueError for an unknown preset, unknown keys or invalid values, TypeError for
    ill-typed values (naming the key, the expected type and what was given).
    """
    values, path = _preset_values(name)
    make_config({**values, "name": name}, source=str(path))  # the preset itself must be valid
    if "name" in overrides or "variant" in overrides:
        raise ValueError("overrides cannot change 'name' or 'variant'; pick another preset instead")
    return make_config({**values, "name": name, **overrides}, source=f"preset {name!r} with overrides")


def _preset_values(name: str, chain: tuple = ()) -> tuple[dict, Path]:
    """The settings of preset `name` with its `base` chain resolved, and its file."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(preset_names())}")
    with open(path, encoding="utf-8") as f:
        values = yaml.safe_load(f) or {}
    if not isinstance(values, dict):
        raise TypeError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
    if values.get("name", name) != name:
        raise ValueError(f"{path}: key 'name' is {values['name']!r} but the file is named {name!r}")
    base = values.pop("base", None)
    if base is None:
        return values, path
    if not isinstance(base, str):
        raise TypeError(f"{path}: key 'base' expects a preset name, got {type(base).__name__} {base!r}")
    if base in chain + (name,):
        raise ValueError(f"{path}: key 'base' makes a cycle: {' -> '.join(chain + (name, base))}")
    inherited, _ = _preset_values(base, chain + (name,))
    inherited.pop("name", None)
    return {**inherited, **values}, path


def preset_base(name: str) -> str | None:
    """The preset `name` starts from (its `base` key), or None."""
    with open(PRESET_DIR / f"{name}.yaml", encoding="utf-8") as f:
        values = yaml.safe_load(f) or {}
    return values.get("base") if isinstance(values, dict) else None


def build_model(name: str, **overrides):
    """An SSPNet detector (nn.Module, train mode) built from preset `name` plus keyword overrides.

    Example: build_model("fovea_r18_sspnet_small", score_thr=0.1, pretrained="resnet18.pth").
    The model keeps its settings in `model.config`, and the overrides in `model.overrides`.
    """
    from sspnet.models.detectors import build_detector

    config = load_preset(name, **overrides)
    model = build_detector(config)
    model.preset = name
    model.overrides = dict(overrides)
    return model


def list_presets() -> list[tuple[str, str, str, str, str]]:
    """Rows (preset, variant, backbone, backbone start, description)."""
    rows = []
    for name in preset_names():
        c = load_preset(name)
        start = f"pretrained: {c.pretrained}" if c.pretrained else "from scratch unless --pretrained imagenet"
        rows.append((name, c.variant, f"ResNet-{c.depth}", start, c.description))
    return rows


def count_macs(model, images) -> int:
    """Multiply-accumulates of every Conv2d and Linear in one forward, per image."""
    import torch
    from torch import nn

    total = [0]

    def conv_hook(module, inputs, output):
        kh, kw = module.kernel_size
        total[0] += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module, inputs, output):
        total[0] += output.numel() * module.in_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return total[0] // images.shape[0]


def describe_model(name: str, image_size: tuple[int, int] = (512, 640), **overrides) -> list[tuple[str, str]]:
    """Rows (quantity, value): settings summary, parameter counts and compute at `image_size` (H, W).

    GMACs count the multiply-accumulates of every convolution and fully connected layer in one
    eval-mode forward of one image (RoIAlign, NMS and element-wise ops are not counted);
    GFLOPs = 2 x GMACs.
    """
    import torch

    height, width = image_size
    model = build_model(name, **overrides).eval()
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    macs = count_macs(model, torch.zeros(1, 3, height, width, dtype=torch.uint8))
    c = model.config
    rows = [
        ("preset", name),
        ("variant", c.variant),
        ("backbone", f"ResNet-{c.depth} (frozen stages {c.frozen_stages}, norm_eval {c.norm_eval})"),
        ("neck", f"{c.neck}, {c.neck_channels} channels"),
        ("attention loss", c.attention_loss),
        ("input (H x W)", f"{height} x {width}"),
        ("parameters", f"{params:,}"),
        ("trainable parameters", f"{trainable:,}"),
        ("GMACs (conv + linear)", f"{macs / 1e9:.2f}"),
        ("GFLOPs (2 x GMACs)", f"{2 * macs / 1e9:.2f}"),
    ]
    if c.variant == "faster_rcnn":
        rows.append(("proposals (test)", str(c.rpn_test_max_proposals)))
    rows.append(("max detections", str(c.max_detections)))
    return rows
