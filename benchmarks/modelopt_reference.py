"""NVIDIA Model Optimizer's INT8 Q/DQ placement of one ONNX model: the reference bench_int8.py
compares sspnet's TensorRT form with. Run with an interpreter that has `nvidia-modelopt` (and its
ONNX dependencies: onnx-graphsurgeon, polygraphy, ml_dtypes, onnxconverter-common); sspnet does not
depend on it.

    /tmp/mo-venv/bin/python benchmarks/modelopt_reference.py --model m.onnx --calib tiles.npy --out m_mo.onnx

Calibration on the CPU (calibration_eps=["cpu"]), max calibration, fp32 outside the Q/DQ pairs
(the placement is what is compared). A model with TensorRT plugin nodes cannot be calibrated
without TensorRT: give the portable flavour.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="float .onnx (portable flavour)")
    parser.add_argument("--calib", required=True, help="uint8 [N, 3, H, W] .npy of calibration tiles")
    parser.add_argument("--out", required=True, help="the Q/DQ model to write")
    parser.add_argument("--method", default="max", choices=("max", "entropy"), help="calibration (default max)")
    args = parser.parse_args(argv)

    import numpy as np
    from modelopt.onnx.quantization import quantize

    started = time.perf_counter()
    quantize(
        args.model,
        quantize_mode="int8",
        calibration_data={"images": np.load(args.calib)},
        calibration_method=args.method,
        calibration_eps=["cpu"],
        output_path=args.out,
        high_precision_dtype="fp32",
        log_level="ERROR",
    )
    import onnx

    # Model Optimizer drops the model's metadata: sspnet's runtime reads its contract from it.
    source, quantized = onnx.load(args.model, load_external_data=False), onnx.load(args.out)
    onnx.helper.set_model_props(quantized, {prop.key: prop.value for prop in source.metadata_props})
    onnx.save(quantized, args.out)
    print(f"modelopt: wrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
