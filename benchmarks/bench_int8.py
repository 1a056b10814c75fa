"""INT8 (Q/DQ) against fp32 on ONNX Runtime CPU: which calibration and which float layers keep
AP50-tiny, and how much faster INT8 runs; writes benchmarks/results/int8.json and int8.png. And
where the Q/DQ nodes sit for TensorRT: benchmarks/results/int8_placement.json.

    sspnet demo --out demo_out                      # a model trained with the demo recipe, and its data
    python benchmarks/bench_int8.py --model demo_out/model.onnx --data demo_out/data     # ~7 min
    python benchmarks/bench_int8.py --model demo_out/model.onnx --data demo_out/data --skip-faster-rcnn
    python benchmarks/bench_int8.py --placement-only --modelopt-python /tmp/mo-venv/bin/python   # ~10 min

Demo model (trained, the given .onnx at its export size), calibrated on the train split, AP50-tiny
on the val split, in one run:
  1. the three calibration methods (MinMax, Entropy, Percentile) with the default float layers;
  2. with the best method: which layer groups stay float (none, box, score, box + score, attention,
     all three) -> the recommended set is the one with the fewest float groups whose AP50-tiny is
     within 1.0 point of fp32 (the issue's limit), else the best;
  3. the TensorRT form's variants with those settings: ONNX Runtime's own Q/DQ placement in fp32
     (the form before the TensorRT placement), the TensorRT placement in fp32, and in fp16 (the
     default), each with its TensorRT-lint errors and fusion blockers; with --modelopt-python,
     NVIDIA Model Optimizer's placement of the same model (max calibration on the same tiles);
  4. the same settings in the asymmetric (ONNX Runtime CPU) form;
  5. latency of fp32, INT8 symmetric (TensorRT form) and INT8 asymmetric (CPU form), batch 1,
     interleaved rounds (sspnet.benchmark.int8). The TensorRT forms' AP50-tiny is scored with ONNX
     Runtime's Q/DQ fusions off (every Q/DQ computed as written, as TensorRT's int8 layers do;
     sspnet.benchmark.int8.ap50_tiny), and also with them on ("ap50_tiny_onnxruntime_kernels"). The
     fp16 form runs through ONNX Runtime's CPU fp16 fallback (Casts to fp32 around the ops without
     an fp16 kernel, fp16 tensors between them); its CPU latency says nothing about TensorRT.
Faster R-CNN R50 SSPNet at 640 x 512 with random weights (latency only): exported once into --work,
calibrated (MinMax) on synthetic frames, the same three latency rows.
Placement (int8_placement.json, random weights, no trained model needed): every preset's
`tensorrt`-flavour export quantized with ONNX Runtime's placement (before) and the TensorRT
placement (now), TensorRT-lint errors and fusion blockers of each; with --modelopt-python, Model
Optimizer's placement of the `portable` flavour beside ours on the same export (Model Optimizer
cannot calibrate plugin nodes on the CPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FLOAT_SETS = ((), ("box",), ("score",), ("box", "score"), ("attention",), ("attention", "box", "score"))
AP_LOSS_LIMIT = 1.0  # points of AP50-tiny: the accuracy INT8 may cost (docs/int8.md)
SPEEDUP_GOAL = 1.8
FASTER_RCNN_SIZE = (512, 640)  # (H, W)


def lint_counts(path) -> dict:
    """TensorRT-lint errors and Q/DQ fusion blockers (per rule and in total) of a model file."""
    from sspnet.export.trt_lint import fusion_blockers, lint_file

    findings = lint_file(path)
    blockers = fusion_blockers(findings)
    return {
        "errors": sum(f.severity == "error" for f in findings),
        "error_messages": [str(f) for f in findings if f.severity == "error"][:5],
        "fusion_blockers": blockers,
        "fusion_blockers_total": sum(blockers.values()),
    }


def quantize_and_score(
    model, data, work: Path, method, floats, activations, max_tiles, log, placement="tensorrt", float_type=None
) -> dict:
    from sspnet.export.quantize import QuantizeSettings, quantize_onnx

    from sspnet.benchmark.int8 import ap50_tiny

    settings = QuantizeSettings(
        method=method,
        float_groups=tuple(floats),
        activations=activations,
        max_tiles=max_tiles,
        placement=placement,
        float_type=float_type,
    )
    form = "" if activations == "asymmetric" else f"_{placement}_{settings.resolved_float_type}"
    out = work / f"int8_{activations}{form}_{method}_{'-'.join(floats) or 'none'}.onnx"
    started = time.perf_counter()
    report = quantize_onnx(
        model,
        out,
        data,
        settings,
        calibration_cache=work
        / (f"ranges_{method}.json" if method == "minmax" else f"ranges_{method}_{activations}.json"),
        log=log,
    )
    ap = ap50_tiny(str(out), data)
    row = {
        "method": method,
        "float_groups": list(floats),
        "activations": activations,
        "model": str(out),
        "placement": report.placement,
        "float_type": report.float_type,
        "ap50_tiny": ap,
        "calibration_s": report.seconds.get("calibration"),
        "quantize_s": time.perf_counter() - started,
        "quantized_nodes": report.quantized_nodes,
        "float_weight_layers": len(report.qdq["float_weight_layers"]),
        "qdq_nodes": report.qdq["quantize_linear"] + report.qdq["dequantize_linear"],
        "lint": lint_counts(out),
    }
    log(
        f"    {activations}{form} {method} float={'+'.join(floats) or 'none'}: AP50-tiny {ap:.2f}, "
        f"fusion blockers {row['lint']['fusion_blockers_total']}"
    )
    return row


def calibration_array(model, data, max_tiles: int, path: Path) -> Path:
    """The calibration tiles quantize_onnx uses (train split), as one uint8 [N, 3, H, W] .npy."""
    import numpy as np
    from sspnet.export.quantize import calibration_images, calibration_tiles
    from sspnet.runtime.backend import load_backend

    size = tuple(load_backend(str(model)).input_size)
    np.save(path, np.concatenate(list(calibration_tiles(calibration_images(data, "train"), size, max_tiles))))
    return path


def modelopt_quantize(python: str, model, calib_npy: Path, out: Path, log) -> dict:
    """Model Optimizer's Q/DQ model of `model` (benchmarks/modelopt_reference.py in its own
    interpreter); {"model": path} or {"error": its last line}."""
    import subprocess

    script = ROOT / "benchmarks" / "modelopt_reference.py"
    run = subprocess.run(
        [python, str(script), "--model", str(model), "--calib", str(calib_npy), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
        log(f"    modelopt failed: {last}")
        return {"error": last}
    return {"model": str(out)}


def choose_float_groups(rows: list[dict], fp32_ap: float) -> tuple[str, ...]:
    """Fewest float groups within AP_LOSS_LIMIT of fp32 (ties: higher AP); else the best AP."""
    within = [row for row in rows if fp32_ap - row["ap50_tiny"] <= AP_LOSS_LIMIT]
    pool = within or rows
    best = min(pool, key=lambda row: (len(row["float_groups"]) if within else 0, -row["ap50_tiny"]))
    return tuple(best["float_groups"])


def demo_model_study(
    model: str,
    data: str,
    work: Path,
    max_tiles: int,
    rounds: int,
    log=print,
    float_groups: bool = True,
    modelopt_python: str | None = None,
    latency: bool = True,
) -> dict:
    from sspnet.export.quantize import DEFAULT_FLOAT_GROUPS, METHODS
    from sspnet.runtime.backend import load_backend

    from sspnet.benchmark.int8 import ap50_tiny, interleaved_latency

    input_size = tuple(load_backend(model).input_size)
    fp32_ap = ap50_tiny(model, data)
    log(f"fp32 AP50-tiny {fp32_ap:.2f} (val split of {data})")
    log("1. calibration methods (symmetric form, default float groups)")
    methods = [
        quantize_and_score(model, data, work, method, DEFAULT_FLOAT_GROUPS, "symmetric", max_tiles, log)
        for method in METHODS
    ]
    best_method = max(methods, key=lambda row: row["ap50_tiny"])["method"]
    log(f"2. float groups with {best_method}")
    float_rows = [row for row in methods if row["method"] == best_method]
    for floats in FLOAT_SETS if float_groups else ():
        if not any(row["float_groups"] == list(floats) for row in float_rows):
            float_rows.append(quantize_and_score(model, data, work, best_method, floats, "symmetric", max_tiles, log))
    chosen = choose_float_groups(float_rows, fp32_ap)
    symmetric = next(row for row in float_rows if row["float_groups"] == list(chosen))
    log(f"3. TensorRT form variants: {best_method}, float={'+'.join(chosen) or 'none'}")
    tensorrt_forms = {"tensorrt_fp16": symmetric}
    for placement, float_type in (("onnxruntime", "fp32"), ("tensorrt", "fp32")):
        tensorrt_forms[f"{placement}_{float_type}"] = quantize_and_score(
            model, data, work, best_method, chosen, "symmetric", max_tiles, log, placement, float_type
        )
    from sspnet.benchmark.int8 import ap50_tiny

    for row in tensorrt_forms.values():  # beside the exact Q/DQ score: ONNX Runtime's own int8 kernels
        row["ap50_tiny_onnxruntime_kernels"] = ap50_tiny(row["model"], data, exact_qdq=False)
    if modelopt_python:
        calib = calibration_array(model, data, max_tiles, work / "calibration_tiles.npy")
        reference = modelopt_quantize(modelopt_python, model, calib, work / "int8_modelopt.onnx", log)
        if "model" in reference:
            reference.update(
                ap50_tiny=ap50_tiny(reference["model"], data, exact_qdq=True), lint=lint_counts(reference["model"])
            )
            log(
                f"    modelopt (max): AP50-tiny {reference['ap50_tiny']:.2f}, "
                f"fusion blockers {reference['lint']['fusion_blockers_total']}"
            )
        tensorrt_forms["modelopt_reference"] = reference
    log(f"4. asymmetric (ONNX Runtime CPU) form: {best_method}, float={'+'.join(chosen) or 'none'}")
    asymmetric = quantize_and_score(model, data, work, best_method, chosen, "asymmetric", max_tiles, log)
    study = {
        "model": model,
        "data": data,
        "input_size": list(input_size),
        "fp32_ap50_tiny": fp32_ap,
        "methods": methods,
        "float_groups": float_rows,
        "recommended": {"method": best_method, "float_groups": list(chosen)},
        "symmetric": symmetric,
        "asymmetric": asymmetric,
        "tensorrt_forms": tensorrt_forms,
        "tensorrt_forms_ap_loss": {
            name: fp32_ap - row["ap50_tiny"] for name, row in tensorrt_forms.items() if "ap50_tiny" in row
        },
        "ap_loss": {
            "int8_symmetric": fp32_ap - symmetric["ap50_tiny"],
            "int8_asymmetric": fp32_ap - asymmetric["ap50_tiny"],
        },
    }
    if latency:
        log("5. latency (ONNX Runtime CPU, batch 1, interleaved rounds)")
        timings = interleaved_latency(
            [model, symmetric["model"], asymmetric["model"]], input_size, rounds=rounds, iters=10, progress=True
        )
        fp32_p50 = timings[model]["p50"]
        study["latency_ms"] = {
            "fp32": timings[model],
            "int8_symmetric": timings[symmetric["model"]],
            "int8_asymmetric": timings[asymmetric["model"]],
        }
        study["speedup"] = {
            "int8_symmetric": fp32_p50 / timings[symmetric["model"]]["p50"],
            "int8_asymmetric": fp32_p50 / timings[asymmetric["model"]]["p50"],
        }
    return study


def faster_rcnn_study(work: Path, rounds: int, log=print) -> dict:
    """faster_rcnn_r50_sspnet at 640 x 512, random weights: fp32 vs both INT8 forms, latency only."""
    import numpy as np
    from PIL import Image
    from sspnet.export.quantize import QuantizeSettings, quantize_onnx

    from sspnet.benchmark.int8 import interleaved_latency
    from sspnet.data.synth import generate_image

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
        quantize_onnx(
            model,
            out,
            calib,
            QuantizeSettings(method="minmax", activations=activations, max_tiles=8),
            calibration_cache=work / "faster_rcnn_ranges_minmax.json",
            log=log,
        )  # one MinMax run, both forms
        outs[activations] = str(out)
    log("latency (ONNX Runtime CPU, batch 1)")
    latency = interleaved_latency(
        [str(model), outs["symmetric"], outs["asymmetric"]],
        FASTER_RCNN_SIZE,
        rounds=rounds,
        iters=2,
        warmup=1,
        progress=True,
    )
    fp32_p50 = latency[str(model)]["p50"]
    return {
        "model": str(model),
        "weights": "random (latency only)",
        "input_size": list(FASTER_RCNN_SIZE),
        "latency_ms": {
            "fp32": latency[str(model)],
            "int8_symmetric": latency[outs["symmetric"]],
            "int8_asymmetric": latency[outs["asymmetric"]],
        },
        "speedup": {
            "int8_symmetric": fp32_p50 / latency[outs["symmetric"]]["p50"],
            "int8_asymmetric": fp32_p50 / latency[outs["asymmetric"]]["p50"],
        },
    }


PLACEMENT_PRESETS = (
    "fovea_r18_sspnet_small",
    "faster_rcnn_r18_sspnet_small",
    "fovea_r50_sspnet",
    "faster_rcnn_r50_sspnet",
)
PLACEMENT_SIZE = (256, 320)  # (H, W): the size of the lint tests' exports


def placement_study(work: Path, presets=PLACEMENT_PRESETS, modelopt_python: str | None = None, log=print) -> dict:
    """Every preset (random weights): Q/DQ placement before / now, lint errors and fusion blockers;
    Model Optimizer's placement of the portable flavour beside ours (see the module docstring)."""
    import numpy as np
    import torch
    from PIL import Image
    from sspnet.export.onnx_export import export_onnx
    from sspnet.export.quantize import QuantizeSettings, quantize_onnx

    from sspnet.data.synth import generate_image
    from sspnet.models import build_model

    calib = work / f"calib_{PLACEMENT_SIZE[0]}x{PLACEMENT_SIZE[1]}"
    calib.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(4):
        if not (calib / f"{k}.png").is_file():
            Image.fromarray(generate_image(rng, PLACEMENT_SIZE[1], PLACEMENT_SIZE[0])[0]).save(calib / f"{k}.png")
    rows = {}
    for preset in presets:
        log(f"placement: {preset}")
        row = rows[preset] = {}
        flavors = ("tensorrt", "portable") if modelopt_python else ("tensorrt",)
        for flavor in flavors:
            model = work / f"{preset}_{flavor}.onnx"
            if not model.is_file():
                torch.manual_seed(0)
                export_onnx(build_model(preset).eval(), model, imgsz=PLACEMENT_SIZE, flavor=flavor)
            ranges = work / f"{preset}_{flavor}_ranges.json"  # one MinMax calibration for every form
            forms = (
                {"before": ("onnxruntime", "fp32"), "now": ("tensorrt", "fp16")}
                if flavor == "tensorrt"
                else {"now": ("tensorrt", "fp16")}
            )
            for name, (placement, float_type) in forms.items():
                out = work / f"{preset}_{flavor}_int8_{placement}_{float_type}.onnx"
                report = quantize_onnx(
                    model,
                    out,
                    calib,
                    QuantizeSettings(
                        method="minmax", max_tiles=4, progress=False, placement=placement, float_type=float_type
                    ),
                    calibration_cache=ranges,
                    log=lambda *_: None,
                )
                row[f"{flavor}_{name}"] = {
                    "placement": placement,
                    "float_type": float_type,
                    "qdq_nodes": report.qdq["quantize_linear"] + report.qdq["dequantize_linear"],
                    **lint_counts(out),
                }
                log(
                    f"    {flavor} {name} ({placement}, {float_type}): {row[f'{flavor}_{name}']['errors']} errors, "
                    f"{row[f'{flavor}_{name}']['fusion_blockers_total']} fusion blockers"
                )
            if flavor == "portable":
                tiles = work / f"{preset}_calibration_tiles.npy"
                from sspnet.export.quantize import calibration_images, calibration_tiles

                np.save(tiles, np.concatenate(list(calibration_tiles(calibration_images(calib), PLACEMENT_SIZE, 4))))
                reference = modelopt_quantize(
                    modelopt_python, model, tiles, work / f"{preset}_portable_modelopt.onnx", log
                )
                if "model" in reference:
                    reference.update(lint_counts(reference["model"]))
                    ours = row["portable_now"]["fusion_blockers"]
                    reference["rules_where_ours_has_more"] = [
                        rule for rule, count in ours.items() if count > reference["fusion_blockers"][rule]
                    ]
                    log(
                        f"    portable modelopt: {reference['errors']} errors, "
                        f"{reference['fusion_blockers_total']} fusion blockers"
                    )
                row["portable_modelopt"] = reference
    return {
        "input_size": list(PLACEMENT_SIZE),
        "weights": "random (seed 0): structure only",
        "calibration": "MinMax, 4 synthetic frames",
        "presets": rows,
    }


def plot(document: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sspnet.benchmark.report import save_figure

    demo = document["demo_model"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    rows = demo["methods"] + [row for row in demo["float_groups"] if row not in demo["methods"]] + [demo["asymmetric"]]
    labels = [
        f"{row['activations'][:4]} {row['method']} float={'+'.join(row['float_groups']) or 'none'}" for row in rows
    ]
    left.barh(range(len(rows)), [row["ap50_tiny"] for row in rows], color="#4c72b0")
    left.axvline(demo["fp32_ap50_tiny"], color="k", linestyle="--", label=f"fp32 {demo['fp32_ap50_tiny']:.1f}")
    left.axvline(demo["fp32_ap50_tiny"] - AP_LOSS_LIMIT, color="r", linestyle=":", label="fp32 - 1.0")
    left.set_yticks(range(len(rows)), labels, fontsize=8)
    left.invert_yaxis()
    left.set_xlim(max(0.0, min(row["ap50_tiny"] for row in rows) - 5), demo["fp32_ap50_tiny"] + 3)
    left.set_xlabel("AP50-tiny (%), val split")
    left.legend(fontsize=8, loc="lower right")
    left.set_title("demo model: calibration method and float layers", fontsize=10)
    groups = ([("demo model", demo)] if "latency_ms" in demo else []) + (
        [("Faster R-CNN R50 640x512", document["faster_rcnn"])] if document.get("faster_rcnn") else []
    )
    names = ("fp32", "int8_symmetric", "int8_asymmetric")
    colours = ("#7f7f7f", "#4c72b0", "#dd8452")
    for g, (_title, study) in enumerate(groups):
        base = study["latency_ms"]["fp32"]["p50"]
        for k, (name, colour) in enumerate(zip(names, colours)):
            value = study["latency_ms"][name]["p50"] / base
            right.bar(g + (k - 1) * 0.27, value, width=0.25, color=colour, label=name if g == 0 else None)
            right.text(
                g + (k - 1) * 0.27,
                value,
                f"{study['latency_ms'][name]['p50']:.0f} ms",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    right.set_xticks(range(len(groups)), [title for title, _ in groups], fontsize=8)
    right.set_ylabel("p50 latency relative to fp32")
    right.set_title("ONNX Runtime CPU, batch 1", fontsize=10)
    right.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="the trained demo model, portable .onnx (sspnet demo writes it)")
    parser.add_argument("--data", help="its data folder (train split calibrates, val split scores)")
    parser.add_argument("--skip-float-groups", action="store_true", help="no float-group variants (step 2)")
    parser.add_argument(
        "--part",
        choices=("all", "accuracy"),
        default="all",
        help="accuracy: AP50-tiny and lint only (no latency, no Faster R-CNN timing): the part "
        "that needs no quiet machine",
    )
    parser.add_argument("--modelopt-python", help="an interpreter with nvidia-modelopt: its placement as reference")
    parser.add_argument(
        "--placement-only",
        action="store_true",
        help="only the placement study of every preset (no trained model needed)",
    )
    parser.add_argument("--skip-placement", action="store_true", help="no placement study")
    parser.add_argument(
        "--placement-out",
        default=str(RESULTS / "int8_placement.json"),
        help="placement study JSON (default benchmarks/results/int8_placement.json)",
    )
    parser.add_argument("--max-tiles", type=int, default=64, help="calibration tiles (default 64)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved latency rounds (default 5)")
    parser.add_argument("--skip-faster-rcnn", action="store_true", help="only the demo model")
    parser.add_argument("--work", default="/tmp/sspnet_bench_int8", help="folder for the quantized models")
    parser.add_argument("--out", default=str(RESULTS / "int8"), help="output stem (default benchmarks/results/int8)")
    args = parser.parse_args(argv)

    from sspnet.export.quantize import DEFAULT_FLOAT_GROUPS, DEFAULT_METHOD

    from sspnet.benchmark.harness import machine_info
    from sspnet.io.atomic import atomic_write_json

    if not args.placement_only and not (args.model and args.data):
        parser.error("--model and --data are needed (or --placement-only)")
    started = time.perf_counter()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not args.skip_placement:
        placement = {
            "benchmark": "int8_placement",
            "command": " ".join(["python", "benchmarks/bench_int8.py", *(argv or sys.argv[1:])]),
            "machine": machine_info(),
            "modelopt": _modelopt_version(args.modelopt_python),
            **placement_study(work, modelopt_python=args.modelopt_python),
        }
        atomic_write_json(args.placement_out, placement)
        print("| preset | before: errors / fusion blockers | now: errors / fusion blockers | modelopt (portable) |")
        print("|---|---|---|---|")
        for preset, row in placement["presets"].items():
            reference = row.get("portable_modelopt", {})
            before, now = row["tensorrt_before"], row["tensorrt_now"]
            print(
                f"| {preset} | {before['errors']} / {before['fusion_blockers_total']} | "
                f"{now['errors']} / {now['fusion_blockers_total']} | "
                f"{reference.get('errors', '-')} / {reference.get('fusion_blockers_total', '-')} |"
            )
        print(f"JSON {args.placement_out}")
        if args.placement_only:
            return 0
    document = {
        "benchmark": "int8",
        "command": " ".join(["python", "benchmarks/bench_int8.py", *(argv or sys.argv[1:])]),
        "machine": machine_info(),
        "load_average_at_start": list(os.getloadavg()),
        "ap_loss_limit": AP_LOSS_LIMIT,
        "speedup_goal": SPEEDUP_GOAL,
    }
    document["demo_model"] = demo = demo_model_study(
        args.model,
        args.data,
        work,
        args.max_tiles,
        args.rounds,
        float_groups=not args.skip_float_groups,
        modelopt_python=args.modelopt_python,
        latency=args.part == "all",
    )
    if not args.skip_faster_rcnn and args.part == "all":
        print("Faster R-CNN R50 SSPNet 640x512 (random weights)")
        document["faster_rcnn"] = faster_rcnn_study(work, max(2, args.rounds // 2))
    recommended = demo["recommended"]
    document["code_defaults"] = {
        "method": DEFAULT_METHOD,
        "float_groups": list(DEFAULT_FLOAT_GROUPS),
        "match_recommendation": recommended == {"method": DEFAULT_METHOD, "float_groups": list(DEFAULT_FLOAT_GROUPS)},
    }
    document["wall_time_s"] = round(time.perf_counter() - started, 1)
    document["load_average_at_end"] = list(os.getloadavg())  # `uptime`'s 1 / 5 / 15 minute load
    stem = Path(args.out)
    atomic_write_json(stem.with_suffix(".json"), document)
    plot(document, stem.with_suffix(".png"))

    print(
        f"\nfp32 AP50-tiny {demo['fp32_ap50_tiny']:.2f}; recommended: --method {recommended['method']} "
        f"--float {' '.join(recommended['float_groups']) or '(none)'} "
        f"({'same as' if document['code_defaults']['match_recommendation'] else 'DIFFERENT FROM'} the code defaults)"
    )
    print("| model | form | AP50-tiny | AP loss | p50 ms | speed-up vs fp32 |\n|---|---|---|---|---|---|")
    latency = demo.get("latency_ms", {})
    ms = {key: f"{value['p50']:.1f}" for key, value in latency.items()}
    print(
        f"| demo {demo['input_size'][0]}x{demo['input_size'][1]} | fp32 | {demo['fp32_ap50_tiny']:.2f} | - | "
        f"{ms.get('fp32', '-')} | 1.00x |"
    )
    for name, row in demo["tensorrt_forms"].items():
        if "ap50_tiny" in row:
            loss = demo["tensorrt_forms_ap_loss"][name]
            print(
                f"| demo | TensorRT form {name} | {row['ap50_tiny']:.2f} | {loss:.2f} | "
                f"- | fusion blockers {row['lint']['fusion_blockers_total']} |"
            )
    for form in ("symmetric", "asymmetric"):
        key = f"int8_{form}"
        speed = f"{demo['speedup'][key]:.2f}x" if "speedup" in demo else "-"
        print(
            f"| demo | INT8 {form} | {demo[form]['ap50_tiny']:.2f} | {demo['ap_loss'][key]:.2f} | "
            f"{ms.get(key, '-')} | {speed} |"
        )
    if document.get("faster_rcnn"):
        frcnn = document["faster_rcnn"]
        for key in ("fp32", "int8_symmetric", "int8_asymmetric"):
            speed = "1.00x" if key == "fp32" else f"{frcnn['speedup'][key]:.2f}x"
            print(
                f"| faster_rcnn_r50_sspnet 512x640 (random) | {key} | - | - | "
                f"{frcnn['latency_ms'][key]['p50']:.0f} | {speed} |"
            )
    print(f"\nJSON {stem.with_suffix('.json')}, plot {stem.with_suffix('.png')}; {document['wall_time_s']:.0f} s")
    return 0


def _modelopt_version(python: str | None) -> str | None:
    if not python:
        return None
    import subprocess

    run = subprocess.run([python, "-c", "import modelopt; print(modelopt.__version__)"], capture_output=True, text=True)
    return run.stdout.strip() or f"not importable: {(run.stderr.strip().splitlines() or ['?'])[-1]}"


if __name__ == "__main__":
    sys.exit(main())
