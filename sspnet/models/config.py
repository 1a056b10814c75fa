"""ModelConfig: every setting of an SSPNet model, validated. Presets (presets/*.yaml) fill it in.

One flat namespace so that overrides are plain keyword arguments:
`build_model("fovea_r18_sspnet_small", score_thr=0.1)`. Keys that belong to the other variant
(`rpn_*`, `roi_*` for FoveaBox; `fovea_*` for Faster R-CNN) are rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

VARIANTS = ("faster_rcnn", "fovea")
NECKS = ("ssfpn", "fpn", "fpn_cam")  # fpn_cam: plain FPN + CAM maps that only feed the attention loss
ATTENTION_LOSSES = ("v1", "v2", "none")
NMS_METHODS = ("hard", "linear", "gaussian")
RPN_SAMPLERS = ("icneg", "random")
DEPTHS = (18, 34, 50, 101)

# Keys that exist only for one variant: prefix -> variant.
VARIANT_PREFIXES = {"anchor_": "faster_rcnn", "rpn_": "faster_rcnn", "roi_": "faster_rcnn", "fovea_": "fovea"}


@dataclass
class ModelConfig:
    """All model settings; defaults are the published Faster R-CNN / FoveaBox values (docs/model.md)."""

    # identity
    name: str = "custom"
    description: str = ""
    variant: str = "faster_rcnn"
    num_classes: int = 1
    # backbone
    depth: int = 50
    frozen_stages: int = 1
    norm_eval: bool = True
    pretrained: str | None = None  # None: from scratch; "imagenet" (torchvision's, cached) or a local .pth
    # neck
    neck: str = "ssfpn"
    neck_channels: int = 256
    # attention supervision (docs/model.md): v1, v2 or none; lambda None = the version's default
    attention_loss: str = "v1"
    attention_lambda: float | None = None
    # test-time detection output
    score_thr: float = 0.05
    nms_method: str = "linear"
    nms_iou_thr: float = 0.3
    nms_sigma: float = 0.5
    nms_min_score: float = 0.05
    max_detections: int = 500
    # Faster R-CNN: anchors and RPN
    anchor_scales: list = field(default_factory=lambda: [1.5, 2.5, 3.7, 8.0])
    anchor_ratios: list = field(default_factory=lambda: [0.4, 0.8, 1.4])
    rpn_pos_iou_thr: float = 0.7
    rpn_neg_iou_thr: float = 0.3
    rpn_min_pos_iou: float = 0.3
    rpn_sampler: str = "icneg"
    rpn_num_samples: int = 256
    rpn_pos_fraction: float = 0.5
    rpn_nms_iou_thr: float = 0.7
    rpn_train_nms_pre: int = 2000
    rpn_train_max_proposals: int = 1000
    rpn_test_nms_pre: int = 1000
    rpn_test_max_proposals: int = 1000
    # Faster R-CNN: RoI head
    roi_output_size: int = 7
    roi_sampling_ratio: int = 0
    roi_finest_scale: float = 56.0
    roi_fc_channels: int = 1024
    roi_pos_iou_thr: float = 0.5
    roi_neg_iou_thr: float = 0.5
    roi_min_pos_iou: float = 0.5
    roi_num_samples: int = 512
    roi_pos_fraction: float = 0.25
    roi_bbox_stds: list = field(default_factory=lambda: [0.1, 0.1, 0.2, 0.2])
    # FoveaBox head
    fovea_stacked_convs: int = 4
    fovea_feat_channels: int = 256
    fovea_base_edges: list = field(default_factory=lambda: [8.0, 16.0, 32.0, 64.0, 128.0])
    fovea_scale_ranges: list = field(
        default_factory=lambda: [[1.0, 32.0], [8.0, 64.0], [16.0, 128.0], [32.0, 256.0], [64.0, 512.0]]
    )
    fovea_sigma: float = 0.4
    fovea_focal_gamma: float = 1.5
    fovea_focal_alpha: float = 0.4
    fovea_smooth_l1_beta: float = 0.11
    # Not in the original: also make the cell holding each box centre positive (tiny boxes often
    # cover no cell centre of their level). Off in the published presets.
    fovea_centre_positive: bool = False
    fovea_nms_pre: int = 1000


# ---- validation -----------------------------------------------------------------------------

# Expected kind of each key: bool, int, float, str, "str?" (str or null), "float?", "floats" (list
# of numbers), "pairs" (list of [lo, hi] number pairs).
_KINDS = {
    "name": str,
    "description": str,
    "variant": str,
    "num_classes": int,
    "depth": int,
    "frozen_stages": int,
    "norm_eval": bool,
    "pretrained": "str?",
    "neck": str,
    "neck_channels": int,
    "attention_loss": str,
    "attention_lambda": "float?",
    "score_thr": float,
    "nms_method": str,
    "nms_iou_thr": float,
    "nms_sigma": float,
    "nms_min_score": float,
    "max_detections": int,
    "anchor_scales": "floats",
    "anchor_ratios": "floats",
    "rpn_pos_iou_thr": float,
    "rpn_neg_iou_thr": float,
    "rpn_min_pos_iou": float,
    "rpn_sampler": str,
    "rpn_num_samples": int,
    "rpn_pos_fraction": float,
    "rpn_nms_iou_thr": float,
    "rpn_train_nms_pre": int,
    "rpn_train_max_proposals": int,
    "rpn_test_nms_pre": int,
    "rpn_test_max_proposals": int,
    "roi_output_size": int,
    "roi_sampling_ratio": int,
    "roi_finest_scale": float,
    "roi_fc_channels": int,
    "roi_pos_iou_thr": float,
    "roi_neg_iou_thr": float,
    "roi_min_pos_iou": float,
    "roi_num_samples": int,
    "roi_pos_fraction": float,
    "roi_bbox_stds": "floats",
    "fovea_stacked_convs": int,
    "fovea_feat_channels": int,
    "fovea_base_edges": "floats",
    "fovea_scale_ranges": "pairs",
    "fovea_sigma": float,
    "fovea_focal_gamma": float,
    "fovea_focal_alpha": float,
    "fovea_smooth_l1_beta": float,
    "fovea_nms_pre": int,
    "fovea_centre_positive": bool,
}

_CHOICES = {
    "variant": VARIANTS,
    "neck": NECKS,
    "attention_loss": ATTENTION_LOSSES,
    "nms_method": NMS_METHODS,
    "rpn_sampler": RPN_SAMPLERS,
    "depth": DEPTHS,
}

_KIND_NAMES = {
    bool: "bool",
    int: "int",
    float: "float (or int)",
    str: "str",
    "str?": "str or null",
    "float?": "float or null",
    "floats": "list of numbers",
    "pairs": "list of [low, high] number pairs",
}


def _key_variant(key: str) -> str | None:
    for prefix, variant in VARIANT_PREFIXES.items():
        if key.startswith(prefix):
            return variant
    return None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _coerce(key: str, value, source: str):
    """Check one value against its kind; ints are accepted (and converted) where floats are expected."""
    kind = _KINDS[key]

    def fail():
        raise TypeError(f"{source}: key {key!r} expects {_KIND_NAMES[kind]}, got {type(value).__name__} {value!r}")

    if kind is bool:
        if not isinstance(value, bool):
            fail()
        return value
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            fail()
        return value
    if kind is float:
        if not _is_number(value):
            fail()
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            fail()
        return value
    if kind == "str?":
        if value is not None and not isinstance(value, str):
            fail()
        return value
    if kind == "float?":
        if value is not None and not _is_number(value):
            fail()
        return None if value is None else float(value)
    if kind == "floats":
        if not isinstance(value, (list, tuple)) or not all(_is_number(v) for v in value):
            fail()
        return [float(v) for v in value]
    if kind == "pairs":
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(_is_number(v) for v in p) for p in value
        ):
            fail()
        return [[float(p[0]), float(p[1])] for p in value]
    raise AssertionError(kind)


def make_config(values: dict, source: str = "config") -> ModelConfig:
    """Validate a dict of settings and return a ModelConfig; `source` names the origin in errors.

    Unknown keys, keys of the other variant, ill-typed values and out-of-range choices raise
    ValueError / TypeError naming the key, what was expected and what was given.
    """
    if not isinstance(values, dict):
        raise TypeError(f"{source}: expected a mapping of settings, got {type(values).__name__}")
    unknown = sorted(k for k in values if k not in _KINDS)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown}; known keys: {sorted(_KINDS)}")
    checked = {k: _coerce(k, v, source) for k, v in values.items()}
    for key, choices in _CHOICES.items():
        if key in checked and checked[key] not in choices:
            raise ValueError(f"{source}: key {key!r} must be one of {list(choices)}, got {checked[key]!r}")
    variant = checked.get("variant", ModelConfig.variant)
    wrong = sorted(k for k in checked if _key_variant(k) not in (None, variant))
    if wrong:
        raise ValueError(f"{source}: key(s) {wrong} do not apply to variant {variant!r}")
    config = ModelConfig(**checked)
    _check_ranges(config, source)
    return config


def _check_ranges(c: ModelConfig, source: str) -> None:
    def require(ok: bool, key: str, what: str):
        if not ok:
            raise ValueError(f"{source}: key {key!r} must be {what}, got {getattr(c, key)!r}")

    require(c.num_classes >= 1, "num_classes", ">= 1")
    require(-1 <= c.frozen_stages <= 4, "frozen_stages", "in [-1, 4]")
    require(c.neck_channels >= 4 and c.neck_channels % 4 == 0, "neck_channels", "a positive multiple of 4")
    require(c.max_detections >= 1, "max_detections", ">= 1")
    require(0 <= c.score_thr < 1, "score_thr", "in [0, 1)")
    require(c.nms_sigma > 0, "nms_sigma", "> 0")
    require(
        c.neck != "fpn" or c.attention_loss == "none",
        "attention_loss",
        "'none' with neck 'fpn' (a plain FPN has no attention maps)",
    )
    require(
        c.neck != "fpn_cam" or c.attention_loss != "none",
        "attention_loss",
        "'v1' or 'v2' with neck 'fpn_cam' (its CAM only feeds the attention loss)",
    )
    if c.variant == "faster_rcnn":
        require(len(c.anchor_scales) >= 1 and min(c.anchor_scales) > 0, "anchor_scales", "non-empty and > 0")
        require(len(c.anchor_ratios) >= 1 and min(c.anchor_ratios) > 0, "anchor_ratios", "non-empty and > 0")
        require(len(c.roi_bbox_stds) == 4, "roi_bbox_stds", "4 numbers")
        for key in (
            "rpn_num_samples",
            "rpn_train_nms_pre",
            "rpn_train_max_proposals",
            "rpn_test_nms_pre",
            "rpn_test_max_proposals",
            "roi_output_size",
            "roi_fc_channels",
            "roi_num_samples",
        ):
            require(getattr(c, key) >= 1, key, ">= 1")
    else:
        require(len(c.fovea_base_edges) == 5, "fovea_base_edges", "5 numbers (one per level P2..P6)")
        require(len(c.fovea_scale_ranges) == 5, "fovea_scale_ranges", "5 [low, high] pairs")
        require(c.fovea_stacked_convs >= 0, "fovea_stacked_convs", ">= 0")
        require(c.fovea_feat_channels >= 1, "fovea_feat_channels", ">= 1")
        require(c.fovea_nms_pre >= 1, "fovea_nms_pre", ">= 1")
