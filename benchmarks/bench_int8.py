"""INT8 (Q/DQ) against fp32 on ONNX Runtime CPU: which calibration and which float layers keep
AP50-tiny, and how much faster INT8 runs; writes benchmarks/results/int8.json and int8.png.

    sspnet demo --out demo_out                      # a model trained with the demo recipe, and its data
    python benchmarks/bench_int8.py --model demo_out/model.onnx --data demo_out/data     # ~7 min
    python benchmarks/bench_int8.py --model demo_out/model.onnx --data demo_out/data --skip-faster-rcnn

Demo model (trained, the given .onnx at its export size), calibrated on the train split, AP50-tiny
on the val split, in one run:
  1. the three calibration methods (MinMax, Entropy, Percentile) with the default float layers;
  2. with the best method: which layer groups stay float (none, box, score, box + score, attention,
     all three) -> the recommended set is the one with the fewest float groups whose AP50-tiny is
     within 1.0 point of fp32 (the issue's limit), else the best;
  3. the same settings in the asymmetric (ONNX Runtime CPU) form;
  4. latency of fp32, INT8 symmetric (TensorRT form) and INT8 asymmetric (CPU form), batch 1,
     interleaved rounds (sspnet.benchmark.int8).
Faster R-CNN R50 SSPNet at 640 x 512 with random weights (latency only): exported once into --work,
calibrated (MinMax) on synthetic frames, the same three latency rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FLOAT_SETS = ((), ("box",), ("score",), ("box", "score"), ("attention",), ("attention", "box", "score"))
AP_LOSS_LIMIT = 1.0  # points of AP50-tiny: the accuracy INT8 may cost (docs/int8.md)
SPEEDUP_GOAL = 1.8
FASTER_RCNN_SIZE = (512, 640)  # (H, W)


def quantize_and_score(model, data, work: Path, method, floats, activations, max_tiles, log) -> dict:
    from sspnet.benchmark.int8 import ap50_tiny
    from sspnet.export.quantize import QuantizeSettings, quantize_onnx

    out = work / f"int8_{activations}_{method}_{'-'.join(floats) or 'none'}.onnx"
    started = time.perf_counter()
    report = quantize_onnx(model, out, data, QuantizeSettings(method=method, float_groups=tuple(floats),
                                                              activations=activations, max_tiles=max_tiles),
                           calibration_cache=work / (f"ranges_{method}.json" if method == "minmax"
                                                     else f"ranges_{method}_{activations}.json"), log=log)
    ap = ap50_tiny(str(out), data)
    row = {"method": method, "float_groups": list(floats), "activations": activations, "model": str(out),
           "ap50_tiny": ap, "calibration_s": report.seconds.get("calibration"),
           "quantize_s": time.perf_counter() - started, "quantized_nodes": report.quantized_nodes,
           "float_weight_layers": len(report.qdq["float_weight_layers"])}
    log(f"    {activations} {method} float={'+'.join(floats) or 'none'}: AP50-tiny {ap:.2f}")
    return row


def choose_float_groups(rows: list[dict], fp32_ap: float) -> tuple[str, ...]:
    """Fewest float groups within AP_LOSS_LIMIT of fp32 (ties: higher AP); else the best AP."""
    within = [row for row in rows if fp32_ap - row["ap50_tiny"] <= AP_LOSS_LIMIT]
    pool = within or rows
    best = min(pool, key=lambda row: (len(row["float_groups"]) if within else 0, -row["ap50_tiny"]))
    return tuple(best["float_groups"])


def demo_model_study(model: str, data: str, work: Path, max_tiles: int, rounds: int, log=print) -> dict:
    from sspnet.benchmark.int8 import ap50_tiny, interleaved_latency
    from sspnet.export.quantize import DEFAULT_FLOAT_GROUPS, METHODS
    from sspnet.runtime.backend import load_backend

    input_size = tuple(load_backend(model).input_size)
    fp32_ap = ap50_tiny(model, data)
    log(f"fp32 AP50-tiny {fp32_ap:.2f} (val split of {data})")
    log("1. calibration methods (symmetric form, default float groups)")
    methods = [quantize_and_score(model, data, work, method, DEFAULT_FLOAT_GROUPS, "symmetric", max_tiles, log)
               for method in METHODS]
    best_method = max(methods, key=lambda row: row["ap50_tiny"])["method"]
    log(f"2. float groups with {best_method}")
    float_rows = [row for row in methods if row["method"] == best_method]
    for floats in FLOAT_SETS:
        if not any(row["float_groups"] == list(floats) for row in float_rows):
            float_rows.append(quantize_and_score(model, data, work, best_method, floats, "symmetric", max_tiles, log))
    chosen = choose_float_groups(float_rows, fp32_ap)
    symmetric = next(row for row in float_rows if row["float_groups"] == list(chosen))
    log(f"3. asymmetric (ONNX Runtime CPU) form: {best_method}, float={'+'.join(chosen) or 'none'}")
    asymmetric = quantize_and_score(model, data, work, best_method, chosen, "asymmetric", max_tiles, log)
    log("4. latency (ONNX Runtime CPU, batch 1, interleaved rounds)")
    latency = interleaved_latency([model, symmetric["model"], asymmetric["model"]], input_size, rounds=rounds,
                                  iters=10, progress=True)
    fp32_p50 = latency[model]["p50"]
    return {
        "model": model, "data": data, "input_size": list(input_size), "fp32_ap50_tiny": fp32_ap,
        "methods": methods, "float_groups": float_rows,
        "recommended": {"method": best_method, "float_groups": list(chosen)},
        "symmetric": symmetric, "asymmetric": asymmetric,
        "latency_ms": {"fp32": latency[model], "int8_symmetric": latency[symmetric["model"]],
                       "int8_asymmetric": latency[asymmetric["model"]]},
        "speedup": {"int8_symmetric": fp32_p50 / latency[symmetric["model"]]["p50"],
                    "int8_asymmetric": fp32_p50 / latency[asymmetric["model"]]["p50"]},
        "ap_loss": {"int8_symmetric": fp32_ap - symmetric["ap50_tiny"],
                    "int8_asymmetric": fp32_ap - asymmetric["ap50_tiny"]},
    }


def faster_rcnn_study(work: Path, rounds: int, log=print) -> dict:
    """faster_rcnn_r50_sspnet at 640 x 512, random weights: fp32 vs both INT8 forms, latency only."""
    import numpy as np
    from PIL import Image

    from sspnet.benchmark.int8 import interleaved_latency
    from sspnet.data.synth import generate_image
    from sspnet.export.quantize import QuantizeSettings, quantize_onnx

    model = work / "faster_rcnn_r50_sspnet_512x640.onnx"
    if not model.is_file():
        import torch

        from sspnet.export.onnx_export import export_onnx
        from sspnet.models import build_model

        torch.manual_seed(0)
        export_onnx(build_model("faster_rcnn_r50_sspnet").eval(), model, imgsz=FASTER_RCNN_SIZE)
    calib = work / "calib_512x640"
    calib.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(8):
        if not (calib / f"{k}.png").is_file():
            image, _ = generate_image(rng, FASTER_RCNN_SIZE[1], FASTER_RCNN_SIZE[0])
            Image.fromarray(image).save(calib / f"{k}.png")
    outs = {}
    for activations in ("symmetric", "asymmetric"):
        out = work / f"faster_rcnn_r50_sspnet_512x640_int8_{activations}.onnx"
        quantize_onnx(model, out, calib, QuantizeSettings(method="minmax", activations=activations, max_tiles=8),
                      calibration_cache=work / "faster_rcnn_ranges_minmax.json", log=log)  # one MinMax run, both forms
        outs[activations] = str(out)
    log("latency (ONNX Runtime CPU, batch 1)")
    latency = interleaved_latency([str(model), outs["symmetric"], outs["asymmetric"]], FASTER_RCNN_SIZE,
                                  rounds=rounds, iters=2, warmup=1, progress=True)
    fp32_p50 = latency[str(model)]["p50"]
    return {"model": str(model), "weights": "random (latency only)", "input_size": list(FASTER_RCNN_SIZE),
            "latency_ms": {"fp32": latency[str(model)], "int8_symmetric": latency[outs["symmetric"]],
                           "int8_asymmetric": latency[outs["asymmetric"]]},
            "speedup": {"int8_symmetric": fp32_p50 / latency[outs["symmetric"]]["p50"],
                        "int8_asymmetric": fp32_p50 / latency[outs["asymmetric"]]["p50"]}}


def plot(document: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sspnet.benchmark.report import save_figure

    demo = document["demo_model"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    rows = demo["methods"] + [row for row in demo["float_groups"] if row not in demo["methods"]] + [demo["asymmetric"]]
    labels = [f"{row['activations'][:4]} {row['method']} float={'+'.join(row['float_groups']) or 'none'}" for row in rows]
    left.barh(range(len(rows)), [row["ap50_tiny"] for row in rows], color="#4c72b0")
    left.axvline(demo["fp32_ap50_tiny"], color="k", linestyle="--", label=f"fp32 {demo['fp32_ap50_tiny']:.1f}")
    left.axvline(demo["fp32_ap50_tiny"] - AP_LOSS_LIMIT, color="r", linestyle=":", label="fp32 - 1.0")
    left.set_yticks(range(len(rows)), labels, fontsize=8)
    left.invert_yaxis()
    left.set_xlim(max(0.0, min(row["ap50_tiny"] for row in rows) - 5), demo["fp32_ap50_tiny"] + 3)
    left.set_xlabel("AP50-tiny (%), val split")
    left.legend(fontsize=8, loc="lower right")
    left.set_title("demo model: calibration method and float layers", fontsize=10)
    groups = [("demo model", demo)] + ([("Faster R-CNN R50 640x512", document["faster_rcnn"])]
                                       if document.get("faster_rcnn") else [])
    names = ("fp32", "int8_symmetric", "int8_asymmetric")
    colours = ("#7f7f7f", "#4c72b0", "#dd8452")
    for g, (_title, study) in enumerate(groups):
        base = study["latency_ms"]["fp32"]["p50"]
        for k, (name, colour) in enumerate(zip(names, colours)):
            value = study["latency_ms"][name]["p50"] / base
            right.bar(g + (k - 1) * 0.27, value, width=0.25, color=colour, label=name if g == 0 else None)
            right.text(g + (k - 1) * 0.27, value, f"{study['latency_ms'][name]['p50']:.0f} ms", ha="center",
                       va="bottom", fontsize=7)
    right.set_xticks(range(len(groups)), [title for title, _ in groups], fontsize=8)
    right.set_ylabel("p50 latency relative to fp32")
    right.set_title("ONNX Runtime CPU, batch 1", fontsize=10)
    right.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="the trained demo model, portable .onnx (sspnet demo writes it)")
    parser.add_argument("--data", required=True, help="its data folder (train split calibrates, val split scores)")
    parser.add_argument("--max-tiles", type=int, default=64, help="calibration tiles (default 64)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved latency rounds (default 5)")
    parser.add_argument("--skip-faster-rcnn", action="store_true", help="only the demo model")
    parser.add_argument("--work", default="/tmp/sspnet_bench_int8", help="folder for the quantized models")
    parser.add_argument("--out", default=str(RESULTS / "int8"), help="output stem (default benchmarks/results/int8)")
    args = parser.parse_args(argv)

    from sspnet.benchmark.harness import machine_info
    from sspnet.export.quantize import DEFAULT_FLOAT_GROUPS, DEFAULT_METHOD
    from sspnet.io.atomic import atomic_write_json

    started = time.perf_counter()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": "int8",
                "command": " ".join(["python", "benchmarks/bench_int8.py", *(argv or sys.argv[1:])]),
                "machine": machine_info(), "ap_loss_limit": AP_LOSS_LIMIT, "speedup_goal": SPEEDUP_GOAL}
    document["demo_model"] = demo = demo_model_study(args.model, args.data, work, args.max_tiles, args.rounds)
    if not args.skip_faster_rcnn:
        print("Faster R-CNN R50 SSPNet 640x512 (random weights)")
        document["faster_rcnn"] = faster_rcnn_study(work, max(2, args.rounds // 2))
    recommended = demo["recommended"]
    document["code_defaults"] = {"method": DEFAULT_METHOD, "float_groups": list(DEFAULT_FLOAT_GROUPS),
                                 "match_recommendation": recommended == {"method": DEFAULT_METHOD,
                                                                         "float_groups": list(DEFAULT_FLOAT_GROUPS)}}
    document["wall_time_s"] = round(time.perf_counter() - started, 1)
    stem = Path(args.out)
    atomic_write_json(stem.with_suffix(".json"), document)
    plot(document, stem.with_suffix(".png"))

    print(f"\nfp32 AP50-tiny {demo['fp32_ap50_tiny']:.2f}; recommended: --method {recommended['method']} "
          f"--float {' '.join(recommended['float_groups']) or '(none)'} "
          f"({'same as' if document['code_defaults']['match_recommendation'] else 'DIFFERENT FROM'} the code defaults)")
    print("| model | form | AP50-tiny | AP loss | p50 ms | speed-up vs fp32 |\n|---|---|---|---|---|---|")
    print(f"| demo {demo['input_size'][0]}x{demo['input_size'][1]} | fp32 | {demo['fp32_ap50_tiny']:.2f} | - | "
          f"{demo['latency_ms']['fp32']['p50']:.1f} | 1.00x |")
    for form in ("symmetric", "asymmetric"):
        key = f"int8_{form}"
        print(f"| demo | INT8 {form} | {demo[form]['ap50_tiny']:.2f} | {demo['ap_loss'][key]:.2f} | "
              f"{demo['latency_ms'][key]['p50']:.1f} | {demo['speedup'][key]:.2f}x |")
    if document.get("faster_rcnn"):
        frcnn = document["faster_rcnn"]
        for key in ("fp32", "int8_symmetric", "int8_asymmetric"):
            speed = "1.00x" if key == "fp32" else f"{frcnn['speedup'][key]:.2f}x"
            print(f"| faster_rcnn_r50_sspnet 512x640 (random) | {key} | - | - | "
                  f"{frcnn['latency_ms'][key]['p50']:.0f} | {speed} |")
    print(f"\nJSON {stem.with_suffix('.json')}, plot {stem.with_suffix('.png')}; {document['wall_time_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
