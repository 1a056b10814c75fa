"""Ablation on the synthetic set: SSFPN vs a plain FPN neck, with and without the attention loss,
same training budget; writes benchmarks/results/ablation_ssfpn.json.

    python benchmarks/ablation_ssfpn.py [--budget-min 10] [--work /tmp/sspnet_ablation]

Every configuration is BENCH_CONFIG of train_synthetic.py with only the neck / attention-loss
settings changed, trained for the SAME number of iterations (calibrated on the most expensive
configuration, SSFPN with the attention loss, to fit --budget-min) on the same data, and evaluated
on the same val split, plain and 2-scale (as train_synthetic.py). Runs take about 4 x 10 minutes
of a 2-core CPU (3 trainings; the 4th cell does not exist). The fourth cell, a plain FPN *with* the attention loss, does not exist: a
plain FPN has no attention maps to supervise (the model config rejects it), so it is reported as
null with that reason.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_synthetic import (  # noqa: E402
    BENCH_CONFIG,
    RESULTS,
    choose_threads,
    iterations_for_budget,
    json_safe,
    machine,
    make_data,
    run_benchmark,
    thread_candidates,
)

ATTENTION_DEFAULT = "v2"  # the small FoveaBox preset's attention loss (latest_version code: "tinymap")
CELLS = {
    "ssfpn+attention": {"neck": "ssfpn", "attention_loss": ATTENTION_DEFAULT},
    "ssfpn": {"neck": "ssfpn", "attention_loss": "none"},
    "fpn": {"neck": "fpn", "attention_loss": "none"},
    "fpn+attention": None,  # not a valid model: a plain FPN has no attention maps
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-min", type=float, default=10.0, help="wall-time budget of EACH configuration")
    parser.add_argument("--eval-reserve-s", type=float, default=60.0)
    parser.add_argument("--max-iters", type=int, help="fixed iterations instead of the calibrated number")
    parser.add_argument("--images", type=int, default=250)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", default="auto", help="torch threads, or 'auto' (see train_synthetic.py)")
    parser.add_argument("--work", default="/tmp/sspnet_ablation")
    parser.add_argument("--out", default=str(RESULTS / "ablation_ssfpn.json"))
    args = parser.parse_args()

    work = Path(args.work)
    data = make_data(work, args.images, args.val_fraction, BENCH_CONFIG["size"], args.seed)
    configs = {name: None if change is None else {**BENCH_CONFIG, "overrides": {**BENCH_CONFIG["overrides"], **change}}
               for name, change in CELLS.items()}
    threads, timings = choose_threads(configs["ssfpn+attention"], thread_candidates(args.threads))
    calibration = timings[threads]
    max_iters = args.max_iters or iterations_for_budget(calibration, 60.0 * args.budget_min, args.eval_reserve_s)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "ablation_ssfpn", "command": " ".join([Path(sys.executable).name, *sys.argv]),
              "iterations": max_iters, "torch_threads": threads,
              "calibrated_sec_per_iter_ssfpn_attention": calibration,
              "data": {"size_wh": list(BENCH_CONFIG["size"]), "images": args.images, "path": str(data)},
              "machine": machine(), "cells": {}}
    for name, bench in configs.items():
        if bench is None:
            report["cells"][name] = {"AP50_tiny_percent_plain": None, "AP50_tiny_percent_two_scale": None,
                                     "reason": "a plain FPN has no attention maps, so there is no attention loss"}
            continue
        run_dir = work / name
        shutil.rmtree(run_dir, ignore_errors=True)
        row = run_benchmark(bench, data, run_dir, max_iters)
        report["cells"][name] = row
        out.write_text(json.dumps(json_safe(report), indent=2))  # partial results survive an interruption
        print(f"{name}: AP50_tiny {row['AP50_tiny_percent_plain']:.2f} % plain, "
              f"{row['AP50_tiny_percent_two_scale']:.2f} % 2-scale, in {row['wall_time_s']:.0f} s")
    report["AP50_tiny_percent"] = {
        name: {"plain": cell["AP50_tiny_percent_plain"], "two_scale": cell["AP50_tiny_percent_two_scale"]}
        for name, cell in report["cells"].items()
    }
    out.write_text(json.dumps(json_safe(report), indent=2))
    print(json.dumps(json_safe(report["AP50_tiny_percent"]), indent=2))


if __name__ == "__main__":
    main()
