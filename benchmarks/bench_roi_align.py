"""Benchmark: sspnet multi-level RoIAlign vs torchvision, forward and forward + backward.

Workload: the RoI head of a 2-image batch of 640x512 inputs (width x height), FPN levels at
strides 4/8/16/32 with 256 channels, 1000 proposal-like RoIs (log-uniform sides 8..512 px,
aspect 1:2..2:1, clipped to the image), 7x7 output, sampling_ratio 2, aligned=False -- the
configuration where torchvision.ops.MultiScaleRoIAlign (the baseline) computes the same thing.

Contenders:
  ours            sspnet.ops.multi_level_roi_align (one op call)
  multiscale      torchvision.ops.MultiScaleRoIAlign
  per_level_loop  level per RoI, then torchvision.ops.roi_align once per level + scatter

Each timed round runs every contender once (interleaved, so load from other processes hits all
of them alike); the medians over the rounds are reported, with ratios measured in the same run.
Writes benchmarks/results/roi_align_<device>.json.

    python benchmarks/bench_roi_align.py                # CPU, and CUDA when available
    python benchmarks/bench_roi_align.py --device cpu --rounds 21
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import torch
import torchvision
from torchvision.ops import MultiScaleRoIAlign, roi_align

from sspnet.benchmark.harness import cpu_model
from sspnet.io.atomic import atomic_write_json
from sspnet.ops import multi_level_roi_align, roi_levels

STRIDES = [4, 8, 16, 32]
IMAGE_HEIGHT, IMAGE_WIDTH = 512, 640
CPU_TARGET_SPEEDUP = 1.8  # vs MultiScaleRoIAlign, forward, on the 2-core CI machine
RESULTS = Path(__file__).resolve().parent / "results"


def make_inputs(device, batch, channels, num_rois, seed=0):
    """Feature pyramid [N, C, H/s, W/s] per stride and [R, 5] RoIs sorted by image."""
    generator = torch.Generator().manual_seed(seed)
    features = [torch.randn(batch, channels, IMAGE_HEIGHT // s, IMAGE_WIDTH // s, generator=generator) for s in STRIDES]
    centres = torch.rand(num_rois, 2, generator=generator) * torch.tensor([IMAGE_WIDTH, IMAGE_HEIGHT])
    log_side = torch.empty(num_rois).uniform_(math.log(8), math.log(512), generator=generator)
    log_aspect = torch.empty(num_rois).uniform_(-math.log(2), math.log(2), generator=generator)
    half_w = torch.exp(log_side + log_aspect / 2) / 2
    half_h = torch.exp(log_side - log_aspect / 2) / 2
    x, y = centres[:, 0], centres[:, 1]
    boxes = torch.stack([x - half_w, y - half_h, x + half_w, y + half_h], dim=1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, IMAGE_WIDTH)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, IMAGE_HEIGHT)
    image_index = torch.arange(num_rois) * batch // num_rois  # equal shares, sorted
    rois = torch.cat([image_index[:, None].float(), boxes], dim=1)
    return [f.to(device) for f in features], rois.to(device)


def contenders(features, rois, sampling_ratio):
    """name -> function(features) returning the pooled [R, C, 7, 7] tensor."""
    batch = features[0].shape[0]
    names = [f"p{level + 2}" for level in range(len(features))]
    pooler = MultiScaleRoIAlign(names, 7, sampling_ratio)
    boxes_per_image = [rois[rois[:, 0] == b, 1:] for b in range(batch)]
    image_shapes = [(IMAGE_HEIGHT, IMAGE_WIDTH)] * batch
    levels = roi_levels(rois, len(features))  # the same rule MultiScaleRoIAlign uses here

    def ours(feats):
        return multi_level_roi_align(feats, rois, STRIDES, 7, sampling_ratio, aligned=False)

    def multiscale(feats):
        return pooler(dict(zip(names, feats)), boxes_per_image, image_shapes)

    def per_level_loop(feats):
        out = feats[0].new_zeros((rois.shape[0], feats[0].shape[1], 7, 7))
        for level, (feature, stride) in enumerate(zip(feats, STRIDES)):
            index = torch.nonzero(levels == level).flatten()
            out[index] = roi_align(feature, rois[index], 7, 1.0 / stride, sampling_ratio, False)
        return out

    return {"ours": ours, "multiscale": multiscale, "per_level_loop": per_level_loop}


def time_interleaved(functions, rounds, warmup, synchronize):
    """Milliseconds per call: {name: [round times]}, one call of each function per round."""
    times = {name: [] for name in functions}
    for round_index in range(warmup + rounds):
        for name, function in functions.items():
            synchronize()
            start = time.perf_counter()
            function()
            synchronize()
            if round_index >= warmup:
                times[name].append((time.perf_counter() - start) * 1e3)
    return times


def summarise(times):
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "median_ms": {name: round(value, 3) for name, value in medians.items()},
        "min_ms": {name: round(min(values), 3) for name, values in times.items()},
        "speedup_vs_multiscale": round(medians["multiscale"] / medians["ours"], 3),
        "speedup_vs_per_level_loop": round(medians["per_level_loop"] / medians["ours"], 3),
        "runs_ms": {name: [round(v, 3) for v in values] for name, values in times.items()},
    }


def bench_device(device, args):
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    features, rois = make_inputs(device, args.batch, args.channels, args.rois)
    functions = contenders(features, rois, args.sampling_ratio)
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    with torch.no_grad():
        outputs = {name: f(features) for name, f in functions.items()}
        max_diff = {name: float((outputs["ours"] - out).abs().max()) for name, out in outputs.items() if name != "ours"}
        del outputs
        forward = time_interleaved(
            {name: (lambda f=f: f(features)) for name, f in functions.items()},
            args.rounds,
            args.warmup,
            synchronize,
        )

    leaves = [f.detach().clone().requires_grad_(True) for f in features]
    weights = torch.randn((rois.shape[0], args.channels, 7, 7), device=device)

    def forward_backward(function):
        for leaf in leaves:
            leaf.grad = None
        (function(leaves) * weights).sum().backward()

    both = time_interleaved(
        {name: (lambda f=f: forward_backward(f)) for name, f in functions.items()},
        args.rounds,
        args.warmup,
        synchronize,
    )

    result = {
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else cpu_model(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": load,  # other processes share the CPU: read timings with it
        "config": {
            "batch": args.batch,
            "channels": args.channels,
            "image_hw": [IMAGE_HEIGHT, IMAGE_WIDTH],
            "strides": STRIDES,
            "num_rois": args.rois,
            "rois_per_level": torch.bincount(roi_levels(rois, 4).cpu(), minlength=4).tolist(),
            "output_size": [7, 7],
            "sampling_ratio": args.sampling_ratio,
            "aligned": False,
            "rounds": args.rounds,
            "warmup": args.warmup,
        },
        "max_abs_diff_vs_ours": max_diff,
        "forward": summarise(forward),
        "forward_backward": summarise(both),
    }
    if device == "cpu":
        result["target_speedup_vs_multiscale"] = CPU_TARGET_SPEEDUP
        result["target_met"] = result["forward"]["speedup_vs_multiscale"] >= CPU_TARGET_SPEEDUP
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", choices=["cpu", "cuda", "all"], default="all", help="'all': CPU, plus CUDA when available (default)"
    )
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    parser.add_argument("--rois", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--sampling-ratio", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        if args.device == "cuda":
            parser.error("--device cuda: no CUDA device available")
        devices.remove("cuda")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for device in devices:
        result = bench_device(device, args)
        path = args.out_dir / f"roi_align_{device}.json"
        atomic_write_json(path, result, indent=2)
        fwd, both = result["forward"], result["forward_backward"]
        print(f"[{device}] threads={result['torch_threads']} load={result['load_average_before']}")
        for title, block in (("forward", fwd), ("forward+backward", both)):
            medians = ", ".join(f"{k} {v:.1f} ms" for k, v in block["median_ms"].items())
            print(
                f"  {title}: {medians}; speedup vs MultiScaleRoIAlign "
                f"{block['speedup_vs_multiscale']:.2f}x, vs per-level loop "
                f"{block['speedup_vs_per_level_loop']:.2f}x"
            )
        print(f"  max |ours - other|: {result['max_abs_diff_vs_ours']}  -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
