"""The ONNX contract both runtimes read (see shared/design/architecture.md). Pure Python, no torch.

input  `images`   uint8  [N, 3, H, W] RGB (normalisation happens inside the graph)
outputs, fixed shape, rows past num_dets are padding:
       `num_dets` int32   [N, 1]
       `boxes`    float32 [N, K, 4]  x1, y1, x2, y2 in input pixels
       `scores`   float32 [N, K]
       `labels`   int32   [N, K]
"""

INPUT_NAME = "images"
OUTPUT_NAMES = ("num_dets", "boxes", "scores", "labels")
DEFAULT_MAX_DETECTIONS = 500  # the original configs' max_per_img at test time

# metadata_props keys written by the exporter (values are strings; JSON for lists/dicts).
METADATA_KEYS = (
    "sspnet_version",  # package version that exported the model
    "preset",  # e.g. faster_rcnn_r50_sspnet
    "variant",  # faster_rcnn | fovea
    "classes",  # JSON list of class names
    "input_size",  # JSON [H, W]
    "max_detections",  # K
    "score_threshold",
    "nms",  # JSON {"method": ..., "iou_threshold": ..., "sigma": ..., "min_score": ...}
    "flavor",  # portable | tensorrt
    "batch",  # "dynamic" or an integer
)
