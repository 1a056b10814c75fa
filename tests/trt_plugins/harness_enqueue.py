"""Inputs and expected outputs of the harness's enqueue (cpp/trt_harness.cpp --enqueue DIR): random
inputs at the profile's opt and max shapes for every plugin node of an export, and sspnet.ops (the
torch ops: CUDA kernels on a GPU, CPU kernels otherwise) on the same inputs as the reference.

Files in DIR: n<node>_<profile>_in<k>.bin (float32 / int32, fp16 tensors as float32) written
here, n<node>_<profile>_<label>_out<k>.bin written by the harness; label = fp32 / fp16 / mixed
(fp32 RoIs next to fp16 features).
"""

from __future__ import annotations

import numpy as np
from harness_spec import _token

PROFILES = {"opt": 1, "max": 2}  # index into a symbol's (min, opt, max)


def profile_dims(tensor, profiles: dict, profile: str) -> list[int]:
    return [d if isinstance(d, int) else profiles[_token(d)][PROFILES[profile]] for d in tensor.dims]


def _inputs(node, shapes, generator):
    if node.op_type == "SSPNetMultiLevelRoIAlign":
        batch, count = shapes[1][0], shapes[0][0]
        rois = np.zeros(shapes[0], np.float32)
        xy = generator.uniform(0, 200, (count, 2))
        wh = generator.uniform(2, 120, (count, 2))  # spans the levels (finest_scale 56)
        rois[:, 0] = generator.integers(0, batch, count)
        rois[:, 1:3], rois[:, 3:5] = xy, xy + wh
        return [rois] + [generator.standard_normal(s).astype(np.float32) for s in shapes[1:]]
    xy = generator.uniform(0, 300, shapes[0][:2] + [2])
    boxes = np.concatenate([xy, xy + generator.uniform(4, 60, shapes[0][:2] + [2])], -1).astype(np.float32)
    values = [boxes, generator.uniform(0, 1, shapes[1]).astype(np.float32)]
    if len(shapes) > 2:
        values.append(generator.integers(0, 3, shapes[2]).astype(np.int32))
    return values


def write_enqueue_inputs(nodes, profiles: dict, folder, seed: int = 0) -> dict:
    """{(node index, profile): [input arrays]}, each also written to `folder`."""
    generator = np.random.default_rng(seed)
    arrays = {}
    for index, node in enumerate(nodes):
        for profile in PROFILES:
            values = _inputs(node, [profile_dims(t, profiles, profile) for t in node.inputs], generator)
            for k, value in enumerate(values):
                value.tofile(folder / f"n{index}_{profile}_in{k}.bin")
            arrays[(index, profile)] = values
    return arrays


def reference(node, inputs, label: str, device: str) -> list[np.ndarray]:
    """sspnet.ops on `device`, on the same inputs: fp32; fp16 (fp16 storage); mixed = fp32 RoIs next
    to fp16 features: fp32 arithmetic on the fp16-rounded features. The CPU RoIAlign has no fp16
    path: there fp16 is fp32 arithmetic on the fp16-rounded RoIs and features, rounded to fp16."""
    import torch

    import sspnet.ops  # noqa: F401  (registers torch.ops.sspnet)

    dtype = torch.float16 if label == "fp16" else torch.float32
    attrs = {name: value for name, _, value in node.attributes}
    if node.op_type == "SSPNetMultiLevelRoIAlign":
        fp16_on_cpu = label == "fp16" and device == "cpu"
        rois = torch.from_numpy(inputs[0]).to(device, dtype)
        features = [torch.from_numpy(x).to(device, dtype) for x in inputs[1:]]
        if fp16_on_cpu:
            rois = rois.float()
            features = [f.float() for f in features]
        if label == "mixed":
            features = [f.half().float() for f in features]
        pooled = torch.ops.sspnet.multi_level_roi_align(
            features,
            rois,
            list(attrs["spatial_scales"]),
            attrs["output_height"],
            attrs["output_width"],
            attrs["sampling_ratio"],
            bool(attrs["aligned"]),
            attrs["finest_scale"],
        )
        return [(pooled.half() if fp16_on_cpu else pooled).float().cpu().numpy()]
    boxes = torch.from_numpy(inputs[0]).to(device, dtype)
    scores = torch.from_numpy(inputs[1]).to(device, dtype)
    labels = torch.from_numpy(inputs[2]).to(device) if attrs["class_aware"] else None
    keep, keep_scores, num_valid = torch.ops.sspnet.batched_nms(
        boxes,
        scores,
        labels,
        attrs["iou_threshold"],
        attrs["method"],
        attrs["sigma"],
        attrs["score_threshold"],
        attrs["min_score"],
        attrs["max_output"],
    )
    return [keep.int().cpu().numpy(), keep_scores.float().cpu().numpy(), num_valid.int().cpu().numpy()[:, None]]


def enqueue_outputs(folder, index: int, profile: str, label: str, expected: list[np.ndarray]) -> list[np.ndarray]:
    """What the harness wrote, shaped like the reference."""
    outputs = []
    for k, reference_output in enumerate(expected):
        dtype = np.int32 if reference_output.dtype == np.int32 else np.float32
        path = folder / f"n{index}_{profile}_{label}_out{k}.bin"
        outputs.append(np.fromfile(path, dtype=dtype).reshape(reference_output.shape))
    return outputs
