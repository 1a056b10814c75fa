"""What TensorRT made of an INT8 (Q/DQ) and an fp16 engine of the same export, from trtexec's JSON.

    python -m sspnet.benchmark.trt_layers --fp16 DIR/fp16 --int8 DIR/int8 --out DIR/trt_int8_layers.json

Each of DIR/fp16 and DIR/int8 is the prefix of the files trtexec writes with
`--profilingVerbosity=detailed --dumpLayerInfo --dumpProfile --exportLayerInfo=P.layers.json
--exportProfile=P.profile.json --exportTimes=P.times.json` (scripts/gpu_check.sh, step trt_int8).
Per engine: the layer count, how many are Reformat layers, standalone Quantize / Dequantize layers
(Q/DQ TensorRT could not fuse into a neighbour), pointwise layers, and layers with int8 / fp16 /
fp32 outputs; the median GPU compute time per inference; and INT8's speed-up over fp16.
Fewer reformats and no standalone Q/DQ mean the placement let TensorRT fuse.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

QDQ_NAMES = ("QuantizeLinear", "DequantizeLinear")


def layer_kind(layer: dict) -> str:
    """ "reformat", "quantize", "dequantize", "pointwise" or "other" for one layer of the layer info.

    TensorRT names a layer after the ONNX nodes fused into it (joined by " + "): a layer whose
    nodes are all QuantizeLinear (DequantizeLinear) is a standalone Q (DQ) nobody absorbed."""
    kind = str(layer.get("LayerType", ""))
    if kind == "Reformat":
        return "reformat"
    if kind in ("Quantize", "Dequantize"):
        return kind.lower()
    nodes = [part.strip() for part in str(layer.get("Name", "")).split(" + ") if part.strip()]
    if nodes and kind not in ("CaskConvolution", "CaskGemmConvolution", "CaskPooling", "Gemm"):
        if all("DequantizeLinear" in node for node in nodes):
            return "dequantize"
        if all("QuantizeLinear" in node and "DequantizeLinear" not in node for node in nodes):
            return "quantize"
    if kind.startswith(("PointWise", "ElementWise", "Activation")):
        return "pointwise"
    return "other"


def output_type(layer: dict) -> str:
    """ "int8", "fp16", "fp32" or "other": the element type of the layer's first output."""
    outputs = layer.get("Outputs") or [{}]
    text = str(outputs[0].get("Format/Datatype", "")).lower()
    for name, keys in (("int8", ("int8",)), ("fp16", ("half", "fp16")), ("fp32", ("float", "fp32"))):
        if any(key in text for key in keys):
            return name
    return "other"


def summarize_layers(info: dict) -> dict:
    """Counts over trtexec's --exportLayerInfo JSON (detailed verbosity: one dict per layer)."""
    layers = [layer for layer in info.get("Layers", []) if isinstance(layer, dict)]
    counts = {"layers": len(layers), "reformat": 0, "quantize": 0, "dequantize": 0, "pointwise": 0}
    types = {"int8": 0, "fp16": 0, "fp32": 0, "other": 0}
    for layer in layers:
        kind = layer_kind(layer)
        if kind in counts:
            counts[kind] += 1
        types[output_type(layer)] += 1
    counts["standalone_qdq"] = counts["quantize"] + counts["dequantize"]
    return {**counts, "outputs_by_type": types}


def median_compute_ms(times: list[dict]) -> float:
    """Median GPU compute time (ms) per inference over trtexec's --exportTimes JSON."""
    values = [
        t["computeMs"] if "computeMs" in t else t["endComputeMs"] - t["startComputeMs"]
        for t in times
        if isinstance(t, dict)
    ]
    if not values:
        raise ValueError("no timing entries")
    return statistics.median(values)


def engine_summary(prefix: str | Path) -> dict:
    prefix = str(prefix)
    layers = json.loads(Path(prefix + ".layers.json").read_text())
    times = json.loads(Path(prefix + ".times.json").read_text())
    return {**summarize_layers(layers), "median_compute_ms": median_compute_ms(times)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fp16", required=True, help="prefix of the fp16 engine's trtexec JSON files")
    parser.add_argument("--int8", required=True, help="prefix of the INT8 (Q/DQ) engine's trtexec JSON files")
    parser.add_argument("--out", required=True, help="summary JSON to write")
    args = parser.parse_args(argv)

    from sspnet.io.atomic import atomic_write_json

    fp16, int8 = engine_summary(args.fp16), engine_summary(args.int8)
    document = {
        "benchmark": "trt_int8_layers",
        "fp16": fp16,
        "int8": int8,
        "int8_speedup_over_fp16": fp16["median_compute_ms"] / int8["median_compute_ms"],
    }
    atomic_write_json(args.out, document)
    for name, summary in (("fp16", fp16), ("int8", int8)):
        print(
            f"{name}: {summary['layers']} layers, {summary['reformat']} reformat, {summary['standalone_qdq']} "
            f"standalone Q/DQ, {summary['pointwise']} pointwise, median {summary['median_compute_ms']:.3f} ms"
        )
    print(f"INT8 vs fp16: {document['int8_speedup_over_fp16']:.2f}x; {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
